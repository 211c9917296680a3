import { submissionBackend, xtext, isEhloName, type SubmissionBackendState, type ExtensionPolicy } from '@mailfront/submission';
import type { BackendLoginContext, BackendStep, ForwardInfo } from '@mailfront/proxy-core';
import type { BackendRow } from '@mailfront/store';
import { loginContext } from '@mailfront/testkit';

/** Dovecot 2.3.19 submission-login, captured from the testkit's Dovecot (reply lines as received). */
const DOVECOT = {
  greeting: ['220 localhost Dovecot (Debian) ready.'],
  /** EHLO before TLS, to a client in login_trusted_networks. */
  ehloTrusted: [
    '250-localhost',
    '250-8BITMIME',
    '250-AUTH PLAIN LOGIN',
    '250-BURL imap',
    '250-CHUNKING',
    '250-ENHANCEDSTATUSCODES',
    '250-SIZE',
    '250-STARTTLS',
    '250-PIPELINING',
    '250 XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT FORWARD',
  ],
  /** The same, from an untrusted address: no XCLIENT. */
  ehloUntrusted: ['250-localhost', '250-8BITMIME', '250-AUTH PLAIN LOGIN', '250-BURL imap', '250-CHUNKING', '250-ENHANCEDSTATUSCODES', '250-SIZE', '250-STARTTLS', '250 PIPELINING'],
  /** Inside TLS: no STARTTLS. */
  ehloTls: [
    '250-localhost',
    '250-8BITMIME',
    '250-AUTH PLAIN LOGIN',
    '250-BURL imap',
    '250-CHUNKING',
    '250-ENHANCEDSTATUSCODES',
    '250-SIZE',
    '250-PIPELINING',
    '250 XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT FORWARD',
  ],
  starttls: ['220 2.0.0 Begin TLS negotiation now.'],
  authOk: ['235 2.7.0 Logged in.'],
  authFailed: ['535 5.7.8 Authentication failed.'],
  /** EHLO after AUTH: the submission process itself, with its real SIZE. */
  ehloAuthed: ['250-localhost', '250-8BITMIME', '250-AUTH', '250-BURL imap imap://localhost', '250-CHUNKING', '250-ENHANCEDSTATUSCODES', '250-PIPELINING', '250 SIZE 41943040'],
};

const policy: ExtensionPolicy = { extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE', 'CHUNKING'], maxMessageBytes: 0 };
const machine = (p: ExtensionPolicy = policy) => submissionBackend({ hostname: 'mf.example.org', policy: p });

const forward: ForwardInfo = { clientAddress: '203.0.113.9', clientPort: 50123, localAddress: '127.0.0.1', localPort: 1587, sessionId: 'Ab-_12345678xyzQ', ttl: 5 };
const ctx = (over: Partial<BackendLoginContext> = {}, b: Partial<BackendRow> = {}): BackendLoginContext =>
  loginContext(
    { user: 'alice@example.org', clientContext: { helo: 'client.example.net', proto: 'ESMTP' }, ...over },
    { ports: { imap: null, pop3: null, submission: 587 }, ...b },
  );
const b64 = (s: string) => Buffer.from(s).toString('base64');

type Step = BackendStep<SubmissionBackendState>;
/** Feed backend lines one at a time; return every step (and what was sent, in order). */
function run(c: BackendLoginContext, lines: string[], p: ExtensionPolicy = policy): { steps: Step[]; sent: string[]; last: Step } {
  const m = machine(p);
  let s = m.initial(c);
  const steps: Step[] = [];
  const sent: string[] = [];
  for (const l of lines) {
    const st = m.onLine(s, l, c);
    steps.push(st);
    if ('next' in st) {
      s = st.next;
      if (st.startTls) c.tls = true;
      if (st.send !== undefined) sent.push(st.send);
    } else break;
  }
  return { steps, sent, last: steps[steps.length - 1]! };
}
const FULL = [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted, ...DOVECOT.authOk, ...DOVECOT.ehloAuthed];

describe('submission backend login machine', () => {
  test('plain, untrusted: EHLO with our name, AUTH PLAIN with initial response, EHLO again; the 235 is the reply', () => {
    const { sent, last, steps } = run(ctx(), FULL);
    expect(sent).toEqual(['EHLO mf.example.org\r\n', `AUTH PLAIN ${b64('\0alice@example.org\0secret')}\r\n`, 'EHLO mf.example.org\r\n']);
    expect(last).toEqual({ done: true, reply: ['235 2.7.0 Logged in.'] });
    // Each multi-line reply is collected: only its last line moves on.
    expect(steps.filter((s) => 'send' in s && s.send !== undefined).map((s) => (s as { sent: string }).sent)).toEqual(['ehlo', 'auth', 'ehlo']);
  });

  test('STARTTLS configured: STARTTLS, upgrade, EHLO inside TLS; only that reply counts', () => {
    const c = ctx({}, { tls: 'starttls' });
    const { sent, steps, last } = run(c, [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted, ...DOVECOT.starttls, ...DOVECOT.ehloTls, ...DOVECOT.authOk, ...DOVECOT.ehloAuthed]);
    expect(sent.slice(0, 3)).toEqual(['EHLO mf.example.org\r\n', 'STARTTLS\r\n', 'EHLO mf.example.org\r\n']);
    expect(steps.find((s) => 'startTls' in s && s.startTls)).toMatchObject({ send: 'EHLO mf.example.org\r\n', sent: 'ehlo' });
    expect(sent[3]).toMatch(/^AUTH PLAIN /);
    expect(last).toMatchObject({ done: true });
  });

  test('STARTTLS configured but not offered: fail before any credentials', () => {
    const noTls = DOVECOT.ehloUntrusted.filter((l) => !l.includes('STARTTLS'));
    const { sent, last } = run(ctx({}, { tls: 'starttls' }), [...DOVECOT.greeting, ...noTls]);
    expect(last).toEqual({ fail: expect.objectContaining({ kind: 'protocol', detail: 'backend does not offer STARTTLS' }) });
    expect(sent.join('')).not.toContain('AUTH');
  });

  test('STARTTLS refused: protocol failure', () => {
    expect(run(ctx({}, { tls: 'starttls' }), [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted, '454 4.7.0 TLS not available']).last).toMatchObject({
      fail: { kind: 'protocol' },
    });
  });

  test('trusted: XCLIENT with the attributes Dovecot lists, 220, EHLO with the client name, then AUTH', () => {
    const c = ctx({ forward });
    const { sent, last } = run(c, [...DOVECOT.greeting, ...DOVECOT.ehloTrusted, '220 localhost Dovecot (Debian) ready.', ...DOVECOT.ehloTrusted, ...DOVECOT.authOk, ...DOVECOT.ehloAuthed]);
    expect(sent).toEqual([
      'EHLO mf.example.org\r\n',
      'XCLIENT ADDR=203.0.113.9 PORT=50123 PROTO=ESMTP SESSION=Ab-_12345678xyzQ TTL=5 HELO=client.example.net\r\n',
      'EHLO client.example.net\r\n',
      `AUTH PLAIN ${b64('\0alice@example.org\0secret')}\r\n`,
      // Again the client's name: the last EHLO is the one Dovecot writes into Received.
      'EHLO client.example.net\r\n',
    ]);
    expect(last).toMatchObject({ done: true });
  });

  test('trusted over STARTTLS: XCLIENT only inside TLS', () => {
    const c = ctx({ forward }, { tls: 'starttls' });
    const { sent } = run(c, [...DOVECOT.greeting, ...DOVECOT.ehloTrusted, ...DOVECOT.starttls, ...DOVECOT.ehloTls, '220 again']);
    expect(sent.map((s) => s.split(' ')[0]!.trim())).toEqual(['EHLO', 'STARTTLS', 'EHLO', 'XCLIENT', 'EHLO']);
  });

  test("Postfix's XCLIENT: DESTADDR/DESTPORT, no SESSION/TTL; IPv6 with IPV6:; a multi-line 220 after it", () => {
    const f = { ...forward, clientAddress: '2001:db8::7' };
    const postfix = ['250-mail.example.org', '250-PIPELINING', '250-SIZE 10240000', '250-8BITMIME', '250-ENHANCEDSTATUSCODES', '250-CHUNKING', '250-AUTH PLAIN', '250 XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT'];
    const { sent, steps } = run(ctx({ forward: f }), ['220-mail.example.org ESMTP', '220 Postfix', ...postfix, '220-mail.example.org', '220 ESMTP again', ...postfix]);
    expect(sent[1]).toBe('XCLIENT ADDR=IPV6:2001:db8::7 PORT=50123 PROTO=ESMTP DESTADDR=127.0.0.1 DESTPORT=1587 HELO=client.example.net\r\n');
    expect(sent[2]).toBe('EHLO client.example.net\r\n');
    expect(steps[0]).toEqual({ next: { at: 'banner', lines: ['220-mail.example.org ESMTP'] } });
  });

  test('trusted backend without XCLIENT (we are not in its trusted networks): no credentials', () => {
    const { last, sent } = run(ctx({ forward }), [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted]);
    expect(last).toMatchObject({ fail: { kind: 'protocol', detail: expect.stringContaining('XCLIENT') } });
    expect(sent.join('')).not.toContain('AUTH');
  });

  test('XCLIENT refused: 5xx protocol, 4xx remote', () => {
    const lines = [...DOVECOT.greeting, ...DOVECOT.ehloTrusted];
    expect(run(ctx({ forward }), [...lines, '550 5.7.0 Insufficient authorization']).last).toMatchObject({ fail: { kind: 'protocol' } });
    expect(run(ctx({ forward }), [...lines, '421 4.3.2 Shutting down']).last).toMatchObject({ fail: { kind: 'remote' } });
  });

  test('after XCLIENT an unusable client EHLO name is replaced by the address literal; HELO= is xtext', () => {
    const c = ctx({ forward, clientContext: { helo: 'my_pc+=\xff', proto: 'SMTP' } });
    const { sent } = run(c, [...DOVECOT.greeting, ...DOVECOT.ehloTrusted, '220 again']);
    expect(sent[1]).toBe('XCLIENT ADDR=203.0.113.9 PORT=50123 PROTO=SMTP SESSION=Ab-_12345678xyzQ TTL=5 HELO=my_pc+2B+3D+FF\r\n');
    expect(sent[2]).toBe('EHLO [203.0.113.9]\r\n');
    const v6 = ctx({ forward: { ...forward, clientAddress: '::1' }, clientContext: { helo: 'x y' } });
    expect(run(v6, [...DOVECOT.greeting, ...DOVECOT.ehloTrusted, '220 again']).sent[2]).toBe('EHLO [IPv6:::1]\r\n');
  });

  test('master login: authzid = user, authcid = master; 535 is then the backend\'s trouble', () => {
    const c = ctx({}, { login: 'master', masterUser: 'proxy', masterPassword: 'mpw' });
    expect(run(c, FULL).sent[1]).toBe(`AUTH PLAIN ${b64('alice@example.org\0proxy\0mpw')}\r\n`);
    expect(run(c, [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted, ...DOVECOT.authFailed]).last).toMatchObject({ fail: { kind: 'remote' } });
  });

  test('AUTH refused: 535 auth-failed, 454 remote, other 5xx protocol', () => {
    const head = [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted];
    expect(run(ctx(), [...head, ...DOVECOT.authFailed]).last).toMatchObject({ fail: { kind: 'auth-failed' } });
    expect(run(ctx(), [...head, '454 4.7.0 Temporary authentication failure']).last).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), [...head, '538 5.7.11 Encryption required']).last).toMatchObject({ fail: { kind: 'protocol' } });
    expect(run(ctx(), [...head, '334 ']).last).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('a response that would make the AUTH line longer than 512 octets goes after an empty 334', () => {
    const c = ctx({ password: 'p'.repeat(400) });
    const { sent, last } = run(c, [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted, '334 ', ...DOVECOT.authOk, ...DOVECOT.ehloAuthed]);
    expect(sent[1]).toBe('AUTH PLAIN\r\n');
    expect(sent[2]).toBe(`${b64(`\0alice@example.org\0${'p'.repeat(400)}`)}\r\n`);
    expect(last).toMatchObject({ done: true });
  });

  test('no AUTH PLAIN offered: no credentials', () => {
    const { last } = run(ctx(), [...DOVECOT.greeting, '250-x', '250 AUTH CRAM-MD5']);
    expect(last).toMatchObject({ fail: { kind: 'protocol', detail: 'backend does not offer AUTH PLAIN' } });
  });

  test('the authenticated EHLO must offer every advertised extension', () => {
    const utf8 = { ...policy, extensions: [...policy.extensions, 'SMTPUTF8' as const] };
    expect(run(ctx(), FULL, utf8).last).toEqual({
      fail: expect.objectContaining({ kind: 'protocol', detail: 'backend does not offer what clients are told (submission.extensions): SMTPUTF8' }),
    });
    const noChunking = DOVECOT.ehloAuthed.filter((l) => !l.includes('CHUNKING'));
    expect(run(ctx(), [...DOVECOT.greeting, ...DOVECOT.ehloUntrusted, ...DOVECOT.authOk, ...noChunking]).last).toMatchObject({
      fail: { detail: expect.stringMatching(/: CHUNKING$/) },
    });
  });

  test('SIZE: ours may not exceed the backend limit; Dovecot\'s 40 MiB passes 40 MiB', () => {
    expect(run(ctx(), FULL, { ...policy, maxMessageBytes: 41943040 }).last).toMatchObject({ done: true });
    expect(run(ctx(), FULL, { ...policy, maxMessageBytes: 52428800 }).last).toMatchObject({
      fail: { detail: expect.stringContaining('SIZE 52428800 (backend: 41943040)') },
    });
  });

  test('greetings refused, garbage, and mixed reply codes', () => {
    expect(run(ctx(), ['421 4.3.2 Service not available']).last).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), ['554 5.7.1 No SMTP service here']).last).toMatchObject({ fail: { kind: 'remote' } });
    expect(run(ctx(), ['* OK IMAP4rev1 ready']).last).toMatchObject({ fail: { kind: 'protocol' } });
    expect(run(ctx(), ['220-a', '250 b']).last).toMatchObject({ fail: { kind: 'protocol', detail: expect.stringContaining('multi-line') } });
    expect(run(ctx(), [...DOVECOT.greeting, '502 5.5.1 EHLO not supported']).last).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('xtext and EHLO names', () => {
    expect(xtext('a+b=c d\x7f')).toBe('a+2Bb+3Dc+20d+7F');
    expect(['client.example.net', 'PC1', '[192.0.2.1]', '[IPv6:2001:db8::1]'].every(isEhloName)).toBe(true);
    expect(['my_pc', '-a', '[1.2.3]', '[IPv6:1.2.3.4]', 'a..b', ''].some(isEhloName)).toBe(false);
  });
});
