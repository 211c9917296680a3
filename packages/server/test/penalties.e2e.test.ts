/**
 * Escalating penalties after failed logins, per client address and per user
 * name, as a client sees them: a temporary failure even for the right
 * password, and never for a trusted network.
 */
import * as tls from 'node:tls';
import { startDovecot, type Dovecot } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const ANN = { name: 'ann@example.org', password: 'ann-pw' };
const BEN = { name: 'ben@example.org', password: 'ben-pw' };
const CID = { name: 'cid@example.org', password: 'cid-pw' };
let dovecot: Dovecot;
let mf: MailfrontUnderTest;

beforeAll(async () => {
  dovecot = await startDovecot({ users: [ANN, BEN, CID] });
  mf = await startMailfront({
    backends: [{ name: 'dovecot', host: '127.0.0.1', ports: { imap: dovecot.ports.imap, pop3: null, submission: null } }],
    users: [ANN, BEN, CID].map((u) => ({ ...u, backend: 'dovecot' })),
    config: {
      auth: { failureDelayMs: 20 },
      limits: { maxAuthAttempts: 10 },
      penalties: { threshold: 2, baseMs: 60_000, trustedNetworks: ['127.0.0.3/32'] },
    },
  });
});
afterAll(async () => {
  await mf?.stop();
  await dovecot?.stop();
});

/** One LOGIN over implicit TLS from a chosen loopback address; the tagged answer. */
function loginFrom(localAddress: string, user: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: mf.port('imap', 'implicit'), localAddress, ca: mf.certPem, servername: 'localhost' });
    let buf = '';
    let sent = false;
    s.on('data', (d) => {
      buf += d.toString();
      if (!sent && buf.includes('\r\n')) {
        sent = true;
        buf = '';
        s.write(`a1 LOGIN "${user}" "${password}"\r\n`);
      }
      const m = /^a1 .*$/m.exec(buf);
      if (m) {
        resolve(m[0].trim());
        s.destroy();
      }
    });
    s.on('error', reject);
  });
}

const FAILED = 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.';
const TEMPFAIL = 'a1 NO [UNAVAILABLE] Temporary failure, please try again later.';

test('after the threshold, even the right password gets a temporary failure from that address', async () => {
  expect(await loginFrom('127.0.0.1', ANN.name, 'wrong-1')).toBe(FAILED);
  expect(await loginFrom('127.0.0.1', BEN.name, 'wrong-2')).toBe(FAILED);
  expect(await loginFrom('127.0.0.1', CID.name, CID.password)).toBe(TEMPFAIL);
  await mf.waitForLog(/"kind":"penalised"/);
  // Another address is not affected.
  expect(await loginFrom('127.0.0.2', CID.name, CID.password)).toMatch(/^a1 OK/);
});

test('a user name under attack is refused from any address', async () => {
  expect(await loginFrom('127.0.0.4', BEN.name, 'wrong-3')).toBe(FAILED);
  // ben now has two failures (one above, one here) → refused even from a fresh address with the right password
  expect(await loginFrom('127.0.0.5', BEN.name, BEN.password)).toBe(TEMPFAIL);
});

test('a trusted network is never penalised', async () => {
  for (let i = 0; i < 4; i++) expect(await loginFrom('127.0.0.3', 'nobody@example.org', `wrong-${i}`)).toBe(FAILED);
  expect(await loginFrom('127.0.0.3', ANN.name, ANN.password)).toMatch(/^a1 OK/);
});

