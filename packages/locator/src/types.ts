import type { BackendRow, Protocol } from '@mailfront/store';

export type LocateFailureKind =
  /** no active backend can take the user, or the user's backend lacks the protocol */
  | 'no-backend'
  /** the store could not be read: try again later */
  | 'tempfail';

export type LocateResult =
  | { ok: true; backend: BackendRow; port: number; source: 'assigned' | 'hashed' | 'new' }
  | { ok: false; kind: LocateFailureKind; reason: string };

export interface Locator {
  /** `user` is the canonical name returned by the auth core. */
  locate(user: string, protocol: Protocol): Promise<LocateResult>;
}
