/** Public types of the auth core. */

export interface ClientEndpoint {
  address: string;
  port: number;
}

export interface AuthRequest {
  /** The login name as the client sent it (authcid). */
  user: string;
  /** Clear password: only ever held in memory for the duration of the call. */
  password: string;
  /** SASL authorization identity, if the client sent one ('' or undefined = none). */
  authzid?: string;
  protocol: string;
  client: ClientEndpoint;
  sessionId: string;
}

/**
 * auth-failed: wrong user or password (the client is told the same thing either way);
 * auth-tempfail: we could not decide (store or directory unavailable): try later.
 */
export type AuthFailureKind = 'auth-failed' | 'auth-tempfail';

export type AuthResult =
  | { ok: true; user: string; cached: boolean }
  | { ok: false; kind: AuthFailureKind; /** for the log only, never the client */ reason: string };

export interface Authenticator {
  authenticate(req: AuthRequest): Promise<AuthResult>;
}
