import { isIP } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Client, ResultCodeError } from 'ldapts';
import { AuthError } from './errors';

/** How mailfront reaches its directory servers. */
export interface LdapConnectOptions {
  /** Tried in order for every new connection; the first that answers is used. */
  urls: readonly string[];
  /**
   * For ldap:// URLs: upgrade with StartTLS (RFC 4513 §3.1.1) before anything
   * else is sent, and fail rather than go on in clear. ldaps:// URLs use TLS
   * from the first byte either way.
   */
  startTls: boolean;
  /** PEM CA bundle that signed the directory's certificate; undefined = Node's default CAs. */
  ca?: string | Buffer;
  /** TCP connect, TLS handshake and StartTLS together, per URL. */
  connectTimeoutMs: number;
  /** Each operation (bind, search); the connection is dropped when one overruns. */
  timeoutMs: number;
}

/** One connection to a directory server, owned by a pool. */
export interface LdapConnection {
  readonly client: Client;
  /** The URL it was opened to, for logs and `mailfront ldap test`. */
  readonly url: string;
  /** Whether the connection is still open (the server may have closed it while idle). */
  open(): boolean;
  /** Drop the connection without waiting for anything. */
  destroy(): void;
}

function deadline<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what} took longer than ${ms} ms`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** A socket that fails at once: what ldapts gets if it ever tries to reconnect by itself. */
function refusedSocket(): net.Socket {
  const s = new net.Socket();
  process.nextTick(() => s.destroy(new Error('reconnecting a pooled LDAP connection is not allowed')));
  return s;
}

interface Target {
  url: string;
  host: string;
  port: number;
  implicitTls: boolean;
}

export function parseLdapUrl(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AuthError('invalid-option', `${url} is not a URL`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'ldap' && scheme !== 'ldaps') throw new AuthError('invalid-option', `${url}: the scheme must be ldap or ldaps`);
  if (!u.hostname) throw new AuthError('invalid-option', `${url}: no host`);
  // An LDAP URL's DN, attributes, scope and filter (RFC 4516) would be silently ignored here.
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
    throw new AuthError('invalid-option', `${url}: only scheme, host and port are allowed`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const implicitTls = scheme === 'ldaps';
  return { url, host, port: u.port ? Number(u.port) : implicitTls ? 636 : 389, implicitTls };
}

/**
 * The TLS options for a directory host. Node checks the certificate against
 * `servername || host`; servername must not be an IP address (RFC 6066 §3),
 * so for an address only `host` is set and the certificate's IP SAN is checked.
 */
function tlsOptionsFor(t: Target, ca: string | Buffer | undefined): tls.ConnectionOptions {
  return { host: t.host, ...(isIP(t.host) ? {} : { servername: t.host }), ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' };
}

/** Open a TCP (or TLS, for ldaps) socket that is connected, within `ms`. */
function connectSocket(t: Target, ca: string | Buffer | undefined, ms: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = t.implicitTls ? tls.connect({ ...tlsOptionsFor(t, ca), port: t.port }) : net.connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => fail(new Error(`connect took longer than ${ms} ms`)), ms);
    const fail = (err: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.once('error', fail);
    sock.once(t.implicitTls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      sock.removeListener('error', fail);
      resolve(sock);
    });
  });
}

async function connectOne(t: Target, o: LdapConnectOptions): Promise<LdapConnection> {
  const started = Date.now();
  const sock = await connectSocket(t, o.ca, o.connectTimeoutMs);
  // ldapts connects lazily and, after a drop, reconnects by itself on the
  // next operation: unbound, and in clear even after StartTLS. A pooled
  // connection must never come back like that (an anonymous search finds
  // nobody, which would read as "unknown user"), so ldapts gets the socket
  // opened here once, and a failing one if it ever asks again.
  let handedOver = false;
  const once = () => {
    if (handedOver) return refusedSocket();
    handedOver = true;
    return sock;
  };
  const client = new Client({
    url: t.url,
    timeout: o.timeoutMs,
    connectTimeout: o.connectTimeoutMs,
    createConnection: once as unknown as typeof net.connect,
    // Called for ldaps:// connects (→ our socket) and for the StartTLS upgrade (options with the plain socket).
    createSecureConnection: ((arg: unknown) =>
      typeof arg === 'object' && arg !== null && 'socket' in arg ? tls.connect(arg as tls.ConnectionOptions) : once()) as unknown as typeof tls.connect,
  });
  const internal = client as unknown as { socket?: net.Socket };
  // ldapts's own isConnected stays true when a StartTLS-upgraded connection
  // is closed by the server (its close handler compares the plain socket with
  // the TLS one), and an operation sent then waits for its timeout. The plain
  // socket closes under the TLS one whatever ends it: watch that.
  let closed = false;
  const markClosed = () => (closed = true);
  sock.once('close', markClosed);
  const destroy = () => {
    internal.socket?.destroy();
    sock.destroy();
  };
  if (!t.implicitTls && o.startTls) {
    const left = Math.max(1, o.connectTimeoutMs - (Date.now() - started));
    try {
      // A refused StartTLS is a failure of this URL, never a reason to go on in clear.
      await deadline(client.startTLS(tlsOptionsFor(t, o.ca)), left, 'StartTLS', destroy);
    } catch (err) {
      destroy();
      throw new Error(`StartTLS failed: ${describeError(err)}`);
    }
  }
  // Idle pooled connections must not keep the process alive; an operation in
  // flight does, through ldapts's timeout timer.
  sock.unref();
  internal.socket?.unref();
  return {
    client,
    url: t.url,
    // Before ldapts has taken the socket (no operation yet) its own flag is still false.
    open: () => !closed && (handedOver ? client.isConnected : sock.readyState === 'open'),
    destroy,
  };
}

/**
 * A new connection to the first URL that answers. Throws AuthError
 * 'directory-unavailable' naming every URL and why it failed.
 */
export async function openLdapConnection(o: LdapConnectOptions): Promise<LdapConnection> {
  const problems: string[] = [];
  for (const url of o.urls) {
    const t = parseLdapUrl(url);
    try {
      return await connectOne(t, o);
    } catch (err) {
      problems.push(`${url}: ${describeError(err)}`);
    }
  }
  throw new AuthError('directory-unavailable', `no directory server reachable (${problems.join('; ')})`);
}

/** An LDAP result code from the server: the connection itself is fine. */
export function isLdapResult(err: unknown): err is ResultCodeError {
  return err instanceof ResultCodeError;
}

/** ldapts's operation timeout ("SearchRequest: Operation timed out"); it has no code for it. */
function isTimeout(err: unknown): boolean {
  return err instanceof Error && /timed out/i.test(err.message);
}

export function describeError(err: unknown): string {
  if (err instanceof ResultCodeError) return `LDAP result ${err.code} (${err.name.replace(/Error$/, '')})`;
  if (err instanceof AuthError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code && typeof e.code === 'string') return `${e.code}${e.message && !e.message.includes(e.code) ? ` ${e.message}` : ''}`.split('\n')[0]!;
  return (e?.message ?? String(err)).split('\n')[0]!;
}

export interface LdapPoolOptions {
  /** For messages: 'search' or 'bind'. */
  name: string;
  /** Connections at most, idle and busy together. */
  size: number;
  /** Makes a ready connection (connected, TLS, bound as needed); throws when it cannot. */
  open: () => Promise<LdapConnection>;
  /** Whether an idle connection may be used again (still open, still bound as it should be). */
  reusable: (c: LdapConnection) => boolean;
  /** How long a caller may wait for a free connection. */
  waitTimeoutMs: number;
}

/**
 * A few connections reused across logins. Nothing here is sticky: a
 * connection that failed, timed out or was closed by the server is dropped
 * and the next caller opens a new one, so the pool recovers by itself as
 * soon as the directory is back.
 */
export class LdapPool {
  private readonly idle: LdapConnection[] = [];
  private free: number;
  private readonly waiters: Array<() => void> = [];
  private closed = false;
  /** Connections opened so far: for tests and `mailfront ldap test`. */
  opened = 0;

  constructor(private readonly o: LdapPoolOptions) {
    this.free = o.size;
  }

  /**
   * Run `fn` on a connection. A connection that threw anything but an LDAP
   * result code is in an unknown state and is dropped. If a connection taken
   * from the idle list fails that way, `fn` runs once more on a fresh one:
   * the server may have gone away (restart, idle timeout) while it sat idle.
   */
  async use<T>(fn: (c: LdapConnection) => Promise<T>): Promise<T> {
    if (this.closed) throw new AuthError('directory-unavailable', `the ${this.o.name} pool is closed`);
    await this.acquire();
    try {
      const reused = this.takeIdle();
      if (reused) {
        try {
          return await this.run(reused, fn);
        } catch (err) {
          // A slow directory is not helped by asking again: that would only double the wait.
          if (isLdapResult(err) || err instanceof AuthError || isTimeout(err)) throw err;
        }
      }
      return await this.run(await this.openNew(), fn);
    } finally {
      this.release();
    }
  }

  private async run<T>(c: LdapConnection, fn: (c: LdapConnection) => Promise<T>): Promise<T> {
    let keep = true;
    try {
      return await fn(c);
    } catch (err) {
      keep = isLdapResult(err);
      throw err;
    } finally {
      if (keep && !this.closed && this.o.reusable(c)) this.idle.push(c);
      else c.destroy();
    }
  }

  private async openNew(): Promise<LdapConnection> {
    const c = await this.o.open();
    this.opened++;
    return c;
  }

  private takeIdle(): LdapConnection | undefined {
    for (;;) {
      // Most recently used first: it is the likeliest to be alive.
      const c = this.idle.pop();
      if (!c) return undefined;
      if (this.o.reusable(c)) return c;
      c.destroy();
    }
  }

  private acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new AuthError('directory-unavailable', `all ${this.o.size} ${this.o.name} connections stayed busy for ${this.o.waitTimeoutMs} ms`));
      }, this.o.waitTimeoutMs);
      this.waiters.push(waiter);
    });
  }

  private release(): void {
    const next = this.waiters.shift();
    // The slot passes straight to the next waiter, so a new caller cannot jump the queue.
    if (next) next();
    else this.free++;
  }

  /** Idle connections held now. */
  get idleCount(): number {
    return this.idle.length;
  }

  /** Close idle connections now and busy ones when they are returned. */
  close(): void {
    this.closed = true;
    // No UnbindRequest first: RFC 4511 §4.3 lets either side simply close,
    // and ldapts would hold a timer for it until its operation timeout.
    for (const c of this.idle.splice(0)) c.destroy();
  }
}
