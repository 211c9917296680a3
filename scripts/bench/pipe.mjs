/**
 * The floor a Node relay starts from (ANCHORS "bare Node pipe"): accept,
 * connect to the backend, pipe both ways with TCP_NODELAY. No parsing, no
 * auth. One process for every protocol, so that its CPU is read in one place.
 *
 *   pipe.mjs certFile keyFile NAME=BACKEND_PORT[:PLAIN_PORT:TLS_PORT]…
 *
 * e.g. imap=143 pop3=110 submission=587; a plain and a TLS listener for each
 * (any free port unless given). Sends {"imap":{"plain":P,"tls":P},…} over IPC
 * once listening.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

const [certFile, keyFile, ...specs] = process.argv.slice(2);
const cert = fs.readFileSync(certFile);
const key = fs.readFileSync(keyFile);

function relayTo(backendPort) {
  return (client) => {
    client.setNoDelay(true);
    const backend = net.connect({ host: '127.0.0.1', port: backendPort, noDelay: true });
    client.pipe(backend);
    backend.pipe(client);
    const close = () => (client.destroy(), backend.destroy());
    for (const s of [client, backend]) s.on('error', close).on('close', close);
  };
}

const ports = {};
const listening = [];
for (const spec of specs) {
  const [name, rest] = spec.split('=');
  const [backendPort, plainPort = 0, tlsPort = 0] = rest.split(':').map(Number);
  const plain = net.createServer(relayTo(backendPort)).listen(plainPort, '127.0.0.1');
  const secure = tls.createServer({ cert, key }, relayTo(backendPort)).listen(tlsPort, '127.0.0.1');
  listening.push(
    Promise.all([plain, secure].map((s) => new Promise((r) => s.once('listening', r)))).then(() => {
      ports[name] = { plain: plain.address().port, tls: secure.address().port };
    }),
  );
}
await Promise.all(listening);
process.send(ports);
process.on('disconnect', () => process.exit(0));
