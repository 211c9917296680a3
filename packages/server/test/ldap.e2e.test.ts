/**
 * Directory auth and placement end to end: clients → mailfront (auth.source
 * ldap, StartTLS to a real slapd with the test CA) → the backend the user's
 * mailHost names: a real Dovecot, or a fake IMAP backend that records the
 * login it got. Also auth.source backend, where Dovecot alone decides.
 */
import { rawConnect, startDovecot, startSlapd, startSmtpSink, type Dovecot, type RawClient, type Slapd, type SmtpSink } from '@mailfront/testkit';
import { startFakeBackend, type FakeBackend } from './fake-backend';
import { startMailfront, type MailfrontUnderTest } from './harness';

// Passwords are the same in the directory and in Dovecot: passthrough logins hand the user's own to the backend.
const ALICE = { uid: 'alice', mail: 'alice@example.org', password: 'alice-ldap-pw', mailHost: 'dovecot' };
const BOB = { uid: 'bob', mail: 'bob@example.org', password: 'bob-ldap-pw', mailHost: 'recorder' };
const CAROL = { uid: 'carol', mail: 'carol@example.org', password: 'carol-ldap-pw' }; // no mailHost: the store's placement
const ERIN = { uid: 'erin', mail: 'erin@example.org', password: 'erin-ldap-pw', mailHost: 'nowhere.example.net' };
const FRANK = { uid: 'frank', mail: 'frank@example.org', password: 'frank-ldap-pw', mailHost: 'dovecot' }; // logs in first while the directory is down
const GRACE = { uid: 'grace', mail: 'grace@example.org', password: 'grace-ldap-pw', mailHost: 'dovecot' };
const MASTER = { name: 'proxy-master', password: 'master-secret' };
const DIRECTORY_USERS = [ALICE, BOB, CAROL, ERIN, FRANK, GRACE];

const NO_AUTH = 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.';
const NO_TEMP = 'a1 NO [UNAVAILABLE] Temporary failure, please try again later.';

let slapd: Slapd;
let dovecot: Dovecot;
let sink: SmtpSink;
let recorder: FakeBackend;
let mf: MailfrontUnderTest;
/** auth.source backend: Dovecot checks the passwords. */
let mfBackend: MailfrontUnderTest;

/** AUTHENTICATE PLAIN payloads the recorder got, decoded: [authzid, authcid, password]. */
const recorded: string[][] = [];

beforeAll(async () => {
  slapd = await startSlapd({
    tls: true,
    users: DIRECTORY_USERS.map((u) => ({ uid: u.uid, password: u.password, mail: u.mail, mailHost: 'mailHost' in u ? u.mailHost : undefined })),
  });
  sink = await startSmtpSink();
  dovecot = await startDovecot({
    users: DIRECTORY_USERS.map((u) => ({ name: u.mail, password: u.password })),
    masterUser: MASTER,
    protocols: ['imap', 'pop3', 'submission'],
    submissionRelay: { host: '127.0.0.1', port: sink.port },
  });
  recorder = await startFakeBackend({
    greeting: '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] recorder ready\r\n',
    onLine: (line) => {
      const m = /^(\S+) AUTHENTICATE PLAIN (\S+)$/.exec(line);
      if (m) {
        recorded.push(Buffer.from(m[2]!, 'base64').toString('utf8').split('\0'));
        return `${m[1]} OK [CAPABILITY IMAP4rev1] recorded\r\n`;
      }
      const t = /^(\S+) (\S+)/.exec(line);
      if (t && /^LOGOUT$/i.test(t[2]!)) return `* BYE recorder\r\n${t[1]} OK bye\r\n`;
      return t ? `${t[1]} OK ${t[2]} done\r\n` : null;
    },
  });
  const dovecotPorts = { imap: dovecot.ports.imap, pop3: dovecot.ports.pop3!, submission: dovecot.ports.submission! };
  mf = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: dovecotPorts, trusted: true },
      { name: 'recorder', host: '127.0.0.1', ports: { imap: recorder.port, pop3: null, submission: null } },
    ],
    users: [],
    config: {
      listeners: [
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
        { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'implicit' },
        { protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'implicit' },
      ],
      auth: { source: 'ldap', failureDelayMs: 50 },
      ldap: {
        urls: [slapd.url],
        startTls: true,
        caFile: slapd.caFile,
        bindDn: slapd.serviceDn,
        bindPasswordFile: slapd.servicePasswordFile,
        baseDn: slapd.suffix,
        userAttribute: 'mail',
        placementAttribute: 'mailHost',
        connectTimeoutMs: 2_000,
        timeoutMs: 2_000,
      },
      penalties: { threshold: 0 },
    },
  });
  // Carol's entry names no backend: an admin placed her in the store.
  await mf.store.setPlacement(CAROL.mail, 'dovecot', 'assigned');

  mfBackend = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: dovecotPorts },
      {
        name: 'dovecot-master',
        host: '127.0.0.1',
        ports: dovecotPorts,
        login: 'master',
        masterUser: MASTER.name,
        masterPassword: MASTER.password,
      },
    ],
    users: [],
    config: {
      listeners: [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' }],
      auth: { source: 'backend', failureDelayMs: 50 },
      penalties: { threshold: 0 },
    },
  });
  await mfBackend.store.setPlacement(ALICE.mail, 'dovecot', 'assigned');
  await mfBackend.store.setPlacement(GRACE.mail, 'dovecot-master', 'assigned');
}, 60_000);

afterAll(async () => {
  await mfBackend?.stop();
  await mf?.stop();
  await recorder?.close();
  await dovecot?.stop();
  await sink?.close();
  await slapd?.stop();
});

async function imap(m = mf): Promise<RawClient> {
  const c = await rawConnect({ port: m.port('imap', 'implicit'), tls: true, ca: m.certPem, servername: 'localhost' });
  await c.readLine();
  return c;
}

/** LOGIN and the tagged answer; the session is closed afterwards. */
async function imapLogin(user: string, password: string, m = mf): Promise<string> {
  const c = await imap(m);
  try {
    const lines = await c.command(`a1 LOGIN "${user.replace(/[\\"]/g, (x) => `\\${x}`)}" "${password}"`);
    return lines[lines.length - 1]!;
  } finally {
    await c.close();
  }
}

/** The mailfront log lines about logins of `user` (as typed, or canonical), parsed. */
function loginLog(m: MailfrontUnderTest, user: string): Array<Record<string, unknown>> {
  return m
    .readLog()
    .split('\n')
    .filter((l) => l.includes('"msg":"login'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e['user'] === user);
}

/** The log is written asynchronously: wait until `n` login lines of `user` are there. */
async function loginLogOf(m: MailfrontUnderTest, user: string, n: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const lines = loginLog(m, user);
    if (lines.length >= n || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LDAP users through mailfront', () => {
  test('IMAP: a login by uid lands on the Dovecot its mailHost names, as the canonical mail name', async () => {
    expect(await imapLogin('alice', ALICE.password)).toMatch(/^a1 OK /);
    await dovecot.waitForLog(new RegExp(`imap-login: Info: Login: user=<${ALICE.mail}>`));
    await mf.waitForLog(/"user":"alice@example.org","backend":"dovecot".*"msg":"login"/);
  });

  test('IMAP: a mailHost naming the other backend sends the login there', async () => {
    const before = recorded.length;
    expect(await imapLogin('BOB@example.org', BOB.password)).toMatch(/^a1 OK /);
    expect(recorded.slice(before)).toEqual([['', BOB.mail, BOB.password]]);
    await mf.waitForLog(/"user":"bob@example.org","backend":"recorder".*"msg":"login"/);
  });

  test('no mailHost: the placement stored in SQLite decides', async () => {
    expect(await imapLogin('carol', CAROL.password)).toMatch(/^a1 OK /);
    await dovecot.waitForLog(new RegExp(`imap-login: Info: Login: user=<${CAROL.mail}>`));
  });

  test('a mailHost naming no backend: temporary failure, and no login anywhere', async () => {
    const before = recorded.length;
    expect(await imapLogin('erin', ERIN.password)).toBe(NO_TEMP);
    await mf.waitForLog(/"kind":"no-backend","reason":"mailHost of erin@example.org nowhere.example.net names no backend/);
    expect(recorded.length).toBe(before);
    expect(await dovecot.readLog()).not.toContain(`user=<${ERIN.mail}>`);
  });

  test('POP3 and submission: the same directory login works', async () => {
    const p = await rawConnect({ port: mf.port('pop3', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
    expect(await p.readLine()).toMatch(/^\+OK/);
    await p.write('USER alice\r\n');
    expect(await p.readLine()).toMatch(/^\+OK/);
    await p.write(`PASS ${ALICE.password}\r\n`);
    expect(await p.readLine()).toMatch(/^\+OK/);
    await p.write('QUIT\r\n');
    await p.close();
    await dovecot.waitForLog(new RegExp(`pop3-login: Info: Login: user=<${ALICE.mail}>`));

    const s = await rawConnect({ port: mf.port('submission', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
    expect(await s.readLine()).toMatch(/^220 /);
    await s.write('EHLO client.example\r\n');
    for (let l = await s.readLine(); !l.startsWith('250 '); l = await s.readLine());
    await s.write(`AUTH PLAIN ${Buffer.from(`\0alice\0${ALICE.password}`).toString('base64')}\r\n`);
    expect(await s.readLine()).toMatch(/^235 /);
    await s.write('QUIT\r\n');
    await s.close();
    await dovecot.waitForLog(new RegExp(`submission-login: Info: Login: user=<${ALICE.mail}>`));
  });

  test('wrong password and unknown user get the same NO in each protocol', async () => {
    expect(await imapLogin('alice', 'wrong')).toBe(NO_AUTH);
    expect(await imapLogin('nobody@example.org', ALICE.password)).toBe(NO_AUTH);
    expect((await loginLogOf(mf, 'nobody@example.org', 1)).map((e) => e['reason'])).toEqual(['unknown user']);

    const p = await rawConnect({ port: mf.port('pop3', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
    await p.readLine();
    await p.write('USER alice\r\nPASS wrong\r\n');
    await p.readLine();
    expect(await p.readLine()).toBe('-ERR [AUTH] Authentication failed.');
    await p.close();

    const s = await rawConnect({ port: mf.port('submission', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
    await s.readLine();
    await s.write('EHLO client.example\r\n');
    for (let l = await s.readLine(); !l.startsWith('250 '); l = await s.readLine());
    await s.write(`AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}\r\n`);
    expect(await s.readLine()).toBe('535 5.7.8 Authentication credentials invalid');
    await s.close();
  });

  test.each([['*'], ['alic*'], ['*)(uid=*'], ['alice)(uid=*'], ['a\\00b']])('the name %j matches nobody, even with a real password', async (name) => {
    expect(await imapLogin(name, ALICE.password)).toBe(NO_AUTH);
    // The log shows a backslash doubled (proxy-core's clip), so that it cannot fake an escape.
    expect((await loginLogOf(mf, name.replace(/\\/g, '\\\\'), 1)).map((e) => e['reason'])).toEqual(['unknown user']);
  });

  test('a repeat login is served by the cache: no bind, no search', async () => {
    expect(await imapLogin('grace', GRACE.password)).toMatch(/^a1 OK /);
    const binds = await slapd.binds();
    const searches = await slapd.searches();
    expect(await imapLogin('grace', GRACE.password)).toMatch(/^a1 OK /);
    expect(await imapLogin('Grace', GRACE.password)).toMatch(/^a1 OK /);
    expect(await slapd.binds()).toBe(binds);
    expect(await slapd.searches()).toBe(searches);
    const cached = (await loginLogOf(mf, 'grace@example.org', 3)).filter((e) => e['msg'] === 'login').map((e) => e['cached']);
    expect(cached).toEqual([false, true, true]);
  });

  test('directory down: NO [UNAVAILABLE], never "wrong password"; cached users still get in; all well after a restart', async () => {
    expect(await imapLogin('alice', ALICE.password)).toMatch(/^a1 OK /); // cached from here on
    await slapd.stop();
    try {
      expect(await imapLogin('frank', FRANK.password)).toBe(NO_TEMP);
      expect(await imapLogin('alice', 'wrong')).toBe(NO_TEMP);
      expect(await imapLogin('nobody', 'whatever')).toBe(NO_TEMP);
      // The cache answers for alice, and her placement comes from the locator's cache: no directory needed.
      expect(await imapLogin('alice', ALICE.password)).toMatch(/^a1 OK /);
      await mf.waitForLog(/"kind":"auth-tempfail","reason":"directory unavailable: search: no directory server reachable/);
    } finally {
      await slapd.start();
    }
    expect(await imapLogin('frank', FRANK.password)).toMatch(/^a1 OK /);
    await dovecot.waitForLog(new RegExp(`imap-login: Info: Login: user=<${FRANK.mail}>`));
    expect(await imapLogin('alice', 'wrong')).toBe(NO_AUTH);
  });

  test('passwords never reach mailfront’s log', async () => {
    const log = mf.readLog();
    for (const u of DIRECTORY_USERS) expect(log).not.toContain(u.password);
    expect(log).not.toContain(slapd.servicePassword);
  });
});

describe('auth.source backend', () => {
  test('the backend decides: right password in, wrong password out', async () => {
    expect(await imapLogin(ALICE.mail, ALICE.password, mfBackend)).toMatch(/^a1 OK /);
    expect(await imapLogin(ALICE.mail, 'wrong', mfBackend)).toBe(NO_AUTH);
    const failedLogin = (await loginLogOf(mfBackend, ALICE.mail, 2)).find((e) => e['msg'] === 'login failed');
    expect(failedLogin).toMatchObject({ kind: 'auth-failed', reason: expect.stringMatching(/^login NO/) });
  });

  test('a master-login backend is refused: nobody would check the password', async () => {
    expect(await imapLogin(GRACE.mail, 'not-her-password', mfBackend)).toBe(NO_TEMP);
    await mfBackend.waitForLog(/"kind":"internal","reason":"refusing master login to backend dovecot-master/);
    // mailfront never even connected: Dovecot logged no login for her from this instance.
    const log = await dovecot.readLog();
    expect(log).not.toMatch(new RegExp(`Login: user=<${GRACE.mail}>.*method=PLAIN.*master`));
    expect(log).not.toContain(`master=<${MASTER.name}>`);
  });
});
