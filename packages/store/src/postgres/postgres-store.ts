import { readFileSync, promises as fsp } from 'node:fs';
import { Pool, type PoolClient, type PoolConfig, type QueryResultRow } from 'pg';
import { StoreError } from '../types';
import type { BackendPatch, BackendRow, BackendState, NewBackend, PlacementRow, PlacementSource, Store, UserRow } from '../types';
import { checkBackendPatch, checkBackendState, checkName, checkNewBackend, checkPlacementSource } from '../validate';
import { isUnavailable, sqlState, translate } from './errors';
import { migratePostgres } from './migrate';
import { PG_MIGRATIONS } from './migrations';
import { toBackendRow, toPlacementRow, toUserRow } from './rows';
import type { PgBackendRecord, PgPlacementRecord, PgUserRecord } from './rows';

export interface PostgresStoreOptions {
  /**
   * `postgres://user@host:port/database` (or postgresql://). No password
   * (use passwordFile) and no query parameters (use the options below). Give
   * either url or host/port/database/user, not both.
   */
  url?: string;
  /** Host name, IP address, or the directory of a unix socket. Default 'localhost'. */
  host?: string;
  /** Default 5432. */
  port?: number;
  /** Default 'mailfront'. */
  database?: string;
  /** Default 'mailfront'. */
  user?: string;
  /**
   * A file whose first line is the password. Read again for every new
   * connection, so a rotated password needs no restart. Without it: no
   * password (trust, peer, or ~/.pgpass).
   */
  passwordFile?: string;
  /**
   * TLS towards PostgreSQL. Default false. true: verify against the system
   * CAs; { caFile }: against that PEM bundle; insecure: true skips
   * verification (an explicit opt-out, as for backends).
   */
  ssl?: boolean | { caFile?: string; insecure?: boolean };
  /** Connections per node. Default 4: logins hold one for a query or two, milliseconds each. */
  poolSize?: number;
  /** Connecting, or waiting for a free pooled connection, fails with 'unavailable' after this. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * The server cancels a statement running (or waiting for a lock) longer
   * than this: 'unavailable'. Default 5000, as the SQLite store's busy timeout.
   */
  statementTimeoutMs?: number;
}

export const POSTGRES_STORE_DEFAULTS = Object.freeze({
  host: 'localhost',
  port: 5432,
  database: 'mailfront',
  user: 'mailfront',
  poolSize: 4,
  connectTimeoutMs: 5000,
  statementTimeoutMs: 5000,
});

// setTimeout treats any delay above 2^31-1 ms as 1 ms.
const MAX_TIMER_MS = 2_147_483_647;
/** Idle connections above none are closed after this; the pool reopens on demand. */
const IDLE_TIMEOUT_MS = 30_000;
/**
 * How often placeIfAbsent re-inserts when the row it conflicted with was
 * removed before it could read it (a `user remove` racing a first login).
 */
const PLACE_ATTEMPTS = 3;

interface Target {
  host: string;
  port: number;
  database: string;
  user: string;
}

function invalid(message: string): StoreError {
  return new StoreError('invalid', message);
}

function checkInteger(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(`${name} must be an integer ${min}..${max}`);
  return v;
}

/** The connection target from url or the separate options. */
function resolveTarget(opts: PostgresStoreOptions): Target {
  const d = POSTGRES_STORE_DEFAULTS;
  if (opts.url === undefined) {
    const host = opts.host ?? d.host;
    if (typeof host !== 'string' || host === '' || /[\s\u0000-\u001f]/.test(host)) throw invalid('host must be a non-empty name without spaces');
    return {
      host,
      port: checkInteger('port', opts.port, d.port, 1, 65535),
      database: checkName('database', opts.database ?? d.database),
      user: checkName('user', opts.user ?? d.user),
    };
  }
  for (const k of ['host', 'port', 'database', 'user'] as const) {
    if (opts[k] !== undefined) throw invalid(`give either url or ${k} (and the other parts), not both`);
  }
  let u: URL;
  try {
    u = new URL(opts.url);
  } catch {
    throw invalid('url is not a URL (postgres://user@host:port/database)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw invalid(`url must start with postgres://, not ${u.protocol}//`);
  // Never echo the URL back: it may hold the password we refuse.
  if (u.password !== '') throw invalid('url must not contain a password: put it in passwordFile');
  if (u.search !== '' || u.hash !== '') throw invalid('url must not have query parameters or a fragment: use the store options');
  if (u.hostname === '') throw invalid('url has no host');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database.includes('/')) throw invalid('url path must be one database name');
  return {
    // WHATWG URL keeps the brackets of an IPv6 literal.
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port === '' ? d.port : Number(u.port),
    database: database === '' ? d.database : checkName('database', database),
    user: u.username === '' ? d.user : checkName('user', decodeURIComponent(u.username)),
  };
}

/** The password: the file's first line, without its line ending. */
function parsePassword(file: string, text: string): string {
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new StoreError('unavailable', `password file ${file} is empty`);
  return password;
}

function sslConfig(ssl: PostgresStoreOptions['ssl']): PoolConfig['ssl'] {
  if (ssl === undefined || ssl === false) return false;
  if (ssl === true) return { rejectUnauthorized: true };
  if (typeof ssl !== 'object' || ssl === null) throw invalid('ssl must be true, false or { caFile, insecure }');
  if (ssl.insecure !== undefined && typeof ssl.insecure !== 'boolean') throw invalid('ssl.insecure must be a boolean');
  return {
    rejectUnauthorized: ssl.insecure !== true,
    ...(ssl.caFile !== undefined ? { ca: readFileSync(ssl.caFile, 'utf8') } : {}),
  };
}

/**
 * Open a PostgreSQL store: a small connection pool, and pending migrations
 * applied under an advisory lock (nodes starting together do not race).
 * Throws StoreError 'invalid' for bad options or a schema newer than this
 * code, 'unavailable' if the server cannot be reached or refuses us.
 *
 * Later operations fail with 'unavailable' while the server is down (within
 * connectTimeoutMs or statementTimeoutMs, never hanging), and work again by
 * themselves once it is back: broken connections leave the pool, and
 * idempotent operations retry once on a connection that broke under them.
 */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<Store> {
  const target = resolveTarget(opts);
  const where = `postgres://${target.user}@${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}/${target.database}`;
  const poolSize = checkInteger('poolSize', opts.poolSize, POSTGRES_STORE_DEFAULTS.poolSize, 1, 1000);
  const connectTimeoutMs = checkInteger('connectTimeoutMs', opts.connectTimeoutMs, POSTGRES_STORE_DEFAULTS.connectTimeoutMs, 1, MAX_TIMER_MS);
  const statementTimeoutMs = checkInteger('statementTimeoutMs', opts.statementTimeoutMs, POSTGRES_STORE_DEFAULTS.statementTimeoutMs, 1, MAX_TIMER_MS);

  let password: PoolConfig['password'];
  let ssl: PoolConfig['ssl'];
  try {
    ssl = sslConfig(opts.ssl);
    if (opts.passwordFile !== undefined) {
      const file = opts.passwordFile;
      // Read now, so that a missing file fails the start rather than the first login.
      parsePassword(file, readFileSync(file, 'utf8'));
      password = async () => parsePassword(file, await fsp.readFile(file, 'utf8'));
    }
  } catch (err) {
    throw translate(err, `cannot open store ${where}`);
  }

  const pool = new Pool({
    ...target,
    password,
    ssl,
    max: poolSize,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    // Sent at connect: the server cancels anything slower, lock waits included.
    statement_timeout: statementTimeoutMs,
    // The client-side backstop when the server cannot even send the cancel (network gone).
    query_timeout: statementTimeoutMs + connectTimeoutMs,
    keepAlive: true,
    allowExitOnIdle: true,
    application_name: 'mailfront',
  });
  // An idle pooled connection that breaks (server restart) is reported here
  // and dropped by the pool; without a listener it would crash the process.
  // The next query opens a fresh connection.
  pool.on('error', () => undefined);

  let client: PoolClient | undefined;
  try {
    client = await pool.connect();
    await migratePostgres(client, PG_MIGRATIONS);
    client.release();
    return new PostgresStore(pool, where);
  } catch (err) {
    client?.release(err as Error);
    await pool.end().catch(() => undefined);
    throw translate(err, `cannot open store ${where}`);
  }
}

/**
 * A connection that broke under a statement, as opposed to one that could
 * not be made or timed out: the server restarted or dropped us. Retrying once
 * on a fresh connection is then likely to work.
 */
function brokeUnderUs(err: unknown): boolean {
  const state = sqlState(err);
  if (state !== undefined) return ['57P01', '57P02', '08003', '08006'].includes(state);
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e?.code === 'ECONNRESET' || e?.code === 'EPIPE') return true;
  return typeof e?.message === 'string' && /Connection terminated unexpectedly|not queryable/.test(e.message);
}

function now(): Date {
  return new Date();
}

class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private closed = false;
  private ending: Promise<void> | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly where: string,
  ) {}

  /**
   * Runs `fn`, turning driver errors into StoreErrors. `idempotent`: running
   * it twice is the same as once, so it may be retried after a broken connection.
   */
  private async run<T>(context: string, idempotent: boolean, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('unavailable', `${context}: store ${this.where} is closed`);
    try {
      return await fn();
    } catch (err) {
      if (!idempotent || this.closed || !brokeUnderUs(err)) throw translate(err, context);
    }
    try {
      return await fn();
    } catch (err) {
      throw translate(err, context);
    }
  }

  private async rows<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /** One transaction on one pooled connection; a connection left unusable is dropped, not reused. */
  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let failed: unknown;
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      failed = err;
      try {
        await c.query('ROLLBACK');
        if (!isUnavailable(err)) failed = undefined; // a refusal (in-use, not-found): the connection is fine
      } catch {
        // failed stays set: drop the connection
      }
      throw err;
    } finally {
      c.release(failed !== undefined);
    }
  }

  private async countOn(q: Pool | PoolClient, backend: string): Promise<{ assigned: number; hashed: number }> {
    const counts = { assigned: 0, hashed: 0 };
    const r = await q.query<{ source: string; n: number }>(
      'SELECT source, COUNT(*)::int AS n FROM placements WHERE backend = $1 GROUP BY source',
      [backend],
    );
    for (const { source, n } of r.rows) counts[source as PlacementSource] = n;
    return counts;
  }

  async listBackends(): Promise<BackendRow[]> {
    return this.run('list backends', true, async () => (await this.rows<PgBackendRecord>('SELECT * FROM backends ORDER BY name')).map(toBackendRow));
  }

  async getBackend(name: string): Promise<BackendRow | undefined> {
    return this.run(`get backend ${name}`, true, async () => {
      const [r] = await this.rows<PgBackendRecord>('SELECT * FROM backends WHERE name = $1', [name]);
      return r && toBackendRow(r);
    });
  }

  async addBackend(b: NewBackend): Promise<BackendRow> {
    checkNewBackend(b);
    return this.run(`add backend ${b.name}`, false, async () => {
      try {
        const [r] = await this.rows<PgBackendRecord>(
          `INSERT INTO backends (name, host, imap_port, pop3_port, submission_port, tls, ca_file, insecure, trusted,
                                 login, master_user, master_password, state, standby, proxy_protocol, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
           RETURNING *`,
          [
            b.name,
            b.host,
            b.ports.imap,
            b.ports.pop3,
            b.ports.submission,
            b.tls,
            b.caFile,
            b.insecure,
            b.trusted,
            b.login,
            b.masterUser,
            b.masterPassword,
            b.state ?? 'active',
            b.standby ?? null,
            b.proxyProtocol === true,
            now(),
          ],
        );
        if (!r) throw new StoreError('unavailable', `add backend ${b.name}: no row returned`);
        return toBackendRow(r);
      } catch (err) {
        if (sqlState(err) === '23505') throw new StoreError('exists', `backend ${b.name} already exists`);
        if (sqlState(err) === '23503') throw new StoreError('not-found', `standby backend ${b.standby} does not exist`);
        throw err;
      }
    });
  }

  async removeBackend(name: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.run(`remove backend ${name}`, false, () =>
      this.tx(async (c) => {
        // FOR UPDATE: a concurrent first login placing a user here (its
        // foreign key check locks this row too) waits for us, then fails
        // with 'not-found' and places the user elsewhere.
        const found = await c.query('SELECT name FROM backends WHERE name = $1 FOR UPDATE', [name]);
        if (found.rowCount === 0) throw new StoreError('not-found', `backend ${name} does not exist`);
        const { assigned } = await this.countOn(c, name);
        if (assigned > 0 && opts.force !== true) {
          throw new StoreError('in-use', `backend ${name} has ${assigned} assigned user(s); move them first or force`);
        }
        await c.query('DELETE FROM placements WHERE backend = $1', [name]);
        await c.query('DELETE FROM backends WHERE name = $1', [name]);
      }),
    );
  }

  async setBackendState(name: string, state: BackendState): Promise<void> {
    checkBackendState(state);
    await this.run(`set state of backend ${name}`, true, async () => {
      const r = await this.pool.query('UPDATE backends SET state = $1 WHERE name = $2', [state, name]);
      if (r.rowCount === 0) throw new StoreError('not-found', `backend ${name} does not exist`);
    });
  }

  async updateBackend(name: string, patch: BackendPatch): Promise<BackendRow> {
    checkBackendPatch(name, patch);
    // Idempotent: setting the same values twice is the same as once.
    return this.run(`update backend ${name}`, true, async () => {
      let r: PgBackendRecord | undefined;
      try {
        // One statement for any subset of the patch: a flag per column says whether to set it.
        [r] = await this.rows<PgBackendRecord>(
          `UPDATE backends SET
             standby        = CASE WHEN $2::boolean THEN $3::text ELSE standby END,
             proxy_protocol = CASE WHEN $4::boolean THEN $5::boolean ELSE proxy_protocol END
           WHERE name = $1
           RETURNING *`,
          [name, patch.standby !== undefined, patch.standby ?? null, patch.proxyProtocol !== undefined, patch.proxyProtocol === true],
        );
      } catch (err) {
        if (sqlState(err) === '23503') throw new StoreError('not-found', `standby backend ${patch.standby} does not exist`);
        throw err;
      }
      if (!r) throw new StoreError('not-found', `backend ${name} does not exist`);
      return toBackendRow(r);
    });
  }

  async getUser(name: string): Promise<UserRow | undefined> {
    return this.run(`get user ${name}`, true, async () => {
      const [r] = await this.rows<PgUserRecord>('SELECT * FROM users WHERE name = $1', [name]);
      return r && toUserRow(r);
    });
  }

  async addUser(name: string, passwordHash: string): Promise<UserRow> {
    checkName('user name', name);
    checkName('password hash', passwordHash);
    return this.run(`add user ${name}`, false, async () => {
      try {
        const t = now();
        const [r] = await this.rows<PgUserRecord>(
          'INSERT INTO users (name, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING *',
          [name, passwordHash, t],
        );
        if (!r) throw new StoreError('unavailable', `add user ${name}: no row returned`);
        return toUserRow(r);
      } catch (err) {
        if (sqlState(err) === '23505') throw new StoreError('exists', `user ${name} already exists`);
        throw err;
      }
    });
  }

  async setUserPassword(name: string, passwordHash: string): Promise<void> {
    checkName('password hash', passwordHash);
    await this.run(`set password of user ${name}`, true, async () => {
      const r = await this.pool.query('UPDATE users SET password_hash = $1, updated_at = $2 WHERE name = $3', [passwordHash, now(), name]);
      if (r.rowCount === 0) throw new StoreError('not-found', `user ${name} does not exist`);
    });
  }

  async removeUser(name: string): Promise<void> {
    await this.run(`remove user ${name}`, false, () =>
      this.tx(async (c) => {
        const r = await c.query('DELETE FROM users WHERE name = $1', [name]);
        if (r.rowCount === 0) throw new StoreError('not-found', `user ${name} does not exist`);
        await c.query('DELETE FROM placements WHERE "user" = $1', [name]);
      }),
    );
  }

  async listUsers(): Promise<UserRow[]> {
    return this.run('list users', true, async () => (await this.rows<PgUserRecord>('SELECT * FROM users ORDER BY name')).map(toUserRow));
  }

  async getPlacement(user: string): Promise<PlacementRow | undefined> {
    return this.run(`get placement of ${user}`, true, async () => {
      const [r] = await this.rows<PgPlacementRecord>('SELECT * FROM placements WHERE "user" = $1', [user]);
      return r && toPlacementRow(r);
    });
  }

  async setPlacement(user: string, backend: string, source: PlacementSource): Promise<PlacementRow> {
    checkName('user name', user);
    checkPlacementSource(source);
    return this.run(`place ${user} on ${backend}`, true, async () => {
      try {
        const [r] = await this.rows<PgPlacementRecord>(
          `INSERT INTO placements ("user", backend, source, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT ("user") DO UPDATE SET backend = excluded.backend, source = excluded.source, updated_at = excluded.updated_at
           RETURNING *`,
          [user, backend, source, now()],
        );
        if (!r) throw new StoreError('unavailable', `place ${user}: no row returned`);
        return toPlacementRow(r);
      } catch (err) {
        if (sqlState(err) === '23503') throw new StoreError('not-found', `backend ${backend} does not exist`);
        throw err;
      }
    });
  }

  /**
   * INSERT … ON CONFLICT DO NOTHING RETURNING, then SELECT if it inserted
   * nothing. Two statements, not one: under READ COMMITTED a conflict waits
   * for the other node's insert to commit, but a SELECT in the same statement
   * would still read the older snapshot and find no row. The SELECT that
   * follows reads a fresh one. Atomic across nodes: the primary key admits
   * one row, and every caller returns that row.
   */
  async placeIfAbsent(user: string, backend: string): Promise<PlacementRow> {
    checkName('user name', user);
    return this.run(`place ${user} on ${backend}`, true, async () => {
      for (let attempt = 1; attempt <= PLACE_ATTEMPTS; attempt++) {
        let inserted: PgPlacementRecord | undefined;
        try {
          [inserted] = await this.rows<PgPlacementRecord>(
            `INSERT INTO placements ("user", backend, source, updated_at) VALUES ($1, $2, 'hashed', $3)
             ON CONFLICT ("user") DO NOTHING
             RETURNING *`,
            [user, backend, now()],
          );
        } catch (err) {
          if (sqlState(err) === '23503') throw new StoreError('not-found', `backend ${backend} does not exist`);
          throw err;
        }
        if (inserted) return toPlacementRow(inserted);
        const [stored] = await this.rows<PgPlacementRecord>('SELECT * FROM placements WHERE "user" = $1', [user]);
        if (stored) return toPlacementRow(stored);
        // Removed between the two statements: insert again.
      }
      throw new StoreError('unavailable', `placement of ${user} kept vanishing during ${PLACE_ATTEMPTS} attempts`);
    });
  }

  async removePlacement(user: string): Promise<void> {
    await this.run(`remove placement of ${user}`, true, async () => {
      await this.pool.query('DELETE FROM placements WHERE "user" = $1', [user]);
    });
  }

  async countPlacements(backend: string): Promise<{ assigned: number; hashed: number }> {
    return this.run(`count placements on ${backend}`, true, () => this.countOn(this.pool, backend));
  }

  /** Idempotent: ends the pool once; later calls fail with 'unavailable'. */
  async close(): Promise<void> {
    this.closed = true;
    this.ending ??= this.pool.end().catch(() => undefined);
    await this.ending;
  }
}
