import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { ensureSelfSigned, generateCa, generateSelfSigned, issueCertificate, type PemPair } from '../src/certs';

/** A TLS server on 127.0.0.1:0 that greets and closes; returns its port and a closer. */
async function tlsServer(pair: PemPair): Promise<{ port: number; close: () => Promise<void> }> {
  const server = tls.createServer({ cert: pair.cert, key: pair.key }, (s) => s.end('hello\r\n'));
  // A client that rejects the certificate aborts the handshake; that is the point of some tests.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Connects and resolves with the greeting, or rejects with the verification error's code. */
function tlsGreeting(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', () => resolve(data));
    socket.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
  });
}

describe('certs', () => {
  // One CA and leaf for the connection tests: RSA keygen is the slow part.
  const ca = generateCa({ commonName: 'certs.test CA' });
  const leaf = issueCertificate(ca, { hostnames: ['localhost', '127.0.0.1'] });
  let server: { port: number; close: () => Promise<void> };

  beforeAll(async () => {
    server = await tlsServer(leaf);
  });
  afterAll(async () => {
    await server.close();
  });

  test('an issued certificate is accepted for localhost with the CA', async () => {
    await expect(tlsGreeting(server.port, { ca: ca.cert, servername: 'localhost' })).resolves.toBe('hello\r\n');
  });

  test('the IP SAN covers 127.0.0.1 when no servername is sent', async () => {
    await expect(tlsGreeting(server.port, { ca: ca.cert })).resolves.toBe('hello\r\n');
  });

  test('a wrong hostname is rejected', async () => {
    await expect(tlsGreeting(server.port, { ca: ca.cert, servername: 'mail.example.org' })).rejects.toThrow(
      'ERR_TLS_CERT_ALTNAME_INVALID',
    );
  });

  test('without the CA the certificate is rejected', async () => {
    await expect(tlsGreeting(server.port, { servername: 'localhost' })).rejects.toThrow(
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
    );
  });

  test('another CA does not vouch for it', async () => {
    const other = generateCa();
    await expect(tlsGreeting(server.port, { ca: other.cert, servername: 'localhost' })).rejects.toThrow(
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|CERT_SIGNATURE_FAILURE/,
    );
  });

  test('issued certificate fields: SANs, serverAuth, SHA-256, positive serial, 825 days, not a CA', () => {
    const x = new X509Certificate(leaf.cert);
    expect(x.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // node reports extKeyUsage here: serverAuth
    expect(x.checkIssued(new X509Certificate(ca.cert))).toBe(true);
    expect(x.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(x.checkPrivateKey(createPrivateKey(leaf.key))).toBe(true);
    const days = (Date.parse(x.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(824);
    expect(days).toBeLessThanOrEqual(825);

    const f = forge.pki.certificateFromPem(leaf.cert);
    expect(f.siginfo.algorithmOid).toBe(forge.pki.oids['sha256WithRSAEncryption']);
    expect(f.serialNumber).toMatch(/^[4-7][0-9a-f]{31}$/);
    expect((f.publicKey as forge.pki.rsa.PublicKey).n.bitLength()).toBe(2048);
    const bc = f.getExtension('basicConstraints') as { cA?: boolean; critical?: boolean };
    expect(bc.cA).toBe(false);
    const ku = f.getExtension('keyUsage') as { digitalSignature?: boolean; keyCertSign?: boolean };
    expect(ku.digitalSignature).toBe(true);
    expect(ku.keyCertSign).toBe(false);
  });

  test('the CA is a CA', () => {
    const x = new X509Certificate(ca.cert);
    expect(x.ca).toBe(true);
    expect(x.subject).toContain('CN=certs.test CA');
    expect(x.checkIssued(x)).toBe(true);
  });

  test('serials differ between certificates', () => {
    const again = issueCertificate(ca, { hostnames: ['localhost'], days: 1 });
    expect(new X509Certificate(again.cert).serialNumber).not.toBe(new X509Certificate(leaf.cert).serialNumber);
    const days = (Date.parse(new X509Certificate(again.cert).validTo) - Date.now()) / 86_400_000;
    expect(days).toBeLessThanOrEqual(1);
  });

  test('a self-signed certificate works as its own CA', async () => {
    const self = generateSelfSigned({ hostnames: ['localhost', '127.0.0.1', '::1'] });
    const x = new X509Certificate(self.cert);
    expect(x.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x.checkIssued(x)).toBe(true);
    const s = await tlsServer(self);
    try {
      await expect(tlsGreeting(s.port, { ca: self.cert, servername: 'localhost' })).resolves.toBe('hello\r\n');
      await expect(tlsGreeting(s.port, { servername: 'localhost' })).rejects.toThrow('DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      await s.close();
    }
  });

  test('bad options are refused', () => {
    expect(() => generateSelfSigned({ hostnames: [] })).toThrow(TypeError);
    expect(() => issueCertificate(ca, { hostnames: [''] })).toThrow(TypeError);
    expect(() => generateCa({ days: 0 })).toThrow(RangeError);
  });

  describe('ensureSelfSigned', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-certs-'));
    });
    afterEach(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('creates a 0600 key and a matching certificate, then reuses them', () => {
      const sub = path.join(dir, 'var', 'tls'); // created when missing
      const first = ensureSelfSigned(sub, 'mail.example.org');
      expect(first).toEqual({
        certFile: path.join(sub, 'selfsigned-cert.pem'),
        keyFile: path.join(sub, 'selfsigned-key.pem'),
        created: true,
      });
      expect(fs.statSync(first.keyFile).mode & 0o777).toBe(0o600);
      const cert = fs.readFileSync(first.certFile, 'utf8');
      const key = fs.readFileSync(first.keyFile, 'utf8');
      const x = new X509Certificate(cert);
      expect(x.checkPrivateKey(createPrivateKey(key))).toBe(true);
      expect(x.subjectAltName).toContain('DNS:mail.example.org');
      expect(x.subjectAltName).toContain('IP Address:127.0.0.1');
      expect(fs.readdirSync(sub).sort()).toEqual(['selfsigned-cert.pem', 'selfsigned-key.pem']);

      const second = ensureSelfSigned(sub, 'mail.example.org');
      expect(second.created).toBe(false);
      expect(fs.readFileSync(second.certFile, 'utf8')).toBe(cert);
      expect(fs.readFileSync(second.keyFile, 'utf8')).toBe(key);
    });

    test('a certificate without its key is replaced by a new pair', () => {
      const first = ensureSelfSigned(dir, 'localhost');
      fs.rmSync(first.keyFile);
      const again = ensureSelfSigned(dir, 'localhost');
      expect(again.created).toBe(true);
      const x = new X509Certificate(fs.readFileSync(again.certFile));
      expect(x.checkPrivateKey(createPrivateKey(fs.readFileSync(again.keyFile)))).toBe(true);
    });
  });
});
