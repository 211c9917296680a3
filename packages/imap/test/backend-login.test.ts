import { imapBackend, type ImapBackendState } from '@mailfront/imap';
import type { BackendLoginContext, BackendStep } from '@mailfront/proxy-core';
import type { BackendRow } from '@mailfront/store';
import { loginContext, runBackendMachine } from '@mailfront/testkit';

const ctx = (over: Partial<BackendLoginContext> = {}, b: Partial<BackendRow> = {}): BackendLoginContext =>
  loginContext(over, { ports: { imap: 143, pop3: null, submission: null }, ...b });
const b64 = (s: string) => Buffer.from(s).toString('base64');
const DOVECOT_BANNER = '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.';

const run = (c: BackendLoginContext, lines: string[]): BackendStep<ImapBackendState>[] => runBackendMachine(imapBackend, c, lines);

describe('IMAP backend login machine', () => {
  test('Dovecot banner with capabilities → AUTHENTICATE PLAIN with SASL-IR in one round trip', () => {
    const steps = run(ctx(), [DOVECOT_BANNER, 'L OK [CAPABILITY IMAP4rev1 IDLE] Logged in']);
    expect(steps[0]).toMatchObject({ send: `L AUTHENTICATE PLAIN ${b64('\0alice\0secret')}\r\n`, sent: 'login' });
    expect(steps[1]).toEqual({ done: true, reply: ['OK [CAPABILITY IMAP4rev1 IDLE] Logged in'] });
  });

  test('trusted backend: ID with the client address is pipelined before the login', () => {
    const forward = { clientAddress: '203.0.113.9', clientPort: 50123, localAddress: '127.0.0.1', localPort: 1143, sessionId: 'sess', ttl: 5 };
    const steps = run(ctx({ forward }), [DOVECOT_BANNER, '* ID NIL', 'I OK ID completed', 'L OK Logged in']);
    const sent = (steps[0] as { send: string }).send;
    expect(sent).toBe(
      'I ID ("x-session-id" "sess" "x-originating-ip" "203.0.113.9" "x-originating-port" "50123" ' +
        '"x-connected-ip" "127.0.0.1" "x-connected-port" "1143" "x-proxy-ttl" "5")\r\n' +
        `L AUTHENTICATE PLAIN ${b64('\0alice\0secret')}\r\n`,
    );
    expect((steps[0] as { sent: string }).sent).toBe('id+login');
    expect(steps[3]).toEqual({ done: true, reply: ['OK Logged in'] });
  });

  test('untrusted backend gets no ID', () => {
    const steps = run(ctx(), [DOVECOT_BANNER]);
    expect((steps[0] as { send: string }).send).not.toContain(' ID ');
  });

  test('master login: authzid = user, authcid = master', () => {
    const c = ctx({}, { login: 'master', masterUser: 'proxy', masterPassword: 'mpw' });
    expect(run(c, [DOVECOT_BANNER])[0]).toMatchObject({ send: `L AUTHENTICATE PLAIN ${b64('alice\0proxy\0mpw')}\r\n` });
  });

  test('banner without capabilities → CAPABILITY first; no SASL-IR → continuation', () => {
    const steps = run(ctx(), ['* OK ready', '* CAPABILITY IMAP4rev1 AUTH=PLAIN', 'C OK done', '+ ', 'L OK Logged in']);
    expect(steps[0]).toMatchObject({ send: 'C CAPABILITY\r\n' });
    expect(steps[2]).toMatchObject({ send: 'L AUTHENTICATE PLAIN\r\n' });
    expect(steps[3]).toMatchObject({ send: `${b64('\0alice\0secret')}\r\n` });
    expect(steps[4]).toMatchObject({ done: true });
  });

  test('no AUTH=PLAIN → LOGIN with quoted strings, escapes; 8-bit via LITERAL+', () => {
    const c = ctx({ user: 'a"b', password: 'p\\w' });
    expect(run(c, ['* OK [CAPABILITY IMAP4rev1] hi'])[0]).toMatchObject({ send: 'L LOGIN "a\\"b" "p\\\\w"\r\n' });
    const u = ctx({ password: 'pä' });
    expect(run(u, ['* OK [CAPABILITY IMAP4rev1 LITERAL+] hi'])[0]).toMatchObject({ send: 'L LOGIN "alice" {3+}\r\np\xc3\xa4\r\n' });
    expect(run(u, ['* OK [CAPABILITY IMAP4rev1] hi'])[0]).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('STARTTLS towards the backend: then capabilities again, then login', () => {
    const c = ctx({}, { tls: 'starttls' });
    const steps = run(c, [DOVECOT_BANNER, 'S OK Begin TLS', '* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN', 'C OK', 'L OK in']);
    expect(steps[0]).toMatchObject({ send: 'S STARTTLS\r\n', sent: 'starttls' });
    expect(steps[1]).toMatchObject({ startTls: true, send: 'C CAPABILITY\r\n' });
    expect(steps[3]).toMatchObject({ send: expect.stringContaining('L AUTHENTICATE PLAIN') });
    expect(steps[4]).toMatchObject({ done: true });
  });

  test('STARTTLS configured but not offered: no credentials are sent', () => {
    const c = ctx({}, { tls: 'starttls' });
    const steps = run(c, ['* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no tls here']);
    expect(steps).toEqual([{ fail: expect.objectContaining({ kind: 'protocol', detail: 'backend does not offer STARTTLS' }) }]);
  });

  test('STARTTLS refused, PREAUTH, BYE, garbage', () => {
    expect(run(ctx({}, { tls: 'starttls' }), [DOVECOT_BANNER, 'S NO not now'])[1]).toMatchObject({ fail: { kind: 'protocol' } });
    expect(run(ctx(), ['* PREAUTH [CAPABILITY IMAP4rev1] logged in as root'])[0]).toMatchObject({ fail: { kind: 'protocol' } });
    expect(run(ctx(), ['* BYE too busy'])[0]).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), ['HTTP/1.1 400 Bad Request'])[0]).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('login refused: auth-failed in passthrough, remote for [UNAVAILABLE] and in master mode', () => {
    expect(run(ctx(), [DOVECOT_BANNER, 'L NO [AUTHENTICATIONFAILED] Authentication failed.'])[1]).toMatchObject({ fail: { kind: 'auth-failed' } });
    expect(run(ctx(), [DOVECOT_BANNER, 'L NO [UNAVAILABLE] Try later'])[1]).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), [DOVECOT_BANNER, 'L NO [INUSE] Mailbox in use'])[1]).toMatchObject({ fail: { kind: 'remote', hint: 'in-use' } });
    const m = ctx({}, { login: 'master', masterUser: 'm', masterPassword: 'x' });
    expect(run(m, [DOVECOT_BANNER, 'L NO [AUTHENTICATIONFAILED] Authentication failed.'])[1]).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), [DOVECOT_BANNER, 'L BAD what'])[1]).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('a CAPABILITY reply without capabilities does not loop', () => {
    expect(run(ctx(), ['* OK hi', 'C OK'])[1]).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('literal length of a backend line', () => {
    expect(imapBackend.literalLength!('* ID ("name" {7}')).toBe(7);
    expect(imapBackend.literalLength!('* ID ("name" {0}')).toBe(0);
    expect(imapBackend.literalLength!('* OK fine')).toBeNull();
  });
});
