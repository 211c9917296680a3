import type { BackendRow, Protocol } from '@mailfront/store';

export type LocateFailureKind =
  /** no active backend can take the user, or the user's backend lacks the protocol */
  | 'no-backend'
  /** the store could not be read: try again later */
  | 'tempfail'
  /** the user's backend is down or draining and no standby can take the login now: try again later */
  | 'unavailable';

export type LocateResult =
  | {
      ok: true;
      backend: BackendRow;
      port: number;
      /** assigned/hashed: a stored placement; new: placed just now; directory: named by the user's directory entry */
      source: 'assigned' | 'hashed' | 'new' | 'directory';
      /** Set when `backend` is the standby of the user's own backend, which is down or draining. */
      standbyFor?: { backend: string; reason: 'down' | 'draining' };
    }
  | { ok: false; kind: LocateFailureKind; reason: string };

/** What the login already knows about the user, so that the locator need not ask again. */
export interface LocateHint {
  /** Directory attributes read while authenticating (AuthResult.attributes). */
  attributes?: Readonly<Record<string, readonly string[]>>;
  /**
   * Whether an active backend may take a new placement now (the health-aware
   * locator passes its view of health here). Absent: every active backend may.
   */
  placeable?: (backend: BackendRow) => boolean;
}

export interface Locator {
  /** `user` is the canonical name returned by the auth core. */
  locate(user: string, protocol: Protocol, hint?: LocateHint): Promise<LocateResult>;
}
