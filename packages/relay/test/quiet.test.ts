import * as net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { startRelay } from '@mailfront/relay';

/**
 * quietForMs decides whether a kick or a shutdown may put the protocol's
 * goodbye in front of the client. A client that stops reading in the middle
 * of a big response stalls the relay by backpressure: no byte is read for a
 * while, yet the response is only half delivered. That is not quiet.
 */
test('a relay stalled by a client that does not read is not quiet, however long no byte moved', async () => {
  const backendServer = net.createServer();
  const backendSide = new Promise<net.Socket>((resolve) => backendServer.once('connection', resolve));
  await new Promise<void>((r) => backendServer.listen(0, '127.0.0.1', r));
  const proxyServer = net.createServer();
  await new Promise<void>((r) => proxyServer.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((resolve) => proxyServer.once('connection', resolve));
  const client = net.connect({ port: (proxyServer.address() as net.AddressInfo).port, host: '127.0.0.1' });
  client.pause();
  const proxyClient = await accepted;
  const proxyBackend = net.connect({ port: (backendServer.address() as net.AddressInfo).port, host: '127.0.0.1' });
  await new Promise((r) => proxyBackend.once('connect', r));
  const backend = await backendSide;
  const relay = startRelay(proxyClient, proxyBackend, { idleTimeoutMs: 0 });

  // Far more than the kernel's buffers hold: the relay must stop reading the backend.
  const response = randomBytes(48 * 1024 * 1024);
  backend.write(response);
  let before = -1;
  while (relay.bytesFromBackend !== before) {
    before = relay.bytesFromBackend;
    await new Promise((r) => setTimeout(r, 300));
  }
  // Stalled for 300 ms with nothing read: bytes are still queued towards the client.
  expect(relay.bytesFromBackend).toBeLessThan(response.length);
  expect(proxyClient.writableLength).toBeGreaterThan(0);
  expect(relay.quietForMs()).toBe(0);

  // Once the client reads again everything arrives, and then the relay is quiet.
  const chunks: Buffer[] = [];
  let got = 0;
  const all = new Promise<void>((resolve) =>
    client.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got === response.length) resolve();
    }),
  );
  client.resume();
  await all;
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  expect(sha(Buffer.concat(chunks))).toBe(sha(response));
  await new Promise((r) => setTimeout(r, 50));
  expect(relay.quietForMs()).toBeGreaterThanOrEqual(40);

  relay.stop('test');
  await relay.done;
  client.destroy();
  backend.destroy();
  backendServer.close();
  proxyServer.close();
});
