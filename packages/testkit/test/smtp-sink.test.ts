import * as net from 'node:net';
import { createTransport } from 'nodemailer';
import { startSmtpSink, type SmtpSink } from '@mailfront/testkit';

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink();
});
afterAll(() => sink?.close());

/** One raw SMTP conversation: each entry is written after the previous reply; returns the replies. */
async function converse(port: number, lines: string[]): Promise<string[]> {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  const replies: string[] = [];
  const nextReply = () =>
    new Promise<string>((resolve, reject) => {
      const tryTake = () => {
        const m = /(?:^|\n)(\d{3}) [^\n]*\n/.exec(buf);
        if (!m) return false;
        const end = m.index + m[0].length;
        const reply = buf.slice(0, end);
        buf = buf.slice(end);
        resolve(reply.trim());
        return true;
      };
      if (tryTake()) return;
      const onData = (d: Buffer) => {
        buf += d.toString('latin1');
        if (tryTake()) sock.off('data', onData);
      };
      sock.on('data', onData);
      sock.once('error', reject);
    });
  replies.push(await nextReply());
  for (const l of lines) {
    sock.write(l);
    replies.push(await nextReply());
  }
  sock.destroy();
  return replies;
}

describe('SMTP sink', () => {
  test('keeps envelope and raw bytes of what nodemailer sends', async () => {
    const raw = Buffer.from('From: a@example.org\r\nTo: b@example.org\r\nSubject: sink\r\n\r\n.leading dot\r\nGr\xfc\xdfe 8bit\r\n', 'latin1');
    const t = createTransport({ host: '127.0.0.1', port: sink.port, secure: false, ignoreTLS: true });
    await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@example.org', 'c@example.org'] }, raw });
    const [m] = (await sink.waitForMessages(1)).slice(-1);
    expect(m!.mailFrom.address).toBe('a@example.org');
    expect(m!.rcptTo).toEqual(['b@example.org', 'c@example.org']);
    expect(m!.raw.equals(raw)).toBe(true);
    expect(m!.session.remoteAddress).toBe('127.0.0.1');
  });

  test('records XCLIENT attributes and the EHLO name', async () => {
    const before = sink.messages.length;
    const replies = await converse(sink.port, [
      'EHLO relay.example\r\n',
      'XCLIENT ADDR=203.0.113.9 PORT=4711 HELO=client.example.net LOGIN=alice@example.org\r\n',
      'EHLO relay.example\r\n',
      'MAIL FROM:<alice@example.org> BODY=8BITMIME\r\n',
      'RCPT TO:<bob@example.org>\r\n',
      'DATA\r\n',
      'Subject: x\r\n\r\nbody\r\n.\r\n',
    ]);
    expect(replies[1]).toContain('XCLIENT');
    expect(replies[2]).toMatch(/^220 /);
    expect(replies[7]).toMatch(/^250 /);
    const m = (await sink.waitForMessages(before + 1))[before]!;
    expect(m.session.xclient).toMatchObject({ ADDR: '203.0.113.9', PORT: '4711', HELO: 'client.example.net', LOGIN: 'alice@example.org' });
    expect(m.session.remoteAddress).toBe('203.0.113.9');
    expect(m.mailFrom.args).toEqual({ BODY: '8BITMIME' });
    expect(m.raw.toString()).toBe('Subject: x\r\n\r\nbody\r\n');
  });

  test('waitForMessages rejects when too few arrive', async () => {
    await expect(sink.waitForMessages(sink.messages.length + 1, 50)).rejects.toThrow(/of \d+ messages after 50 ms/);
  });
});
