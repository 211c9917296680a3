import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ProtocolDescriptor } from './protocol';
import { SessionDriver, type ListenerPolicy, type ListenerTls, type ProxyServices } from './session-driver';
import { clip } from './sanitize';
import { serverTlsOptions } from './tls';

export interface ListenerSpec {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  tls: ListenerTls;
  allowPlaintextAuth: boolean;
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

/** One listening socket of one protocol; every accepted connection gets a SessionDriver. */
export function createListener(spec: ListenerSpec, desc: ProtocolDescriptor, svc: ProxyServices): Listener {
  const policy: ListenerPolicy = {
    name: `${desc.name}@${spec.host}:${spec.port}`,
    tls: spec.tls,
    allowPlaintextAuth: spec.allowPlaintextAuth,
  };
  const accept = (sock: net.Socket | tls.TLSSocket): void => {
    // Half-close is passed on by the relay. For TLS it is enabled only once the
    // handshake is done: a tls.Server with allowHalfOpen keeps a socket whose
    // client left mid-handshake open until the handshake timeout.
    sock.allowHalfOpen = true;
    new SessionDriver(sock, desc, policy, svc).start();
  };
  let server: net.Server;
  if (spec.tls === 'implicit') {
    const tlsServer = tls.createServer(
      {
        ...serverTlsOptions(svc.tls, desc.alpn),
        // A handshake must not take longer than a login may.
        handshakeTimeout: Math.min(svc.limits.loginTimeoutMs, 30_000),
      },
      accept,
    );
    tlsServer.on('tlsClientError', (err, sock) => {
      sock.destroy();
      svc.log.debug(
        { proto: desc.name, client: `${sock.remoteAddress}:${sock.remotePort}`, err: clip(err.message) },
        'TLS handshake failed',
      );
    });
    server = tlsServer;
  } else {
    server = net.createServer({ allowHalfOpen: true, noDelay: true }, accept);
  }
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
