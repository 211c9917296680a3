/**
 * Towards backends: TLS (STARTTLS and implicit) with certificate verification
 * against a real Dovecot, and misbehaving backends that must never get a
 * user's credentials.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rawConnect, startDovecot, type Dovecot } from '@mailfront/testkit';
import { startFakeBackend, type FakeBackend } from './fake-backend';
import { startMailfront, type MailfrontUnderTest } from './harness';

const users = ['erin', 'frank', 'gina', 'hal', 'ivan', 'judy', 'karl', 'liam', 'mona'].map((n) => ({ name: `${n}@example.org`, password: `${n}-pw` }));
const [ERIN, FRANK, GINA, HAL, IVAN, JUDY, KARL, LIAM, MONA] = users as [typeof users[0], ...typeof users];

let dovecot: Dovecot;
let mf: MailfrontUnderTest;
const fakes: Record<string, FakeBackend> = {};
const CAPS_TLS = '* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] fake ready\r\n';

beforeAll(async () => {
  dovecot = await startDovecot({ users });
  // A backend that answers STARTTLS and then sends more plaintext in the same write: response injection.
  fakes['inject'] = await startFakeBackend({
    greeting: CAPS_TLS,
    onLine: (l) => (l === 'S STARTTLS' ? 'S OK Begin TLS negotiation now.\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n' : null),
  });
  fakes['nostarttls'] = await startFakeBackend({ greeting: '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] no tls\r\n' });
  fakes['refuse'] = await startFakeBackend({ greeting: CAPS_TLS, onLine: (l) => (l === 'S STARTTLS' ? 'S NO not today\r\n' : null) });
  fakes['preauth'] = await startFakeBackend({ greeting: '* PREAUTH [CAPABILITY IMAP4rev1] logged in as someone\r\n' });
  fakes['stall'] = await startFakeBackend({ greeting: '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] then silence\r\n' });
  const imap = (port: number) => ({ imap: port, pop3: null, submission: null });
  const wrongCa = path.join(dovecot.baseDir, '..', 'wrong-ca.pem');
  mf = await startMailfront({
    backends: [
      { name: 'starttls', host: '127.0.0.1', ports: imap(dovecot.ports.imap), tls: 'starttls', caFile: dovecot.caFile },
      { name: 'implicit', host: '127.0.0.1', ports: imap(dovecot.ports.imaps), tls: 'implicit', caFile: dovecot.caFile },
      { name: 'wrong-ca', host: '127.0.0.1', ports: imap(dovecot.ports.imaps), tls: 'implicit', caFile: wrongCa },
      { name: 'insecure', host: '127.0.0.1', ports: imap(dovecot.ports.imaps), tls: 'implicit', insecure: true },
      { name: 'inject', host: '127.0.0.1', ports: imap(fakes['inject'].port), tls: 'starttls' },
      { name: 'nostarttls', host: '127.0.0.1', ports: imap(fakes['nostarttls'].port), tls: 'starttls' },
      { name: 'refuse', host: '127.0.0.1', ports: imap(fakes['refuse'].port), tls: 'starttls' },
      { name: 'preauth', host: '127.0.0.1', ports: imap(fakes['preauth'].port) },
      { name: 'stall', host: '127.0.0.1', ports: imap(fakes['stall'].port) },
    ],
    users: [
      { ...ERIN, backend: 'starttls' },
      { ...FRANK, backend: 'implicit' },
      { ...GINA, backend: 'wrong-ca' },
      { ...HAL, backend: 'insecure' },
      { ...IVAN, backend: 'inject' },
      { ...JUDY, backend: 'nostarttls' },
      { ...KARL, backend: 'refuse' },
      { ...LIAM, backend: 'preauth' },
      { ...MONA, backend: 'stall' },
    ],
    config: { limits: { backendLoginTimeoutMs: 700 } },
  });
  // A CA that did not sign Dovecot's certificate: mailfront's own self-signed one.
  fs.writeFileSync(wrongCa, mf.certPem);
});

afterAll(async () => {
  await mf?.stop();
  await dovecot?.stop();
  await Promise.all(Object.values(fakes).map((f) => f.close()));
});

async function login(user: { name: string; password: string }): Promise<string[]> {
  const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem, servername: 'localhost' });
  await c.readLine();
  const lines = await c.command(`a1 LOGIN "${user.name}" "${user.password}"`);
  if (/^a1 OK/.test(lines[lines.length - 1]!)) lines.push(...(await c.command('a2 SELECT INBOX')));
  await c.close();
  return lines;
}
const TEMPFAIL = 'a1 NO [UNAVAILABLE] Temporary failure, please try again later.';
const noCredentials = (f: FakeBackend, u: { password: string }) => {
  expect(f.received.join('\n')).not.toMatch(/LOGIN|AUTHENTICATE/);
  expect(f.received.join('\n')).not.toContain(u.password);
  expect(f.received.join('\n')).not.toContain(Buffer.from(u.password).toString('base64').slice(0, 6));
};

describe('TLS towards a real Dovecot', () => {
  test('STARTTLS with the backend CA verified: login and SELECT work', async () => {
    const lines = await login(ERIN);
    expect(lines).toContainEqual(expect.stringMatching(/^a1 OK/));
    expect(lines).toContainEqual(expect.stringMatching(/^a2 OK/));
    await dovecot.waitForLog(new RegExp(`Login: user=<${ERIN.name}>.*TLS`));
  });

  test('implicit TLS with the backend CA verified', async () => {
    expect(await login(FRANK)).toContainEqual(expect.stringMatching(/^a2 OK/));
  });

  test('a certificate that does not verify: no login, temporary failure, logged as such', async () => {
    expect(await login(GINA)).toEqual([TEMPFAIL]);
    const line = await mf.waitForLog(/"msg":"login failed"/);
    expect(line).toContain(`"user":"${GINA.name}"`);
    expect(line).toMatch(/"kind":"protocol".*verify the first certificate/);
  });

  test('an explicit insecure backend accepts the unverified certificate', async () => {
    expect(await login(HAL)).toContainEqual(expect.stringMatching(/^a2 OK/));
  });
});

describe('misbehaving backends never get credentials', () => {
  test('bytes after the STARTTLS reply (response injection) fail the login', async () => {
    expect(await login(IVAN)).toEqual([TEMPFAIL]);
    noCredentials(fakes['inject']!, IVAN);
    await mf.waitForLog(/"kind":"protocol","reason":"bytes after the STARTTLS reply"/);
  });

  test('STARTTLS configured but not offered (stripping)', async () => {
    expect(await login(JUDY)).toEqual([TEMPFAIL]);
    noCredentials(fakes['nostarttls']!, JUDY);
  });

  test('STARTTLS refused', async () => {
    expect(await login(KARL)).toEqual([TEMPFAIL]);
    noCredentials(fakes['refuse']!, KARL);
  });

  test('PREAUTH greeting', async () => {
    expect(await login(LIAM)).toEqual([TEMPFAIL]);
    noCredentials(fakes['preauth']!, LIAM);
  });

  test('a backend that stalls after its greeting: temporary failure after the login timeout', async () => {
    const t0 = Date.now();
    expect(await login(MONA)).toEqual([TEMPFAIL]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700 - 20);
    await mf.waitForLog(/"kind":"timeout".*"state":"login\/login"/);
  });
});
