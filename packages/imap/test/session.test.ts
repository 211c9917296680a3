import { imapSession } from '@mailfront/imap';
import type { ImapCommand } from '@mailfront/imap';
import { ImapClientSession } from '../src/client-session';
import { DEFAULT_IMAP_LIMITS } from '../src/limits';
import type { ClientStep, SessionEnv } from '@mailfront/proxy-core';

const { greet, onCommand, onLiteral, onSaslLine, onLoginDone } = imapSession;
const plainEnv = { tls: false, starttlsAvailable: true, authAllowed: false };
const tlsEnv = { tls: true, starttlsAvailable: false, authAllowed: true };
const command = { at: 'command' } as const;
const c = (tag: string, name: string, args: ImapCommand['args'] = []): ImapCommand => ({ tag, name, args });
const atom = (value: string) => ({ type: 'atom' as const, value });
const qs = (value: string) => ({ type: 'string' as const, value: Buffer.from(value) });
const sends = (steps: ClientStep[]) => steps.filter((s) => s.do === 'send').map((s) => (s as { text: string }).text).join('');
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Drive the real session glue with a transcript of client lines. */
function transcript(env: SessionEnv, input: string): { out: string; steps: ClientStep[] } {
  const s = new ImapClientSession(env, DEFAULT_IMAP_LIMITS);
  s.feed(Buffer.from(input, 'latin1'));
  const steps: ClientStep[] = [];
  for (let st = s.next(); st; st = s.next()) steps.push(st);
  return { out: sends(steps), steps };
}
const env = (e: Partial<SessionEnv>): SessionEnv => ({ sessionId: 'x', tls: false, starttlsAvailable: true, authAllowed: false, ...e });

describe('IMAP pre-login session', () => {
  test('greeting on a plaintext STARTTLS port: STARTTLS and LOGINDISABLED, no AUTH=', () => {
    const t = greet(plainEnv);
    expect(sends(t.steps)).toBe('* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED] mailfront ready.\r\n');
  });

  test('after TLS: AUTH=PLAIN and no STARTTLS', () => {
    expect(sends(onCommand(command, c('a', 'CAPABILITY'), tlsEnv).steps)).toBe(
      '* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN\r\na OK Pre-login capabilities listed, post-login capabilities have more.\r\n',
    );
  });

  test('plaintext auth allowed by the listener: AUTH=PLAIN, LOGIN works without TLS', () => {
    const e = { tls: false, starttlsAvailable: false, authAllowed: true };
    expect(sends(greet(e).steps)).toContain('AUTH=PLAIN');
    expect(onCommand(command, c('a', 'LOGIN', [atom('u'), atom('p')]), e).steps[0]).toMatchObject({ do: 'login' });
  });

  test('LOGIN and AUTHENTICATE before TLS are refused with PRIVACYREQUIRED', () => {
    expect(sends(onCommand(command, c('a', 'LOGIN', [atom('u'), atom('p')]), plainEnv).steps)).toBe(
      'a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n',
    );
    expect(sends(onCommand(command, c('a', 'AUTHENTICATE', [atom('PLAIN'), atom(b64('\0u\0p'))]), plainEnv).steps)).toContain(
      'a NO [PRIVACYREQUIRED]',
    );
  });

  test('LOGIN yields a login step with the decoded strings', () => {
    const t = onCommand(command, c('t1', 'LOGIN', [qs('jürgen@example.org'), qs('pa ss')]), tlsEnv);
    expect(t.next).toEqual({ at: 'login', tag: 't1' });
    expect(t.steps).toEqual([{ do: 'login', credentials: { user: 'jürgen@example.org', password: 'pa ss', authzid: '', mechanism: 'LOGIN' } }]);
  });

  test('LOGIN nil Nil logs in as "nil" with password "Nil": NIL is text in an astring', () => {
    // Found by fuzzing: any spelling of NIL reached the login as "NIL".
    const { steps } = transcript(env({ tls: true, authAllowed: true }), 'a LOGIN nil Nil\r\n');
    expect(steps[1]).toEqual({ do: 'login', credentials: { user: 'nil', password: 'Nil', authzid: '', mechanism: 'LOGIN' } });
  });

  test('AUTHENTICATE PLAIN with SASL-IR, with continuation, and cancelled with *', () => {
    const ir = onCommand(command, c('a', 'AUTHENTICATE', [atom('plain'), atom(b64('\0alice\0secret'))]), tlsEnv);
    expect(ir.steps).toEqual([{ do: 'login', credentials: { user: 'alice', password: 'secret', authzid: '', mechanism: 'PLAIN' } }]);
    const cont = onCommand(command, c('a', 'AUTHENTICATE', [atom('PLAIN')]), tlsEnv);
    expect(cont.next).toEqual({ at: 'sasl', tag: 'a' });
    expect(sends(cont.steps)).toBe('+ \r\n');
    expect(onSaslLine(cont.next, b64('admin\0alice\0secret')).steps[0]).toMatchObject({ do: 'login', credentials: { authzid: 'admin' } });
    const cancelled = onSaslLine(cont.next, '*');
    expect(cancelled.next).toEqual(command);
    expect(sends(cancelled.steps)).toBe('a BAD Authentication cancelled.\r\n');
  });

  test('bad SASL data: invalid base64, wrong PLAIN shape, unknown mechanism', () => {
    expect(sends(onCommand(command, c('a', 'AUTHENTICATE', [atom('PLAIN'), atom('AGFsaWNl*')]), tlsEnv).steps)).toBe('a BAD Invalid base64 data.\r\n');
    expect(sends(onCommand(command, c('a', 'AUTHENTICATE', [atom('PLAIN'), atom(b64('alice'))]), tlsEnv).steps)).toBe(
      'a BAD Invalid PLAIN authentication data.\r\n',
    );
    expect(sends(onCommand(command, c('a', 'AUTHENTICATE', [atom('CRAM-MD5')]), tlsEnv).steps)).toBe('a NO Unsupported authentication mechanism.\r\n');
  });

  test('STARTTLS: OK then upgrade; refused when already TLS or on a TLS-only port', () => {
    expect(onCommand(command, c('s', 'STARTTLS'), plainEnv).steps).toEqual([
      { do: 'send', text: 's OK Begin TLS negotiation now.\r\n' },
      { do: 'starttls' },
    ]);
    expect(sends(onCommand(command, c('s', 'STARTTLS'), tlsEnv).steps)).toBe('s BAD TLS is already active.\r\n');
    expect(sends(onCommand(command, c('s', 'STARTTLS'), { tls: false, starttlsAvailable: false, authAllowed: true }).steps)).toBe(
      's BAD STARTTLS is not available on this port.\r\n',
    );
  });

  test('ID is answered locally, never BAD', () => {
    expect(sends(onCommand(command, c('i', 'ID', [{ type: 'nil', value: 'NIL' }]), plainEnv).steps)).toBe('* ID ("name" "mailfront")\r\ni OK ID completed.\r\n');
    expect(sends(onCommand(command, c('i', 'ID', [{ type: 'list', items: [qs('name'), qs('x')] }]), plainEnv).steps)).toContain('i OK ID');
  });

  test('other commands before login are BAD and counted as errors', () => {
    const t = onCommand(command, c('a', 'SELECT', [atom('INBOX')]), tlsEnv);
    expect(t.steps).toEqual([{ do: 'send', text: 'a BAD Command unknown or not allowed before login.\r\n', error: true }]);
  });

  test('an HTTP request line: nothing but a harmless tag is reflected', () => {
    const { out } = transcript(env({}), 'POST /<script>alert(1)</script> HTTP/1.1\r\n');
    expect(out).not.toContain('script');
    expect(out).not.toContain('<');
    expect(out).toContain('POST BAD Syntax error in arguments.'); // the tag, as IMAP requires, and nothing else
  });

  test('LOGOUT: BYE, tagged OK, close', () => {
    expect(onCommand(command, c('z', 'LOGOUT'), plainEnv).steps).toEqual([
      { do: 'send', text: '* BYE Logging out.\r\nz OK Logout completed.\r\n' },
      { do: 'close', reason: 'logout' },
    ]);
  });

  test('sync literals: invited for LOGIN after TLS, refused before TLS and for other commands', () => {
    expect(onLiteral(command, { tag: 'a', name: 'LOGIN', size: 5 }, tlsEnv)).toMatchObject({ accept: true, steps: [{ text: '+ OK\r\n' }] });
    expect(onLiteral(command, { tag: 'a', name: 'LOGIN', size: 5 }, plainEnv)).toMatchObject({ accept: false });
    expect(onLiteral(command, { tag: 'a', name: 'SELECT', size: 5 }, tlsEnv)).toMatchObject({
      accept: false,
      steps: [{ text: 'a BAD Literal not allowed here.\r\n', error: true }],
    });
  });

  test('login outcome: failure texts are ours; success carries the backend OK under the client tag', () => {
    const waiting = { at: 'login', tag: 'x9' } as const;
    expect(sends(onLoginDone(waiting, { ok: false, answer: 'auth-failed', kind: 'auth-failed' }).steps)).toBe(
      'x9 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n',
    );
    expect(sends(onLoginDone(waiting, { ok: false, answer: 'temporary', kind: 'connect' }).steps)).toBe(
      'x9 NO [UNAVAILABLE] Temporary failure, please try again later.\r\n',
    );
    expect(sends(onLoginDone(waiting, { ok: false, answer: 'temporary', kind: 'remote', hint: 'in-use' }).steps)).toBe(
      'x9 NO [INUSE] Mailbox is in use by another session, please try again later.\r\n',
    );
    const ok = onLoginDone(waiting, { ok: true, backendReply: ['* CAPABILITY IMAP4rev1 IDLE', 'OK [CAPABILITY IMAP4rev1 IDLE] Logged in'] });
    expect(ok.steps).toEqual([
      { do: 'send', text: '* CAPABILITY IMAP4rev1 IDLE\r\nx9 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n' },
      { do: 'relay' },
    ]);
  });

  test('transcript: pipelined commands answered in order, login pauses reading', () => {
    const { steps } = transcript(env({ tls: true, starttlsAvailable: false, authAllowed: true }), 'a NOOP\r\nb LOGIN u p\r\nc SELECT INBOX\r\n');
    expect(steps.map((s) => s.do)).toEqual(['send', 'send', 'login']);
  });

  test('transcript: STARTTLS pipelined with a command — the command is never answered', () => {
    const s = new ImapClientSession(env({}), DEFAULT_IMAP_LIMITS);
    s.feed(Buffer.from('a STARTTLS\r\nb LOGIN evil evil\r\n'));
    const steps: ClientStep[] = [];
    for (let st = s.next(); st && st.do !== 'starttls'; st = s.next()) steps.push(st);
    s.tlsStarted();
    expect(s.next()).toBeNull();
    expect(s.takeUnconsumed().length).toBe(0);
  });

  test('transcript: fatal input ends with BYE and close', () => {
    const { steps } = transcript(env({}), `a LOGIN {99999999999+}\r\n`);
    expect(steps).toEqual([
      { do: 'send', text: expect.stringContaining('* OK') },
      { do: 'send', text: '* BYE Literal too large.\r\n' },
      { do: 'close', reason: 'client sent literal-too-large' },
    ]);
  });
});
