import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { PassThrough, Readable } from 'node:stream';
import { verifyPassword } from '@mailfront/auth';
import { rendezvousPick } from '@mailfront/locator';
import { generateSelfSigned } from '@mailfront/server';
import { openSqliteStore, type Store } from '@mailfront/store';
import { runCliCaptured } from '../src/capture';
import type { CliIo } from '../src/io';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let tmp: string;
let configFile: string;
/** Every byte the CLI wrote in this test, to check that no secret ever appears. */
let allOutput: string;

const SECRETS = ['correct horse battery staple', 'tr0ub4dor&3', 'master-s3cret', 'piped-pw', 'tty-pw-1'];

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mailfront-cli-'));
  configFile = join(tmp, 'etc', 'mailfront.yaml');
  writeConfig('dataDir: ../data\nhostname: mail.test.example\nlog: { level: error }\n');
  allOutput = '';
});

afterEach(() => {
  for (const s of SECRETS) expect(allOutput).not.toContain(s);
  rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(body: string): void {
  mkdirSync(join(tmp, 'etc'), { recursive: true });
  writeFileSync(configFile, body);
}

function file(name: string, body: string): string {
  const p = join(tmp, name);
  writeFileSync(p, body);
  return p;
}

/** Run the CLI in-process with --config pointing at the test's config, cwd = the temp dir. */
async function run(args: string[], opts: { stdin?: CliIo['stdin']; config?: boolean } = {}): Promise<Result> {
  const argv = opts.config === false ? args : ['--config', configFile, ...args];
  // Wide, so that help text is not wrapped in the middle of what the tests look for.
  const r = await runCliCaptured(argv, { cwd: tmp, columns: 1000, ...(opts.stdin ? { stdin: opts.stdin } : {}) });
  allOutput += r.stdout + r.stderr;
  return r;
}

async function ok(args: string[], opts?: Parameters<typeof run>[1]): Promise<Result> {
  const r = await run(args, opts);
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

function pwFile(pw: string): string {
  return file(`pw-${Math.random().toString(36).slice(2)}`, `${pw}\nsecond line is ignored\n`);
}

/** A stdin that looks like a terminal and records raw-mode switches. */
function fakeTty(input: string): PassThrough & { isTTY: boolean; setRawMode: jest.Mock; rawModes: boolean[] } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: jest.Mock; rawModes: boolean[] };
  s.isTTY = true;
  s.rawModes = [];
  s.setRawMode = jest.fn((raw: boolean) => {
    s.rawModes.push(raw);
    return s;
  });
  s.write(input);
  return s;
}

describe('backends', () => {
  test('add with defaults and options; list --json shows them', async () => {
    const a = await ok(['backend', 'add', 'be1', '--host', '10.0.0.5']);
    expect(a.stdout).toContain('backend be1 added');
    await ok(['backend', 'add', 'be2', '--host', 'imap2.internal', '--tls', 'implicit', '--pop3-port', '995', '--submission-port', '465', '--trusted']);
    await ok(['backend', 'add', 'be3', '--host', '10.0.0.7', '--tls', 'none', '--imap-port', '10143']);

    const list = JSON.parse((await ok(['backend', 'list', '--json'])).stdout);
    expect(list).toEqual([
      {
        name: 'be1', host: '10.0.0.5', ports: { imap: 143, pop3: null, submission: null }, tls: 'starttls', caFile: null,
        insecure: false, trusted: false, login: 'passthrough', masterUser: null, state: 'active', standby: null, proxyProtocol: false,
        createdAt: expect.any(String),
        users: { assigned: 0, hashed: 0 },
      },
      {
        name: 'be2', host: 'imap2.internal', ports: { imap: 993, pop3: 995, submission: 465 }, tls: 'implicit', caFile: null,
        insecure: false, trusted: true, login: 'passthrough', masterUser: null, state: 'active', standby: null, proxyProtocol: false,
        createdAt: expect.any(String),
        users: { assigned: 0, hashed: 0 },
      },
      expect.objectContaining({ name: 'be3', ports: { imap: 10143, pop3: null, submission: null }, tls: 'none' }),
    ]);

    const added = JSON.parse((await ok(['backend', 'add', 'be4', '--host', 'h4', '--json'])).stdout);
    expect(added).toMatchObject({ name: 'be4', host: 'h4', ports: { imap: 143 } });

    const table = (await ok(['backend', 'list'])).stdout;
    expect(table.split('\n')[0]).toMatch(/^NAME\s+HOST\s+IMAP/);
    expect(table).toMatch(/be2\s+imap2\.internal\s+993\s+995\s+465\s+implicit/);
  });

  test('an empty list is [] in JSON', async () => {
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)).toEqual([]);
  });

  test('a duplicate name fails with exit 1 and a one-line message, no stack', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    const r = await run(['backend', 'add', 'be1', '--host', 'b']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mailfront: .*be1.*\n$/);
    expect(r.stderr).not.toContain('    at ');
  });

  test('--debug adds the stack', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    const r = await run(['--debug', 'backend', 'add', 'be1', '--host', 'b']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('    at ');
  });

  test('master login: stored, never printed', async () => {
    const pw = file('master.pw', 'master-s3cret\n');
    const a = await ok(['backend', 'add', 'm', '--host', 'h', '--login', 'master', '--master-user', 'proxy', '--master-password-file', pw]);
    expect(a.stdout).toContain('login=master');
    const [row] = JSON.parse((await ok(['backend', 'list', '--json'])).stdout);
    expect(row).toMatchObject({ login: 'master', masterUser: 'proxy' });
    expect(row).not.toHaveProperty('masterPassword');
    expect((await ok(['backend', 'list'])).stdout).toContain('master (proxy)');
    const stored = await withStore((s) => s.getBackend('m'));
    expect(stored?.masterPassword).toBe('master-s3cret');
  });

  test('--ca must exist, is resolved to an absolute path, and must be a certificate', async () => {
    writeFileSync(join(tmp, 'ca.pem'), generateSelfSigned({ hostnames: ['ca.test'] }).cert);
    await ok(['backend', 'add', 'v', '--host', 'h', '--ca', 'ca.pem']);
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)[0].caFile).toBe(join(tmp, 'ca.pem'));

    const missing = await run(['backend', 'add', 'w', '--host', 'h', '--ca', 'nope.pem']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--ca nope.pem: no such file');
    file('junk.pem', 'not a certificate\n');
    expect((await run(['backend', 'add', 'w', '--host', 'h', '--ca', 'junk.pem'])).code).toBe(2);
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)).toHaveLength(1);
  });

  test.each<[string, string[], RegExp]>([
    ['bad --tls', ['--tls', 'ssl'], /--tls.*ssl.*invalid/],
    ['bad --login', ['--login', 'sasl'], /--login.*sasl.*invalid/],
    ['bad port', ['--imap-port', '70000'], /--imap-port.*70000.*invalid/],
    ['port not a number', ['--pop3-port', '11x'], /--pop3-port/],
    ['--insecure with --tls none', ['--tls', 'none', '--insecure'], /--insecure.*--tls none/],
    ['--login master without --master-user', ['--login', 'master'], /--master-user/],
    ['--master-user without --login master', ['--master-user', 'proxy'], /need --login master/],
    ['missing --host', [], /--host/],
  ])('%s is a usage error (exit 2)', async (_what, extra, message) => {
    const args = ['backend', 'add', 'x', ...(extra.includes('--host') || _what === 'missing --host' ? [] : ['--host', 'h']), ...extra];
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mailfront: /);
    expect(r.stderr).toMatch(message);
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)).toEqual([]);
  });

  test('--login master needs a non-empty password file', async () => {
    const empty = file('empty.pw', '\n');
    const r = await run(['backend', 'add', 'm', '--host', 'h', '--login', 'master', '--master-user', 'u', '--master-password-file', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('empty password');
  });

  test('remove: refused while users are assigned, unless --force', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['backend', 'add', 'be2', '--host', 'b']);
    await ok(['user', 'add', 'u1', '--backend', 'be1', '--password-file', pwFile('tr0ub4dor&3')]);
    await ok(['user', 'add', 'u2', '--backend', 'be1', '--password-file', pwFile('tr0ub4dor&3')]);

    const refused = await run(['backend', 'remove', 'be1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('2 assigned users');
    expect(refused.stderr).toContain('--force');
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout).map((b: { name: string }) => b.name)).toEqual(['be1', 'be2']);

    expect((await ok(['backend', 'remove', 'be2'])).stdout).toContain('backend be2 removed');
    const forced = await ok(['backend', 'remove', 'be1', '--force']);
    expect(forced.stdout).toContain('2 placements dropped');
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)).toEqual([]);
    expect(JSON.parse((await ok(['user', 'show', 'u1', '--json'])).stdout).placement).toBeNull();

    expect((await run(['backend', 'remove', 'be1'])).code).toBe(1);
  });

  test('drain and activate', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['backend', 'drain', 'be1']);
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)[0].state).toBe('draining');
    await ok(['backend', 'activate', 'be1']);
    expect(JSON.parse((await ok(['backend', 'list', '--json'])).stdout)[0].state).toBe('active');
    expect((await run(['backend', 'drain', 'nope'])).code).toBe(1);
  });
});

describe('users', () => {
  test('add from a password file: canonical name, hash (not the password) that verifies', async () => {
    const r = await ok(['user', 'add', ' Alice@Example.ORG', '--password-file', pwFile('correct horse battery staple')]);
    expect(r.stdout).toContain('user alice@example.org added');
    const row = await withStore((s) => s.getUser('alice@example.org'));
    expect(row).toBeDefined();
    expect(row!.passwordHash).not.toContain('correct horse');
    expect(row!.passwordHash).toMatch(/^\$scrypt\$/);
    expect(await verifyPassword('correct horse battery staple', row!.passwordHash)).toBe(true);
    // Only the first line of the file is the password.
    expect(await verifyPassword('correct horse battery staple\nsecond line is ignored', row!.passwordHash)).toBe(false);
  });

  test('add with the password on a non-TTY stdin: its first line', async () => {
    await ok(['user', 'add', 'bob'], { stdin: Readable.from(['piped-pw\r\nrest\n']) });
    const row = await withStore((s) => s.getUser('bob'));
    expect(await verifyPassword('piped-pw', row!.passwordHash)).toBe(true);
  });

  test('a stdin split across chunks and without a final newline', async () => {
    await ok(['user', 'add', 'bob'], { stdin: Readable.from([Buffer.from('piped'), Buffer.from('-pw')]) });
    const row = await withStore((s) => s.getUser('bob'));
    expect(await verifyPassword('piped-pw', row!.passwordHash)).toBe(true);
  });

  test('an empty password is refused and no user is created', async () => {
    const r = await run(['user', 'add', 'bob'], { stdin: Readable.from(['\n']) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('empty password');
    expect((await run(['user', 'add', 'bob'], { stdin: Readable.from([]) })).code).toBe(2);
    expect((await run(['user', 'add', 'bob', '--password-file', file('e', '')])).code).toBe(2);
    expect(await withStore((s) => s.getUser('bob'))).toBeUndefined();
  });

  test('on a terminal: asked twice without echo, in raw mode', async () => {
    const tty = fakeTty('tty-pw-1\rtty-pw-1\r');
    const r = await ok(['user', 'add', 'carol'], { stdin: tty });
    expect(r.stderr).toBe('Password: \nPassword (again): \n');
    expect(tty.rawModes).toEqual([true, false, true, false]);
    const row = await withStore((s) => s.getUser('carol'));
    expect(await verifyPassword('tty-pw-1', row!.passwordHash)).toBe(true);
  });

  test('on a terminal: backspace edits; different answers fail', async () => {
    await ok(['user', 'add', 'carol'], { stdin: fakeTty('tty-pw-9\x7f1\rtty-pw-1\r') });
    expect(await verifyPassword('tty-pw-1', (await withStore((s) => s.getUser('carol')))!.passwordHash)).toBe(true);
    const r = await run(['user', 'add', 'dave'], { stdin: fakeTty('tty-pw-1\rtty-pw-2\r') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('do not match');
    expect(await withStore((s) => s.getUser('dave'))).toBeUndefined();
  });

  test('add twice fails with exit 1', async () => {
    await ok(['user', 'add', 'bob', '--password-file', pwFile('tr0ub4dor&3')]);
    const r = await run(['user', 'add', 'BOB', '--password-file', pwFile('tr0ub4dor&3')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('already exists');
  });

  test('an invalid user name is a usage error', async () => {
    expect((await run(['user', 'add', '   ', '--password-file', pwFile('tr0ub4dor&3')])).code).toBe(2);
  });

  test('add --backend with an unknown backend fails and creates no user', async () => {
    const r = await run(['user', 'add', 'bob', '--backend', 'nope', '--password-file', pwFile('tr0ub4dor&3')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('backend nope does not exist');
    expect(await withStore((s) => s.getUser('bob'))).toBeUndefined();
    expect(JSON.parse((await ok(['user', 'list', '--json'])).stdout)).toEqual([]);
  });

  test('show and list, as JSON and text; an unplaced user shows where hashing would place them', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['backend', 'add', 'be2', '--host', 'b']);
    await ok(['backend', 'add', 'be3', '--host', 'c']);
    await ok(['backend', 'drain', 'be3']);
    await ok(['user', 'add', 'placed@example.org', '--backend', 'be1', '--password-file', pwFile('tr0ub4dor&3')]);
    await ok(['user', 'add', 'free@example.org', '--password-file', pwFile('tr0ub4dor&3')]);

    const placed = JSON.parse((await ok(['user', 'show', 'Placed@example.org', '--json'])).stdout);
    expect(placed).toEqual({
      name: 'placed@example.org', createdAt: expect.any(String), updatedAt: expect.any(String),
      placement: { backend: 'be1', source: 'assigned', updatedAt: expect.any(String) }, wouldPlaceOn: null,
    });
    expect(JSON.stringify(placed)).not.toContain('scrypt');

    const free = JSON.parse((await ok(['user', 'show', 'free@example.org', '--json'])).stdout);
    expect(free.placement).toBeNull();
    // Only active backends take new users.
    expect(free.wouldPlaceOn).toBe(rendezvousPick('free@example.org', ['be1', 'be2']));
    const text = (await ok(['user', 'show', 'free@example.org'])).stdout;
    expect(text).toContain(`would place the user on ${free.wouldPlaceOn}`);
    expect((await ok(['user', 'show', 'placed@example.org'])).stdout).toMatch(/placement:\s+be1 \(assigned/);

    const list = JSON.parse((await ok(['user', 'list', '--json'])).stdout);
    expect(list.map((u: { name: string }) => u.name)).toEqual(['free@example.org', 'placed@example.org']);
    expect(list[1].placement).toMatchObject({ backend: 'be1', source: 'assigned' });
    expect(JSON.stringify(list)).not.toMatch(/scrypt|passwordHash/);
    expect((await ok(['user', 'list'])).stdout).toMatch(/placed@example\.org\s+be1\s+assigned/);

    expect((await run(['user', 'show', 'ghost'])).code).toBe(1);
  });

  test('show with no active backend says so', async () => {
    await ok(['user', 'add', 'u', '--password-file', pwFile('tr0ub4dor&3')]);
    expect(JSON.parse((await ok(['user', 'show', 'u', '--json'])).stdout).wouldPlaceOn).toBeNull();
    expect((await ok(['user', 'show', 'u'])).stdout).toContain('no active backend');
  });

  test('move without a server assigns in the store and says so; unknown user or backend fail', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['backend', 'add', 'be2', '--host', 'b']);
    await ok(['user', 'add', 'u', '--backend', 'be1', '--password-file', pwFile('tr0ub4dor&3')]);
    const r = await ok(['user', 'move', 'U', 'be2']);
    expect(r.stdout).toContain('user u assigned to backend be2 from be1');
    // No server runs here: only the store changes, and the CLI says so.
    expect(r.stderr).toMatch(/no mailfront server is running.*changing the store only/);
    expect(await withStore((s) => s.getPlacement('u'))).toMatchObject({ backend: 'be2', source: 'assigned' });

    expect((await run(['user', 'move', 'u', 'nope'])).code).toBe(1);
    expect((await run(['user', 'move', 'ghost', 'be1'])).code).toBe(1);
    expect(await withStore((s) => s.getPlacement('ghost'))).toBeUndefined();
  });

  test('passwd changes the hash; unknown user fails before asking', async () => {
    await ok(['user', 'add', 'u', '--password-file', pwFile('tr0ub4dor&3')]);
    await ok(['user', 'passwd', 'u', '--password-file', pwFile('correct horse battery staple')]);
    const row = await withStore((s) => s.getUser('u'));
    expect(await verifyPassword('correct horse battery staple', row!.passwordHash)).toBe(true);
    expect(await verifyPassword('tr0ub4dor&3', row!.passwordHash)).toBe(false);
    const r = await run(['user', 'passwd', 'ghost'], { stdin: fakeTty('x\rx\r') });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('Password:');
  });

  test('remove, then remove again fails', async () => {
    await ok(['backend', 'add', 'be1', '--host', 'a']);
    await ok(['user', 'add', 'u', '--backend', 'be1', '--password-file', pwFile('tr0ub4dor&3')]);
    expect((await ok(['user', 'remove', 'u'])).stdout).toContain('user u removed');
    expect(await withStore((s) => s.getUser('u'))).toBeUndefined();
    expect(await withStore((s) => s.getPlacement('u'))).toBeUndefined();
    expect((await run(['user', 'remove', 'u'])).code).toBe(1);
  });
});

describe('cert generate', () => {
  test('writes a parseable certificate and its key; refuses to overwrite without --force', async () => {
    const r = await ok(['cert', 'generate', '--hostname', 'imap.test.example', '--hostname', '127.0.0.1', '--out', 'tls', '--days', '30']);
    const cert = new X509Certificate(readFileSync(join(tmp, 'tls/cert.pem')));
    const key = createPrivateKey(readFileSync(join(tmp, 'tls/key.pem')));
    expect(cert.checkHost('imap.test.example')).toBe('imap.test.example');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(Date.parse(cert.validTo) - Date.now()).toBeLessThan(31 * 86_400_000);
    expect(statSync(join(tmp, 'tls/key.pem')).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain(join(tmp, 'tls/cert.pem'));
    expect(r.stdout).not.toContain('PRIVATE KEY');

    const before = readFileSync(join(tmp, 'tls/key.pem'), 'utf8');
    const again = await run(['cert', 'generate', '--out', 'tls']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--force');
    expect(readFileSync(join(tmp, 'tls/key.pem'), 'utf8')).toBe(before);
    await ok(['cert', 'generate', '--out', 'tls', '--force']);
    expect(new X509Certificate(readFileSync(join(tmp, 'tls/cert.pem'))).serialNumber).not.toBe(cert.serialNumber);
  });

  test('defaults: <dataDir>/tls and the configured hostname', async () => {
    await ok(['cert', 'generate']);
    const cert = new X509Certificate(readFileSync(join(tmp, 'data/tls/cert.pem')));
    expect(cert.checkHost('mail.test.example')).toBe('mail.test.example');
    expect(existsSync(join(tmp, 'data/tls/key.pem'))).toBe(true);
  });

  test('a bad --days is a usage error', async () => {
    expect((await run(['cert', 'generate', '--out', 'tls', '--days', '0'])).code).toBe(2);
    expect(existsSync(join(tmp, 'tls'))).toBe(false);
  });
});

describe('config', () => {
  test('check prints the effective config', async () => {
    const r = await ok(['config', 'check']);
    expect(r.stdout).toContain(`config:     ${configFile}`);
    expect(r.stdout).toContain(`dataDir:    ${join(tmp, 'data')}`);
    expect(r.stdout).toMatch(/imap\s+127\.0\.0\.1:1143\s+tls=starttls/);
    expect(r.stdout.trimEnd().endsWith('configuration OK')).toBe(true);
    const j = JSON.parse((await ok(['config', 'check', '--json'])).stdout);
    expect(j).toMatchObject({ source: configFile, config: { hostname: 'mail.test.example', log: { level: 'error' } }, warnings: [] });
  });

  test('a broken config exits 2 naming the key, for every command', async () => {
    writeConfig('listeners:\n  - protocol: imap\n    port: 1143\n  - protocol: imap\n    port: 99999\n');
    const r = await run(['config', 'check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`mailfront: ${configFile}:5: listeners[1].port: must be an integer 0..65535, got 99999\n`);
    writeConfig('limits:\n  loginTimeoutMS: 5\n');
    const typo = await run(['backend', 'list']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('limits.loginTimeoutMS: unknown key');
  });

  test('a missing --config file exits 2', async () => {
    const r = await run(['--config', join(tmp, 'nope.yaml'), 'config', 'check'], { config: false });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such file');
  });

  test('MAILFRONT_CONFIG and ./mailfront.yaml are used without --config', async () => {
    writeFileSync(join(tmp, 'mailfront.yaml'), 'hostname: from-cwd.example\n');
    const j = JSON.parse((await ok(['config', 'check', '--json'], { config: false })).stdout);
    expect(j.source).toBe(join(tmp, 'mailfront.yaml'));
    expect(j.config.hostname).toBe('from-cwd.example');
  });

  test('check verifies the TLS files', async () => {
    writeConfig('tls: { cert: missing.pem, key: missing-key.pem }\n');
    const r = await run(['config', 'check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^mailfront: tls\.cert: cannot read .*missing\.pem/);

    const a = generateSelfSigned({ hostnames: ['mail.test.example'] });
    const b = generateSelfSigned({ hostnames: ['other.example'] });
    writeFileSync(join(tmp, 'etc/c.pem'), a.cert);
    writeFileSync(join(tmp, 'etc/k.pem'), b.key);
    writeConfig('hostname: mail.test.example\ntls: { cert: c.pem, key: k.pem }\n');
    const mismatch = await run(['config', 'check']);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain('tls.key');
    expect(mismatch.stderr).not.toContain('PRIVATE KEY');

    writeFileSync(join(tmp, 'etc/k.pem'), a.key);
    expect((await ok(['config', 'check'])).stdout).toContain('configuration OK');
  });

  test('warnings are printed but pass', async () => {
    writeConfig('listeners:\n  - { protocol: imap, port: 1143, tls: none }\n');
    const r = await ok(['config', 'check']);
    expect(r.stdout).toMatch(/warning: listeners\[0\]: .*no login/);
  });
});

describe('usage', () => {
  test('unknown command, unknown option, missing subcommand, excess arguments: exit 2', async () => {
    for (const args of [['frobnicate'], ['backend', 'frob'], ['backend', 'list', '--yaml'], ['backend'], ['user', 'show'], ['user', 'remove', 'a', 'b']]) {
      const r = await run(args);
      expect([args, r.code]).toEqual([args, 2]);
      expect(r.stderr).toMatch(/mailfront|Usage/);
    }
    const r = await run(['frobnicate']);
    expect(r.stderr).toMatch(/^mailfront: unknown command 'frobnicate'/);
  });

  test('global options may follow the command', async () => {
    const r = await run(['config', 'check', '--json', '--config', configFile], { config: false });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).source).toBe(configFile);
  });

  test('no command at all prints help and exits 2', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: mailfront');
  });

  test('--help and --version exit 0 on stdout', async () => {
    const h = await run(['--help'], { config: false });
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: mailfront [options] [command]');
    expect((await run(['--version'], { config: false })).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    for (const args of [['help', 'backend'], ['backend', 'help'], ['help'], ['user', 'help', 'add']]) {
      const r = await run(args, { config: false });
      expect([args, r.code]).toEqual([args, 0]);
      expect(r.stdout).toMatch(/^Usage: mailfront/);
    }
  });

  test.each<[string[], string[]]>([
    [[], ['--config', '--debug', 'serve', 'backend', 'user', 'cert', 'config', 'Exit status']],
    [['serve'], ['--grace-ms', 'SIGTERM']],
    [['backend'], ['add', 'list', 'remove', 'drain', 'activate']],
    [
      ['backend', 'add'],
      ['<name>', '--host', '--imap-port', '--pop3-port', '--submission-port', '--tls', 'none', 'starttls', 'implicit', '--ca', '--insecure', '--trusted',
        '--login', 'passthrough', 'master', '--master-user', '--master-password-file', '143', '993', 'default: "starttls"', 'default: "passthrough"'],
    ],
    [['backend', 'list'], ['--json']],
    [['backend', 'remove'], ['<name>', '--force']],
    [['user'], ['add', 'passwd', 'remove', 'list', 'show', 'move']],
    [['user', 'add'], ['<user>', '--backend', '--password-file', 'stdin']],
    [['user', 'passwd'], ['<user>', '--password-file']],
    [['user', 'remove'], ['<user>']],
    [['user', 'list'], ['--json']],
    [['user', 'show'], ['<user>', '--json']],
    [['user', 'move'], ['<user>', '<backend>']],
    [['cert', 'generate'], ['--hostname', '--out', '--days', '--force', '<dataDir>/tls', 'default: hostname from the config']],
    [['config', 'check'], ['--json']],
  ])('%j --help describes %j', async (cmd, words) => {
    const r = await run([...cmd, '--help'], { config: false });
    expect(r.code).toBe(0);
    for (const w of words) expect([w, r.stdout.includes(w)]).toEqual([w, true]);
  });
});

describe('serve', () => {
  function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });
  }

  /** The first line the server sends, or an error if nothing listens. */
  function banner(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        if (buf.includes('\n')) {
          sock.destroy();
          resolve(buf.split('\n')[0]!);
        }
      });
      sock.on('error', reject);
    });
  }

  async function untilBanner(port: number, deadline = Date.now() + 15_000): Promise<string> {
    for (;;) {
      try {
        return await banner(port);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  const ourListeners = (before: Function[]) => process.listeners('SIGTERM').filter((l) => !before.includes(l));

  test('serves the configured listener until SIGTERM, then exits 0', async () => {
    const port = await freePort();
    writeConfig(`dataDir: ../data\nhostname: localhost\nlog: { level: fatal }\nlisteners:\n  - { protocol: imap, port: ${port}, tls: starttls }\n`);
    const before = process.listeners('SIGTERM');
    const running = run(['serve']);
    expect(await untilBanner(port)).toMatch(/^\* OK/);
    const added = ourListeners(before);
    expect(added).toHaveLength(1);
    // Call our handler rather than process.emit: the test runner has SIGTERM handlers of its own.
    (added[0] as (s: string) => void)('SIGTERM');
    const r = await running;
    expect(r.code).toBe(0);
    expect(ourListeners(before)).toHaveLength(0);
    await expect(banner(port)).rejects.toThrow();
    // No certificate configured: a self-signed one was made under dataDir.
    expect(existsSync(join(tmp, 'data/tls'))).toBe(true);
  });

  test('SIGHUP reloads the certificate; a broken config is refused and the running one kept', async () => {
    const port = await freePort();
    const certDir = join(tmp, 'certs');
    mkdirSync(certDir, { recursive: true });
    const install = (name: string) => {
      const pem = generateSelfSigned({ hostnames: [name, 'localhost'] });
      writeFileSync(join(certDir, 'cert.pem'), pem.cert);
      writeFileSync(join(certDir, 'key.pem'), pem.key);
      return new X509Certificate(pem.cert).fingerprint256;
    };
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.fingerprint256);
          s.destroy();
        });
        s.on('error', reject);
      });
    const first = install('first.example');
    const good = `dataDir: ../data\nhostname: localhost\nlog: { level: fatal }\ntls: { cert: ../certs/cert.pem, key: ../certs/key.pem }\nlisteners:\n  - { protocol: imap, port: ${port}, tls: implicit }\n`;
    writeConfig(good);
    const before = process.listeners('SIGTERM');
    const beforeHup = process.listeners('SIGHUP');
    const running = run(['serve']);
    let fp = '';
    for (let i = 0; i < 300 && !fp; i++) fp = await served().catch(() => new Promise<string>((r) => setTimeout(() => r(''), 50)));
    expect(fp).toBe(first);
    const hup = process.listeners('SIGHUP').filter((l) => !beforeHup.includes(l));
    expect(hup).toHaveLength(1);
    // A renewed certificate in the same files: served after SIGHUP, without a restart.
    const second = install('second.example');
    (hup[0] as () => void)();
    expect(await served()).toBe(second);
    // A config that does not validate changes nothing.
    writeConfig(good.replace('tls: implicit', 'tls: sometimes'));
    install('third.example');
    (hup[0] as () => void)();
    expect(await served()).toBe(second);
    (ourListeners(before)[0] as (s: string) => void)('SIGTERM');
    expect((await running).code).toBe(0);
    expect(process.listeners('SIGHUP').filter((l) => !beforeHup.includes(l))).toHaveLength(0);
  });

  test('a port in use fails with exit 1 and leaves no signal handler behind', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const { port } = blocker.address() as AddressInfo;
    try {
      writeConfig(`dataDir: ../data\nlog: { level: fatal }\nlisteners:\n  - { protocol: imap, port: ${port}, tls: implicit }\n`);
      const before = process.listeners('SIGTERM');
      const r = await run(['serve']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^mailfront: .*(EADDRINUSE|in use)/);
      expect(ourListeners(before)).toHaveLength(0);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('a broken config exits 2 before anything listens', async () => {
    writeConfig('listeners:\n  - { protocol: imap, port: 1143, tls: sometimes }\n');
    const r = await run(['serve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('listeners[0].tls');
  });
});
