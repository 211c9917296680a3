/**
 * Connection limits, graceful shutdown and reload, as clients see them.
 * The backend is a scripted fake: it logs anyone in and can stream a long
 * response on demand, which a real server does not do at will.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { startFakeBackend, type FakeBackend } from './fake-backend';
import { startMailfront, type MailfrontUnderTest } from './harness';

const USER = { name: 'lee@example.org', password: 'lee-pw' };

/** A line reader over a socket, with the close as an event. */
function reader(sock: net.Socket) {
  let buf = '';
  const lines: string[] = [];
  let closed = false;
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    wake();
  });
  sock.on('close', () => {
    closed = true;
    wake();
  });
  sock.on('error', () => undefined);
  const until = async (pred: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out; lines so far: ${JSON.stringify(lines.slice(-5))}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  return {
    lines,
    get closed() {
      return closed;
    },
    line: async (pattern: RegExp) => {
      await until(() => lines.some((l) => pattern.test(l)));
      return lines.find((l) => pattern.test(l))!;
    },
    closedNow: () => until(() => closed),
  };
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
    s.on('error', () => undefined); // resets from the server after a refusal are expected
  });
}

describe('connection limits', () => {
  let mf: MailfrontUnderTest;
  beforeAll(async () => {
    mf = await startMailfront({
      backends: [],
      users: [],
      config: {
        listeners: [
          { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true },
          { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
        ],
        limits: { maxConnections: 3, maxConnectionsPerAddress: 2 },
      },
    });
  });
  afterAll(() => mf?.stop());

  test('per address, then in total; a closed connection frees its place', async () => {
    const port = mf.port('imap', 'none');
    const a = reader(await connect(port));
    const aSock = await connect(port);
    const b = reader(aSock);
    await a.line(/^\* OK /);
    await b.line(/^\* OK /);
    const third = reader(await connect(port));
    expect(await third.line(/^\* BYE/)).toBe('* BYE [UNAVAILABLE] Too many connections, please try again later.');
    await third.closedNow();
    const other = reader(await connect(port, '127.0.0.2'));
    await other.line(/^\* OK /);
    const overTotal = reader(await connect(port, '127.0.0.3'));
    expect(await overTotal.line(/^\* BYE/)).toMatch(/Too many connections/);
    aSock.destroy();
    await b.closedNow();
    let again = reader(await connect(port, '127.0.0.3'));
    for (let i = 0; i < 20 && !(await again.line(/^\* (OK|BYE) /)).startsWith('* OK'); i++) {
      // The freed place is released on the server's close event: retry briefly.
      await new Promise((r) => setTimeout(r, 50));
      again = reader(await connect(port, '127.0.0.3'));
    }
    expect(again.lines[0]).toMatch(/^\* OK /);
    await mf.waitForLog(/"limit":"address".*connection refused: limit reached/);
  });

  test('over the limit on an implicit-TLS port: closed before any handshake', async () => {
    // The places are taken by the plaintext connections of the test above, or by these.
    const held = await Promise.all([0, 1, 2].map(() => connect(mf.port('imap', 'none'), '127.0.0.4')));
    const err = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: mf.port('imap', 'implicit'), rejectUnauthorized: false }, () => resolve('handshake done'));
      s.on('error', (e) => resolve(e.message));
      s.on('close', () => resolve('closed'));
    });
    expect(err).not.toBe('handshake done');
    held.forEach((s) => s.destroy());
  });
});

describe('graceful shutdown', () => {
  let fake: FakeBackend;
  let mf: MailfrontUnderTest;
  beforeEach(async () => {
    fake = await startFakeBackend({
      greeting: '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] fake\r\n',
      onLine: (line, sock) => {
        if (line.startsWith('L AUTHENTICATE')) return 'L OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n';
        const m = /^(\S+) STREAM (\d+)$/.exec(line);
        if (m) {
          // A response that keeps coming for a while: 40 ms apart, never quiet.
          let n = 0;
          const t = setInterval(() => {
            if (sock.destroyed) return clearInterval(t);
            if (++n <= Number(m[2])) sock.write(`* STREAM ${n}\r\n`);
            else {
              clearInterval(t);
              sock.write(`${m[1]} OK STREAM done\r\n`);
            }
          }, 40);
        }
        return null;
      },
    });
    mf = await startMailfront({
      backends: [{ name: 'fake', host: '127.0.0.1', ports: { imap: fake.port, pop3: null, submission: null } }],
      users: [{ ...USER, backend: 'fake' }],
      config: { listeners: [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true }] },
    });
  });
  afterEach(async () => {
    await mf?.stop();
    await fake?.close();
  });

  async function loggedIn() {
    const sock = await connect(mf.port('imap', 'none'));
    const r = reader(sock);
    await r.line(/^\* OK /);
    sock.write(`a LOGIN ${USER.name} ${USER.password}\r\n`);
    await r.line(/^a OK/);
    return { sock, r };
  }

  test('quiet sessions get BYE at once; a response in flight is finished first; pre-login gets BYE', async () => {
    const idle = await loggedIn();
    const busy = await loggedIn();
    const pre = reader(await connect(mf.port('imap', 'none')));
    await pre.line(/^\* OK /);
    busy.sock.write('s STREAM 30\r\n');
    await busy.r.line(/^\* STREAM 3$/);
    await new Promise((r) => setTimeout(r, 300)); // the idle one is now quiet
    const closing = mf.server.close({ graceMs: 10_000 });
    expect(await idle.r.line(/^\* BYE/)).toBe('* BYE Server shutting down.');
    expect(await pre.line(/^\* BYE/)).toBe('* BYE Server shutting down.');
    await idle.r.closedNow();
    // The streaming session was not cut: every line, the tagged OK, then BYE.
    expect(busy.r.closed).toBe(false);
    await busy.r.line(/^s OK STREAM done/);
    await busy.r.line(/^\* BYE Server shutting down\.$/);
    const streamed = busy.r.lines.filter((l) => l.startsWith('* STREAM '));
    expect(streamed).toEqual(Array.from({ length: 30 }, (_, i) => `* STREAM ${i + 1}`));
    expect(busy.r.lines.indexOf('* BYE Server shutting down.')).toBeGreaterThan(busy.r.lines.indexOf('s OK STREAM done'));
    await closing;
    await busy.r.closedNow();
  });

  test('at the end of the grace period the rest is closed, without words inside the transfer', async () => {
    const busy = await loggedIn();
    busy.sock.write('s STREAM 1000\r\n');
    await busy.r.line(/^\* STREAM 2$/);
    await mf.server.close({ graceMs: 400 });
    await busy.r.closedNow();
    expect(busy.r.lines.some((l) => l.startsWith('* BYE'))).toBe(false);
    expect(busy.r.lines.some((l) => l.startsWith('s OK'))).toBe(false);
  });
});

describe('reload', () => {
  test('new limits apply to new connections; listener changes are reported, not applied', async () => {
    const mf = await startMailfront({ backends: [], users: [], config: { limits: { maxConnectionsPerAddress: 1 } } });
    try {
      const port = mf.port('imap', 'starttls');
      const first = reader(await connect(port));
      await first.line(/^\* OK /);
      const refused = reader(await connect(port));
      await refused.line(/^\* BYE .*Too many connections/);
      const { validateConfig } = await import('@mailfront/server');
      const base = { dataDir: `${mf.dir.path}/var`, hostname: 'localhost', log: { level: 'debug' } };
      const r = mf.server.reload(
        validateConfig(
          { ...base, limits: { maxConnectionsPerAddress: 5 }, listeners: [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' }] },
          { baseDir: mf.dir.path },
        ),
      );
      expect(r.applied).toEqual(expect.arrayContaining(['tls', 'limits']));
      expect(r.needsRestart).toEqual(['listeners']);
      const second = reader(await connect(port));
      expect(await second.line(/^\* (OK|BYE) /)).toMatch(/^\* OK /);
    } finally {
      await mf.stop();
    }
  });
});
