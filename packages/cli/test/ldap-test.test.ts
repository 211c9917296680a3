/**
 * `mailfront ldap test` against a real slapd (StartTLS with the test CA),
 * in-process like the other CLI tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { openSqliteStore, type NewBackend } from '@mailfront/store';
import { newBackend, startSlapd, type Slapd } from '@mailfront/testkit';
import { runCli, type CliIo } from '../src/program';

let slapd: Slapd;
let tmp: string;
let configFile: string;

const ALICE_PW = 'alice-ldap-secret';

function backend(name: string, host: string): NewBackend {
  return newBackend({ name, host, ports: { imap: 143, pop3: null, submission: null } });
}

beforeAll(async () => {
  slapd = await startSlapd({
    tls: true,
    users: [
      { uid: 'alice', password: ALICE_PW, mail: 'alice@example.org', mailHost: 'imap1.example.net' },
      { uid: 'bob', password: 'bob-pw', mail: 'bob@example.org' },
      { uid: 'carol', password: 'carol-pw', mail: 'shared@example.org' },
      { uid: 'dave', password: 'dave-pw', mail: 'shared@example.org' },
    ],
  });
  tmp = mkdtempSync(join(tmpdir(), 'mailfront-cli-ldap-'));
  const dbPath = join(tmp, 'state.db');
  const store = openSqliteStore(dbPath);
  await store.addBackend(backend('imap1', 'imap1.example.net'));
  await store.addBackend(backend('imap2', 'imap2.example.net'));
  await store.setPlacement('bob@example.org', 'imap2', 'assigned');
  await store.close();
  configFile = join(tmp, 'mailfront.yaml');
  writeFileSync(
    configFile,
    `store: { path: ${dbPath} }
auth: { source: ldap }
ldap:
  urls: [${slapd.url}]
  caFile: ${slapd.caFile}
  bindDn: ${slapd.serviceDn}
  bindPasswordFile: ${slapd.servicePasswordFile}
  baseDn: ${slapd.suffix}
`,
  );
  writeFileSync(join(tmp, 'alice.pw'), `${ALICE_PW}\n`);
  writeFileSync(join(tmp, 'wrong.pw'), 'not-it\n');
});

afterAll(async () => {
  await slapd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function run(args: string[], stdin: CliIo['stdin'] = Readable.from([])): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdin, stdout: { write: (s) => void (stdout += s) }, stderr: { write: (s) => void (stderr += s) }, env: {}, cwd: tmp };
  const code = await runCli(['--config', configFile, ...args], io);
  // Neither the user's nor the service's password is ever printed.
  for (const secret of [ALICE_PW, slapd.servicePassword]) expect(stdout + stderr).not.toContain(secret);
  return { code, stdout, stderr };
}

describe('mailfront ldap test', () => {
  test('a real user: the DN found, the bind, the attributes and the backend', async () => {
    const r = await run(['ldap', 'test', 'Alice', '--password-file', 'alice.pw']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'user:        alice',
        `directory:   ${slapd.url} (StartTLS on ldap://)`,
        `query:       search base dc=example,dc=org, scope sub, filter (&(objectClass=inetOrgPerson)(|(uid=alice)(mail=alice))), as ${slapd.serviceDn}`,
        'entry:       uid=alice,ou=people,dc=example,dc=org',
        'bind:        ok',
        'canonical:   alice@example.org (from mail)',
        'attributes:',
        '  mail:      alice@example.org',
        '  mailHost:  imap1.example.net',
        'backend:     imap1 (mailHost is its host)',
        '',
      ].join('\n'),
    );
  });

  test('no mailHost: the stored placement; the password comes from stdin', async () => {
    const r = await run(['ldap', 'test', 'bob', '--json'], Readable.from(['bob-pw\n']));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      result: 'ok',
      dn: 'uid=bob,ou=people,dc=example,dc=org',
      bind: 'ok',
      canonicalUser: 'bob@example.org',
      attributes: { mail: ['bob@example.org'], mailHost: [] },
      backend: { backend: 'imap2', by: 'stored placement', source: 'assigned' },
      problem: null,
    });
  });

  test('a wrong password: the entry and its attributes are still shown, exit 1', async () => {
    const r = await run(['ldap', 'test', 'alice', '--password-file', 'wrong.pw']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('entry:       uid=alice,ou=people,dc=example,dc=org');
    expect(r.stdout).toContain('bind:        refused: LDAP result 49 (invalid credentials: wrong password, or no password in the entry)');
    expect(r.stdout).toContain('  mailHost:  imap1.example.net');
    expect(r.stderr).toBe('mailfront: a login as alice would fail: the password was refused (authentication failure)\n');
  });

  test('unknown and ambiguous names', async () => {
    const unknown = await run(['ldap', 'test', 'alic*', '--password-file', 'alice.pw']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain('filter (&(objectClass=inetOrgPerson)(|(uid=alic\\2a)(mail=alic\\2a)))');
    expect(unknown.stdout).toContain('entry:       none');
    expect(unknown.stdout).toContain('bind:        not tried: no entry matches');
    const ambiguous = await run(['ldap', 'test', 'shared@example.org', '--password-file', 'alice.pw']);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stdout).toContain('entry:       uid=carol,ou=people,dc=example,dc=org, uid=dave,ou=people,dc=example,dc=org');
    expect(ambiguous.stderr).toContain('several entries match');
  });

  test('the directory down: exit 1 naming the URL and why', async () => {
    await slapd.stop();
    try {
      const r = await run(['ldap', 'test', 'alice', '--password-file', 'alice.pw']);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`bind:        failed: search: no directory server reachable (${slapd.url}: ECONNREFUSED)`);
      expect(r.stderr).toContain('the directory did not answer (temporary failure)');
    } finally {
      await slapd.start();
    }
  });

  test('without an ldap section: usage error', async () => {
    const plain = join(tmp, 'plain.yaml');
    writeFileSync(plain, `store: { path: ${join(tmp, 'state.db')} }\n`);
    let stderr = '';
    const io: CliIo = { stdin: Readable.from([]), stdout: { write: () => undefined }, stderr: { write: (s) => void (stderr += s) }, env: {}, cwd: tmp };
    expect(await runCli(['--config', plain, 'ldap', 'test', 'alice', '--password-file', 'alice.pw'], io)).toBe(2);
    expect(stderr).toBe('mailfront: the configuration has no ldap section: there is no directory to test\n');
  });
});
