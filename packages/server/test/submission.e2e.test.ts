/**
 * SMTP submission end to end: real clients (nodemailer, Python's smtplib, a
 * raw socket) → mailfront → a real Dovecot 2.3 submission service → the
 * testkit's sink, where each message is compared with what the client sent.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createTransport } from 'nodemailer';
import { freePort, rawConnect, runPython, startDovecot, startSmtpSink, type Dovecot, type RawClient, type SinkMessage, type SmtpSink } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const ALICE = { name: 'alice@example.org', password: 'alice-pw-ü1' }; // trusted backend, STARTTLS towards it
const BOB = { name: 'bob@example.org', password: 'bob "quoted" pw\\' }; // untrusted backend, plaintext (smtplib's login takes ASCII only)
const CAROL = { name: 'carol@example.org', password: 'carol-pw' }; // master login
const DAVE = { name: 'dave@example.org', password: 'dave-pw' }; // backend down
const MASTER = { name: 'proxy-master', password: 'master-secret' };
const EXTENSIONS = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE', 'CHUNKING'];
/** Dovecot 2.3's default submission_max_mail_size (40 MiB), as its EHLO after AUTH says. */
const DOVECOT_SIZE = 41943040;
/** Clients connect from here; mailfront talks to Dovecot from 127.0.0.1. Only XCLIENT can tell Dovecot. */
const CLIENT_IP = '127.0.0.2';

let sink: SmtpSink;
let dovecot: Dovecot;
let mf: MailfrontUnderTest;
let caFile: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  dovecot = await startDovecot({
    users: [ALICE, BOB, CAROL, DAVE],
    masterUser: MASTER,
    protocols: ['imap', 'submission'],
    submissionRelay: { host: '127.0.0.1', port: sink.port },
  });
  const deadPort = await freePort();
  const sub = (port: number) => ({ imap: null, pop3: null, submission: port });
  mf = await startMailfront({
    backends: [
      { name: 'trusted', host: '127.0.0.1', ports: sub(dovecot.ports.submission!), trusted: true, tls: 'starttls', caFile: dovecot.caFile },
      { name: 'untrusted', host: '127.0.0.1', ports: sub(dovecot.ports.submission!) },
      { name: 'master', host: '127.0.0.1', ports: sub(dovecot.ports.submission!), login: 'master', masterUser: MASTER.name, masterPassword: MASTER.password },
      { name: 'down', host: '127.0.0.1', ports: sub(deadPort) },
    ],
    users: [
      { ...ALICE, backend: 'trusted' },
      { ...BOB, backend: 'untrusted' },
      { ...CAROL, backend: 'master' },
      { ...DAVE, backend: 'down' },
    ],
    config: {
      listeners: [
        { protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls' },
        { protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'implicit' },
      ],
      submission: { extensions: EXTENSIONS, maxMessageBytes: DOVECOT_SIZE },
    },
  });
  caFile = `${mf.dir.path}/mf-ca.pem`;
  fs.writeFileSync(caFile, mf.certPem);
}, 60_000);

afterAll(async () => {
  await mf?.stop();
  await dovecot?.stop();
  await sink?.close();
});

const starttlsPort = () => mf.port('submission', 'starttls');
const implicitPort = () => mf.port('submission', 'implicit');
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function message(subject: string, body: string | Buffer, extraHeaders = ''): Buffer {
  return Buffer.concat([
    Buffer.from(`From: alice@example.org\r\nTo: rcpt@example.net\r\nSubject: ${subject}\r\nMessage-ID: <${sha(subject).slice(0, 16)}@example.org>\r\n${extraHeaders}\r\n`),
    typeof body === 'string' ? Buffer.from(body) : body,
  ]);
}

/** The message as the sink got it: Dovecot adds its Received header on top, the rest must be ours, byte for byte. */
function split(m: SinkMessage): { received: string; rest: Buffer } {
  const text = m.raw.toString('latin1');
  const match = /^Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n/.exec(text);
  if (!match) throw new Error(`no Received header on top: ${JSON.stringify(text.slice(0, 200))}`);
  return { received: match[0], rest: m.raw.subarray(Buffer.byteLength(match[0], 'latin1')) };
}

/** The sink's message with this Subject (they may arrive in any order across tests). */
async function arrived(subject: string, timeoutMs = 20_000): Promise<SinkMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = sink.messages.find((x) => x.raw.includes(Buffer.from(`Subject: ${subject}\r\n`)));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no message "${subject}" at the sink`);
    await sink.waitForMessages(sink.messages.length + 1, Math.max(1, deadline - Date.now())).catch(() => undefined);
  }
}

function transport(opts: { secure: boolean; user: { name: string; password: string }; method?: 'PLAIN' | 'LOGIN'; name?: string }) {
  return createTransport({
    host: '127.0.0.1',
    port: opts.secure ? implicitPort() : starttlsPort(),
    secure: opts.secure,
    requireTLS: !opts.secure,
    localAddress: CLIENT_IP,
    name: opts.name ?? 'client.example.net',
    auth: { user: opts.user.name, pass: opts.user.password },
    authMethod: opts.method ?? 'PLAIN',
    tls: { ca: mf.certPem, servername: 'localhost' },
  });
}

/** Lines of one SMTP reply (up to the line with a space after the code). */
async function reply(c: RawClient, timeoutMs?: number): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const l = await c.readLine(timeoutMs);
    lines.push(l);
    if (!/^\d{3}-/.test(l)) return lines;
  }
}
async function cmd(c: RawClient, line: string): Promise<string[]> {
  await c.write(`${line}\r\n`);
  return reply(c);
}
async function tlsClient(): Promise<RawClient> {
  const c = await rawConnect({ port: implicitPort(), tls: true, ca: mf.certPem, servername: 'localhost' });
  expect(await reply(c)).toEqual(['220 localhost ESMTP mailfront']);
  return c;
}
const plainIr = (u: { name: string; password: string }, authzid = '') => Buffer.from(`${authzid}\0${u.name}\0${u.password}`, 'utf8').toString('base64');

describe('submission through mailfront to Dovecot', () => {
  test('EHLO before and after STARTTLS: configured extensions only; AUTH only inside TLS', async () => {
    const c = await rawConnect({ port: starttlsPort() });
    expect(await reply(c)).toEqual(['220 localhost ESMTP mailfront']);
    const before = await cmd(c, 'EHLO client.example.net');
    expect(before).toEqual(['250-localhost', '250-PIPELINING', '250-8BITMIME', '250-ENHANCEDSTATUSCODES', `250-SIZE ${DOVECOT_SIZE}`, '250-CHUNKING', '250 STARTTLS']);
    expect(await cmd(c, `AUTH PLAIN ${plainIr(ALICE)}`)).toEqual(['538 5.7.11 Encryption required for requested authentication mechanism']);
    expect(await cmd(c, 'STARTTLS')).toEqual(['220 2.0.0 Ready to start TLS']);
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    const after = await cmd(c, 'EHLO client.example.net');
    expect(after).toEqual(['250-localhost', '250-PIPELINING', '250-8BITMIME', '250-ENHANCEDSTATUSCODES', `250-SIZE ${DOVECOT_SIZE}`, '250-CHUNKING', '250 AUTH PLAIN LOGIN']);
    // Never offered: what Dovecot has but a relay cannot pass on, or what it lacks.
    expect(after.join(' ')).not.toMatch(/SMTPUTF8|BURL|XCLIENT|STARTTLS/);
    await cmd(c, 'QUIT');
    await c.close();
  });

  test('nodemailer: STARTTLS + AUTH PLAIN; the sink gets the body byte for byte, from the user, XCLIENT in Received', async () => {
    const raw = message('nodemailer starttls plain', 'Hello over 587.\r\n.a line starting with a dot\r\n');
    const info = await transport({ secure: false, user: ALICE }).sendMail({ envelope: { from: ALICE.name, to: ['rcpt@example.net'] }, raw });
    expect(info.response).toMatch(/^250 /);
    const m = await arrived('nodemailer starttls plain');
    const { received, rest } = split(m);
    expect(rest.equals(raw)).toBe(true);
    expect(m.mailFrom.address).toBe(ALICE.name);
    expect(m.rcptTo).toEqual(['rcpt@example.net']);
    // The client's own EHLO name and address, though Dovecot only ever saw mailfront at 127.0.0.1.
    expect(received).toMatch(/^Received: from client\.example\.net \(\[127\.0\.0\.2\]\)\r\n\tby localhost with ESMTPSA/);
    expect(m.session.xclient).toMatchObject({ ADDR: CLIENT_IP, LOGIN: ALICE.name, HELO: 'client.example.net' });
  });

  test('nodemailer: implicit TLS (465) + AUTH LOGIN', async () => {
    const raw = message('nodemailer implicit login', 'Hello over 465.\r\n');
    await transport({ secure: true, user: ALICE, method: 'LOGIN' }).sendMail({ envelope: { from: ALICE.name, to: ['x@example.net', 'y@example.net'] }, raw });
    const m = await arrived('nodemailer implicit login');
    expect(split(m).rest.equals(raw)).toBe(true);
    expect(m.rcptTo).toEqual(['x@example.net', 'y@example.net']);
  });

  test("Python's smtplib: STARTTLS + login (PLAIN), and SMTP_SSL + AUTH LOGIN", async () => {
    const script = `
import smtplib, ssl, sys
port, tls_port, ca, user, pw, ip = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names localhost; we connect to 127.0.0.1
msg = lambda s: ('From: %s\\r\\nTo: r@example.net\\r\\nSubject: %s\\r\\n\\r\\nfrom python\\r\\n' % (user, s)).encode()
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.example.net', source_address=(ip, 0))
s.ehlo()
assert not s.has_extn('auth'), s.esmtp_features
s.starttls(context=ctx)
s.ehlo()
assert s.has_extn('auth') and 'PLAIN' in s.esmtp_features['auth'], s.esmtp_features
s.login(user, pw)
print('sent1', s.sendmail(user, ['r@example.net'], msg('python starttls')))
s.quit()
t = smtplib.SMTP_SSL('127.0.0.1', tls_port, local_hostname='py.example.net', context=ctx, source_address=(ip, 0))
t.ehlo()
t.user, t.password = user, pw
code, resp = t.auth('LOGIN', t.auth_login, initial_response_ok=False)
print('login', code)
print('sent2', t.sendmail(user, ['r@example.net'], msg('python ssl login')))
t.quit()
`;
    const r = await runPython(script, [String(starttlsPort()), String(implicitPort()), caFile, BOB.name, BOB.password, CLIENT_IP]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('sent1 {}');
    expect(r.stdout).toContain('login 235');
    expect(r.stdout).toContain('sent2 {}');
    expect(r.code).toBe(0);
    for (const subject of ['python starttls', 'python ssl login']) {
      const m = await arrived(subject);
      expect(split(m).rest.toString()).toBe(`From: ${BOB.name}\r\nTo: r@example.net\r\nSubject: ${subject}\r\n\r\nfrom python\r\n`);
      expect(m.mailFrom.address).toBe(BOB.name);
      // Untrusted backend: no XCLIENT, so Dovecot saw mailfront's own EHLO and address.
      expect(split(m).received).toMatch(/^Received: from localhost \(\[127\.0\.0\.1\]\)/);
    }
  });

  test('a 20 MB message arrives intact', async () => {
    const line = Buffer.from(`${'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(1)}.\r\n`);
    const body = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < body.length; i += line.length) line.copy(body, i);
    body.write('\r\n', body.length - 2);
    const raw = message('twenty megabytes', body);
    await transport({ secure: true, user: ALICE }).sendMail({ envelope: { from: ALICE.name, to: ['big@example.net'] }, raw });
    const m = await arrived('twenty megabytes', 60_000);
    expect(sha(split(m).rest)).toBe(sha(raw));
  }, 90_000);

  test('pipelining: AUTH PLAIN, MAIL, RCPT, DATA in one packet; the pipelined commands reach the backend first', async () => {
    const c = await tlsClient();
    await cmd(c, 'EHLO pipe.example.net');
    await c.write(`AUTH PLAIN ${plainIr(ALICE)}\r\nMAIL FROM:<${ALICE.name}>\r\nRCPT TO:<pipe@example.net>\r\nDATA\r\n`);
    expect(await reply(c)).toEqual(['235 2.7.0 Authentication successful']);
    expect((await reply(c))[0]).toMatch(/^250 /);
    expect((await reply(c))[0]).toMatch(/^250 /);
    expect((await reply(c))[0]).toMatch(/^354 /);
    const raw = message('pipelined', 'sent in one packet with AUTH\r\n');
    await c.write(Buffer.concat([raw, Buffer.from('.\r\nQUIT\r\n')]));
    expect((await reply(c))[0]).toMatch(/^250 /);
    expect((await reply(c))[0]).toMatch(/^221 /);
    expect(split(await arrived('pipelined')).rest.equals(raw)).toBe(true);
    await c.close();
  });

  test('8BITMIME and SIZE: BODY=8BITMIME with 8-bit bytes, SIZE= declared; both pass', async () => {
    const body = Buffer.from('Grüße, 日本語, \u00ff\r\n', 'utf8');
    const raw = message('eight bit', body, 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n');
    const c = await tlsClient();
    await cmd(c, 'EHLO ext.example.net');
    expect(await cmd(c, `AUTH PLAIN ${plainIr(ALICE)}`)).toEqual(['235 2.7.0 Authentication successful']);
    expect((await cmd(c, `MAIL FROM:<${ALICE.name}> BODY=8BITMIME SIZE=${raw.length}`))[0]).toMatch(/^250 /);
    expect((await cmd(c, 'RCPT TO:<ext@example.net>'))[0]).toMatch(/^250 /);
    expect((await cmd(c, 'DATA'))[0]).toMatch(/^354 /);
    await c.write(Buffer.concat([raw, Buffer.from('.\r\n')]));
    expect((await reply(c))[0]).toMatch(/^250 /);
    // SIZE is the backend's: a declared size over it is refused by the backend itself.
    expect((await cmd(c, `MAIL FROM:<${ALICE.name}> SIZE=${DOVECOT_SIZE + 1}`))[0]).toMatch(/^552 /);
    await cmd(c, 'QUIT');
    await c.close();
    const m = await arrived('eight bit');
    expect(split(m).rest.equals(raw)).toBe(true);
    expect(m.mailFrom.args).toMatchObject({ BODY: '8BITMIME' });
  });

  test('CHUNKING: a message sent with BDAT in three chunks arrives intact', async () => {
    const raw = message('chunked', 'first part\r\n.not stuffed in BDAT\r\nlast part\r\n');
    const parts = [raw.subarray(0, 40), raw.subarray(40, 90), raw.subarray(90)];
    const c = await tlsClient();
    await cmd(c, 'EHLO bdat.example.net');
    expect(await cmd(c, `AUTH PLAIN ${plainIr(ALICE)}`)).toEqual(['235 2.7.0 Authentication successful']);
    expect((await cmd(c, `MAIL FROM:<${ALICE.name}>`))[0]).toMatch(/^250 /);
    expect((await cmd(c, 'RCPT TO:<bdat@example.net>'))[0]).toMatch(/^250 /);
    for (let i = 0; i < parts.length; i++) {
      await c.write(Buffer.concat([Buffer.from(`BDAT ${parts[i]!.length}${i === parts.length - 1 ? ' LAST' : ''}\r\n`), parts[i]!]));
      expect((await reply(c))[0]).toMatch(/^250 /);
    }
    await cmd(c, 'QUIT');
    await c.close();
    expect(split(await arrived('chunked')).rest.equals(raw)).toBe(true);
  });

  test('master login: the message is the user’s, sent through a master-user login', async () => {
    const raw = message('via master', 'master mode\r\n');
    await transport({ secure: true, user: CAROL }).sendMail({ envelope: { from: CAROL.name, to: ['m@example.net'] }, raw });
    const m = await arrived('via master');
    expect(split(m).rest.equals(raw)).toBe(true);
    expect(m.session.xclient['LOGIN']).toBe(CAROL.name);
  });

  test('wrong password and unknown user: the same 535, after the failure delay', async () => {
    const answers: string[][] = [];
    for (const u of [{ name: ALICE.name, password: 'wrong' }, { name: 'nobody@example.org', password: 'whatever' }]) {
      const c = await tlsClient();
      await cmd(c, 'EHLO c.example.net');
      const t0 = Date.now();
      answers.push(await cmd(c, `AUTH PLAIN ${plainIr(u)}`));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(200 - 5);
      await c.close();
    }
    expect(answers[0]).toEqual(['535 5.7.8 Authentication credentials invalid']);
    expect(answers[1]).toEqual(answers[0]);
  });

  test('MAIL before AUTH: 530; before EHLO: 503', async () => {
    const c = await tlsClient();
    expect(await cmd(c, `MAIL FROM:<${ALICE.name}>`)).toEqual(['503 5.5.1 Send EHLO first']);
    await cmd(c, 'EHLO c.example.net');
    expect(await cmd(c, `MAIL FROM:<${ALICE.name}>`)).toEqual(['530 5.7.0 Authentication required']);
    expect(await cmd(c, 'RCPT TO:<x@example.net>')).toEqual(['530 5.7.0 Authentication required']);
    expect(await cmd(c, 'XCLIENT ADDR=192.0.2.1')).toEqual(['500 5.5.1 Unknown command']);
    expect(await cmd(c, 'QUIT')).toEqual(['221 2.0.0 Bye']);
    await c.waitForClose();
  });

  test('STARTTLS and EHLO in one packet: the injected EHLO is never answered, the EHLO is forgotten', async () => {
    const c = await rawConnect({ port: starttlsPort() });
    await reply(c);
    await cmd(c, 'EHLO before.example.net');
    await c.write('STARTTLS\r\nEHLO injected.example.net\r\n');
    expect(await reply(c)).toEqual(['220 2.0.0 Ready to start TLS']);
    // startTls fails if any plaintext byte followed the 220.
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    // Inside TLS nothing answers the injected EHLO, and it did not count as one: MAIL wants EHLO first.
    expect(await cmd(c, `MAIL FROM:<${ALICE.name}>`)).toEqual(['503 5.5.1 Send EHLO first']);
    expect((await cmd(c, 'EHLO after.example.net')).pop()).toBe('250 AUTH PLAIN LOGIN');
    await c.close();
  });

  test('backend down: 454, and the session stays usable', async () => {
    const c = await tlsClient();
    await cmd(c, 'EHLO c.example.net');
    expect(await cmd(c, `AUTH PLAIN ${plainIr(DAVE)}`)).toEqual(['454 4.7.0 Temporary authentication failure']);
    expect(await cmd(c, 'NOOP')).toEqual(['250 2.0.0 OK']);
    await c.close();
  });

  test("trusted backend: Dovecot logs the client's own address and port, and mailfront's session id", async () => {
    const c = await rawConnect({ port: implicitPort(), tls: true, ca: mf.certPem, servername: 'localhost' });
    await reply(c);
    const clientPort = c.socket.localPort;
    await cmd(c, 'EHLO c.example.net');
    expect(await cmd(c, `AUTH PLAIN ${plainIr(ALICE)}`)).toEqual(['235 2.7.0 Authentication successful']);
    await cmd(c, 'QUIT');
    await c.close();
    const line = await dovecot.waitForLog(new RegExp(`submission-login: Info: Login: user=<${ALICE.name}>.*rport=${clientPort},`));
    expect(line).toContain('rip=127.0.0.1'); // this client came from 127.0.0.1: rport is what only XCLIENT can tell
    // XCLIENT SESSION: one id for the session in mailfront's log and in Dovecot's.
    const session = /session=<([^>]+)>/.exec(line)![1]!;
    const login = JSON.parse(await mf.waitForLog(new RegExp(`"session":"${session}".*"msg":"login"`))) as { user: string; state: string };
    expect(login.user).toBe(ALICE.name);
    expect(login.state).toBe('ehlo+starttls+ehlo+xclient+ehlo+auth+ehlo/verify');
  });

  test('an extension the backend lacks is caught at login: 454 to the client, the reason in the log', async () => {
    const other = await startMailfront({
      backends: [{ name: 'dovecot', host: '127.0.0.1', ports: { imap: null, pop3: null, submission: dovecot.ports.submission! } }],
      users: [{ ...BOB, backend: 'dovecot' }],
      config: {
        listeners: [{ protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'implicit' }],
        submission: { extensions: ['PIPELINING', 'SMTPUTF8'] },
      },
    });
    try {
      const c = await rawConnect({ port: other.port('submission', 'implicit'), tls: true, ca: other.certPem, servername: 'localhost' });
      await reply(c);
      expect((await cmd(c, 'EHLO c.example.net')).join('\n')).toContain('250-SMTPUTF8');
      expect(await cmd(c, `AUTH PLAIN ${plainIr(BOB)}`)).toEqual(['454 4.7.0 Temporary authentication failure']);
      await c.close();
      const line = await other.waitForLog(/"msg":"login failed"/);
      expect(line).toContain('backend does not offer what clients are told (submission.extensions): SMTPUTF8');
      // The start-up check had said so already, before any user tried.
      const atStart = JSON.parse(await other.waitForLog(/"msg":"submission backend lacks what clients are told/)) as { level: string; missing: string[] };
      expect(atStart).toMatchObject({ level: 'error', missing: ['SMTPUTF8'] });
    } finally {
      await other.stop();
    }
  });

  test('at start, every submission backend was greeted and checked against submission.extensions', async () => {
    for (const name of ['trusted', 'untrusted', 'master']) {
      await mf.waitForLog(new RegExp(`"backend":"${name}".*"msg":"submission backend offers every advertised extension"`));
    }
    expect(await mf.waitForLog(/"backend":"down".*"msg":"submission backend not checked"/)).toContain('connect');
  });

  test('passwords never reach mailfront’s log', () => {
    const log = mf.readLog();
    for (const u of [ALICE, BOB, CAROL, DAVE, MASTER]) expect(log).not.toContain(u.password);
  });
});
