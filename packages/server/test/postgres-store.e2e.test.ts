/**
 * Two mailfront nodes sharing one PostgreSQL store, in front of a real
 * Dovecot: what an admin does with the CLI against node A's config is what
 * node B serves, and PostgreSQL going away is a temporary failure for the
 * client, not a wrong password, until it is back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { runCliCaptured } from '@mailfront/cli';
import { createLogger } from '@mailfront/proxy-core';
import { loadConfig, startServer, type RunningServer } from '@mailfront/server';
import { makeTempDir, rawConnect, startDovecot, startPostgres, type Dovecot, type Postgres, type TempDir } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const ALICE = { name: 'alice@example.org', password: 'alice-pw-1' };
const BOB = { name: 'bob@example.org', password: 'bob-pw-2' };

let dovecot: Dovecot;
let pg: Postgres;
let dir: TempDir;
let configA: string;
let configB: string;
let nodeA: MailfrontUnderTest;
let nodeB: RunningServer;
let logB: fs.WriteStream;

/** A node's config file: the same store, its own dataDir; plaintext IMAP on loopback keeps the timing about the store. */
function writeConfig(name: string): string {
  const file = path.join(dir.path, `${name}.yaml`);
  fs.writeFileSync(
    file,
    `dataDir: ./${name}
hostname: localhost
store:
  kind: postgres
  url: ${pg.url}
  passwordFile: ${pg.passwordFile}
  connectTimeoutMs: 2000
listeners:
  - { protocol: imap, host: 127.0.0.1, port: 0, tls: none, allowPlaintextAuth: true }
auth:
  cacheTtlMs: 0            # every login asks the store
  failureDelayMs: 100
log: { level: error }
`,
  );
  return file;
}

async function cli(config: string, args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCliCaptured(['--config', config, ...args], { cwd: dir.path, stdin: Readable.from(stdin ? [stdin] : []) });
}

function imapPort(server: RunningServer): number {
  return server.listeners.find((l) => l.protocol === 'imap')!.port;
}

/** LOGIN through mailfront; returns the tagged reply and how long it took from sending LOGIN. */
async function login(port: number, user: { name: string; password: string }): Promise<{ reply: string; ms: number }> {
  const c = await rawConnect({ port });
  try {
    await c.readLine();
    const started = process.hrtime.bigint();
    const lines = await c.command(`a LOGIN "${user.name}" "${user.password}"`, 15_000);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const reply = lines[lines.length - 1]!;
    if (reply.startsWith('a OK')) await c.command('b LOGOUT');
    return { reply, ms };
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  [dovecot, pg, dir] = await Promise.all([startDovecot({ users: [ALICE, BOB] }), startPostgres(), makeTempDir('mailfront-pg-e2e-')]);
  configA = writeConfig('a');
  configB = writeConfig('b');
  // Node A through the test harness, its store from the config's postgres section.
  nodeA = await startMailfront({
    backends: [],
    users: [],
    config: { store: loadConfig({ file: configA, env: {} }).config.store, listeners: [{ protocol: 'imap', port: 0, tls: 'none', allowPlaintextAuth: true }], auth: { cacheTtlMs: 0, failureDelayMs: 100 } },
  });
  // Node B as `mailfront serve --config b.yaml` would start it.
  logB = fs.createWriteStream(path.join(dir.path, 'b.log'));
  nodeB = await startServer(loadConfig({ file: configB, env: {} }).config, { logger: createLogger({ level: 'info', destination: logB }) });
});

afterAll(async () => {
  await nodeB?.close();
  await nodeA?.stop();
  await new Promise((r) => logB?.end(r));
  await Promise.all([dovecot?.stop(), pg?.stop()]);
  await dir?.cleanup();
});

describe('two nodes, one PostgreSQL store', () => {
  test("backend add and user add on node A's config; node B logs the user in", async () => {
    expect(nodeA.store.kind).toBe('postgres');
    // Nothing yet: node B knows no user.
    expect((await login(imapPort(nodeB), ALICE)).reply).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);

    let r = await cli(configA, ['backend', 'add', 'dovecot', '--host', '127.0.0.1', '--imap-port', String(dovecot.ports.imap), '--tls', 'none']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    fs.writeFileSync(path.join(dir.path, 'alice.pw'), `${ALICE.password}\n`, { mode: 0o600 });
    r = await cli(configA, ['user', 'add', ALICE.name, '--password-file', path.join(dir.path, 'alice.pw')]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    // The password went through stdin of the CLI for bob, as an admin would pipe it.
    r = await cli(configA, ['user', 'add', BOB.name], `${BOB.password}\n`);
    expect([r.code, r.stderr]).toEqual([0, '']);

    expect((await login(imapPort(nodeB), ALICE)).reply).toMatch(/^a OK/);
    expect((await login(nodeA.port('imap', 'none'), ALICE)).reply).toMatch(/^a OK/);
    expect((await login(imapPort(nodeB), BOB)).reply).toMatch(/^a OK/);
    expect((await login(imapPort(nodeB), { ...BOB, password: 'wrong' })).reply).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);

    // Node B placed alice on first login; the CLI on node B's config sees the same row.
    const shown = await cli(configB, ['user', 'show', ALICE.name, '--json']);
    expect(shown.code).toBe(0);
    expect(JSON.stringify(JSON.parse(shown.stdout))).toMatch(/"dovecot"/);
    expect(fs.readFileSync(path.join(dir.path, 'b.log'), 'utf8')).toMatch(/"store":"postgres"/);
  });

  test('PostgreSQL down: logins get a temporary failure, not "wrong password"; back up: logins work again', async () => {
    await pg.stop();
    try {
      const down = await login(imapPort(nodeB), ALICE);
      expect(down.reply).toMatch(/^a NO \[UNAVAILABLE\]/);
      expect((await login(nodeA.port('imap', 'none'), BOB)).reply).toMatch(/^a NO \[UNAVAILABLE\]/);
      const r = await cli(configA, ['user', 'list']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ECONNREFUSED/);
    } finally {
      await pg.start();
    }
    expect((await login(imapPort(nodeB), ALICE)).reply).toMatch(/^a OK/);
    expect((await login(nodeA.port('imap', 'none'), BOB)).reply).toMatch(/^a OK/);
  });

  test('login latency through a node: SQLite store vs PostgreSQL store (reported, not asserted)', async () => {
    const sqlite = await startMailfront({
      backends: [{ name: 'dovecot', host: '127.0.0.1', ports: { imap: dovecot.ports.imap, pop3: null, submission: null } }],
      users: [{ ...ALICE, backend: 'dovecot' }],
      config: { listeners: [{ protocol: 'imap', port: 0, tls: 'none', allowPlaintextAuth: true }], auth: { cacheTtlMs: 0 } },
    });
    try {
      const rounds = 15;
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const sample = async (port: number) => {
        const ms: number[] = [];
        for (let i = 0; i < rounds; i++) {
          const r = await login(port, ALICE);
          expect(r.reply).toMatch(/^a OK/);
          ms.push(r.ms);
        }
        return median(ms);
      };
      const viaSqlite = await sample(sqlite.port('imap', 'none'));
      const viaPostgres = await sample(imapPort(nodeB));
      process.stdout.write(
        `LOGIN → OK through mailfront (scrypt check + locate + backend login), median of ${rounds}: sqlite store ${viaSqlite.toFixed(1)} ms, postgres store ${viaPostgres.toFixed(1)} ms\n`,
      );
    } finally {
      await sqlite.stop();
    }
  });
});
