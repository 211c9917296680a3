/**
 * The CLI's long operations against real servers: doctor against a real
 * Dovecot (and a backend that is down, and one whose certificate does not
 * verify), `backend drain --wait` against a running mailfront.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, makeTempDir, rawConnect, startDovecot, startSmtpSink, type Dovecot, type SmtpSink, type TempDir } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from '../../server/test/harness';
import { runCliCaptured } from '../src/capture';

const ALICE = { name: 'alice@example.org', password: 'doctor-alice-pw' };
const WRONG = 'doctor-wrong-pw';

let dovecot: Dovecot;
let sink: SmtpSink;
let tmp: TempDir;
let conf: string;

beforeAll(async () => {
  // Dovecot's submission connects to its relay at login: without one, doctor rightly reports a 421.
  sink = await startSmtpSink();
  dovecot = await startDovecot({ users: [ALICE], protocols: ['imap', 'pop3', 'submission'], submissionRelay: { host: '127.0.0.1', port: sink.port } });
  tmp = await makeTempDir('mailfront-cli-ops-');
  conf = path.join(tmp.path, 'mailfront.yaml');
  fs.writeFileSync(conf, 'dataDir: data\nhostname: localhost\nlimits: { backendConnectTimeoutMs: 2000, backendLoginTimeoutMs: 5000 }\n');
}, 60_000);

afterAll(async () => {
  await dovecot?.stop();
  await sink?.close();
  await tmp?.cleanup();
});

async function cli(args: string[], opts: { config?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCliCaptured(['--config', opts.config ?? conf, ...args], { cwd: tmp.path });
  for (const secret of [ALICE.password, WRONG]) expect(r.stdout + r.stderr).not.toContain(secret);
  return r;
}

describe('doctor', () => {
  let deadPort: number;
  beforeAll(async () => {
    deadPort = await freePort();
    const ok = async (args: string[]) => expect((await cli(args)).code).toBe(0);
    await ok(['backend', 'add', 'good', '--host', '127.0.0.1', '--imap-port', String(dovecot.ports.imap), '--pop3-port', String(dovecot.ports.pop3),
      '--submission-port', String(dovecot.ports.submission), '--tls', 'starttls', '--ca', dovecot.caFile]);
    // The right server, but no CA given: its certificate cannot be verified.
    await ok(['backend', 'add', 'untrusted-cert', '--host', '127.0.0.1', '--imap-port', String(dovecot.ports.imaps), '--tls', 'implicit']);
    await ok(['backend', 'add', 'down', '--host', '127.0.0.1', '--imap-port', String(deadPort), '--tls', 'none']);
  });

  const line = (out: string, backend: string, protocol: string, check: string) =>
    out.split('\n').find((l) => new RegExp(`^\\S+\\s+${backend}\\s+${protocol}\\s+${check}\\s`).test(l)) ?? `(no ${backend} ${protocol} ${check} line)`;

  test('one line per check: OK, FAIL with the reason, SKIP when not reached; exit 1 when any fails', async () => {
    const r = await cli(['doctor']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mailfront: \d+ checks failed\n$/);
    const o = r.stdout;
    expect(o.split('\n')[0]).toMatch(/^STATUS\s+BACKEND\s+PROTOCOL\s+CHECK\s+DETAIL$/);
    for (const p of ['imap', 'pop3', 'submission']) {
      expect(line(o, 'good', p, 'connect')).toMatch(/^OK\s.*127\.0\.0\.1:\d+$/);
      expect(line(o, 'good', p, 'tls')).toMatch(/^OK\s.*starttls, certificate verified against .*ca\.pem$/);
      expect(line(o, 'good', p, 'capabilities')).toMatch(/^OK\s/);
      expect(line(o, 'good', p, 'login')).toMatch(/^SKIP\s.*no test account/);
    }
    expect(line(o, 'good', 'imap', 'capabilities')).toMatch(/\* OK/);
    expect(line(o, 'good', 'submission', 'extensions')).toMatch(/^OK\s.*offers PIPELINING 8BITMIME ENHANCEDSTATUSCODES SIZE$/);
    expect(line(o, 'untrusted-cert', 'imap', 'connect')).toMatch(/^OK\s/);
    expect(line(o, 'untrusted-cert', 'imap', 'tls')).toMatch(/^FAIL\s.*(certificate|self.signed|issuer)/i);
    expect(line(o, 'untrusted-cert', 'imap', 'capabilities')).toMatch(/^SKIP\s.*not reached/);
    expect(line(o, 'down', 'imap', 'connect')).toMatch(/^FAIL\s.*connect: ECONNREFUSED/);
    expect(line(o, 'down', 'imap', 'tls')).toMatch(/^SKIP\s/);
    // Nothing reached Dovecot's authentication without a test account.
    expect(await dovecot.readLog()).not.toMatch(/auth.*(failed|unknown user)/i);
  });

  test('with a test account: the login on the good backend; a wrong password fails where it stopped', async () => {
    const pw = path.join(tmp.path, 'alice.pw');
    fs.writeFileSync(pw, `${ALICE.password}\n`);
    const r = await cli(['doctor', '--backend', 'good', '--user', ALICE.name, '--password-file', pw]);
    expect([r.code, r.stdout]).toEqual([0, expect.stringContaining('all ')]);
    for (const p of ['imap', 'pop3', 'submission']) expect(line(r.stdout, 'good', p, 'login')).toMatch(new RegExp(`^OK\\s.*${ALICE.name} logged in \\(\\S+/\\S+\\)$`));
    expect(r.stdout).toMatch(/all \d+ checks passed\n$/);

    const bad = path.join(tmp.path, 'wrong.pw');
    fs.writeFileSync(bad, `${WRONG}\n`);
    const f = await cli(['doctor', '--backend', 'good', '--user', ALICE.name, '--password-file', bad, '--json']);
    expect(f.code).toBe(1);
    const checks = JSON.parse(f.stdout) as Array<{ backend: string; protocol: string; check: string; status: string; detail: string }>;
    const imapLogin = checks.find((c) => c.protocol === 'imap' && c.check === 'login')!;
    expect(imapLogin).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^auth-failed: .*\(state \S*login\S*\/login\)$/) });
  });

  test('an unknown --backend is exit 1 before any connection', async () => {
    expect((await cli(['doctor', '--backend', 'nope'])).code).toBe(1);
  });
});

describe('backend drain --wait', () => {
  let mf: MailfrontUnderTest;
  let mfConf: string;
  beforeAll(async () => {
    mf = await startMailfront({
      backends: [{ name: 'dovecot', host: '127.0.0.1', ports: { imap: dovecot.ports.imap, pop3: null, submission: null } }],
      users: [{ ...ALICE, backend: 'dovecot' }],
    });
    mfConf = path.join(mf.dir.path, 'cli.yaml');
    fs.writeFileSync(mfConf, `dataDir: var\n`);
  });
  afterAll(async () => {
    await mf?.stop();
  });

  test('waits while a session is on the backend, shows how many are left, and ends when it is gone', async () => {
    const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem });
    await c.readLine();
    expect((await c.command(`a1 LOGIN "${ALICE.name}" "${ALICE.password}"`)).pop()).toMatch(/^a1 OK/);
    let finished = false;
    const waiting = cli(['backend', 'drain', 'dovecot', '--wait'], { config: mfConf }).then((r) => {
      finished = true;
      return r;
    });
    // The server has been asked at least twice and the session is still there: still waiting.
    await mf.waitForLog(/admin API listening/);
    for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 500));
    expect(finished).toBe(false);
    await c.command('a2 LOGOUT');
    await c.close();
    const r = await waiting;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^(mailfront: [^\n]*\n)*mailfront: 1 session left on backend dovecot\nmailfront: 0 sessions left on backend dovecot\n$/);
    expect(r.stdout).toBe('backend dovecot is now draining\nbackend dovecot has no sessions left\n');
  });

  test('--timeout gives up with exit 1 while sessions remain', async () => {
    // A draining backend takes no logins: let it take one, then drain again.
    expect((await cli(['backend', 'activate', 'dovecot'], { config: mfConf })).code).toBe(0);
    const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem });
    await c.readLine();
    expect((await c.command(`a1 LOGIN "${ALICE.name}" "${ALICE.password}"`)).pop()).toMatch(/^a1 OK/);
    const r = await cli(['backend', 'drain', 'dovecot', '--wait', '--timeout', '1'], { config: mfConf });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/still has 1 session after 1 s/);
    await c.close();
  });
});
