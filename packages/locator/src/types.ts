import type { BackendRow, Protocol } from '@mailfront/store';

export type LocateFailureKind =
  /** no active backend can take the user, or the user's backend lacks the protocol */
  | 'no-backend'
  /** the store could not be read: try again later */
  | 'tempfail';

export type LocateResult =
  | {
      ok: true;
      backend: BackendRow;
      port: number;
      /** assigned/hashed: a stored placement; new: placed just now; directory: named by the user's directory entry */
      source: 'assigned' | 'hashed' | 'new' | 'directory';
    }
  | { ok: false; kind: LocateFailureKind; reason: string };

/** What the login already knows about the user, so that the locator need not ask again. */
export interface LocateHint {
  /** Directory attributes read while authenticating (AuthResult.attributes). */
  attributes?: Readonly<Record<string, readonly string[]>>;
}

export interface Locator {
  /** `user` is the canonical name returned by the auth core. */
  locate(user: string, protocol: Protocol, hint?: LocateHint): Promise<LocateResult>;
}
