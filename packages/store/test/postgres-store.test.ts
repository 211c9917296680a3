import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Client } from 'pg';
import { openPostgresStore, StoreError } from '@mailfront/store';
import type { PostgresStoreOptions, Store } from '@mailfront/store';
import { startPostgres, type Postgres } from '@mailfront/testkit';
import { MIGRATIONS } from '../src/migrations';
import { MIGRATION_LOCK_KEY, migratePostgres } from '../src/postgres/migrate';
import { PG_MIGRATIONS } from '../src/postgres/migrations';
import { backend, describeStoreContract, expectStoreError, type LockHolder, type StoreHarness } from './contract';

let pg: Postgres;
/** This test's database. */
let db: { database: string; url: string };

beforeAll(async () => {
  pg = await startPostgres();
});

afterAll(async () => {
  await pg?.stop();
});

async function rawClient(database = db.database): Promise<Client> {
  const c = new Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database });
  await c.connect();
  return c;
}

async function withRaw<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await rawClient();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function optionsFor(over: Partial<PostgresStoreOptions> = {}): PostgresStoreOptions {
  return { url: db.url, passwordFile: pg.passwordFile, ...over };
}

const postgres: StoreHarness = {
  kind: 'postgres',
  async fresh() {
    db = await pg.createDatabase();
  },
  async cleanup() {
    // Each test has its own database; the server goes away with the file.
  },
  open(opts = {}) {
    return openPostgresStore(optionsFor(opts.shortLockTimeout ? { statementTimeoutMs: 200 } : {}));
  },
  async exec(sql) {
    await withRaw((c) => c.query(sql));
  },
  async query(sql) {
    return withRaw(async (c) => (await c.query(sql)).rows);
  },
  async holdWriteLock(releaseAfterMs): Promise<LockHolder> {
    const c = await rawClient();
    await c.query('BEGIN');
    // EXCLUSIVE: blocks every INSERT, UPDATE and DELETE; SELECTs go on (as SQLite's WAL readers do).
    await c.query('LOCK TABLE placements IN EXCLUSIVE MODE');
    let released: Promise<void> | undefined;
    const release = () => (released ??= c.query('COMMIT').then(() => c.end()));
    if (releaseAfterMs !== undefined) setTimeout(() => void release(), releaseAfterMs);
    return { release };
  },
  lockTimeoutMessage: /statement timeout/,
  childArgs: () => ['postgres', JSON.stringify(optionsFor())],
};

describeStoreContract(postgres);

describe('PostgreSQL store only', () => {
  const opened: Store[] = [];
  async function openStore(over: Partial<PostgresStoreOptions> = {}): Promise<Store> {
    const s = await openPostgresStore(optionsFor(over));
    opened.push(s);
    return s;
  }
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  describe('options', () => {
    test('host/port/database/user reach the same database as the URL', async () => {
      const a = await openStore();
      await a.addUser('alice', 'h');
      const b = await openStore({ url: undefined, host: pg.host, port: pg.port, database: db.database, user: pg.user });
      expect(b.kind).toBe('postgres');
      expect((await b.getUser('alice'))?.passwordHash).toBe('h');
      // postgresql:// is the other spelling libpq accepts.
      const c = await openStore({ url: db.url.replace(/^postgres:/, 'postgresql:') });
      expect(await c.getUser('alice')).toBeDefined();
    });

    test.each<[string, Partial<PostgresStoreOptions>, RegExp]>([
      ['a password in the URL', { url: `postgres://mailfront:hunter2@127.0.0.1:1/x` }, /passwordFile/],
      ['query parameters in the URL', { url: `postgres://mailfront@127.0.0.1:1/x?sslmode=disable` }, /query parameters/],
      ['another scheme', { url: 'mysql://mailfront@127.0.0.1/x' }, /postgres:\/\//],
      ['url and host both', { host: '127.0.0.1' }, /either url or host/],
      ['poolSize 0', { poolSize: 0 }, /poolSize/],
      ['a fractional connect timeout', { connectTimeoutMs: 1.5 }, /connectTimeoutMs/],
      ['statement timeout 0 (no timeout at all)', { statementTimeoutMs: 0 }, /statementTimeoutMs/],
    ])("%s is 'invalid'", async (_what, over, message) => {
      const err = await expectStoreError(openPostgresStore(optionsFor(over)), 'invalid');
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('hunter2');
    });

    test("a wrong password, a missing password file or database is 'unavailable', naming the target but no secret", async () => {
      const wrong = path.join(pg.baseDir, 'wrong-password');
      fs.writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
      let err = await expectStoreError(openPostgresStore(optionsFor({ passwordFile: wrong })), 'unavailable');
      expect(err.message).toMatch(/password authentication failed/);
      expect(err.message).toContain(`postgres://mailfront@127.0.0.1:${pg.port}/${db.database}`);
      expect(err.message).not.toContain('not-the-password');

      err = await expectStoreError(openPostgresStore(optionsFor({ passwordFile: path.join(pg.baseDir, 'nope') })), 'unavailable');
      expect(err.message).toMatch(/ENOENT/);

      err = await expectStoreError(openPostgresStore(optionsFor({ url: `postgres://mailfront@127.0.0.1:${pg.port}/no_such_db` })), 'unavailable');
      expect(err.message).toMatch(/does not exist/);
    });

    test('the password file is read for each new connection (rotation needs no restart)', async () => {
      const file = path.join(pg.baseDir, 'rotating-password');
      fs.writeFileSync(file, `${pg.password}\n`, { mode: 0o600 });
      const s = await openStore({ passwordFile: file, poolSize: 1 });
      await pg.psql(`ALTER ROLE ${pg.user} PASSWORD 'rotated-pw'`, 'postgres');
      try {
        fs.writeFileSync(file, 'rotated-pw\n');
        // End the pooled connection server-side; the next query connects anew with the new password.
        await pg.psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.database}' AND application_name = 'mailfront'`, 'postgres');
        expect(await s.listUsers()).toEqual([]);
      } finally {
        await pg.psql(`ALTER ROLE ${pg.user} PASSWORD '${pg.password}'`, 'postgres');
      }
    });

    test('the pool holds at most poolSize connections', async () => {
      const s = await openStore({ poolSize: 2 });
      await s.addBackend(backend('b1'));
      await Promise.all(Array.from({ length: 40 }, (_, i) => s.placeIfAbsent(`u${i}`, 'b1')));
      const rows = await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${db.database}' AND application_name = 'mailfront'`, 'postgres');
      expect(Number(rows.trim())).toBeGreaterThan(0);
      expect(Number(rows.trim())).toBeLessThanOrEqual(2);
      expect(await s.countPlacements('b1')).toEqual({ assigned: 0, hashed: 40 });
    });
  });

  describe('migrations', () => {
    test('one PostgreSQL migration for each SQLite one, same numbers and names', () => {
      expect(PG_MIGRATIONS.map((m) => [m.version, m.name])).toEqual(MIGRATIONS.map((m) => [m.version, m.name]));
    });

    test('applies pending migrations in order, once; a failing one leaves nothing half-applied', async () => {
      const c = await rawClient();
      try {
        const all = PG_MIGRATIONS.map((m) => m.version);
        const next = PG_MIGRATIONS.length + 1;
        expect(await migratePostgres(c, PG_MIGRATIONS)).toEqual(all);
        expect(await migratePostgres(c, PG_MIGRATIONS)).toEqual([]);
        const extra = { version: next, name: 'add-notes', sql: 'CREATE TABLE notes (id INTEGER PRIMARY KEY)' };
        const broken = { version: next, name: 'broken', sql: 'CREATE TABLE half (id INTEGER); THIS IS NOT SQL' };
        await expect(migratePostgres(c, [...PG_MIGRATIONS, broken])).rejects.toThrow(/syntax error/);
        expect((await c.query("SELECT to_regclass('half') AS t")).rows).toEqual([{ t: null }]);
        expect(await migratePostgres(c, [...PG_MIGRATIONS, extra])).toEqual([next]);
        expect((await c.query('SELECT version FROM schema_migrations ORDER BY version')).rows).toEqual([...all, next].map((version) => ({ version })));
        await expect(migratePostgres(c, [extra])).rejects.toThrow(/numbered/);
      } finally {
        await c.end();
      }
    });

    test('002 on a database with backends: no standby, no PROXY header; then standby and the not-self check work', async () => {
      const c = await rawClient();
      try {
        await migratePostgres(c, PG_MIGRATIONS.slice(0, 1));
        await c.query(`INSERT INTO backends (name, host, tls, login, created_at) VALUES ('a', 'h', 'none', 'passthrough', now()), ('b', 'h', 'none', 'passthrough', now())`);
        expect(await migratePostgres(c, PG_MIGRATIONS)).toEqual([2]);
        expect((await c.query('SELECT name, standby, proxy_protocol FROM backends ORDER BY name')).rows).toEqual([
          { name: 'a', standby: null, proxy_protocol: false },
          { name: 'b', standby: null, proxy_protocol: false },
        ]);
        await c.query(`UPDATE backends SET standby = 'b' WHERE name = 'a'`);
        await expect(c.query(`UPDATE backends SET standby = 'b' WHERE name = 'b'`)).rejects.toThrow(/check constraint/);
        await expect(c.query(`UPDATE backends SET standby = 'nope' WHERE name = 'b'`)).rejects.toThrow(/foreign key/);
        await c.query(`DELETE FROM backends WHERE name = 'b'`);
        expect((await c.query(`SELECT standby FROM backends WHERE name = 'a'`)).rows).toEqual([{ standby: null }]);
      } finally {
        await c.end();
      }
    });

    test('opening waits for the migration lock another node holds', async () => {
      const other = await rawClient();
      try {
        await other.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
        let opened = false;
        const opening = openStore().then((s) => {
          opened = true;
          return s;
        });
        // Until the other node lets go, the opening store waits on the advisory lock.
        for (;;) {
          const waiting = await other.query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
          );
          if (waiting.rowCount === 1) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        expect(opened).toBe(false);
        expect((await other.query("SELECT to_regclass('backends') AS t")).rows).toEqual([{ t: null }]);
        await other.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
        const s = await opening;
        expect(await s.listBackends()).toEqual([]);
      } finally {
        await other.end();
      }
    });

    test('eight nodes opening a fresh database at once: all open, each migration applied once', async () => {
      const stores = await Promise.all(Array.from({ length: 8 }, () => openStore({ poolSize: 1 })));
      expect(stores).toHaveLength(8);
      expect(await postgres.query('SELECT version, name FROM schema_migrations ORDER BY version')).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    });
  });
});

describe('PostgreSQL going away and coming back', () => {
  let server: Postgres;
  let opts: PostgresStoreOptions;
  const stores: Store[] = [];

  beforeAll(async () => {
    // Its own server: these tests stop and kill it.
    server = await startPostgres();
    opts = { url: server.url, passwordFile: server.passwordFile, connectTimeoutMs: 2000 };
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await server?.stop();
  });

  async function open(): Promise<Store> {
    const s = await openPostgresStore(opts);
    stores.push(s);
    return s;
  }

  test.each(['stop', 'kill'] as const)("after %s: 'unavailable' (login → temporary failure), then the same store works again by itself", async (how) => {
    const s = await open();
    await s.addBackend(backend(`b-${how}`)).catch(() => undefined);
    await s.addUser(`alice-${how}`, 'h');
    expect(await s.getUser(`alice-${how}`)).toBeDefined(); // a pooled connection exists now

    // The testkit's server commits asynchronously (synchronous_commit=off): a
    // crash would lose the last commits. Make them durable first.
    if (how === 'kill') await server.psql('CHECKPOINT');
    await server[how]();
    await expectStoreError(s.getUser(`alice-${how}`), 'unavailable');
    await expectStoreError(s.placeIfAbsent(`bob-${how}`, `b-${how}`), 'unavailable');
    await expectStoreError(s.addUser(`carol-${how}`, 'h'), 'unavailable');
    await expectStoreError(openPostgresStore(opts), 'unavailable');

    await server.start();
    // The very first call after the restart succeeds: no stale connection is handed out.
    expect((await s.getUser(`alice-${how}`))?.passwordHash).toBe('h');
    expect(await s.placeIfAbsent(`bob-${how}`, `b-${how}`)).toMatchObject({ backend: `b-${how}` });
  });

  test('connections that died unnoticed (a failover): the first query on each retries on a fresh one', async () => {
    // A TCP relay in front of the server, so that pooled connections can be
    // cut without the client hearing of it until it next sends.
    const links = new Set<{ client: net.Socket; upstream: net.Socket }>();
    const relay = net.createServer((client) => {
      const upstream = net.connect(server.port, '127.0.0.1');
      const link = { client, upstream };
      links.add(link);
      client.on('error', () => undefined);
      upstream.on('error', () => undefined);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as net.AddressInfo).port;
    try {
      const s = await openPostgresStore({ ...opts, url: `postgres://${server.user}@127.0.0.1:${port}/${server.database}`, poolSize: 3 });
      stores.push(s);
      await Promise.all([s.listUsers(), s.listUsers(), s.listUsers()]); // three idle pooled connections
      for (const link of links) {
        // The server side goes away; the client side stays open and silent
        // until the client writes, then it is reset.
        link.client.unpipe(link.upstream);
        link.upstream.unpipe(link.client);
        link.upstream.destroy();
        link.client.once('data', () => link.client.destroy()).resume();
      }
      links.clear();
      const [users, backends, nobody] = await Promise.all([s.listUsers(), s.listBackends(), s.getUser('nobody')]);
      expect(users.length).toBeGreaterThan(0);
      expect(backends.length).toBeGreaterThan(0);
      expect(nobody).toBeUndefined();
      // A write that is not idempotent is not retried: it reports the break.
      for (const link of links) {
        link.client.unpipe(link.upstream);
        link.upstream.unpipe(link.client);
        link.upstream.destroy();
        link.client.once('data', () => link.client.destroy()).resume();
      }
      await expectStoreError(s.addUser('dave', 'h'), 'unavailable');
    } finally {
      for (const link of links) link.client.destroy();
      await new Promise((r) => relay.close(r));
    }
  });

  test("a server that accepts but never answers: 'unavailable' after connectTimeoutMs, not a hang", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const err = await expectStoreError(openPostgresStore({ host: '127.0.0.1', port, connectTimeoutMs: 300 }), 'unavailable');
      expect(err.message).toMatch(/timeout/i);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test('a refused connection is a StoreError, not a driver error', async () => {
    const { freePort } = await import('@mailfront/testkit');
    const err = await openPostgresStore({ host: '127.0.0.1', port: await freePort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('unavailable');
    expect((err as StoreError).message).toMatch(/ECONNREFUSED/);
  });
});
