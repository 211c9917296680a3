/**
 * The security suite of issue 5: one `describe` per rule, one test per
 * protocol (IMAP, POP3, submission) where the rule applies, against one real
 * Dovecot (imap, pop3 and submission, relaying to the testkit's sink) behind
 * one mailfront, plus scripted fake backends for what a real Dovecot will not
 * do (inject after STARTTLS, strip it, greet with PREAUTH, refuse a login and
 * then take anything).
 *
 * Where a rule does not apply to a protocol, its describe says why.
 *
 * Addresses: the suite's clients come from 127.0.0.1 unless a test needs an
 * address of its own (penalties, spoofing); 127.0.0.1 is exempt from
 * penalties so that the deliberate failures elsewhere do not lock the suite
 * out. The rule-13 check at the end reads the whole log, so it runs last.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { hashPassword } from '@mailfront/auth';
import { encodeProxyV2 } from '@mailfront/proxy-core';
import { generateCa } from '@mailfront/server';
import { makeTempDir, rawConnect, startDovecot, startSmtpSink, type Dovecot, type RawClient, type SmtpSink, type TempDir } from '@mailfront/testkit';
import { startFakeBackend, type FakeBackend, type FakeScript } from './fake-backend';
import { startMailfront, type MailfrontUnderTest } from './harness';
import { Conn, flood, loopback } from './security-helpers';

type Proto = 'imap' | 'pop3' | 'submission';
const PROTOS: Proto[] = ['imap', 'pop3', 'submission'];
const LABEL: Record<Proto, string> = { imap: 'IMAP', pop3: 'POP3', submission: 'submission' };
const each = PROTOS.map((p) => [LABEL[p], p] as const);

// ---------------------------------------------------------------------------
// Users: every one exists in mailfront's store and in Dovecot, with the same
// password; `backend` is where mailfront places it.

interface User {
  name: string;
  password: string;
  backend: string;
}
const USERS: User[] = [];
/** Passwords used on purpose as wrong ones: they must not be logged either. */
const WRONG: string[] = [];

function user(id: string, backend = 'dovecot'): User {
  // Atom-safe (rule 2 sends them unquoted), and unlike anything else in a log.
  const u = { name: `${id}@example.org`, password: `pw-${id}-Qz7`, backend };
  USERS.push(u);
  return u;
}
const perProto = (id: string, backend = 'dovecot'): Record<Proto, User> => ({
  imap: user(`${id}-imap`, backend),
  pop3: user(`${id}-pop3`, backend),
  submission: user(`${id}-sub`, backend),
});
function wrong(id: string): string {
  const pw = `wrong-${id}-Jk4`;
  WRONG.push(pw);
  return pw;
}

// ---------------------------------------------------------------------------
// Listeners: four per protocol, found by position in mf.server.listeners.

type ListenerKind = 'starttls' | 'implicit' | 'plaintext-auth' | 'proxy';
const KINDS: ListenerKind[] = ['starttls', 'implicit', 'plaintext-auth', 'proxy'];
const LISTENERS = PROTOS.flatMap((protocol) => [
  { protocol, host: '127.0.0.1', port: 0, tls: 'starttls' },
  { protocol, host: '127.0.0.1', port: 0, tls: 'implicit' },
  // Rule 3's exception: a STARTTLS port that takes credentials in plaintext.
  { protocol, host: '127.0.0.1', port: 0, tls: 'starttls', allowPlaintextAuth: true },
  // Rule 12: PROXY protocol from 127.0.0.9 only; everyone else is a direct, untrusted client.
  { protocol, host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true, proxyProtocol: true },
]);
const BALANCER = loopback(9);
/** Failures from here never count (rule 11's exemption); the rest of the suite's clients come from 127.0.0.1, exempt too. */
const PENALTY_TRUSTED = loopback(3);
const MAX_BAD_COMMANDS = 5;
const PENALTY_THRESHOLD = 2;

let dovecot: Dovecot;
let sink: SmtpSink;
let mf: MailfrontUnderTest;
let tmp: TempDir;
const fakes: Record<string, FakeBackend> = {};

function port(p: Proto, kind: ListenerKind): number {
  const i = PROTOS.indexOf(p) * KINDS.length + KINDS.indexOf(kind);
  const l = mf.server.listeners[i]!;
  const want = LISTENERS[i]!;
  if (l.protocol !== p || l.tls !== want.tls) throw new Error(`listener ${i} is ${l.protocol}/${l.tls}, not ${p}/${want.tls}`);
  return l.port;
}

// ---------------------------------------------------------------------------
// Fake backends: one per misbehaviour and protocol. A backend row points each
// protocol's port at the fake of that protocol.

const IMAP_CAPS_TLS = '* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] fake ready\r\n';
const POP3_CAPA_TLS = '+OK\r\nSTLS\r\nSASL PLAIN\r\nUSER\r\nPIPELINING\r\n.\r\n';
const SMTP_EHLO_TLS = '250-fake.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n';
/** What a real submission server offers after AUTH, so that mailfront's check of submission.extensions passes. */
const SMTP_EHLO_FULL = '250-fake.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n250 AUTH PLAIN\r\n';

const FAKES: Record<string, Partial<Record<Proto, FakeScript>>> = {
  // Rule 4: the STARTTLS reply and more plaintext in one write (response injection).
  inject: {
    imap: { greeting: IMAP_CAPS_TLS, onLine: (l) => (l === 'S STARTTLS' ? 'S OK Begin TLS negotiation now.\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n' : null) },
    pop3: { greeting: '+OK fake ready\r\n', onLine: (l) => (l === 'CAPA' ? POP3_CAPA_TLS : l === 'STLS' ? '+OK Begin TLS negotiation\r\n+OK injected\r\n' : null) },
    submission: {
      greeting: '220 fake.example ESMTP\r\n',
      onLine: (l) => (l.startsWith('EHLO') ? SMTP_EHLO_TLS : l === 'STARTTLS' ? '220 2.0.0 Ready to start TLS\r\n250 injected\r\n' : null),
    },
  },
  // Rule 5: configured for STARTTLS, not offered (the IMAP one says so in its CAPABILITY answer, not its greeting).
  strip: {
    imap: { greeting: '* OK fake ready\r\n', onLine: (l) => (l === 'C CAPABILITY' ? '* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\nC OK done\r\n' : null) },
    pop3: { greeting: '+OK fake ready\r\n', onLine: (l) => (l === 'CAPA' ? '+OK\r\nSASL PLAIN\r\nUSER\r\nPIPELINING\r\n.\r\n' : null) },
    submission: { greeting: '220 fake.example ESMTP\r\n', onLine: (l) => (l.startsWith('EHLO') ? SMTP_EHLO_FULL : null) },
  },
  // Rule 5: offered, then refused.
  refuse: {
    imap: { greeting: IMAP_CAPS_TLS, onLine: (l) => (l === 'S STARTTLS' ? 'S NO not today\r\n' : null) },
    pop3: { greeting: '+OK fake ready\r\n', onLine: (l) => (l === 'CAPA' ? POP3_CAPA_TLS : l === 'STLS' ? '-ERR not today\r\n' : null) },
    submission: {
      greeting: '220 fake.example ESMTP\r\n',
      onLine: (l) => (l.startsWith('EHLO') ? SMTP_EHLO_TLS : l === 'STARTTLS' ? '454 4.7.0 TLS not available due to temporary reason\r\n' : null),
    },
  },
  // Rule 5, POP3: an RFC 1939-only server (no CAPA) that would take USER/PASS in clear.
  nocapa: {
    pop3: { greeting: '+OK fake ready\r\n', onLine: (l) => (l === 'CAPA' ? '-ERR unknown command\r\n' : /^(USER|PASS) /.test(l) ? '+OK\r\n' : null) },
  },
  // Rule 6, IMAP: logged in before anyone authenticated.
  preauth: {
    imap: { greeting: '* PREAUTH [CAPABILITY IMAP4rev1] logged in as somebody\r\n', onLine: (l) => `${l.split(' ')[0]} OK done\r\n` },
  },
  // Rule 6: refuses our login, then would take anything (an open session, an open relay).
  refuselogin: {
    imap: {
      greeting: '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] fake ready\r\n',
      onLine: (l) => (l.startsWith('L ') ? 'L NO [AUTHENTICATIONFAILED] Authentication failed.\r\n' : `${l.split(' ')[0]} OK done\r\n`),
    },
    pop3: {
      greeting: '+OK fake ready\r\n',
      onLine: (l) => (l === 'CAPA' ? '+OK\r\nSASL PLAIN\r\nUSER\r\nPIPELINING\r\n.\r\n' : l.startsWith('AUTH ') ? '-ERR [AUTH] Authentication failed.\r\n' : '+OK\r\n'),
    },
    submission: {
      greeting: '220 fake.example ESMTP\r\n',
      onLine: (l) => {
        const verb = l.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') return SMTP_EHLO_FULL;
        if (verb === 'AUTH') return '535 5.7.8 Authentication credentials invalid\r\n';
        if (verb === 'DATA') return '354 go ahead\r\n';
        return verb === 'QUIT' ? '221 bye\r\n' : '250 2.0.0 Ok\r\n';
      },
    },
  },
};
const fake = (scenario: string, p: Proto): FakeBackend => fakes[`${scenario}/${p}`]!;

// Users per rule.
const R1 = perProto('r1-injected');
const R2 = perProto('r2-fragment');
const R3 = perProto('r3-plain');
const R3_ALLOWED = perProto('r3-allowed');
const R4 = perProto('r4-inject', 'inject');
const R5_STRIP = perProto('r5-strip', 'strip');
const R5_REFUSE = perProto('r5-refuse', 'refuse');
const R5_NOCAPA = user('r5-nocapa-pop3', 'nocapa');
const R6_PREAUTH = user('r6-preauth-imap', 'preauth');
const R6_REFUSED = perProto('r6-refused', 'refuselogin');
const R7_WRONG_IMPLICIT = perProto('r7-wrong-implicit', 'wrongca-implicit');
const R7_WRONG_STARTTLS = perProto('r7-wrong-starttls', 'wrongca-starttls');
const R7_GOOD_IMPLICIT = perProto('r7-good-implicit', 'goodca-implicit');
const R7_GOOD_STARTTLS = perProto('r7-good-starttls', 'goodca-starttls');
const R11_ADDR_OK = perProto('r11-addr-ok');
const R11_ADDR_BAD = perProto('r11-addr-bad');
const R11_USER = perProto('r11-user');
const R11_USER_OTHER = perProto('r11-user-other');
const R11_TRUSTED = perProto('r11-trusted');
const R12_TRUSTED = perProto('r12-trusted', 'dovecot-trusted');
const R12_UNTRUSTED = perProto('r12-untrusted');
/** Logged in to Dovecot directly, never through mailfront. */
const R12_CONTROL = perProto('r12-control');

beforeAll(async () => {
  tmp = await makeTempDir('mailfront-security-');
  const wrongCa = path.join(tmp.path, 'wrong-ca.pem');
  // A CA that signed nothing Dovecot presents.
  fs.writeFileSync(wrongCa, generateCa({ commonName: 'not the backend CA' }).cert);
  sink = await startSmtpSink();
  const fakeStarts = Object.entries(FAKES).flatMap(([scenario, byProto]) =>
    Object.entries(byProto).map(async ([p, script]) => {
      fakes[`${scenario}/${p}`] = await startFakeBackend(script);
    }),
  );
  [dovecot] = await Promise.all([
    startDovecot({ users: USERS, protocols: ['imap', 'pop3', 'submission'], submissionRelay: { host: '127.0.0.1', port: sink.port } }),
    ...fakeStarts,
  ]);
  const d = dovecot.ports;
  const plainPorts = { imap: d.imap, pop3: d.pop3!, submission: d.submission! };
  const tlsPorts = { imap: d.imaps, pop3: d.pop3s!, submission: d.submissions! };
  const fakePorts = (scenario: string) => ({
    imap: fakes[`${scenario}/imap`]?.port ?? null,
    pop3: fakes[`${scenario}/pop3`]?.port ?? null,
    submission: fakes[`${scenario}/submission`]?.port ?? null,
  });
  mf = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: plainPorts },
      // Trusted with the client's address: ID for IMAP, XCLIENT for POP3 and submission.
      { name: 'dovecot-trusted', host: '127.0.0.1', ports: plainPorts, trusted: true },
      { name: 'wrongca-implicit', host: '127.0.0.1', ports: tlsPorts, tls: 'implicit', caFile: wrongCa },
      { name: 'wrongca-starttls', host: '127.0.0.1', ports: plainPorts, tls: 'starttls', caFile: wrongCa },
      { name: 'goodca-implicit', host: '127.0.0.1', ports: tlsPorts, tls: 'implicit', caFile: dovecot.caFile },
      { name: 'goodca-starttls', host: '127.0.0.1', ports: plainPorts, tls: 'starttls', caFile: dovecot.caFile },
      ...['inject', 'strip', 'refuse', 'nocapa'].map((s) => ({ name: s, host: '127.0.0.1', ports: fakePorts(s), tls: 'starttls' as const })),
      ...['preauth', 'refuselogin'].map((s) => ({ name: s, host: '127.0.0.1', ports: fakePorts(s) })),
    ],
    users: [],
    config: {
      listeners: LISTENERS,
      auth: { failureDelayMs: 20 },
      limits: { maxBadCommands: MAX_BAD_COMMANDS, maxAuthAttempts: 3, backendLoginTimeoutMs: 3_000 },
      penalties: { threshold: PENALTY_THRESHOLD, baseMs: 60_000, trustedNetworks: ['127.0.0.1/32', `${PENALTY_TRUSTED}/32`] },
      proxyProtocol: { trustedNetworks: [`${BALANCER}/32`], headerTimeoutMs: 1_000 },
    },
  });
  // Cheap hashes: ninety users at the production cost would take seconds to
  // add; what is tested here is who gets in, not how slowly.
  await Promise.all(
    USERS.map(async (u) => {
      await mf.store.addUser(u.name, await hashPassword(u.password, { ln: 4, r: 8, p: 1 }));
      await mf.store.setPlacement(u.name, u.backend, 'assigned');
    }),
  );
}, 60_000);

afterAll(async () => {
  await mf?.stop();
  await Promise.all([dovecot?.stop(), sink?.close(), ...Object.values(fakes).map((f) => f.close())]);
  await tmp?.cleanup();
});

// ---------------------------------------------------------------------------
// Transcripts

/** What the transcript helpers need of a client: testkit's rawConnect and our Conn both have it. */
interface LineIO {
  readLine(timeoutMs?: number): Promise<string>;
  write(data: string | Buffer): Promise<void>;
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const plainIr = (u: { name: string; password: string }): string => b64(`\0${u.name}\0${u.password}`);
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** IMAP: write a command, read through its tagged reply. */
async function imap(c: LineIO, line: string): Promise<string[]> {
  const tag = line.split(' ', 1)[0]!;
  await c.write(`${line}\r\n`);
  return imapUntil(c, tag);
}
async function imapUntil(c: LineIO, tag: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const l = await c.readLine();
    out.push(l);
    if (l.startsWith(`${tag} `)) return out;
  }
}
/** POP3: one command, one status line. */
async function pop3(c: LineIO, line: string): Promise<string> {
  await c.write(`${line}\r\n`);
  return c.readLine();
}
/** POP3: the lines of a multi-line answer up to the lone dot. */
async function pop3List(c: LineIO): Promise<string[]> {
  const out: string[] = [];
  for (let l = await c.readLine(); l !== '.'; l = await c.readLine()) out.push(l);
  return out;
}
/** SMTP: one reply, all its lines. */
async function smtpReply(c: LineIO): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const l = await c.readLine();
    out.push(l);
    if (!/^\d{3}-/.test(l)) return out;
  }
}
async function smtp(c: LineIO, line: string): Promise<string[]> {
  await c.write(`${line}\r\n`);
  return smtpReply(c);
}

/** Connect to a listener and read the greeting (one line for every mailfront greeting). */
async function open(p: Proto, kind: ListenerKind, localAddress?: string): Promise<{ c: Conn; greeting: string }> {
  const c = await Conn.open({ port: port(p, kind), ...(localAddress ? { localAddress } : {}), ...(kind === 'implicit' ? { tls: { ca: mf.certPem } } : {}) });
  return { c, greeting: await c.readLine() };
}

/** testkit's raw client on the STARTTLS port, greeting read: its startTls fails on any plaintext after the STARTTLS reply. */
async function plainRaw(p: Proto): Promise<RawClient> {
  const c = await rawConnect({ port: port(p, 'starttls') });
  await c.readLine();
  return c;
}

/** STARTTLS on a plaintext connection, in each protocol's words. */
const STARTTLS: Record<Proto, { cmd: string; ok: string }> = {
  imap: { cmd: 'a1 STARTTLS', ok: 'a1 OK Begin TLS negotiation now.' },
  pop3: { cmd: 'STLS', ok: '+OK Begin TLS negotiation now.' },
  submission: { cmd: 'STARTTLS', ok: '220 2.0.0 Ready to start TLS' },
};

const TEMPFAIL: Record<Proto, string> = {
  imap: 'a1 NO [UNAVAILABLE] Temporary failure, please try again later.',
  pop3: '-ERR [SYS/TEMP] Temporary failure, please try again later.',
  submission: '454 4.7.0 Temporary authentication failure',
};
const AUTH_FAILED: Record<Proto, string> = {
  imap: 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.',
  pop3: '-ERR [AUTH] Authentication failed.',
  submission: '535 5.7.8 Authentication credentials invalid',
};
const LOGGED_IN: Record<Proto, RegExp> = { imap: /^a1 OK /, pop3: /^\+OK Logged in/, submission: /^235 / };

/**
 * Log in on an open connection where credentials are allowed; the final
 * answer line. IMAP uses LOGIN, POP3 USER/PASS, submission AUTH PLAIN.
 */
async function login(p: Proto, c: Conn, u: { name: string }, password: string): Promise<string> {
  switch (p) {
    case 'imap':
      return (await imap(c, `a1 LOGIN "${u.name}" "${password}"`)).at(-1)!;
    case 'pop3': {
      expect(await pop3(c, `USER ${u.name}`)).toBe('+OK Send PASS.');
      return pop3(c, `PASS ${password}`);
    }
    case 'submission':
      await smtp(c, 'EHLO client.example.net');
      return (await smtp(c, `AUTH PLAIN ${plainIr({ name: u.name, password })}`)).at(-1)!;
  }
}

/** A fresh implicit-TLS connection from `from`, one login; the answer. */
async function loginOnce(p: Proto, u: { name: string }, password: string, from = '127.0.0.1'): Promise<string> {
  const { c } = await open(p, 'implicit', from);
  try {
    return await login(p, c, u, password);
  } finally {
    c.close();
  }
}

/** mailfront's open client connections once they drop to 0, or after `limitMs`. */
async function openConnectionsAfter(limitMs: number): Promise<number> {
  const deadline = Date.now() + limitMs;
  let open = await mf.server.openConnections();
  while (open > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    open = await mf.server.openConnections();
  }
  return open;
}

let barriers = 0;
/** mailfront's log once everything logged before this call is in the file. */
async function mfLog(): Promise<string> {
  const id = `security-barrier-${++barriers}`;
  mf.server.log.info({ barrier: id }, 'test barrier');
  await mf.waitForLog(new RegExp(id));
  return mf.readLog();
}

/** Dovecot's log once a connection made now has been logged (its login processes log through one log process). */
async function dovecotLog(): Promise<string> {
  const c = await Conn.open({ port: dovecot.ports.imap });
  const localPort = c.socket.localPort;
  await c.readLine();
  await c.write('z LOGOUT\r\n');
  await c.waitForClose();
  await dovecot.waitForLog(new RegExp(`rport=${localPort}\\b`));
  return dovecot.readLog();
}

/** No login for `u` was attempted by mailfront, and Dovecot never saw the name. */
async function neverLoggedIn(u: User): Promise<void> {
  const log = await mfLog();
  expect(log.split('\n').filter((l) => l.includes(u.name))).toEqual([]);
  expect((await dovecotLog()).split('\n').filter((l) => l.includes(u.name))).toEqual([]);
}

/** The fake got no credentials: no login command, no password, no SASL payload. */
function noCredentials(f: FakeBackend, u: User): void {
  const got = f.received.join('\n');
  expect(got).not.toMatch(/^\S* ?(LOGIN|AUTHENTICATE|AUTH|USER|PASS)\b/im);
  expect(got).not.toContain(u.password);
  expect(got).not.toContain(plainIr(u));
  expect(got).not.toContain(b64(u.password).slice(0, 8));
}

/** The JSON log lines mailfront wrote about `u`. */
async function mfLinesFor(u: { name: string }): Promise<Array<Record<string, unknown>>> {
  return (await mfLog())
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(`"user":"${u.name}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

// ===========================================================================

describe('1. STARTTLS command injection (CVE-2011-0411): a command pipelined after STARTTLS is never answered inside TLS', () => {
  test('IMAP: a LOGIN in the same packet as STARTTLS is discarded; the first reply in TLS is to the next command', async () => {
    const u = R1.imap;
    const c = await plainRaw('imap');
    await c.write(`a1 STARTTLS\r\na2 LOGIN "${u.name}" "${u.password}"\r\n`);
    expect(await c.readLine()).toBe('a1 OK Begin TLS negotiation now.');
    // startTls throws BufferedPlaintextError if a2 was answered in plaintext.
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    expect(await imap(c, 'a3 NOOP')).toEqual(['a3 OK NOOP completed.']);
    await c.close();
    await neverLoggedIn(u);
  });

  test('POP3: USER and PASS in the same packet as STLS are discarded; the first reply in TLS is to the next command', async () => {
    const u = R1.pop3;
    const c = await plainRaw('pop3');
    await c.write(`STLS\r\nUSER ${u.name}\r\nPASS ${u.password}\r\n`);
    expect(await c.readLine()).toBe('+OK Begin TLS negotiation now.');
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    expect(await pop3(c, 'CAPA')).toBe('+OK Capability list follows.');
    await pop3List(c);
    // Nor was the USER remembered.
    expect(await pop3(c, `PASS ${u.password}`)).toBe('-ERR Send USER first.');
    await c.close();
    await neverLoggedIn(u);
  });

  test('submission: AUTH in the same packet as STARTTLS is discarded; the first reply in TLS is to the next command', async () => {
    const u = R1.submission;
    const c = await plainRaw('submission');
    await smtp(c, 'EHLO client.example.net');
    await c.write(`STARTTLS\r\nAUTH PLAIN ${plainIr(u)}\r\n`);
    expect(await smtpReply(c)).toEqual(['220 2.0.0 Ready to start TLS']);
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    expect(await smtp(c, 'NOOP')).toEqual(['250 2.0.0 OK']);
    await c.close();
    await neverLoggedIn(u);
  });
});

describe('2. A fragment without CRLF sent with STARTTLS never joins a command inside TLS', () => {
  test('IMAP: "b LOG" + STARTTLS, then "IN user pw" in TLS: the first TLS reply is about IN, no login', async () => {
    const u = R2.imap;
    const c = await plainRaw('imap');
    await c.write('a1 STARTTLS\r\nb LOG');
    expect(await c.readLine()).toBe('a1 OK Begin TLS negotiation now.');
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    await c.write(`IN ${u.name} ${u.password}\r\n`);
    // Joined, it would be "b LOGIN user pw" and its answer tagged b.
    expect(await c.readLine()).toBe('IN BAD Command unknown or not allowed before login.');
    await c.close();
    await neverLoggedIn(u);
  });

  test('POP3: "US" + STLS, then "ER user" in TLS: the first TLS reply is about ER, no login', async () => {
    const u = R2.pop3;
    const c = await plainRaw('pop3');
    await c.write('STLS\r\nUS');
    expect(await c.readLine()).toBe('+OK Begin TLS negotiation now.');
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    await c.write(`ER ${u.name}\r\nPASS ${u.password}\r\n`);
    // Joined, it would be "USER user": "+OK Send PASS.", and PASS would log in.
    expect(await c.readLine()).toBe('-ERR Unknown command or not allowed before login.');
    expect(await c.readLine()).toBe('-ERR Send USER first.');
    await c.close();
    await neverLoggedIn(u);
  });

  test('submission: "AU" + STARTTLS, then "TH PLAIN …" in TLS: the first TLS reply is about TH, no login', async () => {
    const u = R2.submission;
    const c = await plainRaw('submission');
    await smtp(c, 'EHLO client.example.net');
    await c.write('STARTTLS\r\nAU');
    expect(await smtpReply(c)).toEqual(['220 2.0.0 Ready to start TLS']);
    await c.startTls({ ca: mf.certPem, servername: 'localhost' });
    await c.write(`TH PLAIN ${plainIr(u)}\r\n`);
    // Joined, it would be AUTH: 503 (no EHLO inside TLS yet) or a login, never 500.
    expect(await smtpReply(c)).toEqual(['500 5.5.1 Unknown command']);
    await c.close();
    await neverLoggedIn(u);
  });
});

describe('3. STARTTLS after TLS is refused; credentials before TLS are refused unless allowPlaintextAuth', () => {
  const refusal: Record<Proto, (c: Conn, tag: string) => Promise<void>> = {
    async imap(c, tag) {
      expect(await imap(c, `${tag} STARTTLS`)).toEqual([`${tag} BAD TLS is already active.`]);
      const caps = (await imap(c, `${tag}c CAPABILITY`))[0]!;
      expect(caps).toContain('AUTH=PLAIN');
      expect(caps).not.toMatch(/STARTTLS|LOGINDISABLED/);
    },
    async pop3(c) {
      expect(await pop3(c, 'STLS')).toBe('-ERR TLS is already active.');
      expect(await pop3(c, 'CAPA')).toBe('+OK Capability list follows.');
      const caps = await pop3List(c);
      expect(caps).toEqual(expect.arrayContaining(['USER', 'SASL PLAIN']));
      expect(caps).not.toContain('STLS');
    },
    async submission(c) {
      expect(await smtp(c, 'STARTTLS')).toEqual(['503 5.5.1 TLS is already active']);
      const ehlo = await smtp(c, 'EHLO client.example.net');
      expect(ehlo).toContain('250 AUTH PLAIN LOGIN');
      expect(ehlo.join('\n')).not.toContain('STARTTLS');
    },
  };

  test.each(each)('%s: STARTTLS inside TLS is refused, after STARTTLS and on the implicit-TLS port', async (_l, p) => {
    const { c } = await open(p, 'starttls');
    await c.write(`${STARTTLS[p].cmd}\r\n`);
    expect(await c.readLine()).toBe(STARTTLS[p].ok);
    await c.startTls({ ca: mf.certPem });
    await refusal[p](c, 'b1');
    c.close();
    const t = await open(p, 'implicit');
    await refusal[p](t.c, 'b2');
    t.c.close();
  });

  test('IMAP: before TLS the capabilities say LOGINDISABLED, and LOGIN, AUTHENTICATE and a LOGIN literal are refused', async () => {
    const u = R3.imap;
    const { c, greeting } = await open('imap', 'starttls');
    expect(greeting).toMatch(/\[CAPABILITY [^\]]*STARTTLS LOGINDISABLED\]/);
    expect(greeting).not.toContain('AUTH=');
    const caps = (await imap(c, 'a0 CAPABILITY'))[0]!;
    expect(caps).toContain('LOGINDISABLED');
    expect(caps).not.toContain('AUTH=');
    const privacy = (tag: string) => `${tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.`;
    expect(await imap(c, `a1 LOGIN "${u.name}" "${u.password}"`)).toEqual([privacy('a1')]);
    expect(await imap(c, `a2 AUTHENTICATE PLAIN ${plainIr(u)}`)).toEqual([privacy('a2')]);
    // A synchronising literal is refused before the client sends the name.
    expect(await imap(c, `a3 LOGIN {${u.name.length}}`)).toEqual([privacy('a3')]);
    c.close();
    await neverLoggedIn(u);
  });

  test('POP3: before TLS CAPA lists neither USER nor SASL, and USER, PASS and AUTH are refused', async () => {
    const u = R3.pop3;
    const { c } = await open('pop3', 'starttls');
    expect(await pop3(c, 'CAPA')).toBe('+OK Capability list follows.');
    const caps = await pop3List(c);
    expect(caps).toContain('STLS');
    expect(caps.filter((x) => /^(USER|SASL)\b/.test(x))).toEqual([]);
    const refused = '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.';
    expect(await pop3(c, `USER ${u.name}`)).toBe(refused);
    expect(await pop3(c, `PASS ${u.password}`)).toBe(refused);
    expect(await pop3(c, `AUTH PLAIN ${plainIr(u)}`)).toBe(refused);
    expect(await pop3(c, 'AUTH PLAIN')).toBe(refused);
    c.close();
    await neverLoggedIn(u);
  });

  test('submission: before TLS EHLO lists no AUTH, and AUTH PLAIN and AUTH LOGIN are refused with 538', async () => {
    const u = R3.submission;
    const { c } = await open('submission', 'starttls');
    const ehlo = await smtp(c, 'EHLO client.example.net');
    expect(ehlo.at(-1)).toBe('250 STARTTLS');
    expect(ehlo.join('\n')).not.toContain('AUTH');
    const refused = ['538 5.7.11 Encryption required for requested authentication mechanism'];
    expect(await smtp(c, `AUTH PLAIN ${plainIr(u)}`)).toEqual(refused);
    expect(await smtp(c, 'AUTH PLAIN')).toEqual(refused);
    expect(await smtp(c, `AUTH LOGIN ${b64(u.name)}`)).toEqual(refused);
    c.close();
    await neverLoggedIn(u);
  });

  test.each(each)('%s: a STARTTLS port with allowPlaintextAuth offers and takes credentials before TLS', async (_l, p) => {
    const u = R3_ALLOWED[p];
    const { c, greeting } = await open(p, 'plaintext-auth');
    if (p === 'imap') {
      expect(greeting).toMatch(/\[CAPABILITY [^\]]*STARTTLS AUTH=PLAIN\]/);
      expect(greeting).not.toContain('LOGINDISABLED');
    }
    if (p === 'pop3') {
      expect(await pop3(c, 'CAPA')).toBe('+OK Capability list follows.');
      expect(await pop3List(c)).toEqual(expect.arrayContaining(['STLS', 'USER', 'SASL PLAIN']));
    }
    if (p === 'submission') {
      expect(await smtp(c, 'EHLO client.example.net')).toEqual(expect.arrayContaining(['250-STARTTLS', '250 AUTH PLAIN LOGIN']));
    }
    expect(await login(p, c, u, u.password)).toMatch(LOGGED_IN[p]);
    c.close();
  });
});

describe('4. Response injection from a backend after its STARTTLS reply', () => {
  const starttlsSent: Record<Proto, string> = { imap: 'S STARTTLS', pop3: 'STLS', submission: 'STARTTLS' };

  test.each(each)('%s: bytes after the backend’s STARTTLS reply fail the login temporarily; the backend gets no credentials', async (_l, p) => {
    const u = R4[p];
    expect(await loginOnce(p, u, u.password)).toBe(TEMPFAIL[p]);
    const f = fake('inject', p);
    // It got as far as STARTTLS, and no further.
    expect(f.received).toContain(starttlsSent[p]);
    noCredentials(f, u);
    const failed = (await mfLinesFor(u)).find((r) => r['msg'] === 'login failed');
    expect(failed).toMatchObject({ kind: 'protocol', reason: 'bytes after the STARTTLS reply' });
  });
});

describe('5. Negotiation stripping: a backend configured for STARTTLS that does not offer it, or refuses it', () => {
  const cases: Array<[string, Proto, User, string, RegExp]> = [
    ['IMAP, STARTTLS not in CAPABILITY', 'imap', R5_STRIP.imap, 'strip', /does not offer STARTTLS/],
    ['POP3, STLS not in CAPA', 'pop3', R5_STRIP.pop3, 'strip', /does not offer STLS/],
    ['POP3, no CAPA at all (RFC 1939 only)', 'pop3', R5_NOCAPA, 'nocapa', /does not offer STLS/],
    ['submission, STARTTLS not in EHLO', 'submission', R5_STRIP.submission, 'strip', /does not offer STARTTLS/],
    ['IMAP, STARTTLS refused', 'imap', R5_REFUSE.imap, 'refuse', /refused STARTTLS/],
    ['POP3, STLS refused', 'pop3', R5_REFUSE.pop3, 'refuse', /refused STLS/],
    ['submission, STARTTLS refused', 'submission', R5_REFUSE.submission, 'refuse', /refused STARTTLS/],
  ];
  test.each(cases)('%s: temporary failure, no credentials', async (_l, p, u, scenario, reason) => {
    expect(await loginOnce(p, u, u.password)).toBe(TEMPFAIL[p]);
    const f = fake(scenario, p);
    expect(f.received.length).toBeGreaterThan(0);
    noCredentials(f, u);
    const failed = (await mfLinesFor(u)).find((r) => r['msg'] === 'login failed');
    expect(failed).toMatchObject({ kind: 'protocol', reason: expect.stringMatching(reason) });
  });
});

/**
 * PREAUTH is IMAP's alone (RFC 9051 §7.1.4). POP3 has no pre-authenticated
 * greeting: a session always starts in the AUTHORIZATION state (RFC 1939 §4),
 * and SMTP has no greeting that authenticates. What every protocol shares is
 * the other way into a session without the password: a backend that refuses
 * our login but would then take anything (an IMAP server answering SELECT,
 * a POP3 one answering STAT, an SMTP open relay answering MAIL). The client's
 * commands pipelined after the refused login must never reach it.
 */
describe('6. PREAUTH, and commands after a refused backend login, never reach the backend', () => {
  test('IMAP: a PREAUTH greeting gets no credentials and no session', async () => {
    const u = R6_PREAUTH;
    const { c } = await open('imap', 'implicit');
    await c.write(`a1 LOGIN "${u.name}" "${u.password}"\r\na2 SELECT INBOX\r\n`);
    expect(await imapUntil(c, 'a1')).toEqual([TEMPFAIL.imap]);
    expect(await imapUntil(c, 'a2')).toEqual(['a2 BAD Command unknown or not allowed before login.']);
    c.close();
    const f = fake('preauth', 'imap');
    expect(f.connections).toBeGreaterThan(0);
    expect(f.received).toEqual([]);
    const failed = (await mfLinesFor(u)).find((r) => r['msg'] === 'login failed');
    expect(failed).toMatchObject({ kind: 'protocol', reason: 'backend greeted with PREAUTH' });
  });

  test('IMAP: after the backend refused the login, a SELECT pipelined with LOGIN is answered by mailfront, never relayed', async () => {
    const u = R6_REFUSED.imap;
    const { c } = await open('imap', 'implicit');
    await c.write(`a1 LOGIN "${u.name}" "${u.password}"\r\na2 SELECT INBOX\r\n`);
    expect(await imapUntil(c, 'a1')).toEqual([AUTH_FAILED.imap]);
    expect(await imapUntil(c, 'a2')).toEqual(['a2 BAD Command unknown or not allowed before login.']);
    c.close();
    const got = fake('refuselogin', 'imap').received;
    expect(got.some((l) => l.startsWith('L AUTHENTICATE PLAIN'))).toBe(true);
    expect(got.filter((l) => /SELECT/i.test(l))).toEqual([]);
  });

  test('POP3: after the backend refused the login, STAT and DELE pipelined with it are answered by mailfront, never relayed', async () => {
    const u = R6_REFUSED.pop3;
    const { c } = await open('pop3', 'implicit');
    await c.write(`USER ${u.name}\r\nPASS ${u.password}\r\nSTAT\r\nDELE 1\r\n`);
    expect(await c.readLine()).toBe('+OK Send PASS.');
    expect(await c.readLine()).toBe(AUTH_FAILED.pop3);
    expect(await c.readLine()).toBe('-ERR Unknown command or not allowed before login.');
    expect(await c.readLine()).toBe('-ERR Unknown command or not allowed before login.');
    c.close();
    const got = fake('refuselogin', 'pop3').received;
    expect(got.some((l) => l.startsWith('AUTH PLAIN'))).toBe(true);
    expect(got.filter((l) => /^(STAT|DELE)/i.test(l))).toEqual([]);
  });

  test('submission: an open relay that refused our AUTH never gets the MAIL, RCPT and DATA pipelined after it', async () => {
    const u = R6_REFUSED.submission;
    const { c } = await open('submission', 'implicit');
    await smtp(c, 'EHLO client.example.net');
    await c.write(`AUTH PLAIN ${plainIr(u)}\r\nMAIL FROM:<${u.name}>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n`);
    expect(await smtpReply(c)).toEqual([AUTH_FAILED.submission]);
    for (let i = 0; i < 3; i++) expect(await smtpReply(c)).toEqual(['530 5.7.0 Authentication required']);
    c.close();
    const got = fake('refuselogin', 'submission').received;
    expect(got.some((l) => l.startsWith('AUTH PLAIN'))).toBe(true);
    expect(got.filter((l) => /^(MAIL|RCPT|DATA)\b/i.test(l))).toEqual([]);
  });
});

describe('7. Certificate verification towards backends: an unverifiable certificate gets no credentials', () => {
  const cases = PROTOS.flatMap((p) =>
    (['implicit TLS', 'STARTTLS'] as const).map((m) => [LABEL[p], m, p, m === 'implicit TLS' ? R7_WRONG_IMPLICIT[p] : R7_WRONG_STARTTLS[p], m === 'implicit TLS' ? R7_GOOD_IMPLICIT[p] : R7_GOOD_STARTTLS[p]] as const),
  );
  test.each(cases)('%s over %s: the wrong CA fails temporarily and Dovecot never sees the user; the right CA logs in', async (_l, mode, p, bad, good) => {
    expect(await loginOnce(p, bad, bad.password)).toBe(TEMPFAIL[p]);
    const failed = (await mfLinesFor(bad)).find((r) => r['msg'] === 'login failed');
    expect(failed).toMatchObject({ kind: 'protocol', backend: mode === 'STARTTLS' ? 'wrongca-starttls' : 'wrongca-implicit', reason: expect.stringMatching(/certificate/i) });
    // The control: the same Dovecot, the CA that did sign its certificate.
    expect(await loginOnce(p, good, good.password)).toMatch(LOGGED_IN[p]);
    await dovecot.waitForLog(new RegExp(`${p}-login: Info: Login: user=<${escapeRe(good.name)}>.*TLS`));
    expect((await dovecotLog()).split('\n').filter((l) => l.includes(bad.name))).toEqual([]);
  });
});

describe('8. Strict ALPN (ALPACA) on every TLS listener', () => {
  const ALPN: Record<Proto, string> = { imap: 'imap', pop3: 'pop3', submission: 'smtp' };

  /** A TLS handshake offering `alpn` (none when undefined): `ok:<selected|none>` or `error:<message>`. */
  async function handshake(p: Proto, mode: 'implicit' | 'starttls', alpn: string[] | undefined): Promise<string> {
    const opts = { ca: mf.certPem, ...(alpn ? { alpn } : {}) };
    let c: Conn | undefined;
    try {
      if (mode === 'implicit') {
        c = await Conn.open({ port: port(p, 'implicit'), tls: opts });
      } else {
        c = (await open(p, 'starttls')).c;
        await c.write(`${STARTTLS[p].cmd}\r\n`);
        expect(await c.readLine()).toBe(STARTTLS[p].ok);
        await c.startTls(opts);
      }
      return `ok:${(c.socket as tls.TLSSocket).alpnProtocol || 'none'}`;
    } catch (e) {
      return `error:${(e as Error).message}`;
    } finally {
      c?.close();
    }
  }

  const cases = PROTOS.flatMap((p) => (['implicit', 'starttls'] as const).map((mode) => [LABEL[p], mode, p] as const));
  test.each(cases)('%s, %s: none or its own ALPN is fine; http/1.1 and the other mail protocols get no_application_protocol', async (_l, mode, p) => {
    expect(await handshake(p, mode, undefined)).toBe('ok:none');
    expect(await handshake(p, mode, ['h2', ALPN[p]])).toBe(`ok:${ALPN[p]}`);
    expect(await handshake(p, mode, ['http/1.1'])).toMatch(/^error:.*no.application.protocol/i);
    for (const other of PROTOS.filter((x) => x !== p)) {
      expect(await handshake(p, mode, [ALPN[other]])).toMatch(/^error:.*no.application.protocol/i);
    }
    // Refused or not, a client that left right after its handshake holds nothing.
    expect(await openConnectionsAfter(2_000)).toBe(0);
  });
});

describe('9. Pre-login parser abuse', () => {
  test('IMAP: a LITERAL+ length of 10^20 gets BYE and close; a synchronising one a BAD, and the session goes on', async () => {
    const { c } = await open('imap', 'implicit');
    expect(await imap(c, 'a1 LOGIN {99999999999999999999}')).toEqual(['a1 BAD Literal too large.']);
    expect(await imap(c, 'a2 NOOP')).toEqual(['a2 OK NOOP completed.']);
    await c.write('a3 LOGIN {99999999999999999999+}\r\nxxxx');
    expect(await c.readLine()).toBe('* BYE Literal too large.');
    expect((await c.waitForClose()).toString()).toBe('');
  });

  test('IMAP: a literal not followed by SP, ")" or CRLF is a BAD; the session goes on', async () => {
    const { c } = await open('imap', 'implicit');
    expect(await imap(c, 'a1 LOGIN {3+}\r\nabcdef x')).toEqual(['a1 BAD Syntax error in arguments.']);
    expect(await imap(c, 'a2 ID ({1+}\r\nx"y")')).toEqual(['a2 BAD Syntax error in arguments.']);
    expect(await imap(c, 'a3 NOOP')).toEqual(['a3 OK NOOP completed.']);
    c.close();
  });

  test('IMAP: NUL in a quoted string or a literal is a BAD', async () => {
    const { c } = await open('imap', 'implicit');
    expect(await imap(c, 'a1 LOGIN "us\0er@example.org" "x"')).toEqual(['a1 BAD NUL is not allowed in a command.']);
    expect(await imap(c, 'a2 LOGIN {3+}\r\na\0b "x"')).toEqual(['a2 BAD NUL is not allowed in a command.']);
    expect(await imap(c, 'a3 NOOP')).toEqual(['a3 OK NOOP completed.']);
    c.close();
  });

  test('IMAP: invalid tags get an untagged BAD; past the bad-command limit, BYE and close', async () => {
    const { c } = await open('imap', 'implicit');
    for (const bad of ['* NOOP', '+ NOOP', 'a{b NOOP', '"q" NOOP']) {
      await c.write(`${bad}\r\n`);
      expect(await c.readLine()).toBe('* BAD Invalid or missing tag.');
    }
    await c.write('(x) NOOP\r\n');
    expect(await c.readLine()).toBe('* BAD Invalid or missing tag.');
    expect(await c.readLine()).toBe('* BYE Too many invalid commands.');
    expect((await c.waitForClose()).toString()).toBe('');
  });

  test('IMAP: a 70 KiB line gets BYE and close', async () => {
    const { c } = await open('imap', 'starttls');
    await c.write(`a1 LOGIN ${'x'.repeat(70 * 1024)} y\r\n`);
    expect(await c.readLine()).toBe('* BYE Input line too long.');
    expect((await c.waitForClose()).toString()).toBe('');
  });

  test('POP3: an overlong command line, and an overlong SASL line, get -ERR and close', async () => {
    const a = (await open('pop3', 'implicit')).c;
    await a.write(`USER ${'x'.repeat(2_000)}\r\n`);
    expect(await a.readLine()).toBe('-ERR Input line too long.');
    expect((await a.waitForClose()).toString()).toBe('');
    const b = (await open('pop3', 'implicit')).c;
    expect(await pop3(b, 'AUTH PLAIN')).toBe('+ ');
    await b.write(`${'A'.repeat(9_000)}\r\n`);
    expect(await b.readLine()).toBe('-ERR Input line too long.');
    expect((await b.waitForClose()).toString()).toBe('');
  });

  test('POP3: NUL is an -ERR; unknown commands past the bad-command limit get -ERR and close', async () => {
    const { c } = await open('pop3', 'implicit');
    expect(await pop3(c, 'USER a\0b@example.org')).toBe('-ERR NUL is not allowed in a command.');
    for (let i = 1; i < MAX_BAD_COMMANDS; i++) expect(await pop3(c, 'NOOP')).toBe('-ERR Unknown command or not allowed before login.');
    expect(await c.readLine()).toBe('-ERR Too many invalid commands.');
    expect((await c.waitForClose()).toString()).toBe('');
  });

  test('submission: an overlong command line, and an overlong AUTH line, get 500 and close', async () => {
    const a = (await open('submission', 'implicit')).c;
    await a.write(`EHLO ${'x'.repeat(600)}\r\n`);
    expect(await smtpReply(a)).toEqual(['500 5.5.0 Line too long']);
    expect((await a.waitForClose()).toString()).toBe('');
    const b = (await open('submission', 'implicit')).c;
    await smtp(b, 'EHLO client.example.net');
    await b.write(`AUTH PLAIN ${'A'.repeat(13_000)}\r\n`);
    expect(await smtpReply(b)).toEqual(['500 5.5.6 Authentication exchange line is too long']);
    expect((await b.waitForClose()).toString()).toBe('');
  });

  test('submission: NUL is a 500; unknown commands past the bad-command limit get 500, then 421 and close', async () => {
    const { c } = await open('submission', 'implicit');
    expect(await smtp(c, 'EHLO a\0b')).toEqual(['500 5.5.2 NUL is not allowed in a command']);
    for (let i = 1; i < MAX_BAD_COMMANDS; i++) expect(await smtp(c, 'XYZZY')).toEqual(['500 5.5.1 Unknown command']);
    expect(await c.readLine()).toBe('421 4.7.0 localhost Too many errors, closing connection');
    expect((await c.waitForClose()).toString()).toBe('');
  });

  const FLOOD_BYTES = 50 * 1024 * 1024;
  test.each(each)('%s: 50 MB of garbage without CRLF is cut off long before its end, and memory stays flat', async (_l, p) => {
    // A client that ignores our FIN and keeps writing, as an attacker's does.
    const s = await Conn.open({ port: port(p, 'starttls'), allowHalfOpen: true });
    await s.readLine();
    const chunk = Buffer.alloc(64 * 1024, 'A');
    const rss0 = process.memoryUsage().rss;
    const r = await flood(s.socket, chunk, FLOOD_BYTES, 20_000);
    const grownMb = (process.memoryUsage().rss - rss0) / 1024 / 1024;
    const said = s.received();
    s.close();
    expect(said).toMatch(/Input line too long|Line too long/);
    expect(r.closed).toBe(true);
    // What mailfront read before it gave up (the line limit, then at most 64 KiB
    // dropped after its goodbye) plus what the loopback socket buffers took
    // before the reset: about 4 MiB here, never the 50 MB.
    expect(r.acceptedBytes).toBeLessThan(FLOOD_BYTES / 4);
    expect(grownMb).toBeLessThan(8);
  });
});

/**
 * An attacker who makes a browser send HTTPS to a mail port (ALPACA) wins if
 * the mail server echoes parts of the request into something the browser
 * renders. Strict ALPN (rule 8) stops browsers that offer ALPN; this covers
 * the rest: nothing of the request comes back but IMAP's tag.
 */
describe('10. No reflection (ALPACA): an HTTP request gets none of its bytes back', () => {
  // More lines than maxBadCommands: the server closes, and everything it said is on the wire.
  const REQUEST = [
    'GET /<script>alert("mf-path")</script>?q=mf-query HTTP/1.1',
    'Host: mf-host.example',
    'User-Agent: <img src=x onerror=mf-ua>',
    'Accept: text/html,mf-accept',
    'Cookie: session=mf-cookie',
    'X-Marker: mf-header-value',
    '',
    '',
  ].join('\r\n');
  const MARKERS = ['mf-path', 'mf-query', 'mf-host', 'mf-ua', 'mf-accept', 'mf-cookie', 'mf-header-value', 'GET /', 'HTTP/1.1', '<', '>'];

  const cases = PROTOS.flatMap((p) => (['starttls', 'implicit'] as const).map((kind) => [LABEL[p], kind, p] as const));
  test.each(cases)('%s on its %s port', async (_l, kind, p) => {
    const { c } = await open(p, kind);
    await c.write(REQUEST);
    await c.waitForClose();
    const said = c.received();
    const lines = said.split('\r\n');
    expect(lines.length).toBeGreaterThan(MAX_BAD_COMMANDS);
    for (const m of MARKERS) expect({ marker: m, found: said.includes(m) }).toEqual({ marker: m, found: false });
    if (p === 'imap') {
      // IMAP must echo a tag (RFC 9051 §2.2.2): only the first word of a line, only a plain one — header names, never values.
      const tags = lines.slice(1, -1).map((l) => l.split(' ')[0]!).filter((t) => t !== '*');
      expect(tags.length).toBeGreaterThan(0);
      for (const t of tags) expect(t).toMatch(/^[A-Za-z0-9.\-_:]{1,64}$/);
    } else {
      // POP3 and SMTP replies carry nothing of the command at all.
      for (const l of lines.slice(1, -1)) expect(l).toMatch(/^(-ERR|\d{3}) /);
    }
  });
});

describe('11. Penalties: per address and per user, one penalty box for all protocols; trusted networks exempt', () => {
  const others = (p: Proto) => PROTOS.filter((x) => x !== p);
  const at = (p: Proto, base: number) => loopback(base + PROTOS.indexOf(p));

  test.each(each)('%s: failures from an address on the other protocols get its right password a temporary failure', async (_l, p) => {
    const from = at(p, 20);
    for (const q of others(p)) expect(await loginOnce(q, R11_ADDR_BAD[q], wrong(`addr-${p}-${q}`), from)).toBe(AUTH_FAILED[q]);
    const u = R11_ADDR_OK[p];
    expect(await loginOnce(p, u, u.password, from)).toBe(TEMPFAIL[p]);
    expect((await mfLinesFor(u)).find((r) => r['msg'] === 'login failed')).toMatchObject({ kind: 'penalised' });
    // The same user from another address is fine: it was the address.
    expect(await loginOnce(p, u, u.password, at(p, 30))).toMatch(LOGGED_IN[p]);
  });

  test.each(each)('%s: failures for a user name on the other protocols, from other addresses, get its right password a temporary failure', async (_l, p) => {
    const u = R11_USER[p];
    let n = 40;
    for (const q of others(p)) expect(await loginOnce(q, u, wrong(`user-${p}-${q}`), at(p, (n += 10)))).toBe(AUTH_FAILED[q]);
    const from = at(p, 70);
    expect(await loginOnce(p, u, u.password, from)).toBe(TEMPFAIL[p]);
    // Another user from the same address is fine: it was the user name.
    expect(await loginOnce(p, R11_USER_OTHER[p], R11_USER_OTHER[p].password, from)).toMatch(LOGGED_IN[p]);
  });

  test.each(each)('%s: a trusted network is never penalised', async (_l, p) => {
    const u = R11_TRUSTED[p];
    for (const q of [...PROTOS, ...PROTOS]) expect(await loginOnce(q, u, wrong(`trusted-${p}`), PENALTY_TRUSTED)).toBe(AUTH_FAILED[q]);
    expect(await loginOnce(p, u, u.password, PENALTY_TRUSTED)).toMatch(LOGGED_IN[p]);
  });
});

describe("12. Spoofing from untrusted clients: a client's own ID, XCLIENT or PROXY header is never believed", () => {
  const SPOOF_IP = '192.0.2.44';

  /** Dovecot's Login line for `u`, and that it never heard of the spoofed address. */
  async function dovecotSaw(p: Proto, u: User, rip: string): Promise<void> {
    const line = await dovecot.waitForLog(new RegExp(`${p}-login: Info: Login: user=<${escapeRe(u.name)}>`));
    expect(line).toContain(`rip=${rip},`);
    expect((await dovecotLog()).includes(SPOOF_IP)).toBe(false);
  }

  // The controls: Dovecot believes these from mailfront's address (it is in
  // login_trusted_networks), so a client's own, passed on, would show in its log.
  const direct = (p: Proto) => Conn.open({ port: p === 'imap' ? dovecot.ports.imap : p === 'pop3' ? dovecot.ports.pop3! : dovecot.ports.submission! });
  test("control: Dovecot believes an IMAP ID x-originating-ip from mailfront's address", async () => {
    const u = R12_CONTROL.imap;
    const c = await direct('imap');
    await c.readLine();
    expect((await imap(c, 'a0 ID ("x-originating-ip" "192.0.2.200")')).at(-1)).toMatch(/^a0 OK/);
    expect((await imap(c, `a1 LOGIN "${u.name}" "${u.password}"`)).at(-1)).toMatch(/^a1 OK/);
    c.close();
    expect(await dovecot.waitForLog(new RegExp(`imap-login: Info: Login: user=<${escapeRe(u.name)}>`))).toContain('rip=192.0.2.200,');
  });
  test("control: Dovecot believes a POP3 XCLIENT ADDR from mailfront's address", async () => {
    const u = R12_CONTROL.pop3;
    const c = await direct('pop3');
    expect(await c.readLine()).toMatch(/^\+OK \[XCLIENT\]/);
    expect(await pop3(c, 'XCLIENT ADDR=192.0.2.201')).toMatch(/^\+OK/);
    expect(await pop3(c, `USER ${u.name}`)).toMatch(/^\+OK/);
    expect(await pop3(c, `PASS ${u.password}`)).toMatch(/^\+OK Logged in/);
    c.close();
    expect(await dovecot.waitForLog(new RegExp(`pop3-login: Info: Login: user=<${escapeRe(u.name)}>`))).toContain('rip=192.0.2.201,');
  });
  test("control: Dovecot believes a submission XCLIENT ADDR from mailfront's address", async () => {
    const u = R12_CONTROL.submission;
    const c = await direct('submission');
    await smtpReply(c);
    expect((await smtp(c, 'EHLO client.example.net')).join('\n')).toMatch(/XCLIENT .*ADDR/);
    expect((await smtp(c, 'XCLIENT ADDR=192.0.2.202'))[0]).toMatch(/^220 /);
    await smtp(c, 'EHLO client.example.net');
    expect(await smtp(c, `AUTH PLAIN ${plainIr(u)}`)).toEqual([expect.stringMatching(/^235 /)]);
    c.close();
    expect(await dovecot.waitForLog(new RegExp(`submission-login: Info: Login: user=<${escapeRe(u.name)}>`))).toContain('rip=192.0.2.202,');
  });

  test.each([
    ['trusted', R12_TRUSTED.imap, loopback(12), loopback(12)],
    ['untrusted', R12_UNTRUSTED.imap, loopback(12), '127.0.0.1'],
  ] as const)("IMAP: the client's own ID x-originating-ip is answered, never passed on (%s backend)", async (_k, u, from, rip) => {
    const { c } = await open('imap', 'implicit', from);
    // In one packet with the login, as a client that hopes it is passed on with it would send it.
    await c.write(`a0 ID ("x-originating-ip" "${SPOOF_IP}" "x-originating-port" "4444" "x-session-id" "spoofed")\r\na1 LOGIN "${u.name}" "${u.password}"\r\n`);
    expect(await imapUntil(c, 'a0')).toEqual(['* ID ("name" "mailfront")', 'a0 OK ID completed.']);
    expect((await imapUntil(c, 'a1')).at(-1)).toMatch(/^a1 OK /);
    c.close();
    await dovecotSaw('imap', u, rip);
  });

  test.each([
    ['trusted', R12_TRUSTED.pop3, loopback(13), loopback(13)],
    ['untrusted', R12_UNTRUSTED.pop3, loopback(13), '127.0.0.1'],
  ] as const)("POP3: the client's own XCLIENT is refused with -ERR, never passed on (%s backend)", async (_k, u, from, rip) => {
    const { c } = await open('pop3', 'implicit', from);
    await c.write(`XCLIENT ADDR=${SPOOF_IP} PORT=4444\r\nUSER ${u.name}\r\nPASS ${u.password}\r\n`);
    expect(await c.readLine()).toBe('-ERR Unknown command or not allowed before login.');
    expect(await c.readLine()).toBe('+OK Send PASS.');
    expect(await c.readLine()).toMatch(/^\+OK Logged in/);
    c.close();
    await dovecotSaw('pop3', u, rip);
  });

  test.each([
    ['trusted', R12_TRUSTED.submission, loopback(14), loopback(14)],
    ['untrusted', R12_UNTRUSTED.submission, loopback(14), '127.0.0.1'],
  ] as const)("submission: the client's own XCLIENT is refused with 5xx, never passed on (%s backend)", async (kind, u, from, rip) => {
    const { c } = await open('submission', 'implicit', from);
    await smtp(c, 'EHLO client.example.net');
    expect(await smtp(c, `XCLIENT ADDR=${SPOOF_IP} PORT=4444`)).toEqual(['500 5.5.1 Unknown command']);
    expect(await smtp(c, `AUTH PLAIN ${plainIr(u)}`)).toEqual(['235 2.7.0 Authentication successful']);
    const subject = `spoof-check-${kind}`;
    expect((await smtp(c, `MAIL FROM:<${u.name}>`))[0]).toMatch(/^250 /);
    expect((await smtp(c, 'RCPT TO:<rcpt@example.net>'))[0]).toMatch(/^250 /);
    expect((await smtp(c, 'DATA'))[0]).toMatch(/^354 /);
    expect((await smtp(c, `Subject: ${subject}\r\n\r\nbody\r\n.`))[0]).toMatch(/^250 /);
    c.close();
    await dovecotSaw('submission', u, rip);
    // What Dovecot relayed says the same: its XCLIENT to the sink carries the address it believed.
    const deadline = Date.now() + 10_000;
    let m = sink.messages.find((x) => x.raw.includes(Buffer.from(`Subject: ${subject}\r\n`)));
    while (!m && Date.now() < deadline) {
      await sink.waitForMessages(sink.messages.length + 1, deadline - Date.now()).catch(() => undefined);
      m = sink.messages.find((x) => x.raw.includes(Buffer.from(`Subject: ${subject}\r\n`)));
    }
    expect(m?.session.xclient['ADDR']).toBe(rip);
    expect(m!.raw.toString('latin1')).not.toContain(SPOOF_IP);
  });

  test.each(each)('%s: a PROXY header (v1 or v2) from an untrusted peer is cut off; the trusted balancer’s is believed', async (_l, p) => {
    for (const header of [
      Buffer.from(`PROXY TCP4 ${SPOOF_IP} 192.0.2.10 4444 143\r\n`),
      encodeProxyV2({ address: SPOOF_IP, port: 4444 }, { address: '192.0.2.10', port: 143 }),
    ]) {
      const { c, greeting } = await open(p, 'proxy');
      expect(greeting).not.toBe('');
      await c.write(header);
      expect((await c.waitForClose()).toString()).toBe('');
    }
    const warned = (await mfLog()).split('\n').filter((l) => l.includes('PROXY header from an untrusted peer') && l.includes(`"proto":"${p}"`));
    expect(warned).toHaveLength(2);
    // The control: the listener does take PROXY headers, from the balancer.
    const b = await Conn.open({ port: port(p, 'proxy'), localAddress: BALANCER });
    await b.write(`PROXY TCP4 203.0.113.7 192.0.2.10 50${PROTOS.indexOf(p)}1 143\r\n`);
    expect(await b.readLine()).not.toBe('');
    b.close();
    await mf.waitForLog(new RegExp(`"proto":"${p}","client":"203\\.0\\.113\\.7:50${PROTOS.indexOf(p)}1".*"msg":"connected"`));
  });
});

describe('13. Secrets never logged', () => {
  /** `secret` as it appears inside any base64 stream, whatever its offset (the characters that depend on it alone). */
  function base64Forms(secret: string): string[] {
    const bytes = Buffer.from(secret, 'utf8');
    return [0, 1, 2].map((k) => {
      const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
      const from = k === 0 ? 0 : 4;
      const to = Math.floor((k + bytes.length) / 3) * 4;
      return enc.slice(from, to);
    });
  }

  test("after the whole suite, mailfront's log holds no password, no SASL payload, in any form", async () => {
    const log = await mfLog();
    // The suite did log in, fail and get refused: the log is not empty of what matters.
    expect(log).toContain('"msg":"login"');
    expect(log).toContain('"msg":"login failed"');
    const secrets = [...USERS.map((u) => u.password), ...WRONG];
    expect(secrets.length).toBeGreaterThan(50);
    for (const s of secrets) {
      expect({ secret: s, found: log.includes(s) }).toEqual({ secret: s, found: false });
      for (const f of base64Forms(s)) expect({ secret: s, form: f, found: log.includes(f) }).toEqual({ secret: s, form: f, found: false });
    }
    for (const u of USERS) expect(log.includes(plainIr(u))).toBe(false);
  });
});
