#!/usr/bin/env node
/**
 * `pnpm load`: thousands of concurrent, logged-in, idle sessions through one
 * mailfront process, across IMAP (in IDLE), POP3 (after PASS) and SMTP
 * submission (after AUTH), part of them over TLS. Not a test: it asserts
 * nothing and never runs in CI; it reports what mailfront holds and burns for
 * them, and whether every one of them still answers. See docs/load.md.
 *
 *   node scripts/load/idle.mjs [--sessions 5000] [--tls-share 0.5] [--idle-s 60]
 *        [--mix imap=0.6,pop3=0.2,submission=0.2] [--users N] [--addresses 10]
 *        [--open-concurrency 32] [--no-build] [--keep]
 *
 * --users: distinct users (default: as many as POP3 sessions, at least 100;
 *   every POP3 session has a user of its own, IMAP and submission sessions
 *   take the same users in turn). --addresses: client source addresses
 *   127.0.0.2 … (spread over them round-robin). --keep: keep the work dir
 *   (logs, configs) after the run.
 *
 * Loopback only; needs root (Dovecot switches to nobody). Everything it
 * starts (Dovecot, mailfront, the SMTP sink) is stopped at the end, on
 * errors and on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Conn, imapLogin, percentile, pop3Login, smtpLogin } from '../bench/lib/conn.mjs';
import { startBenchDovecot } from '../bench/lib/dovecot.mjs';
import { cleanup, cleanupOnSignals, forkHelper, onCleanup, startDetached } from '../bench/lib/processes.mjs';
import { exeName, machineCpuMs, preciseCpuMs, rssKiB } from '../bench/lib/proc.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const require = createRequire(import.meta.url);
const PROTOCOLS = ['imap', 'pop3', 'submission'];

// ---------------------------------------------------------------------------
// Options, and the bounds that keep a run within the machine and ~10 minutes.

/** mailfront holds two descriptors per session (client, backend) under a 20 000 fd limit. */
const MAX_SESSIONS = 9_000;
const MAX_IDLE_S = 600;
/** Per session: connect … logged in (and IDLE's `+`); per NOOP; per LOGOUT/QUIT. */
const OPEN_TIMEOUT_MS = 60_000;
const CHECK_TIMEOUT_MS = 30_000;
/** Opening stops after this long, whatever is left: the run stays bounded. */
const OPEN_PHASE_MAX_MS = 300_000;
/** Dovecot: a process per logged-in session, ~0.5–0.7 MiB PSS each (ANCHORS), more while it starts. */
const DOVECOT_KIB_PER_SESSION = 1024;
/** How long mailfront's CPU is read with no session open, for comparison with the idle window. */
const BASELINE_IDLE_S = 20;
/** Sessions of each kind (protocol × TLS) given one NOOP at a time before the burst. */
const PROBES_PER_KIND = 10;
const MEMORY_MARGIN_KIB = 2 * 1024 * 1024;

function usage(msg) {
  console.error(`load: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { sessions: 5000, tlsShare: 0.5, idleS: 60, mix: { imap: 0.6, pop3: 0.2, submission: 0.2 }, users: undefined, addresses: 10, openConcurrency: 32, build: true, keep: false };
  const value = (i, name) => {
    const a = argv[i];
    if (a.includes('=')) return [a.slice(a.indexOf('=') + 1), i];
    if (i + 1 >= argv.length) usage(`${name} needs a value`);
    return [argv[i + 1], i + 1];
  };
  const int = (s, name, min, max) => {
    if (!/^\d+$/.test(s)) usage(`${name}: not a whole number: ${s}`);
    const n = Number(s);
    if (n < min || n > max) usage(`${name}: must be ${min}..${max}, got ${n}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.split('=')[0];
    const takes = ['--sessions', '--tls-share', '--idle-s', '--users', '--addresses', '--open-concurrency', '--mix'];
    if (takes.includes(name)) {
      let v;
      [v, i] = value(i, name);
      if (name === '--sessions') o.sessions = int(v, name, 1, MAX_SESSIONS);
      else if (name === '--idle-s') o.idleS = int(v, name, 0, MAX_IDLE_S);
      else if (name === '--users') o.users = int(v, name, 1, 100_000);
      else if (name === '--addresses') o.addresses = int(v, name, 1, 250);
      else if (name === '--open-concurrency') o.openConcurrency = int(v, name, 1, 1000);
      else if (name === '--tls-share') {
        o.tlsShare = Number(v);
        if (!/^[\d.]+$/.test(v) || !(o.tlsShare >= 0 && o.tlsShare <= 1)) usage(`--tls-share: must be 0..1, got ${v}`);
      } else {
        const mix = {};
        for (const part of v.split(',')) {
          const [p, share] = part.split('=');
          if (!PROTOCOLS.includes(p) || !(Number(share) >= 0)) usage(`--mix: expected imap=…,pop3=…,submission=…, got ${v}`);
          mix[p] = Number(share);
        }
        const sum = Object.values(mix).reduce((x, y) => x + y, 0);
        if (!(sum > 0)) usage('--mix: the shares add up to 0');
        o.mix = Object.fromEntries(PROTOCOLS.map((p) => [p, (mix[p] ?? 0) / sum]));
      }
    } else if (a === '--no-build') o.build = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').match(/\/\*\*([\s\S]*?)\*\//)[1].replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else usage(`unknown argument ${a}`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));

function log(msg) {
  process.stderr.write(`load: ${msg}\n`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (v, d = 1) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(d));

// ---------------------------------------------------------------------------
// The sessions to open: protocol, TLS, user, source address; interleaved,
// so that whatever fails shows in every kind and a cut-short run still has
// all of them.

function plan(o) {
  const counts = {};
  let left = o.sessions;
  for (const p of PROTOCOLS) {
    counts[p] = p === PROTOCOLS.at(-1) ? Math.max(0, left) : Math.min(left, Math.round(o.sessions * o.mix[p]));
    left -= counts[p];
  }
  const users = o.users ?? Math.max(counts.pop3, 100);
  if (counts.pop3 > users) usage(`--users ${users}: every POP3 session needs a user of its own (POP3 locks the mailbox); ${counts.pop3} POP3 sessions`);
  const specs = [];
  const taken = { imap: 0, pop3: 0, submission: 0 };
  for (let i = 0; i < o.sessions; i++) {
    // The protocol furthest behind its share goes next.
    const p = PROTOCOLS.filter((q) => taken[q] < counts[q]).sort((a, b) => taken[a] / counts[a] - taken[b] / counts[b])[0];
    const k = taken[p]++;
    // TLS for the k-th session of a protocol when the running share crosses a whole number.
    const tls = Math.floor((k + 1) * o.tlsShare) > Math.floor(k * o.tlsShare);
    // IMAP and submission spread over the users from different ends, so one user's sessions are not all one kind.
    const user = p === 'pop3' ? k : p === 'imap' ? k % users : (users - 1 - (k % users) + users) % users;
    specs.push({ i, protocol: p, tls, user, localAddress: `127.0.0.${2 + (i % o.addresses)}` });
  }
  return { counts, users, specs };
}

// ---------------------------------------------------------------------------
// Processes

function build() {
  if (opts.build) {
    log('pnpm build');
    const r = spawnSync('pnpm', ['build'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error('load: `pnpm build` failed (see above). Fix the build, or run with --no-build to use the existing dist.');
      process.exit(1);
    }
  }
  const missing = ['packages/testkit/dist/index.js', 'packages/cli/dist/bin.js', 'packages/cli/dist/index.js'].filter((d) => !fs.existsSync(path.join(ROOT, d)));
  if (missing.length) {
    console.error(`load: missing ${missing.join(', ')}: run \`pnpm build\` first`);
    process.exit(1);
  }
}

function memAvailableKiB() {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : Infinity;
}

function readInt(file) {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/**
 * Dovecot for N sessions: a mail process per logged-in IMAP, POP3 and
 * submission session (Dovecot's default, client_limit 1), so process_limit
 * per service above its share. Every mail process also holds a connection to
 * anvil, log and stats, which would otherwise stop at the testkit's
 * default_client_limit of 5 000 ("client_limit reached" in Dovecot's log).
 * Processes are reused after a session ends (service_count, as in the bench:
 * every user is `nobody`), so the warm-up's logins do not each cost a fork.
 */
function dovecotConfig(counts, sessions) {
  const clients = sessions * 2 + 1000;
  const service = (name, n) => `service ${name} {
  process_limit = ${n + 100}
  client_limit = 1
  service_count = 100000
  idle_kill = 60 secs
}
`;
  return `default_client_limit = ${clients}
default_process_limit = ${sessions + 300}
${['anvil', 'log', 'stats', 'auth', 'config'].map((s) => `service ${s} {\n  client_limit = ${clients}\n}\n`).join('')}${PROTOCOLS.map((p) => service(p, counts[p])).join('')}`;
}

async function startDovecot(users, counts, sinkPort) {
  const d = await startBenchDovecot({ users, sinkPort, extraConfig: dovecotConfig(counts, opts.sessions), startTimeoutMs: 30_000 });
  return {
    ...d,
    /** Mail processes by protocol (their executables: imap, pop3, submission). */
    mailProcesses: () => {
      const by = { imap: 0, pop3: 0, submission: 0, other: 0 };
      for (const p of d.members()) {
        const e = exeName(p);
        by[PROTOCOLS.includes(e) ? e : 'other']++;
      }
      return by;
    },
  };
}

/** Whether this build's config knows a key (an unknown key is a configuration error). */
function configKnows(key) {
  const schema = path.join(ROOT, 'packages/server/dist/config.js');
  return fs.existsSync(schema) && fs.readFileSync(schema, 'utf8').includes(key);
}

async function freePorts(n) {
  return require(path.join(ROOT, 'packages/testkit/dist/index.js')).freePorts(n);
}

async function startMailfront(dir, dovecot, users, addresses) {
  const free = await freePorts(7);
  const ports = {
    imap: { plain: free[0], tls: free[1] },
    pop3: { plain: free[2], tls: free[3] },
    submission: { plain: free[4], tls: free[5] },
  };
  const metricsPort = configKnows('metricsSection') ? free[6] : undefined;
  const dataDir = path.join(dir, 'var');
  // auth.cacheTtlMs: an hour, so that the warm-up (each user once: scrypt) fills
  // the cache and opening the sessions is all cache hits, as in a running
  // server whose users reconnect; the default 60 s would expire mid-run.
  const common = `dataDir: ${dataDir}\nhostname: localhost\nauth:\n  cacheTtlMs: 3600000\n  cacheMaxEntries: ${Math.max(10_000, users.length * 2)}\n`;
  const prepConfig = path.join(dir, 'prepare.yaml');
  fs.writeFileSync(prepConfig, common);
  const job = path.join(dir, 'prepare.json');
  fs.writeFileSync(job, JSON.stringify({ config: prepConfig, dir, ports: { imap: dovecot.ports.imap, pop3: dovecot.ports.pop3, submission: dovecot.ports.submission }, users }));
  log(`mailfront: preparing its store (backend add, user import of ${users.length}: scrypt, a minute or so)`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/bench/prepare-mailfront.mjs'), job], { stdio: 'inherit' });
  fs.rmSync(job);
  if (r.status !== 0) throw new Error('preparing mailfront failed');
  const prepareMs = Date.now() - t0;
  // Limits raised for the run: every session is two descriptors (client and
  // backend) and the default 8 000 connections would refuse the last ones;
  // per address, the sessions are spread over `addresses` source addresses
  // and each gets room for its share plus the warm-up.
  const perAddress = Math.ceil(opts.sessions / addresses) + 100;
  const limits = `limits:\n  maxConnections: ${opts.sessions + 500}\n  maxConnectionsPerAddress: ${perAddress}\n`;
  const listeners = Object.entries(ports)
    .map(
      ([protocol, p]) => `  - { protocol: ${protocol}, host: 127.0.0.1, port: ${p.plain}, tls: none, allowPlaintextAuth: true }
  - { protocol: ${protocol}, host: 127.0.0.1, port: ${p.tls}, tls: implicit }
`,
    )
    .join('');
  const config = path.join(dir, 'mailfront.yaml');
  fs.writeFileSync(
    config,
    `${common}tls:
  cert: ${path.join(dir, 'tls', 'cert.pem')}
  key: ${path.join(dir, 'tls', 'key.pem')}
log:
  level: info
${limits}${metricsPort ? `metrics:\n  host: 127.0.0.1\n  port: ${metricsPort}\n` : ''}listeners:
${listeners}`,
  );
  const logFile = path.join(dir, 'mailfront.log');
  // The shutdown grace is the server's to spend: wait for it before SIGKILL.
  const p = startDetached(process.execPath, [path.join(ROOT, 'packages/cli/dist/bin.js'), '--config', config, 'serve'], logFile, { killAfterMs: 40_000 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`mailfront exited (${p.child.exitCode}) at start: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    try {
      await Promise.all(
        Object.entries(ports).flatMap(([protocol, x]) => [greets({ port: x.plain, tls: false }, protocol), greets({ port: x.tls, tls: true }, protocol)]),
      );
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`mailfront did not greet: ${e.message}`);
      await sleep(100);
    }
  }
  return { pid: p.pid, stop: p.stop, exited: p.exited, ports, logFile, config, metricsPort, limits: { maxConnections: opts.sessions + 500, maxConnectionsPerAddress: perAddress }, prepareMs };
}

async function greets({ port, tls }, protocol) {
  const c = new Conn({ host: '127.0.0.1', port, tls });
  try {
    const l = await c.line(5_000);
    const ok = { imap: /^\* OK/, pop3: /^\+OK/, submission: /^220 / }[protocol];
    if (!ok.test(l)) throw new Error(`${protocol} greeting: ${l}`);
  } finally {
    c.s.destroy();
  }
}

/** mailfront's own counters (Prometheus text), when metrics are on: connections by protocol and phase, logins, ended sessions. */
function scrapeMetrics(port) {
  if (!port) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const pick = (name) =>
          body
            .split('\n')
            .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
            .map((l) => {
              const m = /^(\S+?)(?:\{(.*)\})? (\S+)$/.exec(l);
              return m ? { labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]])), value: Number(m[3]) } : undefined;
            })
            .filter((x) => x && x.value !== 0);
        resolve({
          connections: pick('mailfront_connections'),
          logins: pick('mailfront_logins_total'),
          ended: pick('mailfront_sessions_ended_total'),
        });
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

// ---------------------------------------------------------------------------
// mailfront as /proc sees it

function fdCount(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

function fdKinds(pid) {
  const kinds = {};
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      let t;
      try {
        t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, '').replace(/^\/.*/, 'file');
      } catch {
        continue;
      }
      kinds[t] = (kinds[t] ?? 0) + 1;
    }
  } catch {
    // gone
  }
  return kinds;
}

function statusField(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** RSS until two samples 0.5 s apart agree within 1 % (or 15 s): it moves for a while after a burst (GC, lazy frees). */
async function settledRss(pid) {
  const samples = [rssKiB(pid)];
  for (let i = 0; i < 30; i++) {
    await sleep(500);
    samples.push(rssKiB(pid));
    const [a, b] = samples.slice(-2);
    if (samples.length >= 3 && Math.abs(a - b) <= 0.01 * Math.max(a, b)) break;
  }
  return { kib: samples.at(-1), samples };
}

function snapshot(mf) {
  return {
    rssKiB: rssKiB(mf.pid),
    hwmKiB: statusField(mf.pid, 'VmHWM'),
    fds: fdCount(mf.pid),
    threads: statusField(mf.pid, 'Threads'),
  };
}

// ---------------------------------------------------------------------------
// Client sessions

class Session {
  constructor(spec, target, user) {
    this.spec = spec;
    this.target = target;
    this.user = user;
    this.state = 'new';
  }
  async open() {
    const t0 = performance.now();
    const c = (this.c = new Conn({ ...this.target, localAddress: this.spec.localAddress }));
    const timer = setTimeout(() => c.s.destroy(new Error(`no login within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
    try {
      if (this.spec.protocol === 'imap') {
        await imapLogin(c, this.user);
        if (!this.spec.noIdle) {
          c.write('x IDLE\r\n');
          await c.until('+ ');
        }
      } else if (this.spec.protocol === 'pop3') {
        await pop3Login(c, this.user);
      } else {
        await smtpLogin(c, this.user);
      }
      this.state = 'idle';
      this.openMs = performance.now() - t0;
      c.s.once('close', () => {
        if (this.state === 'idle') this.droppedAt = Date.now();
      });
    } catch (e) {
      this.state = 'failed';
      this.error = `open: ${e.message}`;
      c.s.destroy();
    } finally {
      clearTimeout(timer);
    }
  }
  /**
   * IMAP: DONE, then NOOP; POP3: NOOP; SMTP: NOOP. `again`: a probe, after
   * which the session goes back to idle (IMAP: IDLE again, not timed).
   */
  async noop({ again = false } = {}) {
    const c = this.c;
    const t0 = performance.now();
    try {
      if (this.droppedAt) throw new Error('dropped while idle');
      if (this.spec.protocol === 'imap') {
        c.write('DONE\r\n');
        await c.tagged('x', CHECK_TIMEOUT_MS);
        c.write('n NOOP\r\n');
        await c.tagged('n', CHECK_TIMEOUT_MS);
      } else if (this.spec.protocol === 'pop3') {
        c.write('NOOP\r\n');
        await c.ok('NOOP', CHECK_TIMEOUT_MS);
      } else {
        c.write('NOOP\r\n');
        await c.reply(250, 'NOOP', CHECK_TIMEOUT_MS);
      }
      const ms = performance.now() - t0;
      if (again) {
        this.probeMs = ms;
        if (this.spec.protocol === 'imap') {
          c.write('x IDLE\r\n');
          await c.until('+ ', CHECK_TIMEOUT_MS);
        }
        return;
      }
      this.noopMs = ms;
      this.state = 'answered';
    } catch (e) {
      this.state = 'failed';
      this.error = `noop: ${e.message}`;
    }
  }
  /** LOGOUT / QUIT and the server's close. */
  async close() {
    const c = this.c;
    const t0 = performance.now();
    try {
      if (this.spec.protocol === 'imap') {
        c.write('z LOGOUT\r\n');
        await c.tagged('z', CHECK_TIMEOUT_MS);
      } else if (this.spec.protocol === 'pop3') {
        c.write('QUIT\r\n');
        await c.ok('QUIT', CHECK_TIMEOUT_MS);
      } else {
        c.write('QUIT\r\n');
        await c.reply(221, 'QUIT', CHECK_TIMEOUT_MS);
      }
      this.state = 'closing';
      // The server closes after its goodbye; we half-close too and wait.
      const closed = await Promise.race([c.closed.then(() => true), sleep(CHECK_TIMEOUT_MS).then(() => false)]);
      if (!closed) throw new Error('the server did not close after the goodbye');
      this.closeMs = performance.now() - t0;
      this.state = 'closed';
    } catch (e) {
      this.state = 'failed';
      this.error = `close: ${e.message}`;
    } finally {
      c.s.destroy();
    }
  }
}

/**
 * Every `everyMs`, a new connection to each of `ports` ({name: port}, plain
 * IMAP) timed to its greeting: mailfront greets from its own event loop, with
 * no backend involved, so a slow greeting there means mailfront itself is
 * busy; Dovecot's imap-login beside it shows how busy the backend is.
 */
function greetingProbe(ports, everyMs = 250) {
  const out = Object.fromEntries(Object.keys(ports).map((k) => [k, { ms: [], failed: 0 }]));
  let stopped = false;
  const loops = Object.entries(ports).map(async ([name, port]) => {
    while (!stopped) {
      const t0 = performance.now();
      const c = new Conn({ host: '127.0.0.1', port, tls: false });
      try {
        const l = await c.line(CHECK_TIMEOUT_MS);
        if (!l.startsWith('* OK')) throw new Error(l);
        out[name].ms.push(performance.now() - t0);
      } catch {
        out[name].failed++;
      } finally {
        c.s.destroy();
      }
      await sleep(Math.max(0, everyMs - (performance.now() - t0)));
    }
  });
  return async () => {
    stopped = true;
    await Promise.all(loops);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { ...latency(v.ms), failed: v.failed }]));
  };
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const sxy = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return sxy / sxx;
}

/** Where the machine's CPU went between two readings: cores' worth, mailfront's and Dovecot's share. */
function cpuBetween(a, b) {
  const wallMs = b.at - a.at;
  return {
    wallMs,
    machineBusyCores: (b.machine.busy - a.machine.busy) / wallMs,
    mailfrontCores: (b.mf - a.mf) / wallMs,
    dovecotCores: (b.dovecot - a.dovecot) / wallMs,
    loadClientCores: (b.client - a.client) / wallMs,
    /** Everything else on the box: other users' processes, the kernel's own threads. */
    otherCores: (b.machine.busy - a.machine.busy - (b.mf - a.mf) - (b.dovecot - a.dovecot) - (b.client - a.client)) / wallMs,
    mailfrontCpuMs: b.mf - a.mf,
    dovecotCpuMs: b.dovecot - a.dovecot,
  };
}

/** Runs fn over items with at most `concurrency` at once; stops starting new ones after `maxMs`. */
async function pool(items, concurrency, fn, maxMs = Infinity) {
  let next = 0;
  const deadline = Date.now() + maxMs;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length && Date.now() < deadline) await fn(items[next++]);
    }),
  );
  return next;
}

function byKind(sessions, pick) {
  const out = {};
  for (const s of sessions) {
    const k = `${s.spec.protocol}${s.spec.tls ? '+tls' : ''}`;
    (out[k] ??= []).push(pick(s));
  }
  return out;
}

function latency(values) {
  const v = values.filter((x) => x !== undefined).sort((a, b) => a - b);
  return { n: v.length, p50: percentile(v, 50), p99: percentile(v, 99), max: v.at(-1) };
}

function errorSummary(sessions) {
  const counts = {};
  for (const s of sessions.filter((x) => x.error)) {
    const k = `${s.spec.protocol}${s.spec.tls ? '+tls' : ''}: ${s.error.replace(/\d+/g, 'N').slice(0, 160)}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  if (process.getuid?.() !== 0) usage('needs root: Dovecot switches to nobody for its mail processes');
  cleanupOnSignals('load');
  const started = new Date();
  const { counts, users: userCount, specs } = plan(opts);
  build();

  // The machine: Dovecot's processes are the memory that matters.
  const needKiB = opts.sessions * DOVECOT_KIB_PER_SESSION + MEMORY_MARGIN_KIB;
  const availKiB = memAvailableKiB();
  if (availKiB < needKiB) usage(`${opts.sessions} sessions need ~${Math.round(needKiB / 1024)} MiB free (Dovecot: a process per session); MemAvailable is ${Math.round(availKiB / 1024)} MiB`);
  const pidMax = readInt('/proc/sys/kernel/pid_max');
  if (pidMax !== undefined && pidMax < opts.sessions + 2000) usage(`kernel.pid_max ${pidMax} is too low for ${opts.sessions} Dovecot processes`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-load-'));
  fs.chmodSync(dir, 0o755);
  if (!opts.keep) onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  log(`work dir ${dir}; ${opts.sessions} sessions (${PROTOCOLS.map((p) => `${counts[p]} ${p}`).join(', ')}), TLS share ${opts.tlsShare}, ${userCount} users, ${opts.addresses} client addresses`);

  const tag = randomBytes(3).toString('hex');
  const users = Array.from({ length: userCount }, (_, i) => ({ name: `load${String(i).padStart(5, '0')}@load.test`, password: `pw-${i}-${tag}` }));

  // Dovecot's relay for submission: the bench's sink (counts and drops; no idle timeout).
  const sinkHelper = forkHelper(path.join(ROOT, 'scripts/bench/sink.mjs'), [], path.join(dir, 'sink.log'));
  const { port: sinkPort } = await sinkHelper.ready;
  log('starting Dovecot (imap, pop3, submission)');
  const backend = await startDovecot(users, counts, sinkPort);
  const dovecotWarnings = (await backend.dovecot.readLog()).split('\n').filter((l) => /warning|client_limit|process_limit/i.test(l));
  const mf = await startMailfront(dir, backend.dovecot, users, opts.addresses);
  log(`mailfront pid ${mf.pid}; limits maxConnections ${mf.limits.maxConnections}, maxConnectionsPerAddress ${mf.limits.maxConnectionsPerAddress}${mf.metricsPort ? `; metrics on ${mf.metricsPort}` : ''}`);
  let mfExit;
  mf.exited.then((code) => (mfExit = code));

  const targetOf = (spec) => ({ host: '127.0.0.1', port: mf.ports[spec.protocol][spec.tls ? 'tls' : 'plain'], tls: spec.tls });
  const cpuNow = () => {
    const own = process.cpuUsage();
    return { at: performance.now(), mf: preciseCpuMs(mf.pid), dovecot: backend.cpuMs(), client: (own.user + own.system) / 1000, machine: machineCpuMs() };
  };
  const probePorts = { mailfront: mf.ports.imap.plain, dovecot: backend.dovecot.ports.imap };
  const R = {
    startedAt: started.toISOString(),
    args: process.argv.slice(2),
    options: opts,
    counts,
    users: userCount,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), memAvailableMiBAtStart: Math.round(availKiB / 1024), loadAverageAtStart: os.loadavg() },
    versions: {
      node: process.version,
      dovecot: spawnSync('/usr/sbin/dovecot', ['--version'], { encoding: 'utf8' }).stdout.trim(),
      mailfrontCommit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim(),
    },
    mailfront: { limits: mf.limits, fdLimit: fdLimitOf(mf.pid), prepareMs: mf.prepareMs },
    dovecotWarnings,
  };

  // 1. Fresh process, then a warm-up: every user logs in once (scrypt, then
  // the auth cache), cycling through the protocols and TLS, and logs out.
  R.fresh = { ...snapshot(mf), settled: (await settledRss(mf.pid)).kib };
  log(`warm-up: each of ${userCount} users logs in once`);
  const warm = users.map((u, i) => {
    const protocol = PROTOCOLS[i % 3];
    return new Session({ i, protocol, tls: i % 2 === 1, user: i, localAddress: `127.0.0.${2 + (i % opts.addresses)}`, noIdle: true }, null, u);
  });
  const w0 = Date.now();
  const cpuW0 = preciseCpuMs(mf.pid);
  await pool(warm, 16, async (s) => {
    s.target = targetOf(s.spec);
    await s.open();
    if (s.state === 'idle') await s.close();
  });
  R.warmup = { sessions: warm.length, failed: warm.filter((s) => s.state === 'failed').length, errors: errorSummary(warm), wallMs: Date.now() - w0, mailfrontCpuMs: preciseCpuMs(mf.pid) - cpuW0 };
  log(`  ${R.warmup.wallMs} ms, ${R.warmup.failed} failed${R.warmup.failed ? `: ${JSON.stringify(R.warmup.errors)}` : ''}`);
  await sleep(2_000);
  R.baseline = { ...snapshot(mf), settled: await settledRss(mf.pid), metrics: await scrapeMetrics(mf.metricsPort), dovecotProcesses: backend.mailProcesses() };
  // What mailfront burns with no session at all (health checks, timers, GC): the idle figure below is compared with it.
  const baseWindowS = Math.min(opts.idleS, BASELINE_IDLE_S);
  const b0 = { mf: preciseCpuMs(mf.pid), at: performance.now() };
  await sleep(baseWindowS * 1000);
  R.baseline.idleCpuPerSecondMs = (preciseCpuMs(mf.pid) - b0.mf) / ((performance.now() - b0.at) / 1000);
  R.baseline.idleWindowS = baseWindowS;
  log(`baseline: mailfront RSS ${R.baseline.settled.kib} KiB, ${R.baseline.fds} fds, ${fmt(R.baseline.idleCpuPerSecondMs, 2)} ms CPU/s with no session`);

  // 2. Open the sessions.
  const sessions = specs.map((spec) => new Session(spec, targetOf(spec), users[spec.user]));
  log(`opening ${sessions.length} sessions, ${opts.openConcurrency} at a time`);
  const o0 = performance.now();
  const cpuO0 = cpuNow();
  const rssWhileOpening = [];
  let lastReport = Date.now();
  const started2 = await pool(
    sessions,
    opts.openConcurrency,
    async (s) => {
      await s.open();
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        const idle = sessions.filter((x) => x.state === 'idle').length;
        const failed = sessions.filter((x) => x.state === 'failed').length;
        const rss = rssKiB(mf.pid);
        rssWhileOpening.push([idle, rss]);
        log(`  ${idle} open, ${failed} failed, ${Math.round((performance.now() - o0) / 1000)} s; mailfront RSS ${rss} KiB, ${fdCount(mf.pid)} fds`);
      }
    },
    OPEN_PHASE_MAX_MS,
  );
  const openWallMs = performance.now() - o0;
  R.open = {
    attempted: started2,
    notAttempted: sessions.length - started2,
    ok: sessions.filter((s) => s.state === 'idle').length,
    failed: sessions.filter((s) => s.state === 'failed').length,
    errors: errorSummary(sessions),
    wallMs: openWallMs,
    perSecond: (sessions.filter((s) => s.state === 'idle').length / openWallMs) * 1000,
    latencyMs: latency(sessions.map((s) => s.openMs)),
    latencyByKindMs: Object.fromEntries(Object.entries(byKind(sessions, (s) => s.openMs)).map(([k, v]) => [k, latency(v)])),
    cpu: cpuBetween(cpuO0, cpuNow()),
    rssWhileOpening,
  };
  R.open.mailfrontCpuMs = R.open.cpu.mailfrontCpuMs;
  R.open.dovecotCpuMs = R.open.cpu.dovecotCpuMs;
  log(`opened ${R.open.ok} of ${sessions.length} in ${(openWallMs / 1000).toFixed(1)} s (${R.open.failed} failed${R.open.notAttempted ? `, ${R.open.notAttempted} not attempted: time limit` : ''})`);
  if (R.open.failed) log(`  errors: ${JSON.stringify(R.open.errors)}`);

  // 3. Held: memory and descriptors once settled.
  const held = sessions.filter((s) => s.state === 'idle');
  const settledHeld = await settledRss(mf.pid);
  R.held = {
    sessions: held.length,
    byKind: Object.fromEntries(Object.entries(byKind(held, () => 1)).map(([k, v]) => [k, v.length])),
    ...snapshot(mf),
    settled: settledHeld,
    fdKinds: fdKinds(mf.pid),
    metrics: await scrapeMetrics(mf.metricsPort),
    dovecotProcesses: backend.mailProcesses(),
    dovecotPssKiB: backend.pssKiB(),
    loadClientRssKiB: rssKiB(process.pid),
    memAvailableMiB: Math.round(memAvailableKiB() / 1024),
  };
  R.held.perSessionKiB = (settledHeld.kib - R.baseline.settled.kib) / held.length;
  R.held.perSessionFds = (R.held.fds - R.baseline.fds) / held.length;
  // The marginal cost: RSS against sessions open over the second half of the opening, plus the settled end point.
  const late = [...rssWhileOpening.filter(([n]) => n >= opts.sessions * 0.4), [held.length, settledHeld.kib]];
  R.held.marginalKiBPerSession = slope(late);
  R.held.perSessionKiBAboveFresh = (settledHeld.kib - R.fresh.settled) / held.length;
  log(`held ${held.length}: mailfront RSS ${settledHeld.kib} KiB (+${fmt(R.held.perSessionKiB)} KiB/session), ${R.held.fds} fds; Dovecot ${JSON.stringify(R.held.dovecotProcesses)} processes, ${Math.round(R.held.dovecotPssKiB / 1024)} MiB PSS`);

  // 4. Idle: CPU over the window, and sessions dropped meanwhile.
  log(`idle for ${opts.idleS} s`);
  const bytesIn = () => Object.fromEntries(Object.entries(byKind(held, (x) => x.c.s.bytesRead)).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0)]));
  const linesIn = () => Object.fromEntries(Object.entries(byKind(held, (x) => x.c.lines.length)).map(([k, v]) => [k, v.reduce((a, b) => a + b, 0)]));
  const bytes0 = bytesIn();
  const lines0 = linesIn();
  const i0 = { mf: preciseCpuMs(mf.pid), dovecot: backend.cpuMs(), client: process.cpuUsage(), machine: machineCpuMs(), at: performance.now() };
  const dropsBefore = held.filter((s) => s.droppedAt).length;
  await sleep(opts.idleS * 1000);
  const i1 = { mf: preciseCpuMs(mf.pid), dovecot: backend.cpuMs(), client: process.cpuUsage(i0.client), machine: machineCpuMs(), at: performance.now() };
  const bytes1 = bytesIn();
  const lines1 = linesIn();
  R.idle = {
    seconds: (i1.at - i0.at) / 1000,
    mailfrontCpuMs: i1.mf - i0.mf,
    mailfrontCpuPerSecondMs: (i1.mf - i0.mf) / ((i1.at - i0.at) / 1000),
    dovecotCpuMs: i1.dovecot - i0.dovecot,
    loadClientCpuMs: (i1.client.user + i1.client.system) / 1000,
    machineBusyCores: (i1.machine.busy - i0.machine.busy) / (i1.at - i0.at),
    droppedDuringIdle: held.filter((s) => s.droppedAt).length - dropsBefore,
    droppedBeforeIdle: dropsBefore,
    rssKiB: rssKiB(mf.pid),
    fds: fdCount(mf.pid),
    // What the servers sent meanwhile (Dovecot's "* OK Still here" to IDLE every 2 min): an idle session is not silent.
    bytesToClients: Object.fromEntries(Object.keys(bytes1).map((k) => [k, bytes1[k] - (bytes0[k] ?? 0)])),
    linesToClients: Object.fromEntries(Object.keys(lines1).map((k) => [k, lines1[k] - (lines0[k] ?? 0)])),
  };
  log(`  mailfront ${fmt(R.idle.mailfrontCpuMs, 0)} ms CPU in ${fmt(R.idle.seconds, 0)} s; ${R.idle.droppedDuringIdle} sessions dropped meanwhile`);

  // 5. Does every session still answer? First a few, one at a time (the
  // latency of one NOOP with every session held), then all at once, while
  // new connections time mailfront's and Dovecot's greetings.
  const sample = Object.values(byKind(held.filter((x) => !x.droppedAt), (x) => x)).flatMap((v) => v.slice(0, PROBES_PER_KIND));
  for (const x of sample) await x.noop({ again: true });
  R.probe = {
    sessions: sample.length,
    latencyMs: latency(sample.map((x) => x.probeMs)),
    latencyByKindMs: Object.fromEntries(Object.entries(byKind(sample, (x) => x.probeMs)).map(([k, v]) => [k, latency(v)])),
  };
  log(`one NOOP at a time on ${sample.length} sessions: p50 ${fmt(R.probe.latencyMs.p50, 2)} ms, max ${fmt(R.probe.latencyMs.max, 2)} ms`);
  log(`NOOP on all ${held.length} sessions at once`);
  const n0 = { at: performance.now(), mf: preciseCpuMs(mf.pid) };
  const cpuN0 = cpuNow();
  const stopProbeN = greetingProbe(probePorts);
  await Promise.all(held.map((s) => s.noop()));
  const greetingsDuringNoop = await stopProbeN();
  const cpuNoop = cpuBetween(cpuN0, cpuNow());
  const answered = held.filter((s) => s.state === 'answered');
  R.noop = {
    sessions: held.length,
    answered: answered.length,
    failed: held.length - answered.length,
    errors: errorSummary(held.filter((s) => s.state === 'failed')),
    wallMs: performance.now() - n0.at,
    mailfrontCpuMs: preciseCpuMs(mf.pid) - n0.mf,
    latencyMs: latency(answered.map((s) => s.noopMs)),
    latencyByKindMs: Object.fromEntries(Object.entries(byKind(answered, (s) => s.noopMs)).map(([k, v]) => [k, latency(v)])),
    unansweredByKind: Object.fromEntries(Object.entries(byKind(held.filter((s) => s.state === 'failed'), () => 1)).map(([k, v]) => [k, v.length])),
    cpu: cpuNoop,
    greetings: greetingsDuringNoop,
  };
  log(`  ${R.noop.answered} answered, ${R.noop.failed} did not, in ${fmt(R.noop.wallMs / 1000, 2)} s${R.noop.failed ? `: ${JSON.stringify(R.noop.errors)}` : ''}`);

  // 6. Close cleanly: LOGOUT / QUIT, the server's goodbye and close.
  log('closing: LOGOUT / QUIT');
  const c0 = { at: performance.now(), mf: preciseCpuMs(mf.pid) };
  const cpuC0 = cpuNow();
  const stopProbeC = greetingProbe(probePorts);
  await Promise.all(answered.map((s) => s.close()));
  const greetingsDuringClose = await stopProbeC();
  const cpuClose = cpuBetween(cpuC0, cpuNow());
  for (const s of sessions) s.c?.s.destroy();
  await sleep(1_000);
  const afterClose = await settledRss(mf.pid);
  R.close = {
    sessions: answered.length,
    closed: answered.filter((s) => s.state === 'closed').length,
    errors: errorSummary(answered.filter((s) => s.state === 'failed')),
    wallMs: performance.now() - c0.at,
    mailfrontCpuMs: preciseCpuMs(mf.pid) - c0.mf,
    latencyMs: latency(answered.map((s) => s.closeMs)),
    rssKiB: afterClose.kib,
    fds: fdCount(mf.pid),
    metrics: await scrapeMetrics(mf.metricsPort),
    cpu: cpuClose,
    greetings: greetingsDuringClose,
  };
  log(`  ${R.close.closed} closed in ${fmt(R.close.wallMs / 1000, 2)} s; mailfront RSS ${afterClose.kib} KiB, ${R.close.fds} fds`);

  // 7. Stop; what mailfront logged above info.
  R.mailfrontAliveAtEnd = mfExit === undefined;
  await mf.stop();
  R.mailfrontLog = mailfrontLogSummary(mf.logFile);
  R.durationS = (Date.now() - started.getTime()) / 1000;
  R.finishedAt = new Date().toISOString();
  const outDir = path.join(ROOT, '.bench');
  fs.mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `load-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(outFile, `${JSON.stringify(R, null, 2)}\n`);
  printReport(R);
  console.log(`\nraw numbers: ${path.relative(ROOT, outFile)} (${R.durationS.toFixed(0)} s)${opts.keep ? `; logs and configs in ${dir}` : ''}`);
}

function fdLimitOf(pid) {
  try {
    const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? { soft: Number(m[1]), hard: Number(m[2]) } : undefined;
  } catch {
    return undefined;
  }
}

/** Lines above info in mailfront's JSON log, by message; and the session summaries' endings. */
function mailfrontLogSummary(file) {
  const out = { linesByLevel: {}, warnings: {}, sessionEnds: {} };
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let j;
    try {
      j = JSON.parse(line);
    } catch {
      out.warnings[`(not JSON) ${line.slice(0, 120)}`] = (out.warnings[`(not JSON) ${line.slice(0, 120)}`] ?? 0) + 1;
      continue;
    }
    const level = typeof j.level === 'number' ? { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[j.level] ?? j.level : j.level;
    out.linesByLevel[level] = (out.linesByLevel[level] ?? 0) + 1;
    if (level === 'warn' || level === 'error' || level === 'fatal') {
      const k = `${level}: ${String(j.msg ?? '').slice(0, 120)}${j.kind ? ` (${j.kind})` : ''}`;
      out.warnings[k] = (out.warnings[k] ?? 0) + 1;
    }
    const end = j.end ?? j.ended ?? j.reason;
    if (end && /session/i.test(String(j.msg ?? ''))) out.sessionEnds[end] = (out.sessionEnds[end] ?? 0) + 1;
  }
  return out;
}

function printReport(R) {
  const o = [];
  const cores = (c) =>
    c ? `${fmt(c.machineBusyCores, 2)} of ${R.machine.cpus}: mailfront ${fmt(c.mailfrontCores, 2)}, Dovecot ${fmt(c.dovecotCores, 2)}, load client ${fmt(c.loadClientCores, 2)}, others ${fmt(Math.max(0, c.otherCores), 2)}` : '—';
  const greetings = (g) => (g ? ['mailfront', 'dovecot'].map((k) => `${fmt(g[k].p50)} / ${fmt(g[k].max)}${g[k].failed ? ` (${g[k].failed} failed)` : ''}`).join('; ') : '—');
  const kib = (v) => (v === undefined ? '—' : `${(v / 1024).toFixed(1)} MiB`);
  o.push(`## Load run ${R.startedAt.slice(0, 10)} — ${R.machine.cpus} × ${R.machine.cpuModel}, ${R.machine.memGiB} GiB, Node ${R.versions.node}, Dovecot ${R.versions.dovecot.split(' ')[0]}, mailfront ${R.versions.mailfrontCommit}`);
  o.push('');
  o.push(
    `${R.options.sessions} sessions: ${PROTOCOLS.map((p) => `${R.counts[p]} ${p}`).join(', ')}; TLS share ${R.options.tlsShare}; ${R.users} users (POP3: one each); ${R.options.addresses} client addresses; opened ${R.options.openConcurrency} at a time; idle ${R.options.idleS} s. mailfront: maxConnections ${R.mailfront.limits.maxConnections}, maxConnectionsPerAddress ${R.mailfront.limits.maxConnectionsPerAddress}, fd limit ${R.mailfront.fdLimit?.soft}.`,
  );
  o.push('');
  o.push('| figure | value |');
  o.push('|---|--:|');
  const row = (k, v) => o.push(`| ${k} | ${v} |`);
  row('warm-up (each user logs in once, scrypt)', `${R.warmup.sessions} logins in ${fmt(R.warmup.wallMs / 1000)} s, ${R.warmup.failed} failed`);
  row('sessions opened / attempted / planned', `${R.open.ok} / ${R.open.attempted} / ${R.options.sessions}`);
  row('time to open them', `${fmt(R.open.wallMs / 1000)} s (${fmt(R.open.perSecond, 0)}/s); per session p50 ${fmt(R.open.latencyMs.p50)} ms, p99 ${fmt(R.open.latencyMs.p99)} ms`);
  for (const [k, v] of Object.entries(R.open.latencyByKindMs)) row(`  open latency ${k}, p50 / p99 (ms)`, `${fmt(v.p50)} / ${fmt(v.p99)} (n=${v.n})`);
  row('mailfront CPU to open them', `${fmt(R.open.mailfrontCpuMs / 1000)} s (${fmt(R.open.mailfrontCpuMs / Math.max(1, R.open.ok), 2)} ms per session)`);
  row('Dovecot CPU meanwhile (all processes)', `${fmt(R.open.dovecotCpuMs / 1000)} s (${fmt(R.open.dovecotCpuMs / Math.max(1, R.open.ok), 2)} ms per session)`);
  row('machine while opening: busy cores', cores(R.open.cpu));
  row('mailfront RSS: fresh / after warm-up (baseline) / with the sessions', `${kib(R.fresh.settled)} / ${kib(R.baseline.settled.kib)} / ${kib(R.held.settled.kib)}`);
  row('mailfront RSS per session: above the baseline / marginal (slope, second half of the opening) / above the fresh process', `${fmt(R.held.perSessionKiB)} / ${fmt(R.held.marginalKiBPerSession)} / ${fmt(R.held.perSessionKiBAboveFresh)} KiB`);
  row('mailfront peak RSS (VmHWM) while held', kib(R.held.hwmKiB));
  row('mailfront fds: baseline / with the sessions / per session', `${R.baseline.fds} / ${R.held.fds} / ${fmt(R.held.perSessionFds, 2)}`);
  row('mailfront CPU while idle', `${fmt(R.idle.mailfrontCpuMs)} ms in ${fmt(R.idle.seconds, 0)} s (${fmt(R.idle.mailfrontCpuPerSecondMs, 2)} ms/s; with no session: ${fmt(R.baseline.idleCpuPerSecondMs, 2)} ms/s over ${R.baseline.idleWindowS} s)`);
  row('Dovecot CPU while idle (all processes)', `${fmt(R.idle.dovecotCpuMs)} ms`);
  row('sent to the clients while idle (lines; bytes)', Object.keys(R.idle.linesToClients).map((k) => `${k} ${R.idle.linesToClients[k]}; ${R.idle.bytesToClients[k]}`).join(', '));
  row('sessions dropped while idle', String(R.idle.droppedDuringIdle + R.idle.droppedBeforeIdle));
  const relay = R.held.metrics?.connections?.filter((x) => x.labels.phase === 'relay');
  if (relay) row("mailfront's own count (mailfront_connections, phase relay)", relay.map((x) => `${x.value} ${x.labels.protocol}`).join(', '));
  row(`one NOOP at a time (${R.probe.sessions} sessions, all held), p50 / max (ms)`, `${fmt(R.probe.latencyMs.p50, 2)} / ${fmt(R.probe.latencyMs.max, 2)}`);
  for (const [k, v] of Object.entries(R.probe.latencyByKindMs)) row(`  one NOOP at a time, ${k}, p50 / max (ms)`, `${fmt(v.p50, 2)} / ${fmt(v.max, 2)}`);
  row('NOOP answered / sent (all at once)', `${R.noop.answered} / ${R.noop.sessions}`);
  row('time until every NOOP was answered', `${fmt(R.noop.wallMs / 1000, 2)} s; per session p50 ${fmt(R.noop.latencyMs.p50)} ms, p99 ${fmt(R.noop.latencyMs.p99)} ms, max ${fmt(R.noop.latencyMs.max)} ms`);
  for (const [k, v] of Object.entries(R.noop.latencyByKindMs)) row(`  NOOP latency ${k}, p50 / p99 (ms)`, `${fmt(v.p50)} / ${fmt(v.p99)} (n=${v.n})`);
  row('mailfront CPU for the NOOPs', `${fmt(R.noop.mailfrontCpuMs)} ms`);
  row('machine during the NOOPs: busy cores', cores(R.noop.cpu));
  row('greeting of a new connection during the NOOPs, p50 / max (ms): mailfront; Dovecot', greetings(R.noop.greetings));
  row('closed cleanly (goodbye + close) / asked', `${R.close.closed} / ${R.close.sessions} in ${fmt(R.close.wallMs / 1000, 2)} s`);
  row('machine during the close: busy cores', cores(R.close.cpu));
  row('greeting of a new connection during the close, p50 / max (ms): mailfront; Dovecot', greetings(R.close.greetings));
  row('mailfront after close: RSS / fds', `${kib(R.close.rssKiB)} / ${R.close.fds}`);
  row('Dovecot mail processes with the sessions', `${Object.entries(R.held.dovecotProcesses).map(([k, v]) => `${v} ${k}`).join(', ')}; ${kib(R.held.dovecotPssKiB)} PSS in all`);
  row('load client (this process) RSS with the sessions', kib(R.held.loadClientRssKiB));
  row('machine: MemAvailable at start / with the sessions', `${R.machine.memAvailableMiBAtStart} MiB / ${R.held.memAvailableMiB} MiB`);
  o.push('');
  const problems = [];
  for (const [what, errs] of [
    ['warm-up', R.warmup.errors],
    ['open', R.open.errors],
    ['NOOP', R.noop.errors],
    ['close', R.close.errors],
  ]) {
    for (const [k, n] of Object.entries(errs)) problems.push(`- ${what}: ${n} × ${k}`);
  }
  for (const [k, n] of Object.entries(R.mailfrontLog.warnings)) problems.push(`- mailfront log: ${n} × ${k}`);
  for (const w of R.dovecotWarnings) problems.push(`- Dovecot log: ${w.slice(0, 200)}`);
  if (!R.mailfrontAliveAtEnd) problems.push('- mailfront exited before the end of the run');
  o.push(problems.length ? `Problems:\n${problems.join('\n')}` : 'No errors: every session opened, answered its NOOP and closed; nothing above info in mailfront\'s log.');
  console.log(o.join('\n'));
}

main()
  .catch((e) => {
    console.error(`load: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup('load'));
