/**
 * The load client: a separate process (forked by run.mjs, commands over IPC)
 * so that its CPU is never counted as the proxy's. Raw net/tls sockets and a
 * minimal line reader: no IMAP library between the timer and the wire.
 *
 * A login is: connect, read the greeting, `a LOGIN user pass`, read the tagged
 * OK, `b LOGOUT`, read the tagged OK (latency stops here), end, wait for close.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

const CONNECT_TIMEOUT_MS = 30_000;
const FETCH_TIMEOUT_MS = 300_000;
const FETCH_TAG = 'F9Z';
const FETCH_DONE = new RegExp(`\\r\\n${FETCH_TAG} (OK|NO|BAD)[^\\r\\n]*\\r\\n$`);

let tlsInfo;

function connect({ host, port, tls: useTls }) {
  const s = useTls ? tls.connect({ host, port, rejectUnauthorized: false }) : net.connect({ host, port });
  // The client never adds a Nagle stall of its own; the proxy's are what we look for.
  s.setNoDelay(true);
  if (useTls && !tlsInfo) {
    s.once('secureConnect', () => {
      tlsInfo ??= { protocol: s.getProtocol(), cipher: s.getCipher()?.name, group: s.getEphemeralKeyInfo?.()?.name };
    });
  }
  return s;
}

/** Lines of one connection, as promises; `bulk()` switches to counting raw bytes up to a tagged reply. */
class Conn {
  constructor(target) {
    this.s = connect(target);
    this.buf = '';
    this.lines = [];
    this.waiter = undefined;
    this.failure = undefined;
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
  }
  wake() {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  /** Next line; rejects on error, close or timeout. */
  async line(timeoutMs = CONNECT_TIMEOUT_MS) {
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
  async tagged(tag, timeoutMs) {
    const l = await this.until(`${tag} `, timeoutMs);
    if (!l.startsWith(`${tag} OK`)) throw new Error(`server said: ${l}`);
    return l;
  }
  write(s) {
    this.s.write(s);
  }
  /** Sends `command` and counts raw bytes until the tagged reply ends the stream. */
  bulk(command) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('FETCH timed out')), FETCH_TIMEOUT_MS);
      this.bulkState = { bytes: 0, tail: '', resolve, reject, timer };
      const onClose = () => {
        if (this.bulkState) {
          clearTimeout(timer);
          reject(new Error(`connection closed during FETCH after ${this.bulkState.bytes} bytes`));
        }
      };
      this.s.once('close', onClose);
      this.s.write(command);
    });
  }
  onBulk(d) {
    const b = this.bulkState;
    b.bytes += d.length;
    b.tail = (b.tail + d.subarray(Math.max(0, d.length - 256)).toString('latin1')).slice(-256);
    const m = FETCH_DONE.exec(b.tail);
    if (!m) return;
    this.bulkState = undefined;
    clearTimeout(b.timer);
    if (m[1] !== 'OK') b.reject(new Error(`FETCH failed: ${b.tail.slice(b.tail.lastIndexOf(FETCH_TAG))}`));
    else b.resolve(b.bytes);
  }
  async close() {
    this.s.end();
    const t = setTimeout(() => this.s.destroy(), 5_000);
    await this.closed;
    clearTimeout(t);
  }
}

const quote = (s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

async function login(c, user) {
  const greeting = await c.line();
  if (!greeting.startsWith('* OK')) throw new Error(`greeting: ${greeting}`);
  c.write(`a LOGIN ${quote(user.name)} ${quote(user.password)}\r\n`);
  await c.tagged('a');
}

async function oneLogin(target, user) {
  const start = performance.now();
  const c = new Conn(target);
  try {
    await login(c, user);
    c.write('b LOGOUT\r\n');
    await c.tagged('b');
    const latencyMs = performance.now() - start;
    await c.close();
    return latencyMs;
  } catch (e) {
    c.s.destroy();
    throw e;
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function logins({ target, users, count, concurrency, offset = 0, maxMs = Infinity }) {
  let next = 0;
  const lat = [];
  const errors = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + maxMs;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count && performance.now() < deadline) {
        const i = next++;
        try {
          lat.push(await oneLogin(target, users[(i + offset) % users.length]));
        } catch (e) {
          errors.push(e.message);
        }
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const cpu = process.cpuUsage(cpu0);
  return {
    attempted: next,
    ok: lat.length,
    errors: errors.length,
    errorSamples: [...new Set(errors)].slice(0, 3),
    elapsedMs,
    perSecond: (lat.length / elapsedMs) * 1000,
    latencyMs: {
      p50: percentile(lat, 50),
      p90: percentile(lat, 90),
      p99: percentile(lat, 99),
      max: lat[lat.length - 1],
      mean: lat.reduce((a, b) => a + b, 0) / lat.length,
    },
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    // Raw, so that rounds can be merged before taking percentiles.
    latenciesMs: lat.map((x) => Math.round(x * 1000) / 1000),
    tls: target.tls ? tlsInfo : undefined,
  };
}

async function fetchBox({ target, user, iterations }) {
  const runs = [];
  for (let i = 0; i < iterations; i++) {
    const c = new Conn(target);
    try {
      await login(c, user);
      c.write('s SELECT INBOX\r\n');
      const exists = Number((await c.until('* ')).match(/^\* (\d+) EXISTS/)?.[1] ?? NaN);
      await c.tagged('s');
      const t0 = performance.now();
      const bytes = await c.bulk(`${FETCH_TAG} FETCH 1:* BODY.PEEK[]\r\n`);
      const ms = performance.now() - t0;
      runs.push({ bytes, ms, mbPerS: bytes / 1e6 / (ms / 1000), messages: exists });
      c.write('z LOGOUT\r\n');
      await c.tagged('z');
      await c.close();
    } catch (e) {
      c.s.destroy();
      throw e;
    }
  }
  return { runs };
}

/** Sessions held open by `idle-open` until `idle-close`. */
let idle = [];

async function idleOpen({ target, users, sessions, concurrency }) {
  let next = 0;
  const errors = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < sessions) {
        const i = next++;
        const c = new Conn(target);
        try {
          await login(c, users[i % users.length]);
          c.write('x IDLE\r\n');
          await c.until('+ ');
          idle.push(c);
        } catch (e) {
          errors.push(e.message);
          c.s.destroy();
        }
      }
    }),
  );
  // A session that the server drops while idle would make the figure too low.
  await new Promise((r) => setTimeout(r, 500));
  const dropped = idle.filter((c) => c.s.destroyed || c.failure).length;
  return { opened: idle.length, dropped, errors: errors.length, errorSamples: [...new Set(errors)].slice(0, 3), elapsedMs: performance.now() - t0 };
}

async function idleClose() {
  const n = idle.length;
  for (const c of idle) c.s.destroy();
  await Promise.all(idle.map((c) => c.closed));
  idle = [];
  return { closed: n };
}

/** Fills a mailbox: `count` messages of exactly `size` bytes, APPENDed with LITERAL+ (RFC 7888). */
async function append({ target, user, count, size }) {
  const c = new Conn(target);
  const t0 = performance.now();
  try {
    await login(c, user);
    const body = Buffer.from(randomBytes(size).toString('base64').replace(/.{76}/g, '$&\r\n'), 'latin1');
    for (let i = 0; i < count; i++) {
      const head = Buffer.from(
        `From: bench@bench.test\r\nTo: ${user.name}\r\nSubject: bench message ${i}\r\nMessage-ID: <${i}.${Date.now()}@bench.test>\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`,
        'latin1',
      );
      const msg = Buffer.concat([head, body.subarray(0, size - head.length - 2), Buffer.from('\r\n')]);
      c.write(`p${i} APPEND INBOX {${msg.length}+}\r\n`);
      c.write(msg);
      c.write('\r\n');
      await c.tagged(`p${i}`, 60_000);
    }
    c.write('z LOGOUT\r\n');
    await c.tagged('z');
    await c.close();
  } catch (e) {
    c.s.destroy();
    throw e;
  }
  return { messages: count, bytesEach: size, totalBytes: count * size, ms: performance.now() - t0 };
}

const handlers = { append, logins, fetch: fetchBox, 'idle-open': idleOpen, 'idle-close': idleClose };

process.on('message', async (m) => {
  try {
    const result = await handlers[m.cmd](m);
    process.send({ id: m.id, ok: true, result });
  } catch (e) {
    process.send({ id: m.id, ok: false, error: e.message });
  }
});
// The parent is gone (crashed, killed): nothing to measure for anymore.
process.on('disconnect', () => process.exit(0));
