/**
 * Operations end to end, against a real Dovecot (IMAP, POP3, submission):
 * the admin API through the CLI (sessions, kick) and curl (HTTP with a
 * token), Prometheus metrics scraped with curl, the whole log of the run,
 * and client autoconfiguration fetched with curl over HTTPS.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runCliCaptured } from '@mailfront/cli';
import { freePort, makeTempDir, rawConnect, startDovecot, startSmtpSink, type Dovecot, type RawClient, type SmtpSink, type TempDir } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const execFileAsync = promisify(execFile);

const ALICE = { name: 'alice@example.org', password: 'ops-alice-secret-1' };
const BOB = { name: 'bob@example.org', password: 'ops-bob-secret-2' };
// mailfront accepts her password; Dovecot knows another one: the backend refuses the login.
const CAROL = { name: 'carol@example.org', password: 'ops-carol-secret-3' };
const CAROL_AT_DOVECOT = { name: CAROL.name, password: 'ops-carol-other-4' };
const DAVE = { name: 'dave@example.org', password: 'ops-dave-secret-5' }; // on a backend that is down
const WRONG = 'ops-wrong-guess-6';
const TOKEN = 'ops-admin-token-7';
const SECRETS = [ALICE, BOB, CAROL, CAROL_AT_DOVECOT, DAVE].map((u) => u.password).concat(WRONG, TOKEN);

let sink: SmtpSink;
let dovecot: Dovecot;
let mf: MailfrontUnderTest;
let tmp: TempDir;
let caFile: string;
let cliConfig: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  dovecot = await startDovecot({
    users: [ALICE, BOB, CAROL_AT_DOVECOT],
    protocols: ['imap', 'pop3', 'submission'],
    submissionRelay: { host: '127.0.0.1', port: sink.port },
  });
  tmp = await makeTempDir('mailfront-ops-');
  const tokenFile = path.join(tmp.path, 'admin.token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const deadPort = await freePort();
  mf = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: { imap: dovecot.ports.imap, pop3: dovecot.ports.pop3!, submission: dovecot.ports.submission! }, trusted: true },
      { name: 'down', host: '127.0.0.1', ports: { imap: deadPort, pop3: deadPort, submission: deadPort } },
    ],
    users: [
      { ...ALICE, backend: 'dovecot' },
      { ...BOB, backend: 'dovecot' },
      { ...CAROL, backend: 'dovecot' },
      { ...DAVE, backend: 'down' },
    ],
    config: {
      listeners: [
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'starttls' },
        { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'implicit' },
        { protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'implicit' },
        { protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls' },
      ],
      admin: { http: { port: 0, tokenFile } },
      metrics: { port: 0 },
      autoconfig: { port: 0, tls: true, hostname: 'mail.example.test', displayName: 'Example <Mail> & Co' },
      // Failed logins on purpose: no escalating refusals.
      penalties: { threshold: 0 },
    },
  });
  caFile = path.join(tmp.path, 'mailfront-ca.pem');
  fs.writeFileSync(caFile, mf.certPem);
  cliConfig = path.join(tmp.path, 'cli.yaml');
  fs.writeFileSync(cliConfig, `dataDir: ${path.join(mf.dir.path, 'var')}\nhostname: localhost\n`);
}, 60_000);

afterAll(async () => {
  await mf?.stop();
  await dovecot?.stop();
  await sink?.close();
  await tmp?.cleanup();
});

let cliOutput = '';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runCliCaptured(['--config', cliConfig, ...args], { cwd: tmp.path, stdin: process.stdin });
  cliOutput += r.stdout + r.stderr;
  return r;
}

const ops = () => mf.server.operations;

async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await execFileAsync('curl', ['-sS', '-w', '\n%{http_code}', ...args]);
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
}

async function imapLogin(user: { name: string; password: string }): Promise<RawClient> {
  const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem });
  await c.readLine();
  const r = await c.command(`a1 LOGIN "${user.name}" "${user.password}"`);
  expect(r[r.length - 1]).toMatch(/^a1 OK/);
  return c;
}

async function pop3Login(user: { name: string; password: string }): Promise<RawClient> {
  const c = await rawConnect({ port: mf.port('pop3', 'implicit'), tls: true, ca: mf.certPem });
  expect(await c.readLine()).toMatch(/^\+OK/);
  await c.write(`USER ${user.name}\r\n`);
  expect(await c.readLine()).toMatch(/^\+OK/);
  await c.write(`PASS ${user.password}\r\n`);
  expect(await c.readLine()).toMatch(/^\+OK/);
  return c;
}

/** AUTH PLAIN after EHLO; returns the client and the AUTH reply. */
async function smtpAuth(user: { name: string; password: string }): Promise<{ c: RawClient; reply: string }> {
  const c = await rawConnect({ port: mf.port('submission', 'implicit'), tls: true, ca: mf.certPem });
  expect(await c.readLine()).toMatch(/^220 /);
  await c.write('EHLO client.example\r\n');
  for (let l = await c.readLine(); !l.startsWith('250 '); l = await c.readLine());
  await c.write(`AUTH PLAIN ${Buffer.from(`\0${user.name}\0${user.password}`).toString('base64')}\r\n`);
  return { c, reply: await c.readLine() };
}

/** Long enough without traffic for a session to count as quiet (QUIET_MS is 250). */
const quiet = () => new Promise((r) => setTimeout(r, 400));

async function sessionsOf(user: string): Promise<Array<Record<string, unknown>>> {
  const r = await cli(['sessions', '--user', user, '--json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

describe('admin API', () => {
  test('the admin socket is mode 0600 and the CLI lists a live session with its fields', async () => {
    expect(ops().admin.socket).toBe(path.join(mf.dir.path, 'var', 'admin.sock'));
    expect(fs.statSync(ops().admin.socket!).mode & 0o777).toBe(0o600);
    const c = await imapLogin(ALICE);
    const [s, ...more] = await sessionsOf(ALICE.name);
    expect(more).toEqual([]);
    expect(s).toMatchObject({
      protocol: 'imap',
      phase: 'relay',
      user: ALICE.name,
      client: `127.0.0.1:${c.socket.localPort}`,
      backend: 'dovecot',
      tls: true,
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      bytesFromClient: expect.any(Number),
      bytesFromBackend: expect.any(Number),
    });
    const table = await cli(['sessions', '--backend', 'dovecot']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+PROTOCOL\s+USER\s+CLIENT\s+BACKEND\s+TLS\s+PHASE\s+SINCE\s+IN\s+OUT$/);
    expect(table.stdout).toContain(`${s!['id']}  imap`);
    expect((await cli(['sessions', '--backend', 'down'])).stdout).toBe('no sessions\n');
    await c.command('a9 LOGOUT');
    await c.close();
  });

  test("kick USER: every protocol's session gets its goodbye, then the connection ends", async () => {
    const imap = await imapLogin(BOB);
    const pop3 = await pop3Login(BOB);
    const { c: smtp, reply } = await smtpAuth(BOB);
    expect(reply).toMatch(/^235 /);
    expect(await sessionsOf(BOB.name)).toHaveLength(3);
    await quiet();
    const r = await cli(['kick', BOB.name]);
    expect(r).toMatchObject({ code: 0, stdout: `3 sessions of ${BOB.name} closed\n` });
    expect((await imap.waitForClose()).toString()).toBe('* BYE Disconnected by administrator.\r\n');
    expect((await pop3.waitForClose()).toString()).toBe('-ERR Disconnected by administrator.\r\n');
    expect((await smtp.waitForClose()).toString()).toBe('421 4.3.2 localhost Disconnected by administrator\r\n');
    expect(await sessionsOf(BOB.name)).toEqual([]);
    const ended = await mf.waitForLog(new RegExp(`"user":"${BOB.name}".*"end":"stopped","stop":"kicked".*"msg":"session ended"`));
    expect(ended).toContain('"backend":"dovecot"');
  });

  test('kick --session ends that one session; an unknown id is exit 1', async () => {
    const a = await imapLogin(ALICE);
    const b = await imapLogin(ALICE);
    const mine = (await sessionsOf(ALICE.name)).find((s) => s['client'] === `127.0.0.1:${a.socket.localPort}`)!;
    await quiet();
    expect((await cli(['kick', '--session', String(mine['id'])])).code).toBe(0);
    expect((await a.waitForClose()).toString()).toBe('* BYE Disconnected by administrator.\r\n');
    expect(await b.command('b1 NOOP')).toContainEqual(expect.stringMatching(/^b1 OK/));
    const r = await cli(['kick', '--session', 'no-such-session']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mailfront: no session no-such-session\n');
    await b.close();
  });

  test('kick --backend --spread: the oldest session now, the rest spaced out over the time given', async () => {
    const first = await imapLogin(ALICE);
    const second = await imapLogin(ALICE);
    await quiet();
    // 60 s for two sessions: the second is due 30 s from now, long after this test.
    const r = await cli(['kick', '--backend', 'dovecot', '--spread', '60', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ kicked: 2, spreadSeconds: 60 });
    expect((await first.waitForClose()).toString()).toBe('* BYE Disconnected by administrator.\r\n');
    expect(await second.command('b1 NOOP')).toContainEqual(expect.stringMatching(/^b1 OK/));
    await second.command('b2 LOGOUT');
    await second.close();
  });

  test('usage: kick with nothing, or with two selectors, is exit 2', async () => {
    expect((await cli(['kick'])).code).toBe(2);
    expect((await cli(['kick', ALICE.name, '--backend', 'dovecot'])).code).toBe(2);
  });

  test('no server: a clear message and exit 1', async () => {
    const r = await cli(['sessions', '--admin-socket', path.join(tmp.path, 'nothing-here.sock')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mailfront: no mailfront server is running: there is no admin socket at .*nothing-here\.sock/);
  });

  test('over HTTP the bearer token is required; backend status answers there too', async () => {
    const base = `http://127.0.0.1:${ops().admin.http!.port}`;
    expect((await curl([`${base}/health`])).status).toBe(401);
    expect((await curl(['-H', 'Authorization: Bearer not-the-token', `${base}/health`])).status).toBe(401);
    const ok = await curl(['-H', `Authorization: Bearer ${TOKEN}`, `${base}/health`]);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ status: 'ok', pid: process.pid });
    const status = await curl(['-H', `Authorization: Bearer ${TOKEN}`, `${base}/backends/status`]);
    expect(status.status).toBe(200);
    expect((JSON.parse(status.body) as Array<{ name: string }>).map((b) => b.name).sort()).toEqual(['dovecot', 'down']);
    const bad = await curl(['-H', `Authorization: Bearer ${TOKEN}`, '-X', 'POST', '-d', '{"user":"a","backend":"b"}', `${base}/kick`]);
    expect(bad).toEqual({ status: 400, body: '{"error":"give exactly one of user, backend, session"}\n' });
    const cliStatus = await cli(['backend', 'status', '--json']);
    expect(cliStatus.code).toBe(0);
    expect(JSON.parse(cliStatus.stdout)).toEqual(JSON.parse(status.body).map((b: Record<string, unknown>) => expect.objectContaining({ name: b['name'] })));
  });

  test('backend status shows a drain at once, not after the next health round (10 min here)', async () => {
    const stateOf = async (name: string) => {
      const r = await cli(['backend', 'status', '--json']);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as Array<{ name: string; state: string }>).find((b) => b.name === name)?.state;
    };
    expect(await stateOf('down')).toBe('active');
    expect((await cli(['backend', 'drain', 'down'])).code).toBe(0);
    expect(await stateOf('down')).toBe('draining');
    expect((await cli(['backend', 'undrain', 'down'])).code).toBe(0);
    expect(await stateOf('down')).toBe('active');
  });
});

describe('metrics and logs', () => {
  type Sample = Map<string, number>;

  async function scrape(): Promise<Sample> {
    const r = await curl([`http://127.0.0.1:${ops().metrics!.port}/metrics`]);
    expect(r.status).toBe(200);
    const out: Sample = new Map();
    for (const line of r.body.split('\n')) {
      const m = /^(mailfront_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (m) out.set(m[1]!, Number(m[2]));
    }
    return out;
  }
  const delta = (a: Sample, b: Sample, key: string) => (b.get(key) ?? 0) - (a.get(key) ?? 0);

  test('counters move by exactly what the clients did, over all three protocols', async () => {
    const before = await scrape();
    // IMAP: one good login, one wrong password, one refused by the backend, one backend down.
    const ok = await imapLogin(ALICE);
    await ok.command('a2 NOOP');
    await ok.command('a3 LOGOUT');
    await ok.close();
    for (const [user, pw] of [
      [ALICE.name, WRONG],
      [CAROL.name, CAROL.password],
      [DAVE.name, DAVE.password],
    ] as const) {
      const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem });
      await c.readLine();
      await c.command(`a1 LOGIN "${user}" "${pw}"`);
      await c.close();
    }
    // POP3 and submission: one good login each, and a wrong password on submission.
    const p = await pop3Login(ALICE);
    await p.write('QUIT\r\n');
    await p.waitForClose();
    const s = await smtpAuth(ALICE);
    expect(s.reply).toMatch(/^235 /);
    await s.c.write('QUIT\r\n');
    await s.c.waitForClose();
    const bad = await smtpAuth({ name: ALICE.name, password: WRONG });
    expect(bad.reply).toMatch(/^535 /);
    await bad.c.close();
    // Every session has ended (and been counted) before the second scrape.
    for (let i = 0; i < 200 && mf.server.registry.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(mf.server.registry.size).toBe(0);

    const after = await scrape();
    const logins = (protocol: string, result: string, kind: string) => delta(before, after, `mailfront_logins_total{protocol="${protocol}",result="${result}",kind="${kind}"}`);
    expect(logins('imap', 'ok', 'none')).toBe(1);
    expect(logins('imap', 'failed', 'auth-failed')).toBe(2);
    expect(logins('imap', 'tempfail', 'connect')).toBe(1);
    expect(logins('pop3', 'ok', 'none')).toBe(1);
    expect(logins('submission', 'ok', 'none')).toBe(1);
    expect(logins('submission', 'failed', 'auth-failed')).toBe(1);
    expect(delta(before, after, 'mailfront_login_duration_seconds_count{protocol="imap",result="failed"}')).toBe(2);
    expect(delta(before, after, 'mailfront_login_duration_seconds_count{protocol="submission",result="ok"}')).toBe(1);
    expect(after.get('mailfront_penalties_active')).toBe(0);
    expect(after.get('mailfront_connections{protocol="imap",phase="relay"}')).toBe(0);

    // Bytes relayed: exactly what the session-end log lines say, each way.
    const log = mf.readLog().split('\n').filter((l) => l.includes('"msg":"session ended"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const sum = (proto: string, field: string) => log.filter((e) => e['proto'] === proto).reduce((n, e) => n + (e[field] as number), 0);
    for (const proto of ['imap', 'pop3', 'submission']) {
      expect([proto, after.get(`mailfront_relayed_bytes_total{protocol="${proto}",direction="client_to_backend"}`)]).toEqual([proto, sum(proto, 'bytes_in')]);
      expect([proto, after.get(`mailfront_relayed_bytes_total{protocol="${proto}",direction="backend_to_client"}`)]).toEqual([proto, sum(proto, 'bytes_out')]);
    }
    expect(sum('imap', 'bytes_out')).toBeGreaterThan(0);
  });

  test('a live session shows as connected and its bytes count before it ends', async () => {
    const before = await scrape();
    const c = await imapLogin(ALICE);
    await c.command('a2 NOOP');
    const during = await scrape();
    expect(during.get('mailfront_connections{protocol="imap",phase="relay"}')).toBe(1);
    expect(during.get('mailfront_backend_sessions{backend="dovecot",protocol="imap"}')).toBe(1);
    expect(delta(before, during, 'mailfront_relayed_bytes_total{protocol="imap",direction="backend_to_client"}')).toBeGreaterThan(0);
    await c.command('a3 LOGOUT');
    await c.close();
  });

  test('backend health from the server shows as gauges', async () => {
    const m = await scrape();
    expect([...m.keys()].some((k) => k.startsWith('mailfront_backend_breaker{backend="dovecot",protocol="imap",state="closed"}'))).toBe(true);
    expect(m.get('mailfront_backend_breaker{backend="dovecot",protocol="imap",state="closed"}')).toBe(1);
  });

  test('the log of the whole run: no password or token anywhere; session ends and failed logins say what an admin needs', async () => {
    const log = mf.readLog();
    for (const secret of SECRETS) expect([secret, log.includes(secret)]).toEqual([secret, false]);
    for (const secret of SECRETS) expect([secret, cliOutput.includes(secret)]).toEqual([secret, false]);
    const lines = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const ends = lines.filter((l) => l['msg'] === 'session ended');
    expect(new Set(ends.map((e) => e['proto']))).toEqual(new Set(['imap', 'pop3', 'submission']));
    for (const e of ends) {
      expect(e).toEqual(
        expect.objectContaining({
          user: expect.any(String),
          client: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          backend: 'dovecot',
          proto: expect.stringMatching(/^(imap|pop3|submission)$/),
          tls: true,
          bytes_in: expect.any(Number),
          bytes_out: expect.any(Number),
          duration_ms: expect.any(Number),
          end: expect.stringMatching(/^(client-closed|backend-closed|stopped)$/),
        }),
      );
    }
    // A login the backend refused says where it stopped: state=<sent>/<received>.
    const refused = lines.find((l) => l['msg'] === 'login failed' && l['user'] === CAROL.name)!;
    expect(refused).toMatchObject({ kind: 'auth-failed', backend: 'dovecot', state: expect.stringMatching(/^[a-z+]+\/[a-z]+$/) });
    expect(refused['state']).toMatch(/login/);
    const down = lines.find((l) => l['msg'] === 'login failed' && l['user'] === DAVE.name)!;
    expect(down).toMatchObject({ kind: 'connect', backend: 'down', state: 'none/banner' });
  });
});

describe('autoconfig', () => {
  const url = (p: string) => `https://localhost:${ops().autoconfig!.port}${p}`;
  const get = (p: string, extra: string[] = []) => curl(['--cacert', caFile, ...extra, url(p)]);

  test('Thunderbird gets the listeners: host name, ports and socket types', async () => {
    for (const p of ['/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.org', '/mail/config-v1.1.xml?emailaddress=alice%40example.org']) {
      const r = await get(p);
      expect(r.status).toBe(200);
      const servers = [...r.body.matchAll(/<(?:incoming|outgoing)Server type="(\w+)">\s*<hostname>([^<]*)<\/hostname>\s*<port>(\d+)<\/port>\s*<socketType>(\w+)<\/socketType>/g)].map(
        (m) => `${m[1]} ${m[2]}:${m[3]} ${m[4]}`,
      );
      expect(servers).toEqual([
        `imap mail.example.test:${mf.port('imap', 'implicit')} SSL`,
        `pop3 mail.example.test:${mf.port('pop3', 'implicit')} SSL`,
        `imap mail.example.test:${mf.port('imap', 'starttls')} STARTTLS`,
        `smtp mail.example.test:${mf.port('submission', 'implicit')} SSL`,
        `smtp mail.example.test:${mf.port('submission', 'starttls')} STARTTLS`,
      ]);
      expect(r.body).toContain('<emailProvider id="example.org">');
      expect(r.body).toContain('<displayName>Example &lt;Mail&gt; &amp; Co</displayName>');
    }
  });

  test('a hostile emailaddress is never reflected', async () => {
    const r = await get(`/mail/config-v1.1.xml?emailaddress=${encodeURIComponent('x@"><script>alert(1)</script>')}`);
    expect(r.status).toBe(200);
    expect(r.body).not.toContain('<script>');
    expect(r.body).toContain('<emailProvider id="mail.example.test">');
  });

  test('Outlook Autodiscover (any case of the path): protocols with SSL or TLS, the login name escaped', async () => {
    const body = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>o'neil@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;
    for (const p of ['/autodiscover/autodiscover.xml', '/Autodiscover/Autodiscover.xml']) {
      const r = await get(p, ['-X', 'POST', '-H', 'Content-Type: text/xml', '--data-binary', body]);
      expect(r.status).toBe(200);
      const protocols = [...r.body.matchAll(/<Type>(\w+)<\/Type>\s*<Server>([^<]*)<\/Server>\s*<Port>(\d+)<\/Port>[\s\S]*?<Encryption>(\w+)<\/Encryption>/g)].map(
        (m) => `${m[1]} ${m[2]}:${m[3]} ${m[4]}`,
      );
      expect(protocols).toEqual([
        `IMAP mail.example.test:${mf.port('imap', 'implicit')} SSL`,
        `POP3 mail.example.test:${mf.port('pop3', 'implicit')} SSL`,
        `SMTP mail.example.test:${mf.port('submission', 'implicit')} SSL`,
        `IMAP mail.example.test:${mf.port('imap', 'starttls')} TLS`,
        `SMTP mail.example.test:${mf.port('submission', 'starttls')} TLS`,
      ]);
      expect(r.body).toContain('<LoginName>o&apos;neil@example.org</LoginName>');
    }
    expect((await get('/autodiscover/autodiscover.xml')).status).toBe(405);
  });

  test('mailfront autoconfig dns prints the SRV records of the configured listeners', async () => {
    const conf = path.join(tmp.path, 'dns.yaml');
    fs.writeFileSync(
      conf,
      [
        'hostname: mail.example.org',
        'listeners:',
        '  - { protocol: imap, host: 0.0.0.0, port: 993, tls: implicit }',
        '  - { protocol: imap, host: 0.0.0.0, port: 143, tls: starttls }',
        '  - { protocol: pop3, host: 10.0.0.1, port: 110, tls: none, allowPlaintextAuth: true }',
        '  - { protocol: submission, host: 0.0.0.0, port: 465, tls: implicit }',
        '  - { protocol: submission, host: 0.0.0.0, port: 587, tls: starttls }',
        'autoconfig: { hostname: imap.example.net }',
        '',
      ].join('\n'),
    );
    const { code, stdout } = await runCliCaptured(['--config', conf, 'autoconfig', 'dns', 'example.org'], { cwd: tmp.path, stdin: process.stdin });
    expect(code).toBe(0);
    expect(stdout.split('\n').filter((l) => !l.startsWith(';') && l)).toEqual([
      '_imaps._tcp.example.org. 3600 IN SRV 0 1 993 imap.example.net.',
      '_imap._tcp.example.org. 3600 IN SRV 10 1 143 imap.example.net.',
      '_pop3s._tcp.example.org. 3600 IN SRV 0 0 0 .',
      '_pop3._tcp.example.org. 3600 IN SRV 0 0 0 .',
      '_submissions._tcp.example.org. 3600 IN SRV 0 1 465 imap.example.net.',
      '_submission._tcp.example.org. 3600 IN SRV 10 1 587 imap.example.net.',
    ]);
    expect((await runCliCaptured(['--config', conf, 'autoconfig', 'dns', 'not a domain'], { cwd: tmp.path, stdin: process.stdin })).code).toBe(2);
  });
});
