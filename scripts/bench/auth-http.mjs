/**
 * nginx's auth_http helper: every login is OK and goes to Dovecot's plain
 * port of the protocol nginx names in `Auth-Protocol` (imap, pop3, smtp;
 * nginx cannot speak TLS to a backend). nginx opens one HTTP/1.0 connection
 * per login; its CPU is reported apart from nginx's, as ANCHORS does.
 * argv: a JSON object {"imap":P,"pop3":P,"smtp":P}; sends {"port":P} over
 * IPC once listening.
 */
import * as http from 'node:http';

const backends = JSON.parse(process.argv[2]);
const server = http.createServer((req, res) => {
  const port = backends[req.headers['auth-protocol']];
  if (port === undefined) {
    res.writeHead(200, { 'Auth-Status': 'Temporary server problem, try again later', 'Auth-Wait': '1' });
  } else {
    res.writeHead(200, { 'Auth-Status': 'OK', 'Auth-Server': '127.0.0.1', 'Auth-Port': String(port) });
  }
  res.end();
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
