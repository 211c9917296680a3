/**
 * The health checks' I/O against local fakes: each protocol's greeting, the
 * PROXY LOCAL header, implicit TLS verified as a login would, and every way a
 * check fails. The Dovecot-backed behaviour is in backend-faults.e2e.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { HealthBook } from '@mailfront/locator';
import { createLogger, PROXY_V2_SIGNATURE } from '@mailfront/proxy-core';
import { checkBackendPort, generateCa, HealthChecker, issueCertificate, validateConfig, ConfigError } from '@mailfront/server';
import type { BackendRow } from '@mailfront/store';
import { backendRow } from '@mailfront/testkit';

const OPTS = { timeoutMs: 1_000, maxLineBytes: 1024 };

interface Fake {
  port: number;
  /** Bytes received per connection, in order. */
  received: Buffer[];
  close(): Promise<void>;
}

/** A server that calls `onConnect` for each connection and records what it receives. */
async function fake(onConnect: (s: net.Socket) => void, server: net.Server = net.createServer()): Promise<Fake> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', (s: net.Socket) => {
    sockets.add(s);
    const i = received.push(Buffer.alloc(0)) - 1;
    s.on('data', (d: Buffer) => (received[i] = Buffer.concat([received[i]!, d])));
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    onConnect(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const greeter = (greeting: string) => (s: net.Socket) => s.write(greeting);
const fakes: Fake[] = [];
async function start(onConnect: (s: net.Socket) => void, server?: net.Server): Promise<Fake> {
  const f = await fake(onConnect, server);
  fakes.push(f);
  return f;
}
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

function row(over: Partial<BackendRow> = {}): BackendRow {
  return backendRow({ name: 'b1', host: '127.0.0.1', ...over });
}

async function until(what: string, fn: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('checkBackendPort', () => {
  test.each<[string, 'imap' | 'pop3' | 'submission', string, string]>([
    ['IMAP', 'imap', '* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n', 'h LOGOUT\r\n'],
    ['POP3', 'pop3', '+OK Dovecot ready.\r\n', 'QUIT\r\n'],
    ['SMTP, multi-line', 'submission', '220-mail.example.org ESMTP\r\n220 ready\r\n', 'QUIT\r\n'],
  ])('%s greeting: up, and the check leaves politely', async (_what, protocol, greeting, quit) => {
    const f = await start(greeter(greeting));
    const r = await checkBackendPort(row(), protocol, f.port, OPTS);
    expect(r).toEqual({ ok: true, ms: expect.any(Number) });
    await until('the goodbye', () => f.received[0]?.toString('latin1') === quit);
  });

  test.each<[string, 'imap' | 'pop3' | 'submission', string, RegExp]>([
    ['IMAP BYE', 'imap', '* BYE [UNAVAILABLE] Server shutting down.\r\n', /^greeting: not ready: \* BYE/],
    ['IMAP PREAUTH', 'imap', '* PREAUTH logged in\r\n', /not ready: \* PREAUTH/],
    ['POP3 -ERR', 'pop3', '-ERR [SYS/TEMP] too busy\r\n', /not ready: -ERR/],
    ['SMTP 554', 'submission', '554 5.3.2 no service\r\n', /not ready: 554/],
    ['a POP3 greeting on the IMAP port', 'imap', '+OK hello\r\n', /not ready: \+OK/],
    ['control characters are clipped for the log', 'imap', '\x1b[31m* OK\r\n', /not ready: \\x1b\[31m/],
  ])('%s: down', async (_what, protocol, greeting, error) => {
    const f = await start(greeter(greeting));
    expect(await checkBackendPort(row(), protocol, f.port, OPTS)).toEqual({ ok: false, error: expect.stringMatching(error) });
  });

  test('nothing listening: down at once, saying ECONNREFUSED', async () => {
    const f = await start(() => undefined);
    const port = f.port;
    await f.close();
    fakes.splice(0);
    const t0 = Date.now();
    expect(await checkBackendPort(row(), 'imap', port, { ...OPTS, timeoutMs: 10_000 })).toEqual({ ok: false, error: expect.stringMatching(/^connect: ECONNREFUSED/) });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  test('accepts and says nothing: down after timeoutMs', async () => {
    const f = await start(() => undefined);
    const t0 = Date.now();
    expect(await checkBackendPort(row(), 'imap', f.port, { ...OPTS, timeoutMs: 300 })).toEqual({ ok: false, error: 'greeting: no answer within 300 ms' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  test('closes without a word, or with a greeting that never ends, or an overlong one: down', async () => {
    const closer = await start((s) => s.end());
    expect(await checkBackendPort(row(), 'imap', closer.port, OPTS)).toEqual({ ok: false, error: 'greeting: closed by the backend' });
    const long = await start((s) => s.write('* OK ' + 'x'.repeat(2000)));
    expect(await checkBackendPort(row(), 'imap', long.port, OPTS)).toEqual({ ok: false, error: 'greeting: greeting line longer than 1024 bytes' });
  });

  test('a backend marked proxyProtocol gets a PROXY v2 LOCAL header before anything else', async () => {
    const f = await start((s) => {
      s.once('data', () => s.write('* OK ready\r\n'));
    });
    expect(await checkBackendPort(row({ proxyProtocol: true }), 'imap', f.port, OPTS)).toMatchObject({ ok: true });
    await until('the header and the goodbye', () => (f.received[0]?.length ?? 0) >= 16 + 'h LOGOUT\r\n'.length);
    const got = f.received[0]!;
    expect(got.subarray(0, 12)).toEqual(PROXY_V2_SIGNATURE);
    // Version 2, LOCAL; family UNSPEC; no address block (spec §2.2).
    expect([...got.subarray(12, 16)]).toEqual([0x20, 0x00, 0x00, 0x00]);
    expect(got.subarray(16).toString('latin1')).toBe('h LOGOUT\r\n');
  });

  describe('implicit TLS', () => {
    const ca = generateCa({ commonName: 'health test CA' });
    const leaf = issueCertificate(ca, { hostnames: ['127.0.0.1', 'localhost'] });
    const otherCa = generateCa({ commonName: 'someone else' });
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-health-'));
      fs.writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
      fs.writeFileSync(path.join(dir, 'other.pem'), otherCa.cert);
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const tlsServer = () => tls.createServer({ cert: leaf.cert, key: leaf.key });

    test('the handshake is verified and the greeting read through TLS', async () => {
      const f = await start(greeter('* OK ready\r\n'), tlsServer());
      expect(await checkBackendPort(row({ tls: 'implicit', caFile: path.join(dir, 'ca.pem') }), 'imap', f.port, OPTS)).toMatchObject({ ok: true });
    });

    test('a certificate from another CA: down at the TLS stage', async () => {
      const f = await start(greeter('* OK ready\r\n'), tlsServer());
      expect(await checkBackendPort(row({ tls: 'implicit', caFile: path.join(dir, 'other.pem') }), 'imap', f.port, OPTS)).toEqual({
        ok: false,
        error: expect.stringMatching(/^tls: .*(certificate|UNABLE_TO_VERIFY)/i),
      });
    });

    test('a plaintext server on an implicit-TLS backend: down', async () => {
      const f = await start(greeter('* OK ready\r\n'));
      expect(await checkBackendPort(row({ tls: 'implicit', insecure: true }), 'imap', f.port, OPTS)).toMatchObject({ ok: false, error: expect.stringMatching(/^tls: /) });
    });
  });

  test('an abort ends the check at once', async () => {
    const f = await start(() => undefined);
    const ac = new AbortController();
    const p = checkBackendPort(row(), 'imap', f.port, { ...OPTS, timeoutMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(await p).toEqual({ ok: false, error: expect.stringMatching(/aborted$/) });
  });
});

describe('HealthChecker', () => {
  test('checks every port of every backend each round, records results, and forgets removed backends', async () => {
    const up = await start(greeter('* OK ready\r\n'));
    const pop = await start(greeter('+OK ready\r\n'));
    const down = await start((s) => s.destroy());
    let backends: BackendRow[] = [
      row({ name: 'up', ports: { imap: up.port, pop3: pop.port, submission: null } }),
      row({ name: 'down', ports: { imap: down.port, pop3: null, submission: null } }),
    ];
    const book = new HealthBook({ failuresToOpen: 2, openMs: 60_000 });
    const log = createLogger({ level: 'silent' });
    const checker = new HealthChecker({ store: { listBackends: async () => backends }, book, intervalMs: 100, timeoutMs: 500, maxLineBytes: 1024, log });
    try {
      checker.start();
      await until('two rounds', () => checker.completedRounds >= 2);
      expect(book.health('up', ['imap', 'pop3']).map((h) => [h.probe, h.breaker])).toEqual([
        ['up', 'closed'],
        ['up', 'closed'],
      ]);
      expect(book.health('down', ['imap'])[0]).toMatchObject({ probe: 'down', breaker: 'open', lastError: expect.stringMatching(/^check: greeting: (closed|ECONNRESET)/) });
      expect(checker.backends.map((b) => b.name)).toEqual(['up', 'down']);

      backends = backends.filter((b) => b.name !== 'down');
      const seen = checker.completedRounds;
      await until('another round', () => checker.completedRounds > seen);
      expect(book.isUp('down', 'imap')).toBe(true);
      expect(checker.backends.map((b) => b.name)).toEqual(['up']);
    } finally {
      await checker.stop();
    }
    const rounds = checker.completedRounds;
    await new Promise((r) => setTimeout(r, 250));
    expect(checker.completedRounds).toBe(rounds);
  });

  test('a store that cannot be read: the last known backends are checked', async () => {
    const up = await start(greeter('* OK ready\r\n'));
    let fail = false;
    const store = {
      listBackends: async () => {
        if (fail) throw new Error('database is locked');
        return [row({ name: 'up', ports: { imap: up.port, pop3: null, submission: null } })];
      },
    };
    const book = new HealthBook({ failuresToOpen: 1, openMs: 0 });
    const checker = new HealthChecker({ store, book, intervalMs: 100, timeoutMs: 500, maxLineBytes: 1024, log: createLogger({ level: 'silent' }) });
    await checker.runOnce();
    fail = true;
    const before = up.received.length;
    await checker.runOnce();
    expect(up.received.length).toBe(before + 1);
    expect(checker.backends.map((b) => b.name)).toEqual(['up']);
    await checker.stop();
  });
});

describe('health config', () => {
  const v = (health: unknown) => validateConfig({ health }, { baseDir: '/srv/mailfront' }).health;
  test('defaults, and a partial section merges over them', () => {
    expect(v(undefined)).toEqual({ intervalMs: 10_000, timeoutMs: 3_000, failuresToOpen: 3, openMs: 30_000 });
    expect(v({ openMs: 0, failuresToOpen: 1 })).toEqual({ intervalMs: 10_000, timeoutMs: 3_000, failuresToOpen: 1, openMs: 0 });
  });
  test.each<[unknown, string]>([
    [{ intervalMs: 50 }, 'health.intervalMs'],
    [{ timeoutMs: 0 }, 'health.timeoutMs'],
    [{ failuresToOpen: 0 }, 'health.failuresToOpen'],
    [{ openMs: -1 }, 'health.openMs'],
    [{ intervalMS: 1000 }, 'health.intervalMS'],
  ])('%j is refused, naming %s', (health, key) => {
    let err: unknown;
    try {
      v(health);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe(key);
  });
});
