/**
 * A raw client for the security suite: like testkit's rawConnect, plus what
 * its attacks need and rawConnect does not offer — a chosen loopback source
 * address (penalties and spoofing are per address), ALPN on the handshake
 * (strict ALPN), and a flood writer that counts what the peer accepted.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export interface ConnOptions {
  port: number;
  /** Source address on loopback (127.0.0.x); 127.0.0.1 by default. */
  localAddress?: string;
  /** TLS from the first byte with this CA (implicit-TLS ports). */
  tls?: TlsOptions;
  /**
   * Keep writing after the server half-closed, as an attacker does (Node's
   * default ends our side as soon as the server's FIN arrives).
   */
  allowHalfOpen?: boolean;
}

export interface TlsOptions {
  ca: string;
  /** Offered ALPN identifiers; none offered when absent. */
  alpn?: string[];
}

const READ_TIMEOUT_MS = 5_000;

/** Thrown by startTls when the server sent anything after its STARTTLS reply (RFC 3207 §4.2 / RFC 2595 §3.1). */
export class PlaintextAfterStartTls extends Error {
  constructor(readonly bytes: Buffer) {
    super(`plaintext after the STARTTLS reply: ${JSON.stringify(bytes.toString('latin1'))}`);
  }
}

export class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private waiters = new Set<() => void>();
  /** True once the peer has closed or the socket failed. */
  ended = false;
  /** Every byte ever received, read or not (for reflection checks). */
  readonly transcript: Buffer[] = [];

  private constructor(public socket: net.Socket) {
    this.attach(socket);
  }

  static async open(opts: ConnOptions): Promise<Conn> {
    const raw = net.connect({ host: '127.0.0.1', port: opts.port, localAddress: opts.localAddress ?? '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
    raw.setNoDelay(true);
    if (!opts.tls) {
      const c = new Conn(raw);
      await settle(raw, 'connect', 'connect');
      return c;
    }
    await settle(raw, 'connect', 'connect');
    const secure = tls.connect({ socket: raw, ...tlsOptions(opts.tls) });
    const c = new Conn(secure);
    await settle(secure, 'secureConnect', 'TLS handshake');
    return c;
  }

  private readonly onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.transcript.push(d);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onEnd);
  }

  private detach(s: net.Socket): void {
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onEnd);
    s.off('error', this.onEnd);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private async waitFor<T>(take: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = take();
      if (v !== undefined) return v;
      const unread = JSON.stringify(this.buf.toString('latin1').slice(0, 300));
      if (this.ended) throw new Error(`${what}: connection closed; unread ${unread}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out after ${timeoutMs} ms; unread ${unread}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  /** The next line without its CRLF, as latin1 (one char per byte). */
  readLine(timeoutMs = READ_TIMEOUT_MS): Promise<string> {
    return this.waitFor(
      () => {
        const lf = this.buf.indexOf(0x0a);
        if (lf < 0) return undefined;
        const line = this.buf.subarray(0, lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf).toString('latin1');
        this.buf = this.buf.subarray(lf + 1);
        return line;
      },
      timeoutMs,
      'readLine',
    );
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (e) => (e ? reject(e) : resolve())));
  }

  /**
   * TLS on this plaintext connection, after the server's STARTTLS reply was
   * read. Fails if anything followed that reply in plaintext.
   */
  async startTls(opts: TlsOptions): Promise<void> {
    if (this.buf.length > 0) throw new PlaintextAfterStartTls(this.buf);
    const plain = this.socket;
    this.detach(plain);
    const secure = tls.connect({ socket: plain, ...tlsOptions(opts) });
    this.socket = secure;
    this.attach(secure);
    await settle(secure, 'secureConnect', 'startTls');
  }

  /** Resolves once the peer closed, with whatever it sent that was not read. */
  async waitForClose(timeoutMs = READ_TIMEOUT_MS): Promise<Buffer> {
    await this.waitFor(() => (this.ended ? true : undefined), timeoutMs, 'waitForClose').catch((e: Error) => {
      if (!this.ended) throw e;
    });
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Everything received on this connection so far. */
  received(): string {
    return Buffer.concat(this.transcript).toString('latin1');
  }

  close(): void {
    this.socket.destroy();
  }
}

function tlsOptions(o: TlsOptions): tls.ConnectionOptions {
  return { ca: o.ca, servername: 'localhost', ...(o.alpn ? { ALPNProtocols: o.alpn } : {}) };
}

function settle(s: net.Socket, event: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${what}: timed out`)), READ_TIMEOUT_MS);
    const ok = (): void => {
      clearTimeout(timer);
      s.off('error', fail);
      resolve();
    };
    const fail = (e: Error): void => {
      clearTimeout(timer);
      s.off(event, ok);
      s.destroy();
      reject(new Error(`${what}: ${e.message}`, { cause: e }));
    };
    s.once(event, ok);
    s.once('error', fail);
  });
}

/**
 * Write up to `totalBytes` of `chunk` repeated, respecting backpressure, until
 * the peer closes the connection. `acceptedBytes` counts the bytes the kernel
 * took (their write callbacks succeeded) before the connection failed: what
 * the peer read, plus what fits in the two socket buffers between us.
 */
export async function flood(
  socket: net.Socket,
  chunk: Buffer,
  totalBytes: number,
  timeoutMs: number,
): Promise<{ acceptedBytes: number; closed: boolean; ms: number }> {
  const t0 = Date.now();
  let accepted = 0;
  let failed = false;
  const onFail = (): void => {
    failed = true;
  };
  socket.on('error', onFail);
  socket.on('close', onFail);
  let written = 0;
  while (!failed && written < totalBytes && Date.now() - t0 < timeoutMs) {
    written += chunk.length;
    const ok = socket.write(chunk, (e) => {
      if (e) failed = true;
      else accepted += chunk.length;
    });
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          socket.off('drain', done);
          socket.off('close', done);
          socket.off('error', done);
          resolve();
        };
        const t = setTimeout(done, Math.max(1, timeoutMs - (Date.now() - t0)));
        socket.once('drain', done);
        socket.once('close', done);
        socket.once('error', done);
      });
    }
  }
  // Let the last callbacks and the close arrive.
  const deadline = Date.now() + 3_000;
  while (!failed && !socket.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  socket.off('error', onFail);
  socket.off('close', onFail);
  return { acceptedBytes: accepted, closed: failed || socket.destroyed, ms: Date.now() - t0 };
}

/** 127.0.0.x loopback addresses, each a different client to mailfront. */
export const loopback = (n: number): string => `127.0.0.${n}`;
