/**
 * PROXY protocol on listeners: the address a trusted balancer announces is the
 * client's address everywhere (mailfront's log, the auth core, the ID sent to
 * Dovecot); untrusted peers cannot claim one.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { encodeProxyV2 } from '@mailfront/proxy-core';
import { freePort, startDovecot, type Dovecot } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const USER = { name: 'pat@example.org', password: 'pat-pw' };
const HAPROXY_USER = { name: 'hap@example.org', password: 'hap-pw' };
let dovecot: Dovecot;
let mf: MailfrontUnderTest;
let haproxyPort: number;

beforeAll(async () => {
  haproxyPort = await freePort();
  // A Dovecot listener that expects a PROXY header (Dovecot's `haproxy = yes`).
  dovecot = await startDovecot({
    users: [USER, HAPROXY_USER],
    extraConfig: `
haproxy_trusted_networks = 127.0.0.0/8
service imap-login {
  inet_listener imap_haproxy {
    port = ${haproxyPort}
    haproxy = yes
  }
}
`,
  });
  mf = await startMailfront({
    backends: [
      { name: 'dovecot', host: '127.0.0.1', ports: { imap: dovecot.ports.imap, pop3: null, submission: null }, trusted: true },
      { name: 'dovecot-haproxy', host: '127.0.0.1', ports: { imap: haproxyPort, pop3: null, submission: null }, proxyProtocol: true },
    ],
    users: [
      { ...USER, backend: 'dovecot' },
      { ...HAPROXY_USER, backend: 'dovecot-haproxy' },
    ],
    config: {
      listeners: [
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true, proxyProtocol: true },
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit', proxyProtocol: true },
      ],
      proxyProtocol: { trustedNetworks: ['127.0.0.1/32'], headerTimeoutMs: 400 },
    },
  });
});
afterAll(async () => {
  await mf?.stop();
  await dovecot?.stop();
});

/** A line reader over any duplex. */
function lines(sock: net.Socket | tls.TLSSocket) {
  let buf = '';
  const waiting: Array<(l: string) => void> = [];
  const queue: string[] = [];
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const w = waiting.shift();
      if (w) w(l);
      else queue.push(l);
    }
  });
  return {
    next: (): Promise<string> => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r))),
    async untilTagged(tag: string): Promise<string> {
      for (;;) {
        const l = await this.next();
        if (l.startsWith(`${tag} `)) return l;
      }
    },
  };
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

test("a v1 header from the balancer: the client's address reaches Dovecot and mailfront's log", async () => {
  const s = await connect(mf.port('imap', 'none'));
  s.write('PROXY TCP4 203.0.113.5 192.0.2.10 51234 143\r\n');
  const r = lines(s);
  expect(await r.next()).toMatch(/^\* OK /);
  s.write(`a1 LOGIN ${USER.name} ${USER.password}\r\na2 LOGOUT\r\n`);
  expect(await r.untilTagged('a1')).toMatch(/^a1 OK/);
  await r.untilTagged('a2');
  const line = await dovecot.waitForLog(/Login: user=<pat@example.org>.*rip=203\.0\.113\.5, rport=51234,/);
  expect(line).toContain('lip=192.0.2.10, lport=143');
  await mf.waitForLog(/"client":"203\.0\.113\.5:51234".*"msg":"login"/);
  s.destroy();
});

test('a v2 header followed at once by the TLS ClientHello on an implicit-TLS port', async () => {
  const raw = await connect(mf.port('imap', 'implicit'));
  raw.write(encodeProxyV2({ address: '198.51.100.9', port: 40000 }, { address: '192.0.2.10', port: 993 }));
  const s = tls.connect({ socket: raw, ca: mf.certPem, servername: 'localhost' });
  const r = lines(s);
  expect(await r.next()).toMatch(/^\* OK /);
  s.write(`b1 LOGIN ${USER.name} ${USER.password}\r\nb2 LOGOUT\r\n`);
  expect(await r.untilTagged('b1')).toMatch(/^b1 OK/);
  await dovecot.waitForLog(/Login: user=<pat@example.org>.*rip=198\.51\.100\.9, rport=40000,/);
  s.destroy();
});

test('a trusted peer that sends no header is cut off after headerTimeoutMs, without a greeting', async () => {
  const s = await connect(mf.port('imap', 'none'));
  let got = '';
  s.on('data', (d) => (got += d.toString()));
  await closed(s);
  expect(got).toBe('');
});

test('an untrusted peer is served directly, with its own address', async () => {
  const s = await connect(mf.port('imap', 'none'), '127.0.0.2');
  const r = lines(s);
  expect(await r.next()).toMatch(/^\* OK /);
  s.write('c1 NOOP\r\n');
  expect(await r.untilTagged('c1')).toBe('c1 OK NOOP completed.');
  s.destroy();
});

test('an untrusted peer that sends a PROXY header (spoofing) is cut off', async () => {
  const s = await connect(mf.port('imap', 'none'), '127.0.0.2');
  const r = lines(s);
  expect(await r.next()).toMatch(/^\* OK /);
  s.write('PROXY TCP4 10.9.9.9 192.0.2.10 1 143\r\n');
  await closed(s);
  await mf.waitForLog(/PROXY header from an untrusted peer/);
});

test('garbage instead of a header from the balancer is cut off', async () => {
  const s = await connect(mf.port('imap', 'none'));
  s.write('GET / HTTP/1.1\r\n\r\n');
  let got = '';
  s.on('data', (d) => (got += d.toString()));
  await closed(s);
  expect(got).toBe('');
});

test("PROXY v2 towards a backend: Dovecot's haproxy listener sees the client's own address and port", async () => {
  const s = await connect(mf.port('imap', 'none'));
  // Through a balancer too, so the address is one no loopback socket could have.
  s.write('PROXY TCP4 198.51.100.77 192.0.2.10 61000 143\r\n');
  const r = lines(s);
  expect(await r.next()).toMatch(/^\* OK /);
  s.write(`h1 LOGIN ${HAPROXY_USER.name} ${HAPROXY_USER.password}\r\nh2 SELECT INBOX\r\n`);
  expect(await r.untilTagged('h1')).toMatch(/^h1 OK/);
  expect(await r.untilTagged('h2')).toMatch(/^h2 OK/);
  const line = await dovecot.waitForLog(/Login: user=<hap@example.org>.*rip=198\.51\.100\.77, rport=61000,/);
  expect(line).toContain('lip=192.0.2.10, lport=143');
  s.destroy();
});
