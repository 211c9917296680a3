/**
 * Client-facing certificates by server name (SNI), strict SNI, and the
 * minimum TLS version, on implicit-TLS and STARTTLS listeners.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { generateSelfSigned } from '@mailfront/server';
import { makeTempDir, rawConnect, type TempDir } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

let certs: TempDir;
const fingerprints: Record<string, string> = {};

function writePair(name: string, hostnames: string[]): { cert: string; key: string } {
  const pem = generateSelfSigned({ hostnames });
  const cert = path.join(certs.path, `${name}.pem`);
  const key = path.join(certs.path, `${name}.key`);
  fs.writeFileSync(cert, pem.cert);
  fs.writeFileSync(key, pem.key, { mode: 0o600 });
  fingerprints[name] = new X509Certificate(pem.cert).fingerprint256;
  return { cert, key };
}

async function serverWith(tlsSection: Record<string, unknown>): Promise<MailfrontUnderTest> {
  return startMailfront({ backends: [], users: [], config: { tls: tlsSection } });
}

/** The certificate served on the implicit-TLS port for `servername` (undefined: no SNI). */
function served(mf: MailfrontUnderTest, servername?: string, extra: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: mf.port('imap', 'implicit'), rejectUnauthorized: false, ...(servername ? { servername } : {}), ...extra }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.destroy();
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
  });
}

beforeAll(async () => {
  certs = await makeTempDir('mailfront-sni-');
});
afterAll(() => certs?.cleanup());

describe('SNI', () => {
  let mf: MailfrontUnderTest;
  beforeAll(async () => {
    const def = writePair('default', ['mail.example.org']);
    const exact = writePair('exact', ['imap.example.net']);
    const wild = writePair('wild', ['*.example.com']);
    mf = await serverWith({ ...def, sni: [{ names: ['imap.example.net', 'IMAP2.example.net'], ...exact }, { names: ['*.example.com'], ...wild }] });
  });
  afterAll(() => mf?.stop());

  test('an exact name gets its own certificate, in any case', async () => {
    expect(await served(mf, 'imap.example.net')).toBe(fingerprints['exact']);
    expect(await served(mf, 'Imap2.Example.NET')).toBe(fingerprints['exact']);
  });

  test('a wildcard covers one label, not the bare domain nor two labels', async () => {
    expect(await served(mf, 'mx.example.com')).toBe(fingerprints['wild']);
    expect(await served(mf, 'example.com')).toBe(fingerprints['default']);
    expect(await served(mf, 'a.b.example.com')).toBe(fingerprints['default']);
  });

  test('no SNI, or an unknown name (not strict): the default certificate', async () => {
    expect(await served(mf)).toBe(fingerprints['default']);
    expect(await served(mf, 'elsewhere.example')).toBe(fingerprints['default']);
  });

  test('STARTTLS uses the same certificates by name', async () => {
    const c = await rawConnect({ port: mf.port('imap', 'starttls') });
    await c.readLine();
    expect(await c.command('a STARTTLS')).toEqual(['a OK Begin TLS negotiation now.']);
    await c.startTls({ servername: 'mx.example.com', rejectUnauthorized: false });
    expect((c.socket as tls.TLSSocket).getPeerX509Certificate()!.fingerprint256).toBe(fingerprints['wild']);
    await c.close();
  });
});

describe('strict SNI and the minimum version', () => {
  let mf: MailfrontUnderTest;
  beforeAll(async () => {
    const def = writePair('strict-default', ['mail.example.org']);
    const exact = writePair('strict-exact', ['imap.example.net']);
    mf = await serverWith({ ...def, sni: [{ names: ['imap.example.net'], ...exact }], strictSni: true, minVersion: 'TLSv1.3' });
  });
  afterAll(() => mf?.stop());

  test('strict: a name without a certificate is refused; a known name and no name are served', async () => {
    expect(await served(mf, 'elsewhere.example')).toMatch(/^error: /);
    expect(await served(mf, 'imap.example.net')).toBe(fingerprints['strict-exact']);
    expect(await served(mf)).toBe(fingerprints['strict-default']);
  });

  test('minVersion TLSv1.3: a TLS 1.2 client is refused', async () => {
    expect(await served(mf, undefined, { maxVersion: 'TLSv1.2' })).toMatch(/^error: .*(protocol version|no protocols|unsupported)/i);
    expect(await served(mf, undefined, { minVersion: 'TLSv1.3' })).toBe(fingerprints['strict-default']);
  });
});

test('the default minimum is TLS 1.2: a TLS 1.1 client is refused', async () => {
  const mf = await startMailfront({ backends: [], users: [] });
  try {
    expect(await served(mf, undefined, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).toMatch(/^error: /);
  } finally {
    await mf.stop();
  }
});
