import { submissionProtocol, submissionSession, type ExtensionPolicy } from '@mailfront/submission';
import type { ClientSession, ClientStep, SessionEnv } from '@mailfront/proxy-core';

const { greet, onCommand, onSaslLine, onLoginDone } = submissionSession;
const policy: ExtensionPolicy = { extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE', 'CHUNKING'], maxMessageBytes: 41943040 };
const cfg = { hostname: 'mx.example.org', policy };
const plainEnv = { tls: false, starttlsAvailable: true, authAllowed: false };
const tlsEnv = { tls: true, starttlsAvailable: false, authAllowed: true };
const greeted = { name: 'client.example.net', extended: true };
const ready = { at: 'command', helo: greeted } as const;
const fresh = { at: 'command', helo: null } as const;
const cmd = (verb: string, arg = '') => ({ verb, arg });
const sends = (steps: ClientStep[]) => steps.filter((s) => s.do === 'send').map((s) => (s as { text: string }).text).join('');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const env = (e: Partial<SessionEnv> = {}): SessionEnv => ({ sessionId: 'x', tls: false, starttlsAvailable: true, authAllowed: false, ...e });

function session(e: SessionEnv, p: ExtensionPolicy = policy): ClientSession {
  return submissionProtocol({ hostname: 'mx.example.org', extensions: p.extensions, maxMessageBytes: p.maxMessageBytes }).createSession(e);
}
/** Feed a client transcript to the real session glue; every step until it waits. */
function run(s: ClientSession, input: string): ClientStep[] {
  s.feed(Buffer.from(input, 'latin1'));
  const steps: ClientStep[] = [];
  for (let st = s.next(); st; st = s.next()) steps.push(st);
  return steps;
}

describe('submission pre-auth session', () => {
  test('greeting names our host, nothing else', () => {
    expect(sends(greet(cfg).steps)).toBe('220 mx.example.org ESMTP mailfront\r\n');
  });

  test('EHLO on a plaintext STARTTLS port: the configured extensions, STARTTLS, no AUTH', () => {
    expect(sends(onCommand(fresh, cmd('EHLO', 'client.example.net'), plainEnv, cfg).steps)).toBe(
      '250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE 41943040\r\n250-CHUNKING\r\n250 STARTTLS\r\n',
    );
  });

  test('EHLO inside TLS: AUTH PLAIN LOGIN and no STARTTLS; SIZE without a number when none is configured', () => {
    const c = { ...cfg, policy: { extensions: ['SIZE' as const], maxMessageBytes: 0 } };
    expect(sends(onCommand(fresh, cmd('EHLO', 'c'), tlsEnv, c).steps)).toBe('250-mx.example.org\r\n250-SIZE\r\n250 AUTH PLAIN LOGIN\r\n');
  });

  test('HELO: one line, and the name is remembered as non-extended', () => {
    const t = onCommand(fresh, cmd('HELO', 'old.example'), tlsEnv, cfg);
    expect(sends(t.steps)).toBe('250 mx.example.org\r\n');
    expect(t.next).toEqual({ at: 'command', helo: { name: 'old.example', extended: false } });
  });

  test('EHLO without a name, or with two words, is a counted syntax error; the name is never echoed', () => {
    expect(onCommand(fresh, cmd('EHLO'), tlsEnv, cfg).steps).toEqual([{ do: 'send', text: '501 5.5.4 Syntax error in parameters\r\n', error: true }]);
    expect(sends(onCommand(fresh, cmd('EHLO', 'a b'), tlsEnv, cfg).steps)).toMatch(/^501 /);
    expect(sends(onCommand(fresh, cmd('EHLO', '<script>'), tlsEnv, cfg).steps)).not.toContain('script');
  });

  test('MAIL, RCPT, DATA, BDAT: 503 before EHLO, 530 after it; counted', () => {
    for (const v of ['MAIL', 'RCPT', 'DATA', 'BDAT']) {
      expect(onCommand(fresh, cmd(v, 'x'), tlsEnv, cfg).steps).toEqual([{ do: 'send', text: '503 5.5.1 Send EHLO first\r\n', error: true }]);
      expect(onCommand(ready, cmd(v, 'x'), tlsEnv, cfg).steps).toEqual([{ do: 'send', text: '530 5.7.0 Authentication required\r\n', error: true }]);
    }
    expect(sends(onCommand(fresh, cmd('VRFY', 'root'), tlsEnv, cfg).steps)).toBe('530 5.7.0 Authentication required\r\n');
  });

  test('unknown commands, and XCLIENT from a client, are 500 5.5.1 and counted', () => {
    for (const v of ['XCLIENT', 'XFORWARD', 'GET', 'LOGIN']) {
      expect(onCommand(ready, cmd(v, 'ADDR=1.2.3.4'), tlsEnv, cfg).steps).toEqual([{ do: 'send', text: '500 5.5.1 Unknown command\r\n', error: true }]);
    }
  });

  test('RSET, NOOP, HELP, QUIT', () => {
    expect(sends(onCommand(ready, cmd('RSET'), plainEnv, cfg).steps)).toBe('250 2.0.0 OK\r\n');
    expect(sends(onCommand(ready, cmd('NOOP', 'anything'), plainEnv, cfg).steps)).toBe('250 2.0.0 OK\r\n');
    expect(sends(onCommand(ready, cmd('HELP'), plainEnv, cfg).steps)).toMatch(/^214 2\.0\.0 /);
    expect(onCommand(ready, cmd('QUIT'), plainEnv, cfg)).toEqual({
      next: { at: 'closed' },
      steps: [{ do: 'send', text: '221 2.0.0 Bye\r\n' }, { do: 'close', reason: 'quit' }],
    });
  });

  test('STARTTLS: 220 then upgrade, and the EHLO is forgotten; refused when active or unavailable', () => {
    const t = onCommand(ready, cmd('STARTTLS'), plainEnv, cfg);
    expect(t).toEqual({ next: { at: 'starttls' }, steps: [{ do: 'send', text: '220 2.0.0 Ready to start TLS\r\n' }, { do: 'starttls' }] });
    expect(sends(onCommand(ready, cmd('STARTTLS'), tlsEnv, cfg).steps)).toBe('503 5.5.1 TLS is already active\r\n');
    expect(sends(onCommand(ready, cmd('STARTTLS'), { tls: false, starttlsAvailable: false, authAllowed: true }, cfg).steps)).toBe(
      '502 5.5.1 STARTTLS is not available on this port\r\n',
    );
    expect(sends(onCommand(ready, cmd('STARTTLS', 'now'), plainEnv, cfg).steps)).toBe('501 5.5.4 Syntax error in parameters\r\n');
  });

  test('AUTH before TLS on a plaintext port: 538; before EHLO: 503', () => {
    expect(sends(onCommand(ready, cmd('AUTH', `PLAIN ${b64('\0u\0p')}`), plainEnv, cfg).steps)).toBe(
      '538 5.7.11 Encryption required for requested authentication mechanism\r\n',
    );
    expect(sends(onCommand(fresh, cmd('AUTH', 'PLAIN'), tlsEnv, cfg).steps)).toBe('503 5.5.1 Send EHLO first\r\n');
  });

  test('AUTH PLAIN with an initial response: a login step carrying the EHLO name', () => {
    const t = onCommand(ready, cmd('AUTH', `plain ${b64('\0jürgen@example.org\0pa ss')}`), tlsEnv, cfg);
    expect(t.next).toEqual({ at: 'login', helo: greeted });
    expect(t.steps).toEqual([
      {
        do: 'login',
        credentials: { authzid: '', user: 'jürgen@example.org', password: 'pa ss', mechanism: 'PLAIN' },
        context: { helo: 'client.example.net', proto: 'ESMTP' },
      },
    ]);
  });

  test('AUTH PLAIN with a continuation; "*" cancels with 501 5.0.0', () => {
    const t = onCommand(ready, cmd('AUTH', 'PLAIN'), tlsEnv, cfg);
    expect(t).toEqual({ next: { at: 'auth-plain', helo: greeted }, steps: [{ do: 'send', text: '334 \r\n' }] });
    expect(onSaslLine(t.next, b64('admin\0alice\0pw')).steps[0]).toMatchObject({ do: 'login', credentials: { authzid: 'admin', user: 'alice' } });
    expect(onSaslLine(t.next, '*')).toEqual({ next: ready, steps: [{ do: 'send', text: '501 5.0.0 Authentication cancelled\r\n', error: true }] });
  });

  test('AUTH LOGIN: Username: and Password: challenges, or the user as initial response', () => {
    const t = onCommand(ready, cmd('AUTH', 'LOGIN'), tlsEnv, cfg);
    expect(sends(t.steps)).toBe('334 VXNlcm5hbWU6\r\n');
    const u = onSaslLine(t.next, b64('alice@example.org'));
    expect(u.next).toEqual({ at: 'auth-login-pass', helo: greeted, user: 'alice@example.org' });
    expect(sends(u.steps)).toBe('334 UGFzc3dvcmQ6\r\n');
    expect(onSaslLine(u.next, b64('sécret')).steps).toEqual([
      { do: 'login', credentials: { user: 'alice@example.org', password: 'sécret', authzid: '', mechanism: 'LOGIN' }, context: { helo: 'client.example.net', proto: 'ESMTP' } },
    ]);
    const ir = onCommand(ready, cmd('AUTH', `LOGIN ${b64('bob')}`), tlsEnv, cfg);
    expect(ir.next).toEqual({ at: 'auth-login-pass', helo: greeted, user: 'bob' });
    expect(sends(onSaslLine(u.next, '*').steps)).toBe('501 5.0.0 Authentication cancelled\r\n');
  });

  test('bad SASL data: base64, PLAIN shape, empty LOGIN fields, unknown mechanism, bad arguments', () => {
    expect(sends(onCommand(ready, cmd('AUTH', 'PLAIN AGFsaWNl*'), tlsEnv, cfg).steps)).toBe('501 5.5.2 Invalid base64 data\r\n');
    expect(sends(onCommand(ready, cmd('AUTH', `PLAIN ${b64('alice')}`), tlsEnv, cfg).steps)).toBe('501 5.5.2 Invalid authentication data\r\n');
    expect(sends(onCommand(ready, cmd('AUTH', 'PLAIN ='), tlsEnv, cfg).steps)).toBe('501 5.5.2 Invalid authentication data\r\n');
    expect(sends(onCommand(ready, cmd('AUTH', `LOGIN ${b64('a\0b')}`), tlsEnv, cfg).steps)).toBe('501 5.5.2 Invalid authentication data\r\n');
    expect(sends(onCommand(ready, cmd('AUTH', 'CRAM-MD5'), tlsEnv, cfg).steps)).toBe('504 5.5.4 Unrecognized authentication type\r\n');
    expect(sends(onCommand(ready, cmd('AUTH', 'PLAIN a b'), tlsEnv, cfg).steps)).toBe('501 5.5.4 Syntax error in parameters\r\n');
    expect(sends(onCommand(ready, cmd('AUTH'), tlsEnv, cfg).steps)).toBe('501 5.5.4 Syntax error in parameters\r\n');
  });

  test('login outcome: 235 then relay; 535 and 454 keep the EHLO', () => {
    const waiting = { at: 'login', helo: greeted } as const;
    expect(onLoginDone(waiting, { ok: true, backendReply: ['235 2.7.0 Logged in.'] })).toEqual({
      next: { at: 'relay' },
      steps: [{ do: 'send', text: '235 2.7.0 Authentication successful\r\n' }, { do: 'relay' }],
    });
    expect(onLoginDone(waiting, { ok: false, answer: 'auth-failed', kind: 'auth-failed' })).toEqual({
      next: ready,
      steps: [{ do: 'send', text: '535 5.7.8 Authentication credentials invalid\r\n' }],
    });
    expect(sends(onLoginDone(waiting, { ok: false, answer: 'temporary', kind: 'connect' }).steps)).toBe('454 4.7.0 Temporary authentication failure\r\n');
  });

  test('transcript: an HTTP request gets nothing of itself back', () => {
    const out = sends(run(session(env()), 'POST /<script>alert(1)</script> HTTP/1.1\r\nHost: evil\r\n\r\n'));
    expect(out).not.toMatch(/script|evil|POST/);
    expect(out).toBe('220 mx.example.org ESMTP mailfront\r\n500 5.5.1 Unknown command\r\n500 5.5.2 Syntax error\r\n500 5.5.2 Syntax error\r\n');
  });

  test('transcript: pipelined MAIL/RCPT/DATA after AUTH PLAIN in one packet stay for the backend', () => {
    const s = session(env({ tls: true, starttlsAvailable: false, authAllowed: true }));
    const tail = 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n';
    const steps = run(s, `EHLO c.example\r\nAUTH PLAIN ${b64('\0a\0b')}\r\n${tail}`);
    expect(steps.map((x) => x.do)).toEqual(['send', 'send', 'login']);
    s.loginDone({ ok: true, backendReply: ['235 ok'] });
    expect(run(s, '')).toEqual([{ do: 'send', text: '235 2.7.0 Authentication successful\r\n' }, { do: 'relay' }]);
    expect(s.takeUnconsumed().toString('latin1')).toBe(tail);
  });

  test('transcript: after a failed login the pipelined MAIL is answered 530', () => {
    const s = session(env({ tls: true, starttlsAvailable: false, authAllowed: true }));
    run(s, `EHLO c\r\nAUTH PLAIN ${b64('\0a\0b')}\r\nMAIL FROM:<a@b>\r\n`);
    s.loginDone({ ok: false, answer: 'auth-failed', kind: 'auth-failed' });
    expect(sends(run(s, ''))).toBe('535 5.7.8 Authentication credentials invalid\r\n530 5.7.0 Authentication required\r\n');
  });

  test('transcript: STARTTLS pipelined with EHLO — the EHLO is discarded, and MAIL inside TLS before EHLO is 503', () => {
    const s = session(env());
    const steps = run(s, 'EHLO a\r\nSTARTTLS\r\nEHLO injected\r\n');
    expect(steps[steps.length - 1]).toEqual({ do: 'starttls' });
    s.tlsStarted();
    expect(s.next()).toBeNull();
    expect(s.takeUnconsumed().length).toBe(0);
    expect(sends(run(s, 'MAIL FROM:<a@b>\r\nAUTH PLAIN x\r\n'))).toBe('503 5.5.1 Send EHLO first\r\n503 5.5.1 Send EHLO first\r\n');
  });

  test('transcript: fatal lines end with 500 and close', () => {
    expect(run(session(env()), `EHLO ${'x'.repeat(600)}\r\n`).slice(1)).toEqual([
      { do: 'send', text: '500 5.5.0 Line too long\r\n' },
      { do: 'close', reason: 'client sent line-too-long' },
    ]);
    const s = session(env({ tls: true, starttlsAvailable: false, authAllowed: true }));
    expect(run(s, `EHLO c\r\nAUTH PLAIN\r\n${'A'.repeat(13000)}\r\n`).slice(-2)).toEqual([
      { do: 'send', text: '500 5.5.6 Authentication exchange line is too long\r\n' },
      { do: 'close', reason: 'client sent auth-line-too-long' },
    ]);
  });

  test('transcript: NUL in a SASL response ends the exchange with a counted 500', () => {
    const s = session(env({ tls: true, starttlsAvailable: false, authAllowed: true }));
    const steps = run(s, 'EHLO c\r\nAUTH LOGIN\r\na\0b\r\nNOOP\r\n');
    expect(steps.slice(-2)).toEqual([
      { do: 'send', text: '500 5.5.2 NUL is not allowed in a command\r\n', error: true },
      { do: 'send', text: '250 2.0.0 OK\r\n' },
    ]);
  });

  test('421 goodbyes for the core', () => {
    const s = session(env());
    expect(s.bye('timeout')).toBe('421 4.4.2 mx.example.org Timeout, closing connection\r\n');
    expect(s.bye('too-many-errors')).toBe('421 4.7.0 mx.example.org Too many errors, closing connection\r\n');
    expect(s.bye('shutdown')).toMatch(/^421 4\.3\.2 /);
  });

  test('the descriptor: name, ALPN, and what cannot be advertised is refused', () => {
    const d = submissionProtocol({ hostname: 'h' });
    expect(d.name).toBe('submission');
    expect(d.alpn).toEqual(['smtp']);
    expect(() => submissionProtocol({ hostname: 'h', extensions: ['XCLIENT' as never] })).toThrow(/XCLIENT cannot be advertised/);
    expect(() => submissionProtocol({ hostname: 'a b' })).toThrow(/hostname/);
    // Defaults: a list every submission server offers.
    expect(sends(run(d.createSession(env({ tls: true, starttlsAvailable: false, authAllowed: true })), 'EHLO c\r\n'))).toBe(
      '220 h ESMTP mailfront\r\n250-h\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n250 AUTH PLAIN LOGIN\r\n',
    );
  });
});
