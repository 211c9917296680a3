/**
 * POP3 end to end: real clients (Python's poplib, curl, raw sockets) →
 * mailfront → a real Dovecot 2.3 started on loopback.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { freePort, rawConnect, runPython, startDovecot, type Dovecot, type RawClient } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const execFileAsync = promisify(execFile);

const ALICE = { name: 'alice@example.org', password: 'alice-pw-1' };
const BOB = { name: 'bob@example.org', password: 'bob pw with spaces' };
const CAROL = { name: 'carol@example.org', password: 'carol-pw' }; // on the master-login backend
const DAVE = { name: 'dave@example.org', password: 'dave-pw' }; // on a backend that is down
const ERIN = { name: 'erin@example.org', password: 'erin-pw' }; // on a backend reached with STLS
const DELLA = { name: 'della@example.org', password: 'della-pw' }; // whose messages get deleted
// On the second Dovecot: one POP3 session per mailbox, reached through a forwarder that hides SASL (so USER/PASS).
const FRANK = { name: 'frank@example.org', password: 'fränk pw €' };
const MASTER = { name: 'proxy-master', password: 'master-secret' };
const SECRETS = [ALICE, BOB, CAROL, DAVE, ERIN, DELLA, FRANK, MASTER].map((u) => u.password);

let dovecot: Dovecot;
let locking: Dovecot;
let hider: { port: number; close(): Promise<void> };
let mf: MailfrontUnderTest;
let caFile: string;

beforeAll(async () => {
  [dovecot, locking] = await Promise.all([
    startDovecot({ users: [ALICE, BOB, CAROL, DAVE, ERIN, DELLA], masterUser: MASTER, protocols: ['imap', 'pop3'] }),
    // Dovecot holds a POP3 session's lock and answers a second login to the
    // mailbox, after ~10 s, with -ERR [IN-USE].
    startDovecot({ users: [FRANK], protocols: ['imap', 'pop3'], extraConfig: 'pop3_lock_session = yes' }),
  ]);
  hider = await startSaslHider(locking.ports.pop3!);
  const deadPort = await freePort();
  const pop3 = (port: number | undefined) => ({ imap: null, pop3: port ?? null, submission: null });
  mf = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: pop3(dovecot.ports.pop3), trusted: true },
      {
        name: 'dovecot-master',
        host: '127.0.0.1',
        ports: pop3(dovecot.ports.pop3),
        login: 'master',
        masterUser: MASTER.name,
        masterPassword: MASTER.password,
      },
      { name: 'dovecot-stls', host: '127.0.0.1', ports: pop3(dovecot.ports.pop3), tls: 'starttls', caFile: dovecot.caFile, trusted: true },
      { name: 'down', host: '127.0.0.1', ports: pop3(deadPort) },
      { name: 'locking', host: '127.0.0.1', ports: pop3(hider.port), trusted: true },
    ],
    users: [
      { ...ALICE, backend: 'dovecot' },
      { ...BOB, backend: 'dovecot' },
      { ...CAROL, backend: 'dovecot-master' },
      { ...DAVE, backend: 'down' },
      { ...ERIN, backend: 'dovecot-stls' },
      { ...DELLA, backend: 'dovecot' },
      { ...FRANK, backend: 'locking' },
    ],
    config: {
      listeners: [
        { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'starttls' },
        { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'implicit' },
        // Legacy clients on a trusted network: plaintext, passwords in clear.
        { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true },
      ],
      // Several failed logins from 127.0.0.1 on purpose: no escalating refusals here.
      penalties: { threshold: 0 },
    },
  });
  caFile = path.join(mf.dir.path, 'mf-ca.pem');
  fs.writeFileSync(caFile, mf.certPem);
  // Messages to read, put in directly over IMAP: an 8-bit one, one with
  // lines that start with '.', including a line that is only '.'.
  await append(dovecot, BOB, [
    message('plain', 'hello\r\n'),
    message('8bit', Buffer.from('Grüße, 日本語, \u00ff\r\n', 'utf8')),
    message('dots', '.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n'),
    message('big', ('x'.repeat(76) + '\r\n').repeat(5_000)),
  ]);
  await append(dovecot, ALICE, [message('for alice', 'alice body\r\n')]);
  await append(dovecot, DELLA, [message('keep', 'keep me\r\n'), message('delete', 'delete me\r\n')]);
}, 60_000);

afterAll(async () => {
  await mf?.stop();
  await hider?.close();
  await Promise.all([dovecot?.stop(), locking?.stop()]);
});

/**
 * A backend that offers USER but not SASL PLAIN, as many non-Dovecot servers
 * do: a forwarder to a real Dovecot that drops the SASL line from what it
 * says before login. (Dovecot itself cannot be configured so: its USER/PASS
 * needs PLAIN among auth_mechanisms, and then CAPA lists it.)
 */
async function startSaslHider(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const backend = net.connect({ host: '127.0.0.1', port });
    for (const s of [client, backend]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    let pending = '';
    let loggedIn = false;
    backend.on('data', (d: Buffer) => {
      if (loggedIn) return void client.write(d);
      pending += d.toString('latin1');
      for (let i = pending.indexOf('\n'); !loggedIn && i >= 0; i = pending.indexOf('\n')) {
        const line = pending.slice(0, i + 1);
        pending = pending.slice(i + 1);
        if (/^SASL /.test(line)) continue;
        loggedIn = /^\+OK Logged in/.test(line);
        client.write(line, 'latin1');
      }
      if (loggedIn && pending) client.write(pending, 'latin1');
    });
    client.on('data', (d: Buffer) => backend.write(d));
    const end = () => {
      client.destroy();
      backend.destroy();
    };
    for (const s of [client, backend]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function message(subject: string, body: string | Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`From: alice@example.org\r\nTo: bob@example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`),
    typeof body === 'string' ? Buffer.from(body) : body,
  ]);
}

async function append(d: Dovecot, user: { name: string; password: string }, messages: Buffer[]): Promise<void> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: d.ports.imap,
    secure: false,
    doSTARTTLS: true,
    auth: { user: user.name, pass: user.password },
    tls: { ca: d.caPem, servername: 'localhost' },
    logger: false,
    disableAutoIdle: true,
  });
  await c.connect();
  for (const m of messages) await c.append('INBOX', m);
  await c.logout();
}

/**
 * A POP3 connection that keeps every byte: status lines and multi-line
 * answers come back as the exact bytes on the wire (dot-stuffing included).
 */
class PopConn {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, secure: boolean): Promise<PopConn> {
    const socket = secure
      ? tls.connect({ host: '127.0.0.1', port, ca: mf.certPem, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(secure ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new PopConn(socket);
    await c.status();
    return c;
  }

  private async until(end: (b: Buffer) => number): Promise<Buffer> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const n = end(this.buf);
      if (n >= 0) {
        const out = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return out;
      }
      if (this.closed) throw new Error(`closed; unread ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      if (Date.now() > deadline) throw new Error(`timeout; unread ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 100);
      });
    }
  }

  /** One status line, with its CRLF. */
  status(): Promise<Buffer> {
    return this.until((b) => {
      const i = b.indexOf('\r\n');
      return i < 0 ? -1 : i + 2;
    });
  }

  /** A whole multi-line answer: status line through the terminating ".\r\n" (or the -ERR line alone). */
  async multi(): Promise<Buffer> {
    return this.until((b) => {
      const first = b.indexOf('\r\n');
      if (first < 0) return -1;
      if (b[0] === 0x2d /* - */) return first + 2;
      if (b.subarray(first + 2, first + 5).toString() === '.\r\n') return first + 5;
      const end = b.indexOf('\r\n.\r\n', first);
      return end < 0 ? -1 : end + 5;
    });
  }

  async cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return (await this.status()).toString('utf8').replace(/\r\n$/, '');
  }

  async multiCmd(line: string): Promise<Buffer> {
    this.socket.write(`${line}\r\n`);
    return this.multi();
  }

  close(): void {
    this.socket.destroy();
  }
}

async function plainConnect(port = mf.port('pop3', 'starttls')): Promise<{ c: RawClient; greeting: string }> {
  const c = await rawConnect({ port });
  return { c, greeting: await c.readLine() };
}

async function tlsConnect(): Promise<RawClient> {
  const c = await rawConnect({ port: mf.port('pop3', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
  expect(await c.readLine()).toBe('+OK mailfront ready.');
  return c;
}

async function say(c: RawClient, line: string): Promise<string> {
  await c.write(`${line}\r\n`);
  return c.readLine();
}

/** Lines of a multi-line answer up to the lone ".". */
async function readList(c: RawClient): Promise<string[]> {
  const out: string[] = [];
  for (let l = await c.readLine(); l !== '.'; l = await c.readLine()) out.push(l);
  return out;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('POP3 through mailfront to Dovecot', () => {
  test("Python's poplib: STLS + USER/PASS; POP3_SSL + AUTH PLAIN with initial response and with continuation", async () => {
    const script = `
import base64, poplib, ssl, sys
port, tls_port, ca, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names localhost; we connect to 127.0.0.1
p = poplib.POP3('127.0.0.1', port)
print('greeting:', p.getwelcome().decode())
caps = p.capa()
assert 'STLS' in caps and 'USER' not in caps and 'SASL' not in caps, caps
p.stls(context=ctx)
caps = p.capa()
assert 'USER' in caps and 'STLS' not in caps and caps['SASL'] == ['PLAIN'], caps
print('user:', p.user(user).decode())
print('pass:', p.pass_(pw).decode())
count, size = p.stat()
resp, lines, octets = p.retr(count)
print('subject:', [l for l in lines if l.startswith(b'Subject:')][0].decode())
print('uidl lines:', len(p.uidl()[1]) == count)
print('quit:', p.quit().decode())
plain = base64.b64encode(('\\0' + user + '\\0' + pw).encode()).decode()
s = poplib.POP3_SSL('127.0.0.1', tls_port, context=ctx)
print('auth ir:', s._shortcmd('AUTH PLAIN ' + plain).decode())
print('stat ir:', s.stat()[0] == count)
s.quit()
s = poplib.POP3_SSL('127.0.0.1', tls_port, context=ctx)
print('auth cont:', repr(s._shortcmd('AUTH PLAIN')))
print('auth done:', s._shortcmd(plain).decode())
print('stat cont:', s.stat()[0] == count)
s.quit()
`;
    const r = await runPython(script, [String(mf.port('pop3', 'starttls')), String(mf.port('pop3', 'implicit')), caFile, BOB.name, BOB.password]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([
      'greeting: +OK mailfront ready.',
      'user: +OK Send PASS.',
      // Dovecot's own answer to the login reaches the client.
      'pass: +OK Logged in.',
      'subject: Subject: big',
      'uidl lines: True',
      'quit: +OK Logging out.',
      'auth ir: +OK Logged in.',
      'stat ir: True',
      "auth cont: b'+ '",
      'auth done: +OK Logged in.',
      'stat cont: True',
      '',
    ]);
    expect(r.code).toBe(0);
  });

  test('curl: pop3:// with --ssl-reqd (STLS) and pop3s:// list and retrieve a message', async () => {
    const curl = async (url: string, ...extra: string[]) => {
      const port = new URL(url).port;
      const { stdout } = await execFileAsync(
        'curl',
        ['--silent', '--show-error', '--max-time', '20', '--cacert', caFile, '--resolve', `localhost:${port}:127.0.0.1`, '--user', `${ALICE.name}:${ALICE.password}`, ...extra, url],
        { encoding: 'buffer' },
      );
      return stdout;
    };
    const starttls = `pop3://localhost:${mf.port('pop3', 'starttls')}/`;
    const listing = (await curl(starttls, '--ssl-reqd')).toString();
    expect(listing).toMatch(/^1 \d+\r\n$/);
    const viaStls = await curl(`${starttls}1`, '--ssl-reqd');
    expect(viaStls.toString()).toContain('Subject: for alice');
    const viaTls = await curl(`pop3s://localhost:${mf.port('pop3', 'implicit')}/1`);
    expect(viaTls.equals(viaStls)).toBe(true);
    // curl takes the dot-stuffing off again: what it prints is the message as it was put in.
    expect(viaTls.toString()).toBe(message('for alice', 'alice body\r\n').toString());
    // Without STLS curl would send credentials in clear: mailfront did not offer USER or SASL before TLS.
    await expect(curl(starttls)).rejects.toThrow();
  });

  test('UIDL, LIST, TOP and RETR through mailfront are byte-identical to the same commands made to Dovecot directly', async () => {
    const transcript = async (c: PopConn): Promise<Buffer[]> => {
      const out: Buffer[] = [];
      // Dovecot's answer to the login is the same too.
      out.push(Buffer.from(await c.cmd(`AUTH PLAIN ${b64(`\0${BOB.name}\0${BOB.password}`)}`)));
      out.push(Buffer.from(await c.cmd('STAT')));
      out.push(await c.multiCmd('UIDL'));
      out.push(await c.multiCmd('LIST'));
      const n = Number(/^\+OK (\d+)/.exec(out[1]!.toString())![1]);
      for (let i = 1; i <= n; i++) {
        out.push(await c.multiCmd(`TOP ${i} 0`));
        out.push(await c.multiCmd(`RETR ${i}`));
      }
      out.push(Buffer.from(await c.cmd('QUIT')));
      c.close();
      return out;
    };
    const direct = await transcript(await PopConn.open(dovecot.ports.pop3!, false));
    const proxied = await transcript(await PopConn.open(mf.port('pop3', 'implicit'), true));
    expect(direct.length).toBeGreaterThanOrEqual(4 + 2 * 4 + 1);
    expect(proxied.map((b) => b.toString('base64'))).toEqual(direct.map((b) => b.toString('base64')));
    const all = Buffer.concat(proxied);
    // The 8-bit body, and the dot-stuffed lines (RFC 1939 §3), passed untouched.
    expect(all.includes(Buffer.from('Grüße, 日本語, \u00ff\r\n', 'utf8'))).toBe(true);
    expect(all.includes(Buffer.from('\r\n..leading dot\r\n...two dots\r\n..\r\nafter a lone dot\r\n'))).toBe(true);
  });

  test('DELE then QUIT through mailfront really deletes (checked directly afterwards)', async () => {
    const uidls = async (c: PopConn) =>
      (await c.multiCmd('UIDL'))
        .toString()
        .split('\r\n')
        .slice(1, -2)
        .map((l) => l.split(' ')[1]!);
    const before = await PopConn.open(dovecot.ports.pop3!, false);
    expect(await before.cmd(`USER ${DELLA.name}`)).toMatch(/^\+OK/);
    expect(await before.cmd(`PASS ${DELLA.password}`)).toMatch(/^\+OK/);
    const all = await uidls(before);
    expect(all).toHaveLength(2);
    await before.cmd('QUIT');
    before.close();

    const c = await PopConn.open(mf.port('pop3', 'implicit'), true);
    expect(await c.cmd(`USER ${DELLA.name}`)).toBe('+OK Send PASS.');
    expect(await c.cmd(`PASS ${DELLA.password}`)).toBe('+OK Logged in.');
    expect(await c.cmd('DELE 2')).toMatch(/^\+OK/);
    expect(await c.cmd('QUIT')).toMatch(/^\+OK/);
    c.close();

    const after = await PopConn.open(dovecot.ports.pop3!, false);
    await after.cmd(`USER ${DELLA.name}`);
    await after.cmd(`PASS ${DELLA.password}`);
    expect(await uidls(after)).toEqual([all[0]]);
    await after.cmd('QUIT');
    after.close();
  });

  test('wrong password and unknown user get the same -ERR, after the failure delay', async () => {
    const answers: string[] = [];
    for (const [user, pw] of [
      [ALICE.name, 'wrong'],
      ['nobody@example.org', 'whatever'],
    ] as const) {
      const c = await tlsConnect();
      expect(await say(c, `USER ${user}`)).toBe('+OK Send PASS.');
      const t0 = Date.now();
      answers.push(await say(c, `PASS ${pw}`));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(200 - 5);
      // RFC 1939 §7: after a failed PASS, the session is back at USER.
      expect(await say(c, `PASS ${pw}`)).toBe('-ERR Send USER first.');
      await c.close();
    }
    expect(answers[0]).toBe('-ERR [AUTH] Authentication failed.');
    expect(answers[1]).toBe(answers[0]);
  });

  test('backend down: -ERR [SYS/TEMP], and the session stays usable', async () => {
    const c = await tlsConnect();
    expect(await say(c, `AUTH PLAIN ${b64(`\0${DAVE.name}\0${DAVE.password}`)}`)).toBe('-ERR [SYS/TEMP] Temporary failure, please try again later.');
    expect(await say(c, 'CAPA')).toBe('+OK Capability list follows.');
    expect(await readList(c)).toContain('USER');
    await c.close();
    await mf.waitForLog(new RegExp(`"user":"${DAVE.name}".*"kind":"connect"`));
  });

  test('plaintext STARTTLS port: CAPA lists STLS and neither USER nor SASL; USER is refused before TLS', async () => {
    const { c, greeting } = await plainConnect();
    expect(greeting).toBe('+OK mailfront ready.');
    expect(await say(c, 'CAPA')).toBe('+OK Capability list follows.');
    expect(await readList(c)).toEqual(['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'STLS']);
    expect(await say(c, `USER ${ALICE.name}`)).toBe('-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    expect(await say(c, `AUTH PLAIN ${b64(`\0${ALICE.name}\0${ALICE.password}`)}`)).toMatch(/^-ERR \[AUTH\] Plaintext/);
    expect(await say(c, 'STLS')).toBe('+OK Begin TLS negotiation now.');
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    expect(await say(c, 'CAPA')).toBe('+OK Capability list follows.');
    expect(await readList(c)).toEqual(['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'USER', 'SASL PLAIN']);
    expect(await say(c, 'STLS')).toBe('-ERR TLS is already active.');
    await c.close();
  });

  test('STLS command injection: a USER sent with STLS in one packet is never answered, in plaintext or in TLS', async () => {
    const { c } = await plainConnect();
    await c.write(`STLS\r\nUSER ${ALICE.name}\r\n`);
    expect(await c.readLine()).toBe('+OK Begin TLS negotiation now.');
    // startTls fails if anything came after the +OK in plaintext.
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    // The first answer inside TLS is CAPA's, not "+OK Send PASS." for the injected USER.
    expect(await say(c, 'CAPA')).toBe('+OK Capability list follows.');
    await readList(c);
    // And the USER was not remembered either.
    expect(await say(c, `PASS ${ALICE.password}`)).toBe('-ERR Send USER first.');
    await c.close();
  });

  test("trusted backend: XCLIENT forwards the client's own port and mailfront's session id to Dovecot's log", async () => {
    const c = await tlsConnect();
    const clientPort = c.socket.localPort;
    expect(await say(c, `USER ${ALICE.name}`)).toBe('+OK Send PASS.');
    expect(await say(c, `PASS ${ALICE.password}`)).toBe('+OK Logged in.');
    expect(await say(c, 'QUIT')).toMatch(/^\+OK/);
    await c.close();
    const ours = JSON.parse(await mf.waitForLog(new RegExp(`"client":"127\\.0\\.0\\.1:${clientPort}".*"msg":"login"`))) as Record<string, string>;
    expect(ours['state']).toBe('capa+xclient+auth/auth');
    // The port is the client's own, not mailfront's outgoing one: only XCLIENT can tell Dovecot.
    const line = await dovecot.waitForLog(new RegExp(`pop3-login: Info: Login: user=<${ALICE.name}>.*rport=${clientPort},`));
    expect(line).toContain('rip=127.0.0.1');
    expect(line).toContain(`session=<${ours['session']}>`);
  });

  test('backend reached with STLS: CAPA again through TLS, XCLIENT after it, Dovecot logs a TLS login', async () => {
    const c = await tlsConnect();
    const clientPort = c.socket.localPort;
    expect(await say(c, `AUTH PLAIN ${b64(`\0${ERIN.name}\0${ERIN.password}`)}`)).toBe('+OK Logged in.');
    expect(await say(c, 'STAT')).toMatch(/^\+OK 0 0/);
    await say(c, 'QUIT');
    await c.close();
    const ours = await mf.waitForLog(new RegExp(`"user":"${ERIN.name}".*"msg":"login"`));
    expect(ours).toContain('"state":"capa+stls+capa+xclient+auth/auth"');
    const line = await dovecot.waitForLog(new RegExp(`Login: user=<${ERIN.name}>.*rport=${clientPort},.* TLS,`));
    expect(line).toContain('method=PLAIN');
  });

  test('master login mode: mailfront logs in as the master user on behalf of the user', async () => {
    const c = await tlsConnect();
    expect(await say(c, `USER ${CAROL.name}`)).toBe('+OK Send PASS.');
    expect(await say(c, `PASS ${CAROL.password}`)).toBe('+OK Logged in.');
    expect(await say(c, 'STAT')).toMatch(/^\+OK /);
    await say(c, 'QUIT');
    await c.close();
    await dovecot.waitForLog(new RegExp(`pop3-login: Info: Login: user=<${CAROL.name}>`));
  });

  test('pipelining: USER, PASS and STAT in one packet; STAT reaches the backend', async () => {
    const c = await tlsConnect();
    await c.write(`USER ${ALICE.name}\r\nPASS ${ALICE.password}\r\nSTAT\r\nQUIT\r\n`);
    expect(await c.readLine()).toBe('+OK Send PASS.');
    expect(await c.readLine()).toBe('+OK Logged in.');
    expect(await c.readLine()).toMatch(/^\+OK 1 \d+$/);
    expect(await c.readLine()).toMatch(/^\+OK Logging out/);
    await c.waitForClose();
  });

  test('legacy listener (tls: none, allowPlaintextAuth): USER and SASL offered, no STLS, USER/PASS works', async () => {
    const { c, greeting } = await plainConnect(mf.port('pop3', 'none'));
    expect(greeting).toBe('+OK mailfront ready.');
    expect(await say(c, 'CAPA')).toBe('+OK Capability list follows.');
    expect(await readList(c)).toEqual(['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'USER', 'SASL PLAIN']);
    expect(await say(c, 'STLS')).toBe('-ERR STLS is not available on this port.');
    expect(await say(c, `USER ${BOB.name}`)).toBe('+OK Send PASS.');
    expect(await say(c, `PASS ${BOB.password}`)).toBe('+OK Logged in.');
    expect(await say(c, 'STAT')).toMatch(/^\+OK 4 \d+$/);
    await say(c, 'QUIT');
    await c.close();
  });

  test('before login: NOOP, APOP, STAT and garbage are -ERR; too many close the connection', async () => {
    const c = await tlsConnect();
    for (const cmd of ['NOOP', 'APOP a b', 'STAT', 'XCLIENT ADDR=192.0.2.1', '']) {
      expect(await say(c, cmd)).toMatch(/^-ERR /);
    }
    // maxBadCommands (10) in all.
    for (let i = 0; i < 4; i++) expect(await say(c, 'NOOP')).toMatch(/^-ERR /);
    expect(await say(c, 'NOOP')).toBe('-ERR Unknown command or not allowed before login.');
    expect(await c.readLine()).toBe('-ERR Too many invalid commands.');
    await c.waitForClose();
  });

  test('an overlong line: -ERR and close', async () => {
    const c = await tlsConnect();
    await c.write(`PASS ${'x'.repeat(2_000)}\r\n`);
    expect(await c.readLine()).toBe('-ERR Input line too long.');
    await c.waitForClose();
  });

  test('USER/PASS towards a backend without SASL PLAIN: the password goes as raw UTF-8; [IN-USE] from a locked mailbox reaches the client', async () => {
    // The first session logs in (PASS with spaces and 8-bit bytes) and holds the POP3 lock.
    const first = await tlsConnect();
    expect(await say(first, `USER ${FRANK.name}`)).toBe('+OK Send PASS.');
    expect(await say(first, `PASS ${FRANK.password}`)).toBe('+OK Logged in.');
    expect(await say(first, 'STAT')).toBe('+OK 0 0');
    const firstLogin = await mf.waitForLog(new RegExp(`"user":"${FRANK.name}".*"msg":"login"`));
    expect(firstLogin).toContain('"state":"capa+xclient+user+pass/pass"');

    // A second one waits for the lock in Dovecot (~10 s), then gets [IN-USE].
    const second = await tlsConnect();
    expect(await say(second, `USER ${FRANK.name}`)).toBe('+OK Send PASS.');
    await second.write(`PASS ${FRANK.password}\r\n`);
    // A temporary failure the client can name (RFC 2449 §8): the mailbox is locked.
    expect(await second.readLine(20_000)).toBe('-ERR [IN-USE] Mailbox is in use by another session, please try again later.');
    const failed = await mf.waitForLog(new RegExp(`"user":"${FRANK.name}".*"msg":"login failed"`));
    expect(failed).toContain('"kind":"remote"');
    expect(failed).toContain('[IN-USE] Mailbox is locked by another POP3 session.');
    await second.close();
    expect(await say(first, 'QUIT')).toMatch(/^\+OK/);
    await first.close();
  }, 40_000);

  test('passwords never reach mailfront’s log', async () => {
    const log = mf.readLog();
    expect(log).toContain('"proto":"pop3"');
    for (const pw of SECRETS) {
      expect(log).not.toContain(pw);
      expect(log).not.toContain(b64(pw).slice(0, 8));
    }
  });
});
