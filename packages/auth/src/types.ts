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
  | {
      ok: true;
      user: string;
      cached: boolean;
      /**
       * Attributes read with the user's directory entry (attribute name as
       * configured → values; [] when the entry has none), so that placement
       * needs no second search. Absent when nothing was read: another
       * source, or a success-cache hit.
       */
      attributes?: Readonly<Record<string, readonly string[]>>;
      /**
       * false: nobody checked the password here (auth source `backend`); the
       * backend's own login decides. The session driver then allows only a
       * passthrough login, where the backend sees the user's own password: a
       * master login would let anyone in. Absent means verified.
       */
      verified?: boolean;
    }
  | { ok: false; kind: AuthFailureKind; /** for the log only, never the client */ reason: string };

export interface Authenticator {
  authenticate(req: AuthRequest): Promise<AuthResult>;
}
