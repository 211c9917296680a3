/**
 * How the session driver and the listener let go of a client before login:
 * after our goodbye a polite client's last bytes are read and dropped so that
 * the goodbye arrives intact, but a client that keeps sending is cut off at
 * once; and a client that leaves during a TLS handshake (implicit or after
 * STARTTLS) frees its connection at once, not at the handshake or login
 * timeout.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Writable } from 'node:stream';
import type { Authenticator } from '@mailfront/auth';
import type { Locator } from '@mailfront/locator';
import {
  createListener,
  createLogger,
  DEFAULT_CORE_LIMITS,
  SessionRegistry,
  type ClientSession,
  type ClientStep,
  type Listener,
  type ProtocolDescriptor,
  type ProxyServices,
} from '@mailfront/proxy-core';
import { MAX_DISCARD_AFTER_CLOSE_BYTES } from '../src/session-driver';

/**
 * A minimal line protocol: greets; `STLS` starts TLS; more than 1 KiB
 * without a line end gets a goodbye and a close (as the real parsers do).
 */
class TinySession implements ClientSession {
  private greeted = false;
  private buf = '';
  private broken = false;
  private readonly queue: ClientStep[] = [];
  feed(chunk: Buffer): void {
    if (this.broken) return;
    this.buf += chunk.toString('latin1');
    for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      if (line === 'STLS') this.queue.push({ do: 'send', text: '+OK Begin TLS negotiation now.\r\n' }, { do: 'starttls' });
      else this.queue.push({ do: 'send', text: '-ERR Unknown command.\r\n', error: true });
    }
    if (this.buf.length > 1024) {
      this.broken = true;
      this.queue.push({ do: 'send', text: '-ERR Input line too long.\r\n' }, { do: 'close', reason: 'line too long' });
    }
  }
  next(): ClientStep | null {
    if (!this.greeted) {
      this.greeted = true;
      return { do: 'send', text: '+OK ready\r\n' };
    }
    return this.queue.shift() ?? null;
  }
  loginDone(): void {}
  tlsStarted(): void {
    this.buf = '';
    this.queue.length = 0;
  }
  takeUnconsumed(): Buffer {
    return Buffer.alloc(0);
  }
  bye(): string {
    return '-ERR bye\r\n';
  }
}

const desc = {
  name: 'pop3',
  alpn: ['pop3'],
  createSession: () => new TinySession(),
  backend: { initial: () => ({ at: 'banner' }), onLine: () => ({ done: true, reply: [] }) },
} as unknown as ProtocolDescriptor;

const registry = new SessionRegistry();
const svc: ProxyServices = {
  auth: {} as Authenticator,
  locator: {} as Locator,
  log: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  limits: { ...DEFAULT_CORE_LIMITS },
  registry,
  // No certificate: nothing here completes a handshake.
  tls: { defaultContext: () => tls.createSecureContext() },
};

let listener: Listener;

/** A listener of `kind` for this test. */
async function listen(kind: 'none' | 'starttls' | 'implicit'): Promise<void> {
  listener = createListener({ host: '127.0.0.1', port: 0, tls: kind, allowPlaintextAuth: true }, desc, svc);
  await listener.listen();
}
afterEach(() => listener.close());

interface Client {
  sock: net.Socket;
  /** Everything received so far, as latin1. */
  got(): string;
  /** Resolves once `text` has been received in all. */
  until(text: string): Promise<void>;
  /** Set once a write failed or the socket errored: the server reset the connection. */
  readonly failed: boolean;
}

/** allowHalfOpen: the client keeps writing after the server's FIN, as a flooding client does. */
function connect(): Promise<Client> {
  return new Promise((resolve) => {
    let text = '';
    let failed = false;
    const waiters: Array<() => void> = [];
    const sock = net.connect({ host: '127.0.0.1', port: listener.address().port, allowHalfOpen: true }, () =>
      resolve({
        sock,
        got: () => text,
        until: (t) => new Promise<void>((r) => (text.includes(t) ? r() : waiters.push(() => text.includes(t) && r()))),
        get failed() {
          return failed;
        },
      }),
    );
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      for (const w of waiters) w();
    });
    sock.on('error', () => (failed = true));
  });
}

/** Milliseconds until the listener holds no connection and no session is registered, or `limitMs`. */
async function allGone(limitMs: number): Promise<number> {
  const t0 = Date.now();
  while (((await listener.connections()) > 0 || registry.size > 0) && Date.now() - t0 < limitMs) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

describe('after our goodbye', () => {
  test('a client that keeps sending is cut off after MAX_DISCARD_AFTER_CLOSE_BYTES, not read for the whole grace', async () => {
    await listen('none');
    const c = await connect();
    await c.until('+OK ready\r\n');
    const chunk = Buffer.alloc(16 * 1024, 'A');
    const t0 = Date.now();
    let sent = 0;
    // 16 MB, far more than the cap: before the fix all of it was read, at wire speed, for the 2 s grace.
    for (let i = 0; i < 1_000 && !c.failed && !c.sock.destroyed; i++) {
      sent += chunk.length;
      if (!c.sock.write(chunk)) await new Promise((r) => setTimeout(r, 1));
    }
    await allGone(3_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    // The server reset the connection while the client was still sending.
    expect(c.failed).toBe(true);
    expect(sent).toBeLessThan(1_000 * chunk.length);
    expect(sent).toBeGreaterThan(MAX_DISCARD_AFTER_CLOSE_BYTES);
    expect(c.got()).toBe('+OK ready\r\n-ERR Input line too long.\r\n');
    c.sock.destroy();
  });

  test('a polite client that sends a little more and closes gets the goodbye intact, without a reset', async () => {
    await listen('none');
    const c = await connect();
    const ended = new Promise<void>((r) => c.sock.once('end', () => r()));
    c.sock.write(Buffer.alloc(2_000, 'x'));
    await ended;
    c.sock.end('a few pipelined commands\r\nQUIT\r\n');
    await new Promise((r) => c.sock.once('close', r));
    expect(c.failed).toBe(false);
    expect(c.got()).toBe('+OK ready\r\n-ERR Input line too long.\r\n');
    expect(await allGone(1_000)).toBeLessThan(1_000);
  });
});

describe('a client that leaves during the TLS handshake', () => {
  // The listener's sockets are half-open (allowHalfOpen): a client's FIN alone ends nothing.
  test('implicit TLS: its connection is freed at once, not at the handshake timeout', async () => {
    await listen('implicit');
    const c = await connect();
    c.sock.end();
    expect(await allGone(3_000)).toBeLessThan(1_000);
  });

  test('after STARTTLS: its session and connection are freed at once, not at the login timeout', async () => {
    await listen('starttls');
    const c = await connect();
    c.sock.write('STLS\r\n');
    await c.until('+OK Begin TLS negotiation now.\r\n');
    c.sock.end();
    expect(await allGone(3_000)).toBeLessThan(1_000);
  });
});
