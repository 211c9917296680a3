/**
 * A client connection for the bench and load scripts: raw net/tls sockets
 * with TCP_NODELAY and a minimal CRLF line reader, so that no mail library
 * sits between the timer and the wire. Lines are latin1 strings. `bulk()`
 * switches to counting raw bytes until the end of a long response (an IMAP
 * tagged reply after a FETCH, POP3's final `.` line after RETR).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export const LINE_TIMEOUT_MS = 30_000;
const BULK_TIMEOUT_MS = 300_000;

/** The TLS parameters of the first TLS connection made (for the report). */
export let tlsInfo;

/** target: { host, port, tls, localAddress? } */
export function connect({ host, port, tls: useTls, localAddress }) {
  const s = useTls ? tls.connect({ host, port, localAddress, rejectUnauthorized: false }) : net.connect({ host, port, localAddress });
  // The client never adds a Nagle stall of its own; the proxy's are what we look for.
  s.setNoDelay(true);
  if (useTls && !tlsInfo) {
    s.once('secureConnect', () => {
      tlsInfo ??= { protocol: s.getProtocol(), cipher: s.getCipher()?.name, group: s.getEphemeralKeyInfo?.()?.name };
    });
  }
  return s;
}

export class Conn {
  constructor(target) {
    this.s = connect(target);
    this.buf = '';
    this.lines = [];
    this.waiter = undefined;
    this.failure = undefined;
    this.bulkState = undefined;
    this.closed = new Promise((resolve) => this.s.once('close', resolve));
    this.s.on('data', (d) => this.onData(d));
    this.s.on('error', (e) => this.fail(e));
    this.s.on('close', () => this.fail(new Error(`connection closed (last: ${JSON.stringify(this.last ?? '')})`)));
  }
  onData(d) {
    if (this.bulkState) return this.onBulk(d);
    this.buf += d.toString('latin1');
    let i;
    while ((i = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      this.last = line;
      this.lines.push(line);
    }
    this.wake();
  }
  fail(e) {
    this.failure ??= e;
    this.wake();
    if (this.bulkState) {
      const b = this.bulkState;
      this.bulkState = undefined;
      clearTimeout(b.timer);
      b.reject(new Error(`${e.message} during a bulk response after ${b.bytes} bytes`));
    }
  }
  wake() {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  /** Next line; rejects on error, close or timeout. */
  async line(timeoutMs = LINE_TIMEOUT_MS) {
    for (;;) {
      if (this.lines.length) return this.lines.shift();
      if (this.failure) throw this.failure;
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timeout waiting for a line (last: ${JSON.stringify(this.last ?? '')})`)), timeoutMs);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
  /** Lines until one starting with `prefix`; returns it. */
  async until(prefix, timeoutMs) {
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l.startsWith(prefix)) return l;
    }
  }
  /** IMAP: the tagged reply of `tag`, which must be OK. */
  async tagged(tag, timeoutMs) {
    const l = await this.until(`${tag} `, timeoutMs);
    if (!l.startsWith(`${tag} OK`)) throw new Error(`server said: ${l}`);
    return l;
  }
  /** POP3: one status line, which must be +OK. */
  async ok(what, timeoutMs) {
    const l = await this.line(timeoutMs);
    if (!/^\+OK(?: |$)/.test(l)) throw new Error(`${what}: ${l}`);
    return l;
  }
  /** SMTP: one reply (all its lines), whose code must be `code`. */
  async reply(code, what, timeoutMs) {
    const lines = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      lines.push(l);
      if (!/^\d{3}-/.test(l)) break;
    }
    const last = lines.at(-1);
    if (!last.startsWith(String(code))) throw new Error(`${what}: ${last}`);
    return lines;
  }
  write(s) {
    this.s.write(s);
  }
  /**
   * Sends `command` and counts raw bytes until `done(tail)` says the response
   * ended: true (complete), false (not yet) or an Error (a failure reply).
   * `tail` is the last 256 bytes received (latin1).
   */
  bulk(command, done) {
    if (this.buf.length || this.lines.length) throw new Error(`bulk: unread data before the command: ${JSON.stringify((this.lines[0] ?? this.buf).slice(0, 80))}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.bulkState = undefined;
        reject(new Error('bulk response timed out'));
      }, BULK_TIMEOUT_MS);
      this.bulkState = { bytes: 0, tail: '', head: '', done, resolve, reject, timer };
      this.s.write(command);
    });
  }
  onBulk(d) {
    const b = this.bulkState;
    b.bytes += d.length;
    if (b.head.length < 64) b.head += d.subarray(0, 64).toString('latin1');
    b.tail = (b.tail + d.subarray(Math.max(0, d.length - 256)).toString('latin1')).slice(-256);
    const verdict = b.done(b.tail, b.head);
    if (verdict === false) return;
    this.bulkState = undefined;
    clearTimeout(b.timer);
    if (verdict instanceof Error) b.reject(verdict);
    else b.resolve(b.bytes);
  }
  /** Half-close, wait for the server's close (at most 5 s). */
  async close() {
    this.s.end();
    const t = setTimeout(() => this.s.destroy(), 5_000);
    await this.closed;
    clearTimeout(t);
  }
}

export const imapQuote = (s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** RFC 4616 PLAIN: authzid NUL authcid NUL password, base64. */
export const saslPlain = (user, password) => Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');

/** IMAP: greeting, then `a LOGIN`. */
export async function imapLogin(c, user) {
  const greeting = await c.line();
  if (!greeting.startsWith('* OK')) throw new Error(`greeting: ${greeting}`);
  c.write(`a LOGIN ${imapQuote(user.name)} ${imapQuote(user.password)}\r\n`);
  await c.tagged('a');
}

/** POP3: greeting, then USER and PASS (RFC 1939 §7), each waiting for its +OK. */
export async function pop3Login(c, user) {
  await c.ok('greeting');
  c.write(`USER ${user.name}\r\n`);
  await c.ok('USER');
  c.write(`PASS ${user.password}\r\n`);
  await c.ok('PASS');
}

/** SMTP submission: greeting, EHLO, AUTH PLAIN with its initial response (RFC 4954). */
export async function smtpLogin(c, user, ehloName = 'bench.client.test') {
  await c.reply(220, 'greeting');
  c.write(`EHLO ${ehloName}\r\n`);
  await c.reply(250, 'EHLO');
  c.write(`AUTH PLAIN ${saslPlain(user.name, user.password)}\r\n`);
  await c.reply(235, 'AUTH');
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
