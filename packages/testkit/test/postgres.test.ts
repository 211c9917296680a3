import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { promisify } from 'node:util';
import { startPostgres, type Postgres } from '@mailfront/testkit';

const execFileAsync = promisify(execFile);
const PSQL = '/usr/lib/postgresql/15/bin/psql';

/** psql over TCP as the test's password user, as mailfront would connect. */
async function asUser(pg: Postgres, sql: string, password = pg.password, database = pg.database): Promise<string> {
  const { stdout } = await execFileAsync(PSQL, ['-X', '-A', '-t', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', database, '-c', sql], {
    env: { PATH: process.env['PATH'], PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
  });
  return stdout.trim();
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

let pg: Postgres;

beforeAll(async () => {
  pg = await startPostgres();
  // Reported, not asserted: how long a test file waits for its server.
  process.stdout.write(`startPostgres: ${pg.setupMs} ms in all, server start ${pg.lastStartMs} ms\n`);
});

afterAll(async () => {
  await pg?.stop();
});

describe('startPostgres', () => {
  test('a password user owns its database, over TCP on loopback; a wrong password is refused', async () => {
    expect(pg.url).toBe(`postgres://mailfront@127.0.0.1:${pg.port}/mailfront`);
    expect(fs.readFileSync(pg.passwordFile, 'utf8').trim()).toBe(pg.password);
    expect((fs.statSync(pg.passwordFile).mode & 0o777).toString(8)).toBe('600');
    expect(await asUser(pg, 'SELECT current_user, current_database(), usesuper FROM pg_user WHERE usename = current_user')).toBe('mailfront|mailfront|f');
    await asUser(pg, 'CREATE TABLE t (x int); INSERT INTO t VALUES (1)');
    expect(await asUser(pg, 'SELECT count(*) FROM t')).toBe('1');
    await expect(asUser(pg, 'SELECT 1', 'wrong')).rejects.toThrow(/password authentication failed/);
  });

  test('runs as the postgres user with durability off, in C collation', async () => {
    const uid = fs.statSync(`/proc/${pg.pid}`).uid;
    expect(uid).toBe(Number(fs.readFileSync('/etc/passwd', 'utf8').match(/^postgres:[^:]*:(\d+):/m)![1]));
    expect((await pg.psql('SHOW fsync')).trim()).toBe('off');
    expect((await pg.psql('SHOW synchronous_commit')).trim()).toBe('off');
    expect((await pg.psql('SHOW full_page_writes')).trim()).toBe('off');
    expect((await pg.psql("SELECT string_agg(x, '' ORDER BY x) FROM unnest(ARRAY['b','a','B']) x")).trim()).toBe('Bab');
  });

  test('createDatabase gives another empty database owned by the user', async () => {
    const a = await pg.createDatabase();
    const b = await pg.createDatabase();
    expect(a.database).not.toBe(b.database);
    expect(a.url).toBe(`postgres://mailfront@127.0.0.1:${pg.port}/${a.database}`);
    await asUser(pg, 'CREATE TABLE only_in_a (x int)', pg.password, a.database);
    expect(await asUser(pg, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'", pg.password, b.database)).toBe('0');
  });

  test('stop, start, kill, start: data survives, the port follows', async () => {
    await asUser(pg, 'CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
    const first = pg.pid;
    await pg.stop();
    expect(pg.pid).toBeUndefined();
    expect(await refused(pg.port)).toBe(true);
    await pg.stop(); // idempotent
    await pg.start();
    expect(pg.pid).not.toBe(first);
    expect(await asUser(pg, 'SELECT x FROM kept')).toBe('42');

    const before = pg.pid!;
    await pg.kill();
    expect(fs.existsSync(`/proc/${before}`) && !/State:\s*Z/.test(fs.readFileSync(`/proc/${before}/status`, 'utf8'))).toBe(false);
    expect(await refused(pg.port)).toBe(true);
    await pg.start(); // crash recovery
    expect(await asUser(pg, 'SELECT x FROM kept')).toBe('42');
  });

  test('a server that cannot start reports why, with the log tail', async () => {
    const err = await startPostgres({ settings: { shared_buffers: 'lots' } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe('PostgresStartError');
    expect(err?.message).toMatch(/did not start[\s\S]*shared_buffers/);
  });
});
