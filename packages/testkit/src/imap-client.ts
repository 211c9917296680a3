import * as net from 'node:net';
import * as tls from 'node:tls';

export interface RawConnectOptions {
  /** 127.0.0.1 by default. */
  host?: string;
  port: number;
  /** TLS from the first byte (imaps, pop3s, submissions). */
  tls?: boolean;
  /** PEM of the CA to trust for TLS; without it the system store is used. */
  ca?: string | Buffer;
  /** SNI and the name checked against the certificate; `localhost` by default. */
  servername?: string;
  /** false accepts any certificate (only for tests about the bytes, not the trust). */
  rejectUnauthorized?: boolean;
  /** Connect (and TLS handshake) deadline; 5 000 ms by default. */
  connectTimeoutMs?: number;
}

export interface StartTlsOptions {
  ca?: string | Buffer;
  servername?: string;
  rejectUnauthorized?: boolean;
  timeoutMs?: number;
}

/** Thrown by startTls when the peer sent bytes after its STARTTLS reply (RFC 3207 §4.2 / RFC 2595 §3.1 injection). */
export class BufferedPlaintextError extends Error {
  readonly code = 'BUFFERED_PLAINTEXT' as const;
  constructor(readonly bytes: Buffer) {
    super(`${bytes.length} plaintext bytes were buffered when TLS started: ${JSON.stringify(bytes.toString('latin1'))}`);
    this.name = 'BufferedPlaintextError';
  }
}

/**
 * A line-oriented client over a raw socket, for transcript-style tests:
 * `a1 CAPABILITY` in, lines out. Every received byte is kept until a read
 * takes it, across chunk boundaries and across STARTTLS.
 */
export interface RawClient {
  /** The current socket (a TLSSocket after TLS started). */
  readonly socket: net.Socket;
  /** True once the peer has closed (or the socket failed). */
  readonly ended: boolean;
  /** The next line without its CRLF (or bare LF), decoded as UTF-8. */
  readLine(timeoutMs?: number): Promise<string>;
  /** Exactly `n` bytes (an IMAP literal, a POP3 body). */
  readBytes(n: number, timeoutMs?: number): Promise<Buffer>;
  /**
   * IMAP responses up to and including the one tagged `tag`. A response that
   * ends in a literal `{n}` is returned as one string with the literal's bytes
   * and the rest of the response inline, as on the wire less the final CRLF.
   */
  readUntilTagged(tag: string, timeoutMs?: number): Promise<string[]>;
  /** Writes `data` as is (add the CRLF yourself); resolves once it is handed to the kernel. */
  write(data: string | Buffer): Promise<void>;
  /** Writes `line` + CRLF and reads through the response tagged with the line's first word. */
  command(line: string, timeoutMs?: number): Promise<string[]>;
  /**
   * Starts TLS on this plaintext connection; call it after reading the
   * server's OK to STARTTLS (or STLS, or 220 to SMTP STARTTLS). Fails with
   * BufferedPlaintextError if the server sent anything after that reply.
   */
  startTls(caOrOptions?: string | Buffer | StartTlsOptions): Promise<void>;
  /** Bytes received but not read yet. */
  pending(): Buffer;
  /** Resolves when the peer closes, with whatever it sent that was not read yet. */
  waitForClose(timeoutMs?: number): Promise<Buffer>;
  /** Half-closes, then destroys after a short grace; idempotent. */
  close(): Promise<void>;
}

const DEFAULT_READ_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_GRACE_MS = 500;
const LF = 0x0a;

export async function rawConnect(opts: RawConnectOptions): Promise<RawClient> {
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const socket = opts.tls
    ? tls.connect({
        host,
        port: opts.port,
        ca: opts.ca,
        servername: opts.servername ?? 'localhost',
        rejectUnauthorized: opts.rejectUnauthorized ?? true,
      })
    : net.connect({ host, port: opts.port });
  // Attach before the connection completes so that no early byte is missed.
  const client = new LineClient(socket);
  await waitForEvent(socket, opts.tls ? 'secureConnect' : 'connect', timeoutMs, `connect to ${host}:${opts.port}`);
  socket.setNoDelay(true);
  return client;
}

/** Received bytes as a list of chunks: appending is O(1), and a line search resumes where the last one stopped. */
class ChunkQueue {
  private chunks: Buffer[] = [];
  length = 0;
  /** Bytes from the front already known to hold no LF. */
  private scanned = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Offset of the first LF, or -1. */
  indexOfLf(): number {
    let base = 0;
    for (const chunk of this.chunks) {
      if (base + chunk.length > this.scanned) {
        const from = Math.max(0, this.scanned - base);
        const i = chunk.indexOf(LF, from);
        if (i !== -1) return base + i;
      }
      base += chunk.length;
    }
    this.scanned = this.length;
    return -1;
  }

  take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.chunks.shift();
      } else {
        head.copy(out, filled, 0, want);
        this.chunks[0] = head.subarray(want);
        filled += want;
      }
    }
    this.length -= n;
    this.scanned = Math.max(0, this.scanned - n);
    return out;
  }

  peekAll(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

class LineClient implements RawClient {
  socket: net.Socket;
  ended = false;
  private readonly queue = new ChunkQueue();
  private failure: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private closing: Promise<void> | undefined;
  private readonly onData = (d: Buffer) => {
    this.queue.push(d);
    this.wake();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (err: Error) => {
    this.failure ??= err;
    this.ended = true;
    this.wake();
  };

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onEnd);
    socket.off('error', this.onError);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Polls `take` after each arrival until it yields, the peer closes, or time runs out. */
  private async waitFor<T>(take: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      const unread = () => JSON.stringify(this.queue.peekAll().toString('latin1').slice(0, 500));
      if (this.failure) throw new Error(`${what}: socket error ${this.failure.message}; unread ${unread()}`);
      if (this.ended) throw new Error(`${what}: connection closed by peer; unread ${unread()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out after ${timeoutMs} ms; unread ${unread()}`);
      await this.nextArrival(left);
    }
  }

  /** Resolves at the next arrival, error or close, or after `ms`. */
  private nextArrival(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private takeLine(): Buffer | undefined {
    const lf = this.queue.indexOfLf();
    if (lf === -1) return undefined;
    const raw = this.queue.take(lf + 1);
    const end = lf > 0 && raw[lf - 1] === 0x0d ? lf - 1 : lf;
    return raw.subarray(0, end);
  }

  async readLine(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<string> {
    const line = await this.waitFor(() => this.takeLine(), timeoutMs, 'readLine');
    return line.toString('utf8');
  }

  readBytes(n: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Buffer> {
    return this.waitFor(() => (this.queue.length >= n ? this.queue.take(n) : undefined), timeoutMs, `readBytes(${n})`);
  }

  async readUntilTagged(tag: string, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const responses: string[] = [];
    for (;;) {
      let response = await this.readLine(left());
      // RFC 9051 §4.3: a literal {n} ends its line; its n octets follow, then the response goes on.
      for (let m = /\{(\d+)\}$/.exec(response); m; m = /\{(\d+)\}$/.exec(response)) {
        const literal = await this.readBytes(Number(m[1]), left());
        response += `\r\n${literal.toString('utf8')}${await this.readLine(left())}`;
      }
      responses.push(response);
      if (response.startsWith(`${tag} `)) return responses;
    }
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  async command(line: string, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<string[]> {
    const tag = line.split(' ', 1)[0]!;
    await this.write(`${line}\r\n`);
    return this.readUntilTagged(tag, timeoutMs);
  }

  async startTls(caOrOptions?: string | Buffer | StartTlsOptions): Promise<void> {
    const opts: StartTlsOptions =
      typeof caOrOptions === 'string' || Buffer.isBuffer(caOrOptions) ? { ca: caOrOptions } : (caOrOptions ?? {});
    if (this.socket instanceof tls.TLSSocket) throw new Error('startTls: TLS is already active');
    if (this.queue.length > 0) throw new BufferedPlaintextError(this.queue.take(this.queue.length));
    const plain = this.socket;
    this.detach(plain);
    const secure = tls.connect({
      socket: plain,
      ca: opts.ca,
      servername: opts.servername ?? 'localhost',
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
    });
    this.socket = secure;
    this.attach(secure);
    await waitForEvent(secure, 'secureConnect', opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 'startTls');
  }

  pending(): Buffer {
    return this.queue.peekAll();
  }

  async waitForClose(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`waitForClose: still open after ${timeoutMs} ms`);
      await this.nextArrival(left);
    }
    return this.queue.take(this.queue.length);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const socket = this.socket;
      if (socket.destroyed) return resolve();
      const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
    return this.closing;
  }
}

function waitForEvent(socket: net.Socket, event: string, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off(event, onEvent);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onEvent = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(Object.assign(new Error(`${what}: ${err.message}`), { code: (err as NodeJS.ErrnoException).code, cause: err }));
    };
    const onClose = () => {
      cleanup();
      reject(Object.assign(new Error(`${what}: connection closed`), { code: 'ECONNRESET' }));
    };
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
      reject(Object.assign(new Error(`${what}: timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once(event, onEvent);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
