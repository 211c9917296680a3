import Database from 'better-sqlite3';
import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MIGRATIONS } from '../migrations';
import { StoreError } from '../types';
import type { BackendPatch, BackendRow, BackendState, NewBackend, PlacementRow, PlacementSource, Store, UserRow } from '../types';
import { checkBackendPatch, checkBackendState, checkName, checkNewBackend, checkPlacementSource } from '../validate';
import { migrate } from './migrate';
import { toBackendRow, toPlacementRow, toUserRow } from './rows';
import type { BackendRecord, PlacementRecord, UserRecord } from './rows';

export interface SqliteStoreOptions {
  /**
   * How long a statement waits for another connection's write lock before
   * failing with StoreError 'unavailable'. Default 5000: longer than any of
   * our transactions, short enough that a login does not hang on a stuck CLI.
   */
  busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * Open (creating if needed) a SQLite store and run pending migrations.
 * `':memory:'` gives a private in-memory database (tests, dry runs).
 * Throws StoreError 'unavailable' if the file cannot be opened, 'invalid' if
 * its schema is newer than this code.
 */
export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): Store {
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new StoreError('invalid', 'busyTimeoutMs must be a non-negative integer');
  }
  const inMemory = path === ':memory:' || path === '';
  let db: Database.Database | undefined;
  try {
    if (!inMemory) prepareFile(path);
    db = new Database(path, { timeout: busyTimeoutMs });
    // WAL: readers (every login) never wait for the writer (first logins, CLI).
    db.pragma('journal_mode = WAL');
    // SQLite leaves foreign keys off unless asked, per connection.
    db.pragma('foreign_keys = ON');
    migrate(db, MIGRATIONS);
    return new SqliteStore(db);
  } catch (err) {
    db?.close();
    throw translate(err, `cannot open store ${path}`);
  }
}

/**
 * Create the file ourselves with mode 0600 before SQLite does (SQLite would
 * use 0644 under the usual umask): it holds password hashes and backend
 * master passwords. SQLite gives the -wal and -shm files the database file's
 * mode. An existing file we own that others can read is tightened.
 */
function prepareFile(path: string): void {
  const full = resolve(path);
  mkdirSync(dirname(full), { recursive: true, mode: 0o700 });
  const fd = openSync(full, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const st = fstatSync(fd);
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

/** Errors that mean "the database cannot be used right now", as opposed to a bug or bad input. */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY|CORRUPT|NOTADB|PROTOCOL|PERM|NOMEM|INTERRUPT)/;

/**
 * The SQLite result code of a driver error, or undefined.
 *
 * Duck-typed rather than `instanceof Database.SqliteError`: the native addon
 * keeps the SqliteError class of whichever copy of better-sqlite3 first loaded
 * it, so under jest (a module registry per test file) or a bundler with two
 * copies, instanceof gives false negatives. The same holds for the TypeError
 * and fs errors below, which come from node's own realm.
 */
function sqliteCode(err: unknown): string | undefined {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === 'SqliteError' && typeof e.code === 'string' ? e.code : undefined;
}

function translate(err: unknown, context: string): unknown {
  if (err instanceof StoreError) return err;
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = sqliteCode(err);
  if (code !== undefined) {
    if (UNAVAILABLE_CODES.test(code)) return withCause(new StoreError('unavailable', `${context}: ${message}`), err);
    if (code.startsWith('SQLITE_CONSTRAINT')) return withCause(new StoreError('invalid', `${context}: ${message}`), err);
    return err;
  }
  // better-sqlite3 throws TypeError for any call on a closed connection.
  if (e?.name === 'TypeError' && /database connection is not open/.test(message)) {
    return withCause(new StoreError('unavailable', `${context}: store is closed`), err);
  }
  // fs errors from prepareFile (EACCES, ENOSPC, …).
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    return withCause(new StoreError('unavailable', `${context}: ${message}`), err);
  }
  return err;
}

function withCause(e: StoreError, cause: unknown): StoreError {
  e.cause = cause;
  return e;
}

function isSqliteCode(err: unknown, code: string): boolean {
  return sqliteCode(err) === code;
}

function now(): string {
  return new Date().toISOString();
}

class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;

  private readonly stmt;
  private readonly removeBackendTx;
  private readonly removeUserTx;
  private readonly placeIfAbsentTx;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      listBackends: db.prepare<[], BackendRecord>('SELECT * FROM backends ORDER BY name'),
      getBackend: db.prepare<[string], BackendRecord>('SELECT * FROM backends WHERE name = ?'),
      addBackend: db.prepare<[Record<string, unknown>], BackendRecord>(
        `INSERT INTO backends (name, host, imap_port, pop3_port, submission_port, tls, ca_file, insecure, trusted,
                               login, master_user, master_password, state, standby, proxy_protocol, created_at)
         VALUES (@name, @host, @imap_port, @pop3_port, @submission_port, @tls, @ca_file, @insecure, @trusted,
                 @login, @master_user, @master_password, @state, @standby, @proxy_protocol, @created_at)
         RETURNING *`,
      ),
      // One statement for any subset of the patch: a flag per column says whether to set it.
      updateBackend: db.prepare<[Record<string, unknown>], BackendRecord>(
        `UPDATE backends SET
           standby        = CASE WHEN @set_standby THEN @standby ELSE standby END,
           proxy_protocol = CASE WHEN @set_proxy_protocol THEN @proxy_protocol ELSE proxy_protocol END
         WHERE name = @name
         RETURNING *`,
      ),
      deleteBackend: db.prepare<[string]>('DELETE FROM backends WHERE name = ?'),
      setBackendState: db.prepare<[string, string]>('UPDATE backends SET state = ? WHERE name = ?'),

      getUser: db.prepare<[string], UserRecord>('SELECT * FROM users WHERE name = ?'),
      listUsers: db.prepare<[], UserRecord>('SELECT * FROM users ORDER BY name'),
      addUser: db.prepare<[string, string, string, string], UserRecord>(
        'INSERT INTO users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING *',
      ),
      setUserPassword: db.prepare<[string, string, string]>('UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?'),
      deleteUser: db.prepare<[string]>('DELETE FROM users WHERE name = ?'),

      getPlacement: db.prepare<[string], PlacementRecord>('SELECT * FROM placements WHERE user = ?'),
      setPlacement: db.prepare<[string, string, string, string], PlacementRecord>(
        `INSERT INTO placements (user, backend, source, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user) DO UPDATE SET backend = excluded.backend, source = excluded.source, updated_at = excluded.updated_at
         RETURNING *`,
      ),
      insertHashedIfAbsent: db.prepare<[string, string, string]>(
        `INSERT INTO placements (user, backend, source, updated_at) VALUES (?, ?, 'hashed', ?)
         ON CONFLICT (user) DO NOTHING`,
      ),
      deletePlacement: db.prepare<[string]>('DELETE FROM placements WHERE user = ?'),
      deletePlacementsOn: db.prepare<[string]>('DELETE FROM placements WHERE backend = ?'),
      countPlacements: db.prepare<[string], { source: string; n: number }>(
        'SELECT source, COUNT(*) AS n FROM placements WHERE backend = ? GROUP BY source',
      ),
    };

    // Called with .immediate: these read then write; taking the write lock first means a
    // concurrent writer makes us wait (busy_timeout) instead of failing with
    // SQLITE_BUSY when a deferred read lock cannot be upgraded.
    this.removeBackendTx = db
      .transaction((name: string, force: boolean): void => {
        if (!this.stmt.getBackend.get(name)) throw new StoreError('not-found', `backend ${name} does not exist`);
        const { assigned } = this.countOn(name);
        if (assigned > 0 && !force) {
          throw new StoreError('in-use', `backend ${name} has ${assigned} assigned user(s); move them first or force`);
        }
        this.stmt.deletePlacementsOn.run(name);
        this.stmt.deleteBackend.run(name);
      });
    this.removeUserTx = db
      .transaction((name: string): void => {
        if (this.stmt.deleteUser.run(name).changes === 0) throw new StoreError('not-found', `user ${name} does not exist`);
        this.stmt.deletePlacement.run(name);
      });
    // The INSERT … DO NOTHING and the SELECT share a transaction so that the
    // row we return is the one stored at that moment, even if another process
    // inserted it first or removes it right after.
    this.placeIfAbsentTx = db
      .transaction((user: string, backend: string): PlacementRecord => {
        this.stmt.insertHashedIfAbsent.run(user, backend, now());
        const row = this.stmt.getPlacement.get(user);
        if (!row) throw new StoreError('unavailable', `placement of ${user} vanished inside its transaction`);
        return row;
      });
  }

  /** Runs a statement, turning driver errors into StoreErrors. */
  private guard<T>(context: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw translate(err, context);
    }
  }

  private countOn(backend: string): { assigned: number; hashed: number } {
    const counts = { assigned: 0, hashed: 0 };
    for (const { source, n } of this.stmt.countPlacements.all(backend)) counts[source as PlacementSource] = n;
    return counts;
  }

  async listBackends(): Promise<BackendRow[]> {
    return this.guard('list backends', () => this.stmt.listBackends.all().map(toBackendRow));
  }

  async getBackend(name: string): Promise<BackendRow | undefined> {
    return this.guard(`get backend ${name}`, () => {
      const r = this.stmt.getBackend.get(name);
      return r && toBackendRow(r);
    });
  }

  async addBackend(b: NewBackend): Promise<BackendRow> {
    checkNewBackend(b);
    return this.guard(`add backend ${b.name}`, () => {
      try {
        const r = this.stmt.addBackend.get({
          name: b.name,
          host: b.host,
          imap_port: b.ports.imap,
          pop3_port: b.ports.pop3,
          submission_port: b.ports.submission,
          tls: b.tls,
          ca_file: b.caFile,
          insecure: b.insecure ? 1 : 0,
          trusted: b.trusted ? 1 : 0,
          login: b.login,
          master_user: b.masterUser,
          master_password: b.masterPassword,
          state: b.state ?? 'active',
          standby: b.standby ?? null,
          proxy_protocol: b.proxyProtocol === true ? 1 : 0,
          created_at: now(),
        });
        if (!r) throw new StoreError('unavailable', `add backend ${b.name}: no row returned`);
        return toBackendRow(r);
      } catch (err) {
        if (isSqliteCode(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw new StoreError('exists', `backend ${b.name} already exists`);
        if (isSqliteCode(err, 'SQLITE_CONSTRAINT_FOREIGNKEY')) throw new StoreError('not-found', `standby backend ${b.standby} does not exist`);
        throw err;
      }
    });
  }

  async removeBackend(name: string, opts: { force?: boolean } = {}): Promise<void> {
    this.guard(`remove backend ${name}`, () => this.removeBackendTx.immediate(name, opts.force === true));
  }

  async setBackendState(name: string, state: BackendState): Promise<void> {
    checkBackendState(state);
    this.guard(`set state of backend ${name}`, () => {
      if (this.stmt.setBackendState.run(state, name).changes === 0) {
        throw new StoreError('not-found', `backend ${name} does not exist`);
      }
    });
  }

  async updateBackend(name: string, patch: BackendPatch): Promise<BackendRow> {
    checkBackendPatch(name, patch);
    return this.guard(`update backend ${name}`, () => {
      let r: BackendRecord | undefined;
      try {
        r = this.stmt.updateBackend.get({
          name,
          set_standby: patch.standby !== undefined ? 1 : 0,
          standby: patch.standby ?? null,
          set_proxy_protocol: patch.proxyProtocol !== undefined ? 1 : 0,
          proxy_protocol: patch.proxyProtocol === true ? 1 : 0,
        });
      } catch (err) {
        if (isSqliteCode(err, 'SQLITE_CONSTRAINT_FOREIGNKEY')) throw new StoreError('not-found', `standby backend ${patch.standby} does not exist`);
        throw err;
      }
      if (!r) throw new StoreError('not-found', `backend ${name} does not exist`);
      return toBackendRow(r);
    });
  }

  async getUser(name: string): Promise<UserRow | undefined> {
    return this.guard(`get user ${name}`, () => {
      const r = this.stmt.getUser.get(name);
      return r && toUserRow(r);
    });
  }

  async addUser(name: string, passwordHash: string): Promise<UserRow> {
    checkName('user name', name);
    checkName('password hash', passwordHash);
    return this.guard(`add user ${name}`, () => {
      try {
        const t = now();
        const r = this.stmt.addUser.get(name, passwordHash, t, t);
        if (!r) throw new StoreError('unavailable', `add user ${name}: no row returned`);
        return toUserRow(r);
      } catch (err) {
        if (isSqliteCode(err, 'SQLITE_CONSTRAINT_PRIMARYKEY')) throw new StoreError('exists', `user ${name} already exists`);
        throw err;
      }
    });
  }

  async setUserPassword(name: string, passwordHash: string): Promise<void> {
    checkName('password hash', passwordHash);
    this.guard(`set password of user ${name}`, () => {
      if (this.stmt.setUserPassword.run(passwordHash, now(), name).changes === 0) {
        throw new StoreError('not-found', `user ${name} does not exist`);
      }
    });
  }

  async removeUser(name: string): Promise<void> {
    this.guard(`remove user ${name}`, () => this.removeUserTx.immediate(name));
  }

  async listUsers(): Promise<UserRow[]> {
    return this.guard('list users', () => this.stmt.listUsers.all().map(toUserRow));
  }

  async getPlacement(user: string): Promise<PlacementRow | undefined> {
    return this.guard(`get placement of ${user}`, () => {
      const r = this.stmt.getPlacement.get(user);
      return r && toPlacementRow(r);
    });
  }

  async setPlacement(user: string, backend: string, source: PlacementSource): Promise<PlacementRow> {
    checkName('user name', user);
    checkPlacementSource(source);
    return this.guard(`place ${user} on ${backend}`, () => {
      try {
        const r = this.stmt.setPlacement.get(user, backend, source, now());
        if (!r) throw new StoreError('unavailable', `place ${user}: no row returned`);
        return toPlacementRow(r);
      } catch (err) {
        if (isSqliteCode(err, 'SQLITE_CONSTRAINT_FOREIGNKEY')) throw new StoreError('not-found', `backend ${backend} does not exist`);
        throw err;
      }
    });
  }

  async placeIfAbsent(user: string, backend: string): Promise<PlacementRow> {
    checkName('user name', user);
    return this.guard(`place ${user} on ${backend}`, () => {
      try {
        return toPlacementRow(this.placeIfAbsentTx.immediate(user, backend));
      } catch (err) {
        if (isSqliteCode(err, 'SQLITE_CONSTRAINT_FOREIGNKEY')) throw new StoreError('not-found', `backend ${backend} does not exist`);
        throw err;
      }
    });
  }

  async removePlacement(user: string): Promise<void> {
    this.guard(`remove placement of ${user}`, () => {
      this.stmt.deletePlacement.run(user);
    });
  }

  async countPlacements(backend: string): Promise<{ assigned: number; hashed: number }> {
    return this.guard(`count placements on ${backend}`, () => this.countOn(backend));
  }

  /** Idempotent: a second close is a no-op, later calls fail with 'unavailable'. */
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
