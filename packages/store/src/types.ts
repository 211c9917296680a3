/**
 * The store's public types. Every method is async so that a networked store
 * (PostgreSQL, for many nodes) can implement the same interface as the
 * embedded SQLite one; the SQLite implementation resolves synchronously.
 */

export type Protocol = 'imap' | 'pop3' | 'submission';
export const PROTOCOLS: readonly Protocol[] = ['imap', 'pop3', 'submission'];

/** How mailfront reaches a backend: plaintext, STARTTLS upgrade, or TLS from the first byte. */
export type BackendTlsMode = 'none' | 'starttls' | 'implicit';

/**
 * How mailfront logs in to the backend:
 * - passthrough: the user's own name and password;
 * - master: a master user (Dovecot `master = yes` passdb): SASL PLAIN with
 *   authzid = user, authcid = master user.
 */
export type BackendLoginMode = 'passthrough' | 'master';

/**
 * active: takes new logins; draining: existing sessions continue, no new
 * logins or placements (its users go to its standby, if it has one).
 */
export type BackendState = 'active' | 'draining';

export interface BackendPorts {
  imap: number | null;
  pop3: number | null;
  submission: number | null;
}

export interface BackendRow {
  name: string;
  host: string;
  ports: BackendPorts;
  tls: BackendTlsMode;
  /** PEM CA bundle file used to verify the backend's certificate; null = system CAs. */
  caFile: string | null;
  /** Explicit opt-out of certificate verification towards this backend. */
  insecure: boolean;
  /** Trusted to receive the client's address (IMAP ID, XCLIENT, PROXY protocol). */
  trusted: boolean;
  login: BackendLoginMode;
  masterUser: string | null;
  /** Secret: never logged, never printed by the CLI. */
  masterPassword: string | null;
  state: BackendState;
  /**
   * The backend that takes this one's logins while it is down or draining;
   * null = none. It must reach the same mailboxes (a replica, shared storage).
   * Never the backend itself; cleared when the standby is removed.
   */
  standby: string | null;
  /** Send a PROXY protocol v2 header first on every connection to this backend. */
  proxyProtocol: boolean;
  createdAt: string;
}

/** What addBackend takes: state defaults to active, standby to null, proxyProtocol to false. */
export type NewBackend = Omit<BackendRow, 'createdAt' | 'state' | 'standby' | 'proxyProtocol'> & {
  state?: BackendState;
  standby?: string | null;
  proxyProtocol?: boolean;
};

/**
 * What updateBackend may change on a backend in place, without touching its
 * placements. An absent key is left as it is; `standby: null` clears it.
 */
export interface BackendPatch {
  standby?: string | null;
  proxyProtocol?: boolean;
}

export interface UserRow {
  /** Canonical (lower-case) user name. */
  name: string;
  /** Encoded password hash (see @mailfront/auth); never a clear password. */
  passwordHash: string;
  createdAt: string;
  updatedAt: string;
}

/** assigned: an admin chose the backend; hashed: placed by rendezvous hashing on first login. */
export type PlacementSource = 'assigned' | 'hashed';

export interface PlacementRow {
  user: string;
  backend: string;
  source: PlacementSource;
  updatedAt: string;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  listBackends(): Promise<BackendRow[]>;
  getBackend(name: string): Promise<BackendRow | undefined>;
  /** Throws StoreError 'exists' when the name is taken. */
  addBackend(backend: NewBackend): Promise<BackendRow>;
  /** Throws StoreError 'not-found'. Refuses ('in-use') while users are assigned to it; hashed placements on it are dropped. */
  removeBackend(name: string, opts?: { force?: boolean }): Promise<void>;
  setBackendState(name: string, state: BackendState): Promise<void>;
  /**
   * Change standby and proxyProtocol; returns the updated row. Throws
   * StoreError 'not-found' when the backend or the named standby does not
   * exist, 'invalid' for a backend as its own standby or an unknown key.
   */
  updateBackend(name: string, patch: BackendPatch): Promise<BackendRow>;

  getUser(name: string): Promise<UserRow | undefined>;
  /** Throws StoreError 'exists'. */
  addUser(name: string, passwordHash: string): Promise<UserRow>;
  /** Throws StoreError 'not-found'. */
  setUserPassword(name: string, passwordHash: string): Promise<void>;
  /** Throws StoreError 'not-found'. Also removes the user's placement. */
  removeUser(name: string): Promise<void>;
  listUsers(): Promise<UserRow[]>;

  getPlacement(user: string): Promise<PlacementRow | undefined>;
  /** Insert or replace. Throws StoreError 'not-found' if the backend does not exist. */
  setPlacement(user: string, backend: string, source: PlacementSource): Promise<PlacementRow>;
  /**
   * Atomically store a placement unless one exists, and return whichever is
   * stored: two nodes placing the same user at once agree on one row.
   */
  placeIfAbsent(user: string, backend: string): Promise<PlacementRow>;
  removePlacement(user: string): Promise<void>;
  countPlacements(backend: string): Promise<{ assigned: number; hashed: number }>;

  close(): Promise<void>;
}

export type StoreErrorCode = 'exists' | 'not-found' | 'in-use' | 'invalid' | 'unavailable';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}
