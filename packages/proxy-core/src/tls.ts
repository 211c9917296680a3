import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { BackendRow } from '@mailfront/store';

/**
 * The certificate(s) mailfront presents to clients. A provider rather than a
 * fixed context so that certificates can be replaced without a restart.
 */
export interface ClientTlsProvider {
  /** The context for clients that send no server name, or one without its own certificate. */
  defaultContext(): tls.SecureContext;
  /** Optional per-name certificates (RFC 6066 SNI). */
  sniCallback?: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
}

export function staticTlsProvider(opts: { cert: string | Buffer; key: string | Buffer; minVersion?: tls.SecureVersion }): ClientTlsProvider {
  const ctx = tls.createSecureContext({ cert: opts.cert, key: opts.key, minVersion: opts.minVersion ?? 'TLSv1.2' });
  return { defaultContext: () => ctx };
}

export interface CertificatePair {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface SniTlsOptions {
  /** For clients without SNI, and names without a certificate of their own (unless strict). */
  default: CertificatePair;
  /** Per server name: exact names, or `*.example.org` for one label under it. */
  names: Array<CertificatePair & { names: string[] }>;
  /** Refuse a client that asks for a name we have no certificate for (ALPACA: no cross-host confusion). */
  strict: boolean;
  minVersion?: tls.SecureVersion;
}

/**
 * Certificates by server name (RFC 6066 SNI). Exact names win over wildcards;
 * a wildcard covers exactly one label (`*.example.org` is not `example.org`
 * nor `a.b.example.org`, as in RFC 6125 §6.4.3). Names compare without case.
 */
export function sniTlsProvider(opts: SniTlsOptions): ClientTlsProvider {
  const minVersion = opts.minVersion ?? 'TLSv1.2';
  const make = (p: CertificatePair) => tls.createSecureContext({ cert: p.cert, key: p.key, minVersion });
  const fallback = make(opts.default);
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  for (const entry of opts.names) {
    const ctx = make(entry);
    for (const n of entry.names) {
      const name = n.toLowerCase();
      if (name.startsWith('*.')) wildcard.set(name.slice(2), ctx);
      else exact.set(name, ctx);
    }
  }
  const lookup = (servername: string): tls.SecureContext | undefined => {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const hit = exact.get(name);
    if (hit) return hit;
    const dot = name.indexOf('.');
    return dot > 0 ? wildcard.get(name.slice(dot + 1)) : undefined;
  };
  const provider: ClientTlsProvider = { defaultContext: () => fallback };
  if (exact.size || wildcard.size || opts.strict) {
    provider.sniCallback = (servername, cb) => {
      const ctx = lookup(servername);
      if (ctx) return cb(null, ctx);
      if (opts.strict) return cb(new Error(`no certificate for the requested name`));
      cb(null, fallback);
    };
  }
  return provider;
}

/**
 * Strict ALPN (ALPACA, USENIX Security 2021): a client that offers ALPN but
 * none of this protocol's identifiers is refused with `no_application_protocol`
 * instead of being served a mail protocol it did not ask for (e.g. HTTPS
 * traffic redirected to a mail port). No ALPN at all is fine.
 */
export function alpnSelector(accepted: readonly string[]): (info: { servername: string; protocols: string[] }) => string | undefined {
  return ({ protocols }) => protocols.find((p) => accepted.includes(p));
}

/**
 * TLS on an accepted socket: right away on an implicit-TLS port (after a
 * PROXY header, if any), or after the protocol's STARTTLS reply was written.
 * Bytes already read but not consumed are fed to TLS first by Node.
 */
export function upgradeServerSocket(sock: net.Socket, provider: ClientTlsProvider, alpn: readonly string[]): tls.TLSSocket {
  const opts: tls.TLSSocketOptions = {
    isServer: true,
    secureContext: provider.defaultContext(),
    ALPNCallback: alpnSelector(alpn),
    requestCert: false,
    rejectUnauthorized: false,
  };
  if (provider.sniCallback) opts.SNICallback = provider.sniCallback;
  return new tls.TLSSocket(sock, opts);
}

// ---------------------------------------------------------------------------
// Towards backends

const caCache = new Map<string, Buffer>();

/** CA bundles are read once per path; `reloadBackendCas()` re-reads them (SIGHUP). */
function readCa(file: string): Buffer {
  let ca = caCache.get(file);
  if (!ca) {
    ca = fs.readFileSync(file);
    caCache.set(file, ca);
  }
  return ca;
}

export function reloadBackendCas(): void {
  caCache.clear();
}

/**
 * TLS options towards a backend: verification is on unless the backend is
 * explicitly marked insecure; the name checked is the configured host.
 */
export function backendTlsOptions(backend: BackendRow): tls.ConnectionOptions {
  const opts: tls.ConnectionOptions = {
    rejectUnauthorized: !backend.insecure,
    minVersion: 'TLSv1.2',
  };
  if (!net.isIP(backend.host)) opts.servername = backend.host;
  if (backend.caFile) opts.ca = readCa(backend.caFile);
  // Node checks an IP host against IP SANs when no servername is given.
  opts.checkServerIdentity = (_host, cert) => tls.checkServerIdentity(backend.host, cert);
  return opts;
}
