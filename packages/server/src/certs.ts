/**
 * X.509 certificates for `serve` without a TLS config and for tests: a
 * self-signed server certificate, or a throwaway CA and certificates it issues.
 *
 * Keys come from node:crypto (OpenSSL, milliseconds); node-forge only builds
 * and signs the certificate, because its pure-JS RSA key generation takes
 * seconds per 2048-bit key.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import forge from 'node-forge';

export interface PemPair {
  cert: string;
  key: string;
}

export interface LeafOptions {
  /** DNS names and IP addresses; the first is also the subject CN. */
  hostnames: string[];
  /** Validity in days; 825 by default (the longest CA/Browser Forum allowed for server certificates). */
  days?: number;
}

export interface CaOptions {
  commonName?: string;
  /** Validity in days; 3650 by default. */
  days?: number;
}

const DEFAULT_LEAF_DAYS = 825;
const DEFAULT_CA_DAYS = 3650;
const RSA_BITS = 2048;
/** notBefore is set this far in the past so that a peer whose clock lags a little still accepts the certificate. */
const BACKDATE_MS = 60 * 60 * 1000;
/** RFC 5280 §4.1.2.6 upper bound ub-common-name. */
const MAX_CN_CHARS = 64;

/** A certificate valid for `hostnames`, signed by its own key. Clients trust it by using the certificate as their CA. */
export function generateSelfSigned(opts: LeafOptions): PemPair {
  const hostnames = checkHostnames(opts.hostnames);
  const days = checkDays(opts.days ?? DEFAULT_LEAF_DAYS);
  const keys = newKeyPair();
  const cert = newCertificate(keys.publicKey, days);
  const subject = [{ name: 'commonName', value: commonNameFor(hostnames) }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    // keyCertSign lets OpenSSL recognise the certificate as self-issued, so it
    // can serve as its own trust anchor (X509_check_issued rejects an issuer
    // whose keyUsage lacks it).
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: altNamesFor(hostnames) },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

/** A CA certificate (basicConstraints cA, keyCertSign) for issueCertificate. */
export function generateCa(opts: CaOptions = {}): PemPair {
  const days = checkDays(opts.days ?? DEFAULT_CA_DAYS);
  const keys = newKeyPair();
  const cert = newCertificate(keys.publicKey, days);
  const subject = [
    { name: 'commonName', value: (opts.commonName ?? 'mailfront test CA').slice(0, MAX_CN_CHARS) },
    { name: 'organizationName', value: 'mailfront' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

/** A server certificate for `hostnames`, signed by `ca` (from generateCa). */
export function issueCertificate(ca: PemPair, opts: LeafOptions): PemPair {
  const hostnames = checkHostnames(opts.hostnames);
  const days = checkDays(opts.days ?? DEFAULT_LEAF_DAYS);
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = newKeyPair();
  const cert = newCertificate(keys.publicKey, days);
  cert.setSubject([{ name: 'commonName', value: commonNameFor(hostnames) }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: altNamesFor(hostnames) },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

export const SELF_SIGNED_CERT_FILE = 'selfsigned-cert.pem';
export const SELF_SIGNED_KEY_FILE = 'selfsigned-key.pem';

/**
 * For `serve` with no tls config: reuse DIR/selfsigned-cert.pem + -key.pem if
 * both are present, else create them (key file mode 0600). The certificate
 * names `hostname` plus localhost, 127.0.0.1 and ::1, so that local clients
 * can verify it too.
 */
export function ensureSelfSigned(
  dir: string,
  hostname: string,
): { certFile: string; keyFile: string; created: boolean } {
  const certFile = path.join(dir, SELF_SIGNED_CERT_FILE);
  const keyFile = path.join(dir, SELF_SIGNED_KEY_FILE);
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    return { certFile, keyFile, created: false };
  }
  fs.mkdirSync(dir, { recursive: true });
  const hostnames = [...new Set([hostname, 'localhost', '127.0.0.1', '::1'].filter((h) => h !== ''))];
  const pair = generateSelfSigned({ hostnames });
  // Key first, so that a present certificate always has its key beside it;
  // each file is written to a temporary name and renamed, so a reader never
  // sees half a file.
  writeFileAtomic(keyFile, pair.key, 0o600);
  writeFileAtomic(certFile, pair.cert, 0o644);
  return { certFile, keyFile, created: true };
}

function writeFileAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    // The umask may have narrowed `mode`; the key must be exactly 0600.
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

interface KeyPair {
  pem: string;
  publicKey: forge.pki.rsa.PublicKey;
  privateKey: forge.pki.rsa.PrivateKey;
}

function newKeyPair(): KeyPair {
  const { privateKey: pem } = generateKeyPairSync('rsa', {
    modulusLength: RSA_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  return { pem, publicKey, privateKey };
}

function checkDays(days: number): number {
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`certificate days must be a positive integer, got ${days}`);
  return days;
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + days * 24 * 60 * 60 * 1000);
  return cert;
}

/**
 * RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. 16 random
 * octets with the top bit clear (positive) and the next one set (so that DER
 * needs no leading zero octet and the length is always 16).
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function checkHostnames(hostnames: string[]): string[] {
  if (!Array.isArray(hostnames) || hostnames.length === 0) {
    throw new TypeError('a certificate needs at least one hostname');
  }
  for (const h of hostnames) {
    if (typeof h !== 'string' || h === '') throw new TypeError(`invalid certificate hostname: ${JSON.stringify(h)}`);
  }
  return hostnames;
}

function commonNameFor(hostnames: string[]): string {
  return hostnames[0]!.slice(0, MAX_CN_CHARS);
}

/** RFC 5280 §4.2.1.6 GeneralName: dNSName is [2], iPAddress is [7]. */
function altNamesFor(hostnames: string[]): Array<{ type: number; value?: string; ip?: string }> {
  return hostnames.map((h) => (net.isIP(h) !== 0 ? { type: 7, ip: h } : { type: 2, value: h }));
}
