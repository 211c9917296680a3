/**
 * nginx's auth_http helper: every login is OK and goes to Dovecot's plain
 * IMAP port (nginx cannot speak TLS to a backend). nginx opens one HTTP/1.0
 * connection per login; its CPU is reported apart from nginx's, as ANCHORS does.
 * argv: dovecotImapPort; sends {"port":P} over IPC once listening.
 */
import * as http from 'node:http';

const backendPort = process.argv[2];
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Auth-Status': 'OK', 'Auth-Server': '127.0.0.1', 'Auth-Port': backendPort });
  res.end();
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
