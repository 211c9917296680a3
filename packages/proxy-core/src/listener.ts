import * as net from 'node:net';
import type * as tls from 'node:tls';
import { normalizeAddress } from './address';
import type { ProtocolDescriptor } from './protocol';
import { looksLikeProxyHeader, parseProxyHeader } from './proxy-protocol';
import { SessionDriver, type ListenerPolicy, type ListenerTls, type Peer, type ProxyServices } from './session-driver';
import { clip } from './sanitize';
import { upgradeServerSocket } from './tls';

export interface ProxyProtocolPolicy {
  /** Balancers allowed to send a PROXY header; anyone else sending one is cut off. */
  trusted: net.BlockList;
  /** A trusted peer that sends no complete header within this time is cut off. */
  headerTimeoutMs: number;
}

export interface ListenerSpec {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  tls: ListenerTls;
  allowPlaintextAuth: boolean;
  /** Expect HAProxy's PROXY protocol (v1 or v2) from trusted balancers. */
  proxyProtocol?: ProxyProtocolPolicy | null;
}

export interface Listener {
  readonly spec: ListenerSpec;
  readonly protocol: string;
  /** The bound address, after `listen()`. */
  address(): net.AddressInfo;
  listen(): Promise<net.AddressInfo>;
  /** Stop accepting; live sessions are not touched. */
  close(): Promise<void>;
  /** Accepted connections still open, in any phase (TLS handshake included). */
  connections(): Promise<number>;
}

const ignore = (): void => undefined;

/** Longest TLS handshake we wait for before a session exists (RFC 8314 ports). */
const MAX_HANDSHAKE_MS = 30_000;

/**
 * One listening socket of one protocol. Every accepted connection goes
 * through: [PROXY header from a trusted balancer] → [TLS handshake on an
 * implicit-TLS port] → a SessionDriver. The listener is always a plain TCP
 * server: a PROXY header precedes TLS, and one accept path serves both.
 */
export function createListener(spec: ListenerSpec, desc: ProtocolDescriptor, svc: ProxyServices): Listener {
  const policy: ListenerPolicy = {
    name: `${desc.name}@${spec.host}:${spec.port}`,
    tls: spec.tls,
    allowPlaintextAuth: spec.allowPlaintextAuth,
  };
  const handshakeMs = Math.min(svc.limits.loginTimeoutMs, MAX_HANDSHAKE_MS);

  const startSession = (sock: net.Socket | tls.TLSSocket, peer: Peer): void => {
    new SessionDriver(sock, desc, policy, svc, peer).start();
  };

  const afterProxy = (raw: net.Socket, peer: Peer): void => {
    if (svc.connections) {
      const gate = svc.connections.acquire(peer.address);
      if (!gate.ok) return refuse(raw, peer, gate.limit);
      raw.once('close', gate.release);
    }
    if (spec.tls !== 'implicit') return startSession(raw, peer);
    const secure = upgradeServerSocket(raw, svc.tls, desc.alpn);
    const timer = setTimeout(() => fail(new Error('TLS handshake timeout')), handshakeMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      secure.destroy();
      raw.destroy();
      svc.log.debug({ proto: desc.name, client: `${peer.address}:${peer.port}`, err: clip(err.message) }, 'TLS handshake failed');
    };
    // The socket is half-open (allowHalfOpen): a client that leaves during
    // the handshake ends nothing by its FIN alone; it would hold its place
    // until the handshake timeout.
    const left = (): void => fail(new Error('client closed during the TLS handshake'));
    secure.once('error', fail);
    secure.once('end', left);
    secure.once('secure', () => {
      clearTimeout(timer);
      secure.removeListener('error', fail);
      secure.removeListener('end', left);
      startSession(secure, peer);
    });
  };

  /**
   * Over a connection limit: a plaintext client is told so in its protocol's
   * words (a temporary condition); an implicit-TLS one is closed at once, so
   * a flood costs no handshakes. Either way the client retries later.
   */
  const refuse = (raw: net.Socket, peer: Peer, limit: 'total' | 'address'): void => {
    svc.log.warn({ proto: desc.name, client: `${peer.address}:${peer.port}`, limit }, 'connection refused: limit reached');
    if (spec.tls === 'implicit') return void raw.destroy();
    const bye = desc.createSession({ sessionId: '', tls: false, starttlsAvailable: false, authAllowed: false }).bye('overloaded');
    raw.end(bye, 'latin1');
    setTimeout(() => raw.destroy(), 1_000).unref();
  };

  const onConnection = (raw: net.Socket): void => {
    // A reset can come in any phase, also before a session owns the socket
    // (PROXY header, refusal, handshake): it must never be an uncaught error.
    raw.on('error', ignore);
    raw.setNoDelay(true);
    const peer: Peer = {
      address: normalizeAddress(raw.remoteAddress),
      port: raw.remotePort ?? 0,
      localAddress: normalizeAddress(raw.localAddress),
      localPort: raw.localPort ?? 0,
    };
    const pp = spec.proxyProtocol;
    if (!pp) return afterProxy(raw, peer);
    if (!pp.trusted.check(peer.address, net.isIPv6(peer.address) ? 'ipv6' : 'ipv4')) {
      // Served as a direct client; but a PROXY header from it is a spoofing
      // attempt (it would claim someone else's address): cut it off.
      raw.once('data', (first: Buffer) => {
        if (looksLikeProxyHeader(first)) {
          svc.log.warn({ proto: desc.name, client: `${peer.address}:${peer.port}` }, 'PROXY header from an untrusted peer: connection closed');
          raw.destroy();
        }
      });
      return afterProxy(raw, peer);
    }
    readProxyHeader(raw, pp.headerTimeoutMs, (err, real) => {
      if (err) {
        svc.log.warn({ proto: desc.name, client: `${peer.address}:${peer.port}`, err: err.message }, 'PROXY header missing or invalid: connection closed');
        raw.destroy();
        return;
      }
      afterProxy(raw, real ?? peer);
    });
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
  server.on('error', (e) => svc.log.error({ listener: policy.name, err: e.message }, 'listener error'));

  return {
    spec,
    protocol: desc.name,
    address: () => server.address() as net.AddressInfo,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: spec.host, port: spec.port }, () => {
          server.removeListener('error', reject);
          const a = server.address() as net.AddressInfo;
          policy.name = `${desc.name}@${a.address}:${a.port}`;
          resolve(a);
        });
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
    connections: () => new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n)))),
  };
}

/**
 * Read the PROXY header of a connection from a trusted balancer. Bytes after
 * it are put back on the socket for what follows (a TLS ClientHello, or a
 * client's first command).
 */
function readProxyHeader(raw: net.Socket, timeoutMs: number, done: (err: Error | null, peer?: Peer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  const finish = (err: Error | null, peer?: Peer): void => {
    clearTimeout(timer);
    raw.removeListener('data', onData);
    raw.removeListener('close', onClose);
    done(err, peer);
  };
  const timer = setTimeout(() => finish(new Error(`no PROXY header within ${timeoutMs} ms`)), timeoutMs);
  const onClose = (): void => finish(new Error('closed before the PROXY header'));
  const onData = (chunk: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const r = parseProxyHeader(buf);
    if (r.status === 'more') return;
    if (r.status === 'invalid') return finish(new Error(`invalid PROXY header: ${r.reason}`));
    raw.pause();
    const rest = buf.subarray(r.consumed);
    if (rest.length) raw.unshift(rest);
    if (r.header.command === 'local') {
      return finish(null, {
        address: normalizeAddress(raw.remoteAddress),
        port: raw.remotePort ?? 0,
        localAddress: normalizeAddress(raw.localAddress),
        localPort: raw.localPort ?? 0,
        balancerOwn: true,
      });
    }
    finish(null, {
      address: normalizeAddress(r.header.source.address),
      port: r.header.source.port,
      localAddress: normalizeAddress(r.header.destination.address),
      localPort: r.header.destination.port,
    });
  };
  raw.on('data', onData);
  raw.once('close', onClose);
}
