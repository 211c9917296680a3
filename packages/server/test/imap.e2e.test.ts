/**
 * IMAP end to end: real clients (imapflow, Python's imaplib, raw sockets)
 * → mailfront → a real Dovecot started on loopback.
 */
import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import { freePort, rawConnect, runPython, startDovecot, type Dovecot, type RawClient } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const ALICE = { name: 'alice@example.org', password: 'alice-pw-1' };
const BOB = { name: 'bob@example.org', password: 'bob "quoted" pw\\' };
const CAROL = { name: 'carol@example.org', password: 'carol-pw' }; // on the master-login backend
const DAVE = { name: 'dave@example.org', password: 'dave-pw' }; // on a backend that is down
const MASTER = { name: 'proxy-master', password: 'master-secret' };

let dovecot: Dovecot;
let mf: MailfrontUnderTest;

beforeAll(async () => {
  dovecot = await startDovecot({ users: [ALICE, BOB, CAROL, DAVE], masterUser: MASTER });
  const deadPort = await freePort();
  mf = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: { imap: dovecot.ports.imap, pop3: null, submission: null }, trusted: true },
      {
        name: 'dovecot-master',
        host: '127.0.0.1',
        ports: { imap: dovecot.ports.imap, pop3: null, submission: null },
        login: 'master',
        masterUser: MASTER.name,
        masterPassword: MASTER.password,
      },
      { name: 'down', host: '127.0.0.1', ports: { imap: deadPort, pop3: null, submission: null } },
    ],
    users: [
      { ...ALICE, backend: 'dovecot' },
      { ...BOB, backend: 'dovecot' },
      { ...CAROL, backend: 'dovecot-master' },
      { ...DAVE, backend: 'down' },
    ],
  });
});

afterAll(async () => {
  await mf?.stop();
  await dovecot?.stop();
});

function flow(opts: { port: number; secure: boolean; user: { name: string; password: string }; plain?: boolean; direct?: boolean }): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: opts.port,
    secure: opts.secure,
    doSTARTTLS: opts.secure ? undefined : true,
    auth: { user: opts.user.name, pass: opts.user.password, ...(opts.plain ? { loginMethod: 'AUTH=PLAIN' } : {}) },
    tls: { ca: opts.direct ? dovecot.caPem : mf.certPem, servername: 'localhost' },
    logger: false,
    disableAutoIdle: true,
  });
}
const viaProxy = (user = ALICE, secure = false, plain = false) =>
  flow({ port: secure ? mf.port('imap', 'implicit') : mf.port('imap', 'starttls'), secure, user, plain });
const direct = (user = ALICE) => flow({ port: dovecot.ports.imap, secure: false, user, direct: true });

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function message(subject: string, body: string | Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`From: alice@example.org\r\nTo: bob@example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`),
    typeof body === 'string' ? Buffer.from(body) : body,
    Buffer.from('\r\n'),
  ]);
}

async function plainConnect(port = mf.port('imap', 'starttls')): Promise<{ c: RawClient; greeting: string }> {
  const c = await rawConnect({ port });
  return { c, greeting: await c.readLine() };
}

async function tlsConnect(): Promise<RawClient> {
  const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
  await c.readLine();
  return c;
}

describe('IMAP through mailfront to Dovecot', () => {
  test('imapflow: STARTTLS + LOGIN, SELECT, APPEND, FETCH', async () => {
    const c = viaProxy();
    await c.connect();
    expect(c.secureConnection || (c as unknown as { _socket?: { encrypted?: boolean } })._socket?.encrypted).toBeTruthy();
    const lock = await c.getMailboxLock('INBOX');
    try {
      const raw = message('via starttls', 'hello from imapflow\r\n');
      const appended = await c.append('INBOX', raw);
      expect(appended).toBeTruthy();
      const msg = await c.fetchOne(String((appended as { uid: number }).uid), { source: true }, { uid: true });
      expect(msg && sha(msg.source!)).toBe(sha(raw));
    } finally {
      lock.release();
    }
    // The backend's real capabilities reached the client after login.
    expect(c.capabilities.has('IDLE')).toBe(true);
    await c.logout();
  });

  test('imapflow: implicit TLS + AUTHENTICATE PLAIN', async () => {
    const c = viaProxy(BOB, true, true);
    await c.connect();
    const status = await c.status('INBOX', { messages: true });
    expect(typeof status.messages).toBe('number');
    await c.logout();
  });

  test("Python's imaplib: STARTTLS + LOGIN and IMAP4_SSL + AUTHENTICATE PLAIN, SELECT and FETCH", async () => {
    const setup = direct();
    await setup.connect();
    await setup.append('INBOX', message('for python', 'python body\r\n'));
    await setup.logout();
    const script = `
import imaplib, ssl, sys
port, tls_port, ca, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names localhost; we connect to 127.0.0.1
m = imaplib.IMAP4('127.0.0.1', port)
assert 'LOGINDISABLED' in m.capabilities, m.capabilities
m.starttls(ssl_context=ctx)
typ, _ = m.login(user, pw)
assert typ == 'OK'
typ, data = m.select('INBOX')
n = int(data[0])
typ, data = m.fetch(str(n), '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print('subject:', data[0][1].decode().strip())
m.logout()
s = imaplib.IMAP4_SSL('127.0.0.1', tls_port, ssl_context=ctx)
typ, _ = s.authenticate('PLAIN', lambda _: ('\\0' + user + '\\0' + pw).encode())
assert typ == 'OK'
print('plain:', s.select('INBOX')[0])
s.logout()
`;
    const fs = await import('node:fs');
    const caFile = `${mf.dir.path}/mf-ca.pem`;
    fs.writeFileSync(caFile, mf.certPem);
    const r = await runPython(script, [String(mf.port('imap', 'starttls')), String(mf.port('imap', 'implicit')), caFile, ALICE.name, ALICE.password]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('subject: Subject: for python');
    expect(r.stdout).toContain('plain: OK');
    expect(r.code).toBe(0);
  });

  test('every message fetched through mailfront is byte-identical to the direct fetch', async () => {
    const d = direct(BOB);
    await d.connect();
    const bodies = [
      message('text', 'plain text\r\n'),
      message('8bit', Buffer.from('Grüße, 日本語, \u00ff\r\n', 'utf8')),
      message('binary-ish', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i % 254) + 1).filter((b) => b !== 10 && b !== 13))),
      message('big', Buffer.from('x'.repeat(76) + '\r\n').toString().repeat(20_000)),
    ];
    for (const b of bodies) await d.append('INBOX', b);
    const fetchAll = async (c: ImapFlow) => {
      const lock = await c.getMailboxLock('INBOX');
      const out = new Map<number, string>();
      try {
        for await (const m of c.fetch('1:*', { source: true, uid: true })) out.set(m.uid, sha(m.source!));
      } finally {
        lock.release();
      }
      return out;
    };
    const viaDirect = await fetchAll(d);
    await d.logout();
    const p = viaProxy(BOB);
    await p.connect();
    const viaMailfront = await fetchAll(p);
    await p.logout();
    expect(viaDirect.size).toBeGreaterThanOrEqual(bodies.length);
    expect([...viaMailfront.entries()]).toEqual([...viaDirect.entries()]);
  });

  test('IDLE: a message appended by another connection reaches the idling client', async () => {
    const idler = viaProxy(ALICE);
    await idler.connect();
    const lock = await idler.getMailboxLock('INBOX');
    const exists = new Promise<number>((resolve) => idler.on('exists', (e: { count: number }) => resolve(e.count)));
    const idling = idler.idle();
    await new Promise((r) => setTimeout(r, 200));
    const other = direct(ALICE);
    await other.connect();
    await other.append('INBOX', message('during idle', 'wake up\r\n'));
    const otherCount = (await other.status('INBOX', { messages: true })).messages;
    await other.logout();
    expect(await exists).toBe(otherCount);
    lock.release();
    await idler.logout();
    await idling.catch(() => undefined);
  });

  test('wrong password and unknown user get the same NO, after the failure delay', async () => {
    const answers: string[] = [];
    for (const [user, pw] of [
      [ALICE.name, 'wrong'],
      ['nobody@example.org', 'whatever'],
    ] as const) {
      const c = await tlsConnect();
      const t0 = Date.now();
      const lines = await c.command(`a1 LOGIN "${user}" "${pw}"`);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(200 - 5);
      answers.push(lines.join('\n'));
      await c.close();
    }
    expect(answers[0]).toBe('a1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect(answers[1]).toBe(answers[0]);
  });

  test('backend down: NO [UNAVAILABLE], promptly, and the session stays usable', async () => {
    const c = await tlsConnect();
    const lines = await c.command(`a1 LOGIN "${DAVE.name}" "${DAVE.password}"`);
    expect(lines).toEqual(['a1 NO [UNAVAILABLE] Temporary failure, please try again later.']);
    expect(await c.command('a2 NOOP')).toEqual(['a2 OK NOOP completed.']);
    await c.close();
  });

  test("trusted backend: Dovecot logs the client's own address and port (ID forwarding)", async () => {
    const c = await tlsConnect();
    const clientPort = c.socket.localPort;
    const lines = await c.command(`a1 LOGIN "${ALICE.name}" "${ALICE.password}"`);
    expect(lines[lines.length - 1]).toMatch(/^a1 OK \[CAPABILITY [^\]]*IMAP4rev1/);
    await c.command('a2 LOGOUT');
    await c.close();
    // The port is the client's own, not mailfront's outgoing one: only ID forwarding can tell Dovecot.
    const line = await dovecot.waitForLog(new RegExp(`imap-login: Info: Login: user=<${ALICE.name}>.*rport=${clientPort},`));
    expect(line).toContain('rip=127.0.0.1');
    await mf.waitForLog(/"msg":"login"/);
  });

  test('master login mode: mailfront logs in as the master user on behalf of the user', async () => {
    const c = await tlsConnect();
    const lines = await c.command(`a1 LOGIN "${CAROL.name}" "${CAROL.password}"`);
    expect(lines[lines.length - 1]).toMatch(/^a1 OK /);
    expect(await c.command('a2 SELECT INBOX')).toContainEqual(expect.stringMatching(/^a2 OK/));
    await c.command('a3 LOGOUT');
    await c.close();
    await dovecot.waitForLog(new RegExp(`Login: user=<${CAROL.name}>`));
  });

  test('plaintext: LOGINDISABLED, and LOGIN before STARTTLS is refused', async () => {
    const { c, greeting } = await plainConnect();
    expect(greeting).toContain('STARTTLS LOGINDISABLED');
    expect(greeting).not.toContain('AUTH=');
    expect(await c.command(`a1 LOGIN "${ALICE.name}" "${ALICE.password}"`)).toEqual([
      'a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.',
    ]);
    await c.close();
  });

  test('STARTTLS command injection: a command pipelined after STARTTLS is never run', async () => {
    const { c } = await plainConnect();
    await c.write(`a1 STARTTLS\r\na2 LOGIN "${ALICE.name}" "${ALICE.password}"\r\n`);
    expect(await c.readLine()).toBe('a1 OK Begin TLS negotiation now.');
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    // Nothing answers a2: the plaintext bytes were discarded before TLS.
    expect(await c.command('a3 NOOP')).toEqual(['a3 OK NOOP completed.']);
    const caps = await c.command('a4 CAPABILITY');
    expect(caps[0]).toContain('AUTH=PLAIN');
    expect(caps[0]).not.toContain('STARTTLS');
    await c.close();
  });

  test('commands pipelined after LOGIN in the same packet reach the backend', async () => {
    const c = await tlsConnect();
    await c.write(`a1 LOGIN "${ALICE.name}" "${ALICE.password}"\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n`);
    const login = await c.readUntilTagged('a1');
    expect(login[login.length - 1]).toMatch(/^a1 OK/);
    const select = await c.readUntilTagged('a2');
    expect(select[select.length - 1]).toMatch(/^a2 OK \[READ-WRITE\]/);
    const logout = await c.readUntilTagged('a3');
    expect(logout[logout.length - 1]).toMatch(/^a3 OK/);
    await c.waitForClose();
  });

  test('LOGIN with synchronising literals and a quoted password with escapes', async () => {
    const c = await tlsConnect();
    await c.write(`a1 LOGIN {${Buffer.byteLength(BOB.name)}}\r\n`);
    expect(await c.readLine()).toBe('+ OK');
    const quoted = `"${BOB.password.replace(/[\\"]/g, (x) => `\\${x}`)}"`;
    await c.write(`${BOB.name} ${quoted}\r\n`);
    const lines = await c.readUntilTagged('a1');
    expect(lines[lines.length - 1]).toMatch(/^a1 OK/);
    await c.close();
  });

  test('the session summary line carries user, backend, bytes and how it ended', async () => {
    const c = viaProxy(ALICE);
    await c.connect();
    await c.logout();
    await mf.waitForLog(new RegExp(`"user":"${ALICE.name}".*"msg":"session ended"`));
    const ended = mf
      .readLog()
      .split('\n')
      .filter((l) => l.includes('"msg":"session ended"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const mine = ended.find((e) => e['user'] === ALICE.name);
    expect(mine).toMatchObject({ backend: 'dovecot', proto: 'imap', tls: true, client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    // After LOGOUT both sides close at once; either may be seen first.
    expect(['client-closed', 'backend-closed']).toContain(mine!['end']);
    expect(mine!['duration_ms']).toEqual(expect.any(Number));
    expect(mine!['bytes_in']).toBeGreaterThan(0);
    expect(mine!['bytes_out']).toBeGreaterThan(0);
  });

  test('passwords never reach mailfront’s log', async () => {
    const log = mf.readLog();
    for (const u of [ALICE, BOB, CAROL, DAVE, MASTER]) expect(log).not.toContain(u.password);
  });
});
