import type { BackendLoginMode, BackendRow, BackendState, BackendTlsMode, PlacementRow, PlacementSource, UserRow } from './types';

/**
 * Rows as a driver returns them: the schema's snake_case columns, named
 * alike in SQLite and PostgreSQL, with booleans as `B` and times as `T`.
 */
export interface BackendRecord<B, T> {
  name: string;
  host: string;
  imap_port: number | null;
  pop3_port: number | null;
  submission_port: number | null;
  tls: string;
  ca_file: string | null;
  insecure: B;
  trusted: B;
  login: string;
  master_user: string | null;
  master_password: string | null;
  state: string;
  standby: string | null;
  proxy_protocol: B;
  created_at: T;
}

export interface UserRecord<T> {
  name: string;
  password_hash: string;
  created_at: T;
  updated_at: T;
}

export interface PlacementRecord<T> {
  user: string;
  backend: string;
  source: string;
  updated_at: T;
}

/** How one driver's booleans and times read. */
export interface ColumnReaders<B, T> {
  bool(v: B): boolean;
  time(v: T): string;
}

/**
 * The record → row mappings, once for both drivers. The casts are safe
 * because the schema's CHECK constraints admit only the values of each union.
 */
export function rowReaders<B, T>(c: ColumnReaders<B, T>) {
  return {
    toBackendRow(r: BackendRecord<B, T>): BackendRow {
      return {
        name: r.name,
        host: r.host,
        ports: { imap: r.imap_port, pop3: r.pop3_port, submission: r.submission_port },
        tls: r.tls as BackendTlsMode,
        caFile: r.ca_file,
        insecure: c.bool(r.insecure),
        trusted: c.bool(r.trusted),
        login: r.login as BackendLoginMode,
        masterUser: r.master_user,
        masterPassword: r.master_password,
        state: r.state as BackendState,
        standby: r.standby,
        proxyProtocol: c.bool(r.proxy_protocol),
        createdAt: c.time(r.created_at),
      };
    },
    toUserRow(r: UserRecord<T>): UserRow {
      return { name: r.name, passwordHash: r.password_hash, createdAt: c.time(r.created_at), updatedAt: c.time(r.updated_at) };
    },
    toPlacementRow(r: PlacementRecord<T>): PlacementRow {
      return { user: r.user, backend: r.backend, source: r.source as PlacementSource, updatedAt: c.time(r.updated_at) };
    },
  };
}
