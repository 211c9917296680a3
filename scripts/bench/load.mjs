/**
 * The load client: a separate process (forked by run.mjs, commands over IPC)
 * so that its CPU is never counted as the proxy's. Raw net/tls sockets and a
 * minimal line reader (lib/conn.mjs): no mail library between the timer and
 * the wire.
 *
 * A login, IMAP: connect, read the greeting, `a LOGIN user pass`, read the
 * tagged OK, `b LOGOUT`, read the tagged OK (latency stops here), end, wait
 * for the close. POP3: connect, greeting, USER, PASS, QUIT, each waiting for
 * its +OK (latency stops at QUIT's), end, wait for the close.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Conn, imapLogin, percentile, pop3Login, smtpLogin, tlsInfo } from './lib/conn.mjs';

const FETCH_TAG = 'F9Z';
const FETCH_DONE = new RegExp(`\\r\\n${FETCH_TAG} (OK|NO|BAD)[^\\r\\n]*\\r\\n$`);

async function oneLogin(protocol, target, user) {
  const start = performance.now();
  const c = new Conn(target);
  try {
    if (protocol === 'pop3') {
      await pop3Login(c, user);
      c.write('QUIT\r\n');
      await c.ok('QUIT');
    } else {
      await imapLogin(c, user);
      c.write('b LOGOUT\r\n');
      await c.tagged('b');
    }
    const latencyMs = performance.now() - start;
    await c.close();
    return latencyMs;
  } catch (e) {
    c.s.destroy();
    throw e;
  }
}

function latencySummary(lat) {
  return {
    p50: percentile(lat, 50),
    p90: percentile(lat, 90),
    p99: percentile(lat, 99),
    max: lat[lat.length - 1],
    mean: lat.reduce((a, b) => a + b, 0) / lat.length,
  };
}

/** `count` operations over `concurrency` workers, until done or `maxMs`; op(i) returns a latency in ms. */
async function runConcurrent({ count, concurrency, maxMs = Infinity }, op) {
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
          lat.push(await op(i));
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
    latencyMs: latencySummary(lat),
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    // Raw, so that rounds can be merged before taking percentiles.
    latenciesMs: lat.map((x) => Math.round(x * 1000) / 1000),
  };
}

async function logins({ protocol = 'imap', target, users, count, concurrency, offset = 0, maxMs = Infinity }) {
  const r = await runConcurrent({ count, concurrency, maxMs }, (i) => oneLogin(protocol, target, users[(i + offset) % users.length]));
  return { ...r, tls: target.tls ? tlsInfo : undefined };
}

async function fetchBox({ target, user, iterations }) {
  const runs = [];
  for (let i = 0; i < iterations; i++) {
    const c = new Conn(target);
    try {
      await imapLogin(c, user);
      c.write('s SELECT INBOX\r\n');
      const exists = Number((await c.until('* ')).match(/^\* (\d+) EXISTS/)?.[1] ?? NaN);
      await c.tagged('s');
      const t0 = performance.now();
      const bytes = await c.bulk(`${FETCH_TAG} FETCH 1:* BODY.PEEK[]\r\n`, (tail) => {
        const m = FETCH_DONE.exec(tail);
        if (!m) return false;
        return m[1] === 'OK' ? true : new Error(`FETCH failed: ${tail.slice(tail.lastIndexOf(FETCH_TAG))}`);
      });
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

/**
 * POP3: log in, STAT, then RETR every message one after another, each timed
 * from the command to the end of its final `.` line (RFC 1939 §3): a proxy
 * that holds back the tail of a response (Nagle, no TCP_NODELAY) shows as
 * a stall per message. Nothing is deleted; QUIT at the end.
 */
async function retrBox({ target, user }) {
  const c = new Conn(target);
  try {
    await pop3Login(c, user);
    c.write('STAT\r\n');
    const stat = await c.ok('STAT');
    const messages = Number(stat.split(' ')[1]);
    const perMessageMs = [];
    let bytes = 0;
    for (let i = 1; i <= messages; i++) {
      const t0 = performance.now();
      bytes += await c.bulk(`RETR ${i}\r\n`, (tail, head) => {
        if (head.startsWith('-ERR')) return tail.endsWith('\r\n') ? new Error(`RETR ${i}: ${head.split('\r\n')[0]}`) : false;
        return tail.endsWith('\r\n.\r\n');
      });
      perMessageMs.push(performance.now() - t0);
    }
    const ms = perMessageMs.reduce((a, b) => a + b, 0);
    c.write('QUIT\r\n');
    await c.ok('QUIT');
    await c.close();
    const sorted = [...perMessageMs].sort((a, b) => a - b);
    return { bytes, ms, mbPerS: bytes / 1e6 / (ms / 1000), messages, retrMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) } };
  } catch (e) {
    c.s.destroy();
    throw e;
  }
}

/** Message bodies by size: base64 text in 76-character lines, never a line starting with '.'. */
const bodies = new Map();
function messageOf(size, from, i) {
  const head = `From: <${from}>\r\nTo: <sink@sink.test>\r\nSubject: bench ${i}\r\nMessage-ID: <${i}.${Date.now()}@bench.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\n`;
  if (!bodies.has(size)) bodies.set(size, Buffer.from(randomBytes(size).toString('base64').replace(/.{76}/g, '$&\r\n'), 'latin1'));
  const body = bodies.get(size);
  // `size` bytes in all, ending in CRLF, then the end-of-data line (RFC 5321 §4.1.1.4).
  return Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, size - head.length - 2), Buffer.from('\r\n.\r\n', 'latin1')]);
}

/**
 * SMTP submission, one session per message as a mail client sends:
 * connect, EHLO, AUTH PLAIN, MAIL FROM, RCPT TO, DATA, the message, QUIT.
 * Latency from connect to the 250 after the message.
 */
async function oneSubmission(target, user, size, i) {
  const start = performance.now();
  const c = new Conn(target);
  try {
    await smtpLogin(c, user);
    c.write(`MAIL FROM:<${user.name}>\r\n`);
    await c.reply(250, 'MAIL');
    c.write('RCPT TO:<sink@sink.test>\r\n');
    await c.reply(250, 'RCPT');
    c.write('DATA\r\n');
    await c.reply(354, 'DATA');
    c.write(messageOf(size, user.name, i));
    await c.reply(250, 'end of data', 60_000);
    const latencyMs = performance.now() - start;
    c.write('QUIT\r\n');
    await c.reply(221, 'QUIT');
    await c.close();
    return latencyMs;
  } catch (e) {
    c.s.destroy();
    throw e;
  }
}

async function submit({ target, users, count, concurrency, size, offset = 0 }) {
  const r = await runConcurrent({ count, concurrency }, (i) => oneSubmission(target, users[(i + offset) % users.length], size, i));
  return { ...r, size };
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
          await imapLogin(c, users[i % users.length]);
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
    await imapLogin(c, user);
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

const handlers = { append, logins, fetch: fetchBox, retr: retrBox, submit, 'idle-open': idleOpen, 'idle-close': idleClose };

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
