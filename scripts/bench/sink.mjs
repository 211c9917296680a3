/**
 * The relay Dovecot's submission service hands messages to: a minimal SMTP
 * server on loopback that accepts every message, counts it and drops it.
 * A process of its own, so that its CPU is nobody's under test.
 *
 * Not the testkit's sink (smtp-server): smtp-server waits 100 ms before its
 * greeting (early-talker detection), and Dovecot opens its relay connection
 * at each session's first transaction command, so every session paid 100 ms
 * and every target was capped near C ÷ 0.1 s messages/s: the figure measured
 * the sink. It also parses each message in JavaScript and keeps it in memory.
 *
 * What Dovecot's relay client needs: EHLO (PIPELINING, 8BITMIME, SIZE and
 * XCLIENT, which Dovecot uses with `submission_relay_trusted = yes`; after
 * XCLIENT a fresh 220 greeting, as Postfix does), MAIL, RCPT, DATA with the
 * end-of-data line (RFC 5321 §4.1.1.4), RSET, NOOP, QUIT. Commands may come
 * pipelined (RFC 2920): each line is answered in order.
 *
 * Sends {"port":P} over IPC once listening; answers {"cmd":"count"} with
 * {"count":N}, the messages received so far.
 */
import * as net from 'node:net';

const EHLO = [
  '250-localhost',
  '250-PIPELINING',
  '250-8BITMIME',
  '250-SIZE 104857600',
  '250-ENHANCEDSTATUSCODES',
  '250 XCLIENT ADDR PORT PROTO HELO LOGIN NAME DESTADDR DESTPORT',
].join('\r\n');
const END_OF_DATA = Buffer.from('\r\n.\r\n');

let received = 0;

function serve(socket) {
  socket.setNoDelay(true);
  socket.write('220 localhost ESMTP bench sink\r\n');
  let buf = Buffer.alloc(0);
  let inData = false;
  const reply = (s) => socket.write(`${s}\r\n`);
  socket.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (inData) {
        // The end-of-data line may straddle reads: keep the last 4 bytes.
        const end = buf.indexOf(END_OF_DATA);
        if (end < 0) {
          if (buf.length > 4) buf = buf.subarray(buf.length - 4);
          return;
        }
        buf = buf.subarray(end + END_OF_DATA.length);
        inData = false;
        received++;
        reply('250 2.0.0 Ok: dropped by the bench sink');
        continue;
      }
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const line = buf.subarray(0, eol).toString('latin1');
      buf = buf.subarray(eol + 2);
      const verb = line.split(' ')[0].toUpperCase();
      if (verb === 'EHLO') reply(EHLO);
      else if (verb === 'HELO') reply('250 localhost');
      else if (verb === 'XCLIENT') reply('220 localhost ESMTP bench sink');
      else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') reply('250 2.0.0 Ok');
      else if (verb === 'DATA') {
        reply('354 End data with <CR><LF>.<CR><LF>');
        inData = true;
        // The data begins with a line of its own: make "\r\n.\r\n" match an empty message too.
        buf = Buffer.concat([Buffer.from('\r\n'), buf]);
      } else if (verb === 'QUIT') {
        reply('221 2.0.0 Bye');
        socket.end();
        return;
      } else reply('502 5.5.2 Not implemented');
    }
  });
  socket.on('error', () => socket.destroy());
}

const server = net.createServer(serve);
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m?.cmd === 'count') process.send({ count: received });
});
process.on('disconnect', () => process.exit(0));
