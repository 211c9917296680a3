import { pop3Protocol, pop3Session, type Pop3Command } from '@mailfront/pop3';
import type { ClientStep, SessionEnv } from '@mailfront/proxy-core';
import { Pop3ClientSession } from '../src/client-session';
import { DEFAULT_POP3_LIMITS } from '../src/limits';

const { greet, onCommand, onSaslLine, onLoginDone, onInvalid } = pop3Session;
/** A STARTTLS port before TLS. */
const plainEnv = { tls: false, starttlsAvailable: true, authAllowed: false };
/** After STLS, or on an implicit-TLS port. */
const tlsEnv = { tls: true, starttlsAvailable: false, authAllowed: true };
/** A `tls: none` listener with allowPlaintextAuth. */
const legacyEnv = { tls: false, starttlsAvailable: false, authAllowed: true };
const ready = { at: 'command', user: null } as const;
const c = (keyword: string, args = ''): Pop3Command => ({ keyword, args: Buffer.from(args, 'utf8') });
const sends = (steps: ClientStep[]) => steps.filter((s) => s.do === 'send').map((s) => (s as { text: string }).text).join('');
const b64 = (s: string) => Buffer.from(s).toString('base64');
const env = (e: Partial<SessionEnv>): SessionEnv => ({ sessionId: 'x', tls: false, starttlsAvailable: true, authAllowed: false, ...e });

/** Drive the real session glue with a transcript of client lines; every step until it needs input. */
function transcript(e: SessionEnv, input: string | Buffer): { out: string; steps: ClientStep[]; session: Pop3ClientSession } {
  const session = new Pop3ClientSession(e, DEFAULT_POP3_LIMITS);
  session.feed(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  const steps: ClientStep[] = [];
  for (let st = session.next(); st; st = session.next()) steps.push(st);
  return { out: sends(steps), steps, session };
}

describe('POP3 pre-login session', () => {
  test('greeting: no APOP timestamp, nothing about the backend', () => {
    expect(greet()).toEqual({ next: ready, steps: [{ do: 'send', text: '+OK mailfront ready.\r\n' }] });
  });

  test('CAPA on a plaintext STARTTLS port: STLS, and neither USER nor SASL', () => {
    expect(sends(onCommand(ready, c('CAPA'), plainEnv).steps)).toBe(
      '+OK Capability list follows.\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\n.\r\n',
    );
  });

  test('CAPA after TLS: USER and SASL PLAIN, no STLS', () => {
    expect(sends(onCommand(ready, c('CAPA'), tlsEnv).steps)).toBe(
      '+OK Capability list follows.\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n',
    );
  });

  test('CAPA on a plaintext-auth listener without TLS: USER and SASL, no STLS', () => {
    const out = sends(onCommand(ready, c('CAPA'), legacyEnv).steps);
    expect(out).toContain('\r\nUSER\r\nSASL PLAIN\r\n');
    expect(out).not.toContain('STLS');
  });

  test('USER, PASS and AUTH before TLS are refused with [AUTH]; nothing is remembered', () => {
    const refusal = '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n';
    const u = onCommand(ready, c('USER', 'alice'), plainEnv);
    expect(u).toEqual({ next: ready, steps: [{ do: 'send', text: refusal }] });
    expect(sends(onCommand({ at: 'command', user: 'alice' }, c('PASS', 'pw'), plainEnv).steps)).toBe(refusal);
    expect(sends(onCommand(ready, c('AUTH', `PLAIN ${b64('\0u\0p')}`), plainEnv).steps)).toBe(refusal);
    expect(sends(onCommand(ready, c('AUTH'), plainEnv).steps)).toBe(refusal);
  });

  test('USER then PASS: a login step with the whole rest of the line as the password', () => {
    const u = onCommand(ready, c('USER', 'jürgen@example.org'), tlsEnv);
    expect(u).toEqual({ next: { at: 'command', user: 'jürgen@example.org' }, steps: [{ do: 'send', text: '+OK Send PASS.\r\n' }] });
    const p = onCommand(u.next, c('PASS', ' pa ss '), tlsEnv);
    expect(p.next).toEqual({ at: 'login' });
    expect(p.steps).toEqual([{ do: 'login', credentials: { user: 'jürgen@example.org', password: ' pa ss ', authzid: '', mechanism: 'USER' } }]);
  });

  test('PASS without USER, and USER or PASS without an argument, are errors', () => {
    expect(onCommand(ready, c('PASS', 'pw'), tlsEnv).steps).toEqual([{ do: 'send', text: '-ERR Send USER first.\r\n', error: true }]);
    expect(onCommand(ready, c('USER'), tlsEnv).steps).toEqual([{ do: 'send', text: '-ERR Syntax error in arguments.\r\n', error: true }]);
    const empty = onCommand({ at: 'command', user: 'a' }, c('PASS'), tlsEnv);
    expect(empty).toEqual({ next: ready, steps: [{ do: 'send', text: '-ERR Syntax error in arguments.\r\n', error: true }] });
  });

  test('AUTH PLAIN with an initial response, with "=" (empty), and with a continuation line', () => {
    expect(onCommand(ready, c('AUTH', `plain ${b64('\0alice\0secret')}`), tlsEnv).steps).toEqual([
      { do: 'login', credentials: { user: 'alice', password: 'secret', authzid: '', mechanism: 'PLAIN' } },
    ]);
    expect(sends(onCommand(ready, c('AUTH', 'PLAIN ='), tlsEnv).steps)).toBe('-ERR Invalid PLAIN authentication data.\r\n');
    const cont = onCommand(ready, c('AUTH', 'PLAIN'), tlsEnv);
    expect(cont).toEqual({ next: { at: 'sasl' }, steps: [{ do: 'send', text: '+ \r\n' }] });
    expect(onSaslLine(cont.next, b64('admin\0alice\0secret')).steps).toEqual([
      { do: 'login', credentials: { user: 'alice', password: 'secret', authzid: 'admin', mechanism: 'PLAIN' } },
    ]);
  });

  test('AUTH: "*" cancels with -ERR (RFC 5034 §4); bad base64, bad PLAIN, unknown mechanism, too many words', () => {
    expect(onSaslLine({ at: 'sasl' }, '*')).toEqual({ next: ready, steps: [{ do: 'send', text: '-ERR Authentication cancelled.\r\n', error: true }] });
    expect(sends(onSaslLine({ at: 'sasl' }, 'AGFsaWNl*').steps)).toBe('-ERR Invalid base64 data.\r\n');
    expect(sends(onCommand(ready, c('AUTH', `PLAIN ${b64('alice')}`), tlsEnv).steps)).toBe('-ERR Invalid PLAIN authentication data.\r\n');
    expect(sends(onCommand(ready, c('AUTH', 'CRAM-MD5'), tlsEnv).steps)).toBe('-ERR Unsupported authentication mechanism.\r\n');
    expect(onCommand(ready, c('AUTH', 'PLAIN a b'), tlsEnv).steps).toEqual([{ do: 'send', text: '-ERR Syntax error in arguments.\r\n', error: true }]);
  });

  test('AUTH without arguments lists the mechanisms once credentials may be sent', () => {
    expect(sends(onCommand(ready, c('AUTH'), tlsEnv).steps)).toBe('+OK Mechanisms follow.\r\nPLAIN\r\n.\r\n');
  });

  test('STLS: +OK then upgrade; refused after TLS, on a port without STARTTLS, and with arguments', () => {
    expect(onCommand({ at: 'command', user: 'x' }, c('STLS'), { ...plainEnv, authAllowed: true })).toEqual({
      next: ready,
      steps: [{ do: 'send', text: '+OK Begin TLS negotiation now.\r\n' }, { do: 'starttls' }],
    });
    expect(onCommand(ready, c('STLS'), tlsEnv).steps).toEqual([{ do: 'send', text: '-ERR TLS is already active.\r\n', error: true }]);
    expect(sends(onCommand(ready, c('STLS'), legacyEnv).steps)).toBe('-ERR STLS is not available on this port.\r\n');
    expect(sends(onCommand(ready, c('STLS', 'now'), plainEnv).steps)).toBe('-ERR Syntax error in arguments.\r\n');
  });

  test('QUIT: +OK and close', () => {
    expect(onCommand(ready, c('QUIT'), plainEnv)).toEqual({
      next: { at: 'closed' },
      steps: [{ do: 'send', text: '+OK Logging out.\r\n' }, { do: 'close', reason: 'quit' }],
    });
  });

  test('NOOP, APOP, STAT, RETR and anything else before login are -ERR and counted as errors', () => {
    for (const k of ['NOOP', 'APOP', 'STAT', 'RETR', 'UIDL', 'TOP', 'XYZZ']) {
      expect(onCommand(ready, c(k, '1'), tlsEnv).steps).toEqual([
        { do: 'send', text: '-ERR Unknown command or not allowed before login.\r\n', error: true },
      ]);
    }
  });

  test('parser errors: NUL and bad keywords are counted errors; an overlong line closes', () => {
    expect(onInvalid(ready, { reason: 'nul', fatal: false }).steps).toEqual([{ do: 'send', text: '-ERR NUL is not allowed in a command.\r\n', error: true }]);
    expect(onInvalid({ at: 'command', user: 'a' }, { reason: 'bad-keyword', fatal: false }).next).toEqual({ at: 'command', user: 'a' });
    expect(onInvalid(ready, { reason: 'line-too-long', fatal: true })).toEqual({
      next: { at: 'closed' },
      steps: [{ do: 'send', text: '-ERR Input line too long.\r\n' }, { do: 'close', reason: 'client sent line-too-long' }],
    });
  });

  test("login outcome: failure texts are ours; success forwards the backend's +OK line", () => {
    const waiting = { at: 'login' } as const;
    expect(onLoginDone(waiting, { ok: false, answer: 'auth-failed', kind: 'auth-failed' })).toEqual({
      next: ready,
      steps: [{ do: 'send', text: '-ERR [AUTH] Authentication failed.\r\n' }],
    });
    expect(sends(onLoginDone(waiting, { ok: false, answer: 'temporary', kind: 'remote' }).steps)).toBe(
      '-ERR [SYS/TEMP] Temporary failure, please try again later.\r\n',
    );
    expect(sends(onLoginDone(waiting, { ok: false, answer: 'temporary', kind: 'remote', hint: 'in-use' }).steps)).toBe(
      '-ERR [IN-USE] Mailbox is in use by another session, please try again later.\r\n',
    );
    expect(onLoginDone(waiting, { ok: true, backendReply: ['+OK Logged in.'] }).steps).toEqual([
      { do: 'send', text: '+OK Logged in.\r\n' },
      { do: 'relay' },
    ]);
    expect(sends(onLoginDone(waiting, { ok: true, backendReply: ['+OK maildrop has 2 messages (320 octets)'] }).steps)).toBe(
      '+OK maildrop has 2 messages (320 octets)\r\n',
    );
    // Never anything but +OK as the answer to a successful login.
    expect(sends(onLoginDone(waiting, { ok: true, backendReply: ['-ERR odd'] }).steps)).toBe('+OK Logged in.\r\n');
  });

  test('transcript: pipelined USER, PASS, STAT — login pauses reading, STAT is left for the backend', () => {
    const { steps, session } = transcript(env(tlsEnv), 'CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\n');
    expect(steps.map((s) => s.do)).toEqual(['send', 'send', 'send', 'login']);
    session.loginDone({ ok: true, backendReply: ['+OK Logged in.'] });
    expect(session.next()).toEqual({ do: 'send', text: '+OK Logged in.\r\n' });
    expect(session.next()).toEqual({ do: 'relay' });
    expect(session.next()).toBeNull();
    expect(session.takeUnconsumed().toString()).toBe('STAT\r\nLIST\r\n');
  });

  test('transcript: after a failed login the client must send USER again', () => {
    const { session } = transcript(env(tlsEnv), 'USER alice\r\nPASS wrong\r\n');
    session.loginDone({ ok: false, answer: 'auth-failed', kind: 'auth-failed' });
    session.feed(Buffer.from('PASS again\r\n'));
    expect(session.next()).toEqual({ do: 'send', text: '-ERR [AUTH] Authentication failed.\r\n' });
    expect(session.next()).toEqual({ do: 'send', text: '-ERR Send USER first.\r\n', error: true });
  });

  test('transcript: STLS pipelined with USER — the USER is never answered, before or after TLS', () => {
    const s = new Pop3ClientSession(env({ authAllowed: true }), DEFAULT_POP3_LIMITS);
    s.feed(Buffer.from('STLS\r\nUSER evil\r\nPASS evil\r\n'));
    expect(s.next()).toMatchObject({ do: 'send', text: '+OK mailfront ready.\r\n' });
    expect(s.next()).toEqual({ do: 'send', text: '+OK Begin TLS negotiation now.\r\n' });
    expect(s.next()).toEqual({ do: 'starttls' });
    s.tlsStarted();
    expect(s.next()).toBeNull();
    expect(s.takeUnconsumed().length).toBe(0);
    // A PASS through TLS does not find a USER from before it.
    s.feed(Buffer.from('PASS evil\r\n'));
    expect(s.next()).toEqual({ do: 'send', text: '-ERR Send USER first.\r\n', error: true });
  });

  test('transcript: an HTTP request gets nothing of itself reflected', () => {
    const { out } = transcript(env({}), 'POST /<script>alert(1)</script> HTTP/1.1\r\nHost: <evil>\r\n\r\n');
    expect(out).not.toContain('script');
    expect(out).not.toContain('<');
    expect(out).not.toContain('POST');
    expect(out.split('\r\n').filter((l) => l.startsWith('-ERR'))).toHaveLength(3);
  });

  test('transcript: an overlong line ends with -ERR and close', () => {
    const { steps } = transcript(env({}), 'PASS ' + 'x'.repeat(2000) + '\r\n');
    expect(steps).toEqual([
      { do: 'send', text: '+OK mailfront ready.\r\n' },
      { do: 'send', text: '-ERR Input line too long.\r\n' },
      { do: 'close', reason: 'client sent line-too-long' },
    ]);
  });

  test('bye texts are -ERR lines', () => {
    const s = new Pop3ClientSession(env({}), DEFAULT_POP3_LIMITS);
    expect(s.bye('timeout')).toBe('-ERR Disconnected for inactivity.\r\n');
    expect(s.bye('too-many-errors')).toBe('-ERR Too many invalid commands.\r\n');
    expect(s.bye('shutdown')).toMatch(/^-ERR .*\r\n$/);
  });

  test('the descriptor: name, ALPN and limits', () => {
    const d = pop3Protocol({ maxLineBytes: 300 });
    expect(d.name).toBe('pop3');
    expect(d.alpn).toEqual(['pop3']);
    const s = d.createSession(env(tlsEnv));
    s.feed(Buffer.from('PASS ' + 'x'.repeat(296) + '\r\n'));
    const steps: ClientStep[] = [];
    for (let st = s.next(); st; st = s.next()) steps.push(st);
    expect(steps[steps.length - 1]).toEqual({ do: 'close', reason: 'client sent line-too-long' });
  });
});
