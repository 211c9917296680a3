import * as net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { startRelay, type Relay } from '@mailfront/relay';

/**
 * A real TCP arrangement: client ⇄ [proxy: accepted socket | relay | socket to backend] ⇄ backend.
 * The relay works on the two proxy-side sockets, as in mailfront.
 */
async function arrangement(idleTimeoutMs = 0, heads: { clientHead?: Buffer; backendHead?: Buffer } = {}) {
  const backendServer = net.createServer({ allowHalfOpen: true });
  const backendSide = new Promise<net.Socket>((resolve) => {
    backendServer.once('connection', (s) => resolve(s));
  });
  await new Promise<void>((r) => backendServer.listen(0, '127.0.0.1', r));
  const proxyServer = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => proxyServer.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((resolve) => proxyServer.once('connection', resolve));
  const client = net.connect({ port: (proxyServer.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const proxyClientSock = await accepted;
  const proxyBackendSock = net.connect({ port: (backendServer.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => proxyBackendSock.once('connect', r));
  const backend = await backendSide;
  const relay: Relay = startRelay(proxyClientSock, proxyBackendSock, { idleTimeoutMs, ...heads });
  const cleanup = () => {
    client.destroy();
    backend.destroy();
    backendServer.close();
    proxyServer.close();
  };
  return { client, backend, relay, cleanup, proxyClientSock, proxyBackendSock };
}

function collect(sock: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  sock.on('data', (c) => chunks.push(c));
  return new Promise((resolve) => sock.once('end', () => resolve(Buffer.concat(chunks))));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('relay', () => {
  test('bytes both ways arrive intact and are counted; heads go first', async () => {
    const a = await arrangement(0, { clientHead: Buffer.from('HEAD-C '), backendHead: Buffer.from('HEAD-B ') });
    const up = randomBytes(3 * 1024 * 1024 + 17);
    const down = randomBytes(5 * 1024 * 1024 + 3);
    const atBackend = collect(a.backend);
    const atClient = collect(a.client);
    a.client.end(up);
    a.backend.end(down);
    const [gotUp, gotDown, result] = await Promise.all([atBackend, atClient, a.relay.done]);
    expect(sha(gotUp)).toBe(sha(Buffer.concat([Buffer.from('HEAD-C '), up])));
    expect(sha(gotDown)).toBe(sha(Buffer.concat([Buffer.from('HEAD-B '), down])));
    expect(result.bytesFromClient).toBe(up.length + 7);
    expect(result.bytesFromBackend).toBe(down.length + 7);
    a.cleanup();
  });

  test('half-close: the client ends, the backend still answers, then ends', async () => {
    const a = await arrangement();
    const atClient = collect(a.client);
    a.backend.resume();
    a.backend.on('end', () => {
      // The backend saw the client's end and answers afterwards.
      a.backend.end('* BYE after your end\r\n');
    });
    a.client.end('a LOGOUT\r\n');
    expect((await atClient).toString()).toBe('* BYE after your end\r\n');
    const r = await a.relay.done;
    expect(r.end).toBe('backend-closed');
    a.cleanup();
  });

  test('backpressure: a client that does not read pauses the backend instead of buffering', async () => {
    const a = await arrangement();
    a.client.pause();
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    // Keep the backend writing (at the pace its socket drains) until the relay
    // stops reading from it: that must happen, and long before 64 MiB.
    const deadline = Date.now() + 20_000;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (!a.proxyBackendSock.isPaused() && written < 64 * 1024 * 1024 && Date.now() < deadline) {
          written += chunk.length;
          if (!a.backend.write(chunk)) {
            a.backend.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
      const poll = setInterval(() => {
        if (a.proxyBackendSock.isPaused() || Date.now() > deadline) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    expect(a.proxyBackendSock.isPaused()).toBe(true);
    expect(written).toBeLessThan(64 * 1024 * 1024);
    // What the relay holds queued for the client stays near one socket buffer.
    expect(a.proxyClientSock.writableLength).toBeLessThan(4 * 1024 * 1024);
    // Once the client reads, everything arrives.
    let got = 0;
    a.client.on('data', (c) => (got += c.length));
    a.client.resume();
    await new Promise<void>((resolve) => {
      const check = () => (got >= written ? resolve() : setTimeout(check, 20));
      check();
    });
    expect(got).toBe(written);
    a.relay.stop('test');
    a.cleanup();
  });

  test('idle timeout ends a silent session; traffic keeps it alive', async () => {
    const a = await arrangement(300);
    const started = Date.now();
    const keepAlive = setInterval(() => a.client.write('x'), 100);
    await new Promise((r) => setTimeout(r, 600));
    clearInterval(keepAlive);
    const r = await a.relay.done;
    expect(r.end).toBe('idle-timeout');
    // The last keep-alive byte went at about 500 ms; without it the relay would have ended at 300 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(500 + 300 - 50);
    a.cleanup();
  });

  test('stop() ends both sides with last words to the client', async () => {
    const a = await arrangement();
    const atClient = collect(a.client);
    const backendEnded = new Promise((r) => a.backend.once('end', r));
    a.relay.stop('kicked', '* BYE bye\r\n');
    expect((await atClient).toString()).toBe('* BYE bye\r\n');
    await backendEnded;
    expect((await a.relay.done).end).toBe('stopped');
    a.cleanup();
  });

  test('a backend reset ends the relay and closes the client', async () => {
    const a = await arrangement();
    const clientClosed = new Promise((r) => a.client.once('end', r));
    a.client.on('error', () => undefined);
    a.client.resume();
    a.backend.resetAndDestroy();
    const r = await a.relay.done;
    expect(['backend-error', 'backend-closed']).toContain(r.end);
    await clientClosed;
    a.cleanup();
  });
});
