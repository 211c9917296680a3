import type { BackendRow, BackendLoginMode, BackendState, BackendTlsMode, PlacementRow, PlacementSource, UserRow } from '../types';

/** Rows as SQLite returns them: snake_case, booleans as 0/1. */
export interface BackendRecord {
  name: string;
  host: string;
  imap_port: number | null;
  pop3_port: number | null;
  submission_port: number | null;
  tls: string;
  ca_file: string | null;
  insecure: number;
  trusted: number;
  login: string;
  master_user: string | null;
  master_password: string | null;
  state: string;
  standby: string | null;
  proxy_protocol: number;
  created_at: string;
}

export interface UserRecord {
  name: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
}

export interface PlacementRecord {
  user: string;
  backend: string;
  source: string;
  updated_at: string;
}

// The casts below are safe because the schema's CHECK constraints admit only
// the values of each union.

export function toBackendRow(r: BackendRecord): BackendRow {
  return {
    name: r.name,
    host: r.host,
    ports: { imap: r.imap_port, pop3: r.pop3_port, submission: r.submission_port },
    tls: r.tls as BackendTlsMode,
    caFile: r.ca_file,
    insecure: r.insecure === 1,
    trusted: r.trusted === 1,
    login: r.login as BackendLoginMode,
    masterUser: r.master_user,
    masterPassword: r.master_password,
    state: r.state as BackendState,
    standby: r.standby,
    proxyProtocol: r.proxy_protocol === 1,
    createdAt: r.created_at,
  };
}

export function toUserRow(r: UserRecord): UserRow {
  return { name: r.name, passwordHash: r.password_hash, createdAt: r.created_at, updatedAt: r.updated_at };
}

export function toPlacementRow(r: PlacementRecord): PlacementRow {
  return { user: r.user, backend: r.backend, source: r.source as PlacementSource, updatedAt: r.updated_at };
}
