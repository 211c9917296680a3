/**
 * The CLI side of failover: `backend add --standby/--proxy-protocol`,
 * `backend set`, `backend drain`/`undrain` (and the `activate` alias).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type Store } from '@mailfront/store';
import { runCliCaptured } from '../src/capture';

let tmp: string;
let configFile: string;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mailfront-cli-failover-'));
  configFile = join(tmp, 'etc', 'mailfront.yaml');
  mkdirSync(join(tmp, 'etc'), { recursive: true });
  // No admin socket: these commands work on the store alone.
  writeFileSync(configFile, 'dataDir: ../data\nhostname: mail.test.example\nlog: { level: error }\nadmin: { socket: null }\n');
});

afterEach(() => rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCliCaptured(['--config', configFile, ...args], { cwd: tmp });
}

async function ok(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await run(args);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
  const store = openSqliteStore(join(tmp, 'data', 'mailfront.db'));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe('backend add --standby, --proxy-protocol', () => {
  test('stored, printed, listed', async () => {
    await ok(['backend', 'add', 'spare', '--host', '10.0.0.9']);
    const a = await ok(['backend', 'add', 'be1', '--host', '10.0.0.5', '--standby', 'spare', '--proxy-protocol']);
    expect(a.stdout).toContain('standby=spare proxy-protocol');
    expect(await withStore((s) => s.getBackend('be1'))).toMatchObject({ standby: 'spare', proxyProtocol: true });
    const list = JSON.parse((await ok(['backend', 'list', '--json'])).stdout);
    expect(list.map((b: { name: string; standby: string | null; proxyProtocol: boolean }) => [b.name, b.standby, b.proxyProtocol])).toEqual([
      ['be1', 'spare', true],
      ['spare', null, false],
    ]);
    expect(list[0]).not.toHaveProperty('masterPassword');
    const table = (await ok(['backend', 'list'])).stdout;
    expect(table.split('\n')[0]).toMatch(/STATE\s+STANDBY\s+TRUSTED\s+PROXY/);
    expect(table).toMatch(/be1 .*active\s+spare\s+no\s+yes/);
  });

  test('an unknown standby fails (exit 1) and adds nothing; a standby lacking a protocol is noted', async () => {
    const r = await run(['backend', 'add', 'be1', '--host', 'h', '--standby', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mailfront: standby backend nope does not exist\n');
    expect(await withStore((s) => s.listBackends())).toEqual([]);

    await ok(['backend', 'add', 'spare', '--host', 'h2']);
    const noted = await ok(['backend', 'add', 'be2', '--host', 'h', '--pop3-port', '110', '--standby', 'spare']);
    expect(noted.stderr).toContain('standby spare has no pop3 port: those logins get a temporary failure while be2 is down or draining');
  });
});

describe('backend set', () => {
  beforeEach(async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['backend', 'add', 'be2', '--host', 'b']);
  });

  test('--standby, --no-standby, --proxy-protocol, --no-proxy-protocol, each alone or together', async () => {
    expect((await ok(['backend', 'set', 'be1', '--standby', 'be2'])).stdout).toBe('backend be1: standby=be2 proxy-protocol=no\n');
    expect((await ok(['backend', 'set', 'be1', '--proxy-protocol'])).stdout).toBe('backend be1: standby=be2 proxy-protocol=yes\n');
    const j = JSON.parse((await ok(['backend', 'set', 'be1', '--no-standby', '--no-proxy-protocol', '--json'])).stdout);
    expect(j).toMatchObject({ name: 'be1', standby: null, proxyProtocol: false });
    expect(await withStore((s) => s.getBackend('be1'))).toMatchObject({ standby: null, proxyProtocol: false });
  });

  test('usage errors (exit 2): nothing to change, itself as standby; missing backends (exit 1)', async () => {
    const none = await run(['backend', 'set', 'be1']);
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining('nothing to change')]);
    const self = await run(['backend', 'set', 'be1', '--standby', 'be1']);
    expect([self.code, self.stderr]).toEqual([2, 'mailfront: backend be1 cannot be its own standby\n']);
    const missing = await run(['backend', 'set', 'nope', '--proxy-protocol']);
    expect([missing.code, missing.stderr]).toEqual([1, 'mailfront: backend nope does not exist\n']);
    const badStandby = await run(['backend', 'set', 'be1', '--standby', 'gone']);
    expect([badStandby.code, badStandby.stderr]).toEqual([1, 'mailfront: standby backend gone does not exist\n']);
    expect(await withStore((s) => s.getBackend('be1'))).toMatchObject({ standby: null, proxyProtocol: false });
  });

  test('removing the standby backend clears it', async () => {
    await ok(['backend', 'set', 'be1', '--standby', 'be2']);
    await ok(['backend', 'remove', 'be2']);
    expect(await withStore((s) => s.getBackend('be1'))).toMatchObject({ standby: null });
  });
});

describe('backend drain / undrain', () => {
  test('drain says where the users go; undrain and its alias activate bring it back', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['backend', 'add', 'be2', '--host', 'b']);
    const lonely = await ok(['backend', 'drain', 'be1']);
    expect(lonely.stdout).toBe('backend be1 is now draining\n');
    expect(lonely.stderr).toContain('it has no standby: its users get a temporary failure until it is undrained');
    expect((await ok(['backend', 'drain', 'be1'])).stdout).toBe('backend be1 is already draining\n');
    expect((await ok(['backend', 'undrain', 'be1'])).stdout).toBe('backend be1 is now active\n');

    await ok(['backend', 'set', 'be1', '--standby', 'be2']);
    expect((await ok(['backend', 'drain', 'be1'])).stderr).toContain('new logins of its users go to its standby be2 while that is up');
    expect((await ok(['backend', 'activate', 'be1'])).stdout).toBe('backend be1 is now active\n');
    expect((await run(['backend', 'undrain', 'nope'])).code).toBe(1);
  });

  test('help names undrain with its alias, set and its flags', async () => {
    const group = await ok(['backend', '--help']);
    expect(group.stdout).toMatch(/undrain\|activate/);
    expect(group.stdout).toContain('set [options] <name>');
    const set = await ok(['backend', 'set', '--help']);
    for (const w of ['--standby <name>', '--no-standby', '--proxy-protocol', '--no-proxy-protocol', '--json']) expect([w, set.stdout.includes(w)]).toEqual([w, true]);
    const add = await ok(['backend', 'add', '--help']);
    for (const w of ['--standby <name>', '--proxy-protocol']) expect([w, add.stdout.includes(w)]).toEqual([w, true]);
  });
});
