import type { BackendLoginMode, BackendRow, BackendState, BackendTlsMode, PlacementRow, PlacementSource, UserRow } from '../types';

/** Rows as pg returns them: snake_case, real booleans, TIMESTAMPTZ as Date. */
export interface PgBackendRecord {
  name: string;
  host: string;
  imap_port: number | null;
  pop3_port: number | null;
  submission_port: number | null;
  tls: string;
  ca_file: string | null;
  insecure: boolean;
  trusted: boolean;
  login: string;
  master_user: string | null;
  master_password: string | null;
  state: string;
  standby: string | null;
  proxy_protocol: boolean;
  created_at: Date;
}

export interface PgUserRecord {
  name: string;
  password_hash: string;
  created_at: Date;
  updated_at: Date;
}

export interface PgPlacementRecord {
  user: string;
  backend: string;
  source: string;
  updated_at: Date;
}

// Times are written from JavaScript Dates (millisecond precision), so
// toISOString gives back exactly the string the SQLite store would hold.
// The casts are safe because the schema's CHECK constraints admit only the
// values of each union.

export function toBackendRow(r: PgBackendRecord): BackendRow {
  return {
    name: r.name,
    host: r.host,
    ports: { imap: r.imap_port, pop3: r.pop3_port, submission: r.submission_port },
    tls: r.tls as BackendTlsMode,
    caFile: r.ca_file,
    insecure: r.insecure,
    trusted: r.trusted,
    login: r.login as BackendLoginMode,
    masterUser: r.master_user,
    masterPassword: r.master_password,
    state: r.state as BackendState,
    standby: r.standby,
    proxyProtocol: r.proxy_protocol,
    createdAt: r.created_at.toISOString(),
  };
}

export function toUserRow(r: PgUserRecord): UserRow {
  return { name: r.name, passwordHash: r.password_hash, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString() };
}

export function toPlacementRow(r: PgPlacementRecord): PlacementRow {
  return { user: r.user, backend: r.backend, source: r.source as PlacementSource, updatedAt: r.updated_at.toISOString() };
}
