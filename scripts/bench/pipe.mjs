/**
 * The floor a Node relay starts from (ANCHORS "bare Node pipe"): accept,
 * connect to the backend, pipe both ways with TCP_NODELAY. No parsing, no
 * auth. argv: backendPort certFile keyFile [plainPort tlsPort] (default: any
 * free port); sends {"plain":P,"tls":P} over IPC once listening.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

const [backendPort, certFile, keyFile, plainPort = 0, tlsPort = 0] = process.argv.slice(2);
function relay(client) {
  client.setNoDelay(true);
  const backend = net.connect({ host: '127.0.0.1', port: Number(backendPort), noDelay: true });
  client.pipe(backend);
  backend.pipe(client);
  const close = () => (client.destroy(), backend.destroy());
  for (const s of [client, backend]) s.on('error', close).on('close', close);
}
const plain = net.createServer(relay).listen(Number(plainPort), '127.0.0.1');
const secure = tls.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, relay).listen(Number(tlsPort), '127.0.0.1');
await Promise.all([plain, secure].map((s) => new Promise((r) => s.once('listening', r))));
process.send({ plain: plain.address().port, tls: secure.address().port });
process.on('disconnect', () => process.exit(0));
