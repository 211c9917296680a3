import { pop3Backend, type Pop3BackendState } from '@mailfront/pop3';
import type { BackendLoginContext, BackendStep } from '@mailfront/proxy-core';
import type { BackendRow } from '@mailfront/store';
import { loginContext, runBackendMachine } from '@mailfront/testkit';

const ctx = (over: Partial<BackendLoginContext> = {}, b: Partial<BackendRow> = {}): BackendLoginContext =>
  loginContext(over, { ports: { imap: null, pop3: 110, submission: null }, ...b });
const forward = { clientAddress: '203.0.113.9', clientPort: 50123, localAddress: '127.0.0.1', localPort: 1110, sessionId: 'sess', ttl: 5 };
const b64 = (s: string) => Buffer.from(s).toString('base64');

// Captured from Dovecot 2.3.19.1 (Debian) pop3-login: the greeting to a client
// in login_trusted_networks, to any other client, and the CAPA answers before
// and after STLS.
const GREETING_TRUSTED = '+OK [XCLIENT] Dovecot (Debian) ready.';
const GREETING = '+OK Dovecot (Debian) ready.';
const CAPA_PLAIN = ['+OK', 'CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'USER', 'SASL PLAIN LOGIN', '.'];
const CAPA_TLS = ['+OK', 'CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN', '.'];
// With disable_plaintext_auth = yes, before TLS.
const CAPA_NO_PLAINTEXT = ['+OK', 'CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'SASL', '.'];
const LOGGED_IN = '+OK Logged in.';
const AUTH_FAILED = '-ERR [AUTH] Authentication failed.';
// pop3_lock_session = yes, the mailbox held by another session: after ~10 s.
const IN_USE = '-ERR [IN-USE] Mailbox is locked by another POP3 session.';

/** Feed backend lines; return every step (stops at done or fail). */
const run = (c: BackendLoginContext, lines: string[]): BackendStep<Pop3BackendState>[] => runBackendMachine(pop3Backend, c, lines);
const sent = (steps: BackendStep<Pop3BackendState>[]) => steps.map((s) => ('send' in s && s.send !== undefined ? s.send : '')).join('');
const last = (steps: BackendStep<Pop3BackendState>[]) => steps[steps.length - 1];

describe('POP3 backend login machine', () => {
  test('Dovecot: greeting → CAPA → AUTH PLAIN with initial response → its +OK is the reply', () => {
    const steps = run(ctx(), [GREETING, ...CAPA_TLS, LOGGED_IN]);
    expect(steps[0]).toMatchObject({ send: 'CAPA\r\n', sent: 'capa' });
    expect(steps[CAPA_TLS.length]).toMatchObject({ send: `AUTH PLAIN ${b64('\0alice\0secret')}\r\n`, sent: 'auth' });
    expect(last(steps)).toEqual({ done: true, reply: [LOGGED_IN] });
    expect(steps).toHaveLength(CAPA_TLS.length + 2);
  });

  test('trusted backend that announced [XCLIENT]: XCLIENT, then the login after its +OK, even with PIPELINING', () => {
    // Dovecot 2.3 answers a login pipelined with XCLIENT ~30 ms late: never pipelined.
    for (const capa of [CAPA_TLS, CAPA_TLS.filter((l) => l !== 'PIPELINING')]) {
      const steps = run(ctx({ forward }), [GREETING_TRUSTED, ...capa, '+OK Updated', LOGGED_IN]);
      expect(steps[capa.length]).toMatchObject({ send: 'XCLIENT ADDR=203.0.113.9 PORT=50123 SESSION=sess TTL=5\r\n', sent: 'xclient' });
      expect(steps[capa.length + 1]).toMatchObject({ send: `AUTH PLAIN ${b64('\0alice\0secret')}\r\n`, sent: 'auth' });
      expect(last(steps)).toEqual({ done: true, reply: [LOGGED_IN] });
    }
  });

  test('XCLIENT is sent only when both sides agree: trusted backend and [XCLIENT] (or CAPA XCLIENT)', () => {
    // Trusted by us, but Dovecot does not trust us: no [XCLIENT], no XCLIENT.
    expect(sent(run(ctx({ forward }), [GREETING, ...CAPA_TLS]))).not.toContain('XCLIENT');
    // Announced, but we do not trust the backend with the client's address.
    expect(sent(run(ctx(), [GREETING_TRUSTED, ...CAPA_TLS]))).not.toContain('XCLIENT');
    // Some servers list it in CAPA instead.
    const capa = [...CAPA_TLS.slice(0, -1), 'XCLIENT', '.'];
    expect(sent(run(ctx({ forward }), [GREETING, ...capa]))).toContain('XCLIENT ADDR=203.0.113.9 ');
  });

  test('XCLIENT: an IPv6 zone is dropped; a refusal fails the login as remote', () => {
    const v6 = { ...forward, clientAddress: 'fe80::1%eth0' };
    expect(sent(run(ctx({ forward: v6 }), [GREETING_TRUSTED, ...CAPA_TLS]))).toContain('XCLIENT ADDR=fe80::1 PORT=');
    const steps = run(ctx({ forward }), [GREETING_TRUSTED, ...CAPA_TLS, '-ERR Invalid parameters']);
    expect(last(steps)).toMatchObject({ fail: { kind: 'remote', detail: 'XCLIENT refused: -ERR Invalid parameters' } });
  });

  test('master login: AUTH PLAIN with authzid = user, authcid = master', () => {
    const c = ctx({}, { login: 'master', masterUser: 'proxy', masterPassword: 'mpw' });
    expect(sent(run(c, [GREETING, ...CAPA_TLS]))).toBe(`CAPA\r\nAUTH PLAIN ${b64('alice\0proxy\0mpw')}\r\n`);
    const noSasl = CAPA_TLS.filter((l) => !l.startsWith('SASL'));
    expect(last(run(c, [GREETING, ...noSasl]))).toMatchObject({ fail: { kind: 'protocol' } });
    expect(last(run(ctx({}, { login: 'master' }), [GREETING, ...CAPA_TLS]))).toMatchObject({ fail: { kind: 'internal' } });
  });

  test('an initial response that would pass 255 octets goes after "+ " instead (RFC 5034 §4)', () => {
    const password = 'p'.repeat(200);
    const c = ctx({ password });
    const steps = run(c, [GREETING, ...CAPA_TLS, '+ ', LOGGED_IN]);
    expect(steps[CAPA_TLS.length]).toMatchObject({ send: 'AUTH PLAIN\r\n', sent: 'auth' });
    expect(steps[CAPA_TLS.length + 1]).toMatchObject({ send: `${b64(`\0alice\0${password}`)}\r\n` });
    expect(last(steps)).toMatchObject({ done: true });
    // Just under the limit: inline.
    const fits = ctx({ password: 'p'.repeat(170) });
    const line = (run(fits, [GREETING, ...CAPA_TLS])[CAPA_TLS.length] as { send: string }).send;
    expect(line.length).toBeLessThanOrEqual(255);
    expect(line).toMatch(/^AUTH PLAIN \S+\r\n$/);
  });

  test('a second SASL challenge to PLAIN is a protocol error', () => {
    const steps = run(ctx(), [GREETING, ...CAPA_TLS, '+ ']);
    expect(last(steps)).toMatchObject({ fail: { kind: 'protocol', detail: 'unexpected SASL challenge' } });
  });

  test('no SASL PLAIN: USER, then PASS with the password as raw UTF-8 bytes', () => {
    const capa = CAPA_TLS.filter((l) => !l.startsWith('SASL'));
    const c = ctx({ user: 'jürgen', password: 'pä ss ' });
    const steps = run(c, [GREETING, ...capa, '+OK', '+OK maildrop locked and ready']);
    expect(steps[capa.length]).toMatchObject({ send: 'USER j\xc3\xbcrgen\r\n', sent: 'user' });
    expect(steps[capa.length + 1]).toMatchObject({ send: 'PASS p\xc3\xa4 ss \r\n', sent: 'pass' });
    expect(last(steps)).toEqual({ done: true, reply: ['+OK maildrop locked and ready'] });
  });

  test('USER/PASS cannot carry CR, LF or NUL: no credentials are sent', () => {
    const capa = CAPA_TLS.filter((l) => !l.startsWith('SASL'));
    const steps = run(ctx({ password: 'a\r\nDELE 1' }), [GREETING, ...capa]);
    expect(last(steps)).toMatchObject({ fail: { kind: 'protocol' } });
    expect(sent(steps)).not.toContain('PASS');
  });

  test('XCLIENT, then USER after its +OK, then PASS', () => {
    const capa = CAPA_TLS.filter((l) => !l.startsWith('SASL'));
    const steps = run(ctx({ forward }), [GREETING_TRUSTED, ...capa, '+OK Updated', '+OK', LOGGED_IN]);
    expect(steps[capa.length]).toMatchObject({ send: 'XCLIENT ADDR=203.0.113.9 PORT=50123 SESSION=sess TTL=5\r\n', sent: 'xclient' });
    expect(steps[capa.length + 1]).toMatchObject({ send: 'USER alice\r\n', sent: 'user' });
    expect(steps[capa.length + 2]).toMatchObject({ send: 'PASS secret\r\n' });
    expect(last(steps)).toMatchObject({ done: true });
  });

  test('a backend without CAPA (RFC 1939 only) gets USER/PASS', () => {
    const steps = run(ctx(), ['+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>', '-ERR unknown command', '+OK', '+OK 2 messages']);
    expect(sent(steps)).toBe('CAPA\r\nUSER alice\r\nPASS secret\r\n');
    expect(last(steps)).toMatchObject({ done: true });
  });

  test('a CAPA list without USER or SASL PLAIN (Dovecot before TLS, plaintext auth off): no credentials', () => {
    const steps = run(ctx(), [GREETING, ...CAPA_NO_PLAINTEXT]);
    expect(last(steps)).toMatchObject({ fail: { kind: 'protocol', detail: 'backend offers neither SASL PLAIN nor USER' } });
    expect(sent(steps)).toBe('CAPA\r\n');
  });

  test('STLS towards the backend: then CAPA again through TLS, then login', () => {
    const c = ctx({}, { tls: 'starttls' });
    const steps = run(c, [GREETING, ...CAPA_PLAIN, '+OK Begin TLS negotiation now.', ...CAPA_TLS, LOGGED_IN]);
    expect(steps[CAPA_PLAIN.length]).toMatchObject({ send: 'STLS\r\n', sent: 'stls' });
    expect(steps[CAPA_PLAIN.length + 1]).toEqual({
      next: { at: 'capa', listing: false, lines: [], xclient: false },
      startTls: true,
      send: 'CAPA\r\n',
      sent: 'capa',
    });
    expect(steps[CAPA_PLAIN.length + 1 + CAPA_TLS.length]).toMatchObject({ send: expect.stringMatching(/^AUTH PLAIN /) });
    expect(last(steps)).toMatchObject({ done: true });
  });

  test('STLS configured: the [XCLIENT] of the plaintext greeting still counts after TLS', () => {
    const c = ctx({ forward }, { tls: 'starttls' });
    const steps = run(c, [GREETING_TRUSTED, ...CAPA_PLAIN, '+OK Begin TLS negotiation now.', ...CAPA_TLS]);
    expect((last(steps) as { send: string }).send).toMatch(/^XCLIENT ADDR=203\.0\.113\.9 /);
  });

  test('STLS configured but not offered, CAPA missing, or STLS refused: no credentials', () => {
    const c = () => ctx({}, { tls: 'starttls' });
    const noStls = CAPA_PLAIN.filter((l) => l !== 'STLS');
    expect(run(c(), [GREETING, ...noStls])).toContainEqual({ fail: expect.objectContaining({ kind: 'protocol', detail: 'backend does not offer STLS' }) });
    expect(last(run(c(), [GREETING, '-ERR what']))).toMatchObject({ fail: { kind: 'protocol', detail: 'backend does not offer STLS' } });
    const refused = run(c(), [GREETING, ...CAPA_PLAIN, '-ERR not now']);
    expect(last(refused)).toMatchObject({ fail: { kind: 'protocol' } });
    expect(sent(refused)).toBe('CAPA\r\nSTLS\r\n');
  });

  test('greeting: -ERR is the backend refusing (remote); anything else is protocol', () => {
    expect(run(ctx(), ['-ERR [SYS/TEMP] too many connections'])[0]).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), ['* OK IMAP4rev1 ready'])[0]).toMatchObject({ fail: { kind: 'protocol', detail: 'unexpected banner' } });
    expect(run(ctx(), ['220 smtp.example.org ESMTP'])[0]).toMatchObject({ fail: { kind: 'protocol' } });
    expect(run(ctx(), ['+OKAY'])[0]).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('login refused: [AUTH] or no code is auth-failed; [SYS/TEMP], [IN-USE], [LOGIN-DELAY] are remote', () => {
    expect(last(run(ctx(), [GREETING, ...CAPA_TLS, AUTH_FAILED]))).toMatchObject({ fail: { kind: 'auth-failed' } });
    expect(last(run(ctx(), [GREETING, ...CAPA_TLS, '-ERR bad password']))).toMatchObject({ fail: { kind: 'auth-failed' } });
    const inUse = last(run(ctx(), [GREETING, ...CAPA_TLS, IN_USE]));
    expect(inUse).toMatchObject({ fail: { kind: 'remote', detail: `login -ERR: ${IN_USE}`, hint: 'in-use' } });
    for (const l of ['-ERR [SYS/TEMP] Temporary authentication failure.', '-ERR [LOGIN-DELAY] wait 15 minutes', '-ERR [SYS/PERM] broken']) {
      expect(last(run(ctx(), [GREETING, ...CAPA_TLS, l]))).toMatchObject({ fail: { kind: 'remote' } });
    }
    const capa = CAPA_TLS.filter((l) => !l.startsWith('SASL'));
    expect(last(run(ctx(), [GREETING, ...capa, '-ERR no such user']))).toMatchObject({ fail: { kind: 'auth-failed' } });
    expect(last(run(ctx(), [GREETING, ...capa, '+OK', AUTH_FAILED]))).toMatchObject({ fail: { kind: 'auth-failed' } });
  });

  test('master mode: a refused login is the backend’s (remote), not the user’s', () => {
    const m = ctx({}, { login: 'master', masterUser: 'm', masterPassword: 'x' });
    expect(last(run(m, [GREETING, ...CAPA_TLS, AUTH_FAILED]))).toMatchObject({ fail: { kind: 'remote' } });
  });

  test('garbage where a status is due is a protocol error at every step', () => {
    expect(last(run(ctx(), [GREETING, 'hello']))).toMatchObject({ fail: { kind: 'protocol', detail: 'unexpected reply to CAPA' } });
    expect(last(run(ctx(), [GREETING, ...CAPA_TLS, 'OK']))).toMatchObject({ fail: { kind: 'protocol', detail: 'unexpected reply to AUTH' } });
    expect(last(run(ctx({ forward }), [GREETING_TRUSTED, ...CAPA_TLS, 'what']))).toMatchObject({ fail: { kind: 'protocol' } });
    const capa = CAPA_TLS.filter((l) => !l.startsWith('SASL'));
    expect(last(run(ctx(), [GREETING, ...capa, 'x']))).toMatchObject({ fail: { kind: 'protocol', detail: 'unexpected reply to USER' } });
    expect(last(run(ctx(), [GREETING, ...capa, '+OK', 'x']))).toMatchObject({ fail: { kind: 'protocol', detail: 'unexpected reply to PASS' } });
  });

  test('only a lone "." ends the CAPA answer (a stuffed ".." does not); an endless one fails', () => {
    const stuffed = ['+OK', '..', 'SASL PLAIN', '.'];
    expect(sent(run(ctx(), [GREETING, ...stuffed]))).toContain('AUTH PLAIN ');
    const endless = ['+OK', ...Array.from({ length: 200 }, (_, i) => `X-CAP-${i}`)];
    expect(last(run(ctx(), [GREETING, ...endless]))).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('the password never appears in a failure detail', () => {
    const steps = run(ctx({ password: 'hunter2' }), [GREETING, ...CAPA_TLS, '-ERR [AUTH] nope']);
    expect(JSON.stringify(last(steps))).not.toContain('hunter2');
    expect(JSON.stringify(last(steps))).not.toContain(b64('\0alice\0hunter2'));
  });
});
