#!/usr/bin/env node
/**
 * `pnpm bench`: mailfront against its anchors (shared ANCHORS.md), all in one
 * run on this machine, on loopback: direct Dovecot, mailfront, nginx's mail
 * proxy and a bare Node pipe, for IMAP, POP3 and SMTP submission. A
 * benchmark, not a test: it asserts nothing and never runs in CI. See
 * docs/bench.md for what each figure means.
 *
 *   node scripts/bench/run.mjs [--quick] [--only=direct,mailfront,nginx,pipe]
 *                              [--phase=logins,fetch,pop3-logins,retr,submission,idle]
 *                              [--no-build] [--cpu-prof] [--heap-snapshot] [--node-args="…"]
 *
 * --cpu-prof runs mailfront under `node --cpu-prof` (profile written to
 * .bench/ when it stops); --heap-snapshot writes a heap snapshot of
 * mailfront while its idle sessions are open. Both are diagnostics: they
 * slow mailfront down, so do not compare the figures of such a run.
 * --node-args passes options to mailfront's node (e.g. "--max-semi-space-size=1"),
 * to try a V8 or libuv setting without touching the code.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { childrenOf, exeName, machineCpuMs, preciseCpuMs, rssKiB } from './lib/proc.mjs';
import { cleanup, cleanupOnSignals, forkHelper as forkScript, onCleanup, startDetached } from './lib/processes.mjs';
import { startBenchDovecot } from './lib/dovecot.mjs';
import { printReport } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const require = createRequire(import.meta.url);

const NGINX_BIN = '/usr/sbin/nginx';
const NGINX_MAIL_MODULE = '/usr/lib/nginx/modules/ngx_mail_module.so';
const ALL_TARGETS = ['direct', 'mailfront', 'nginx', 'pipe'];
/** In the order they run; idle last, since it restarts the proxies. */
const ALL_PHASES = ['logins', 'fetch', 'pop3-logins', 'retr', 'submission', 'idle'];
/** Greeting of each protocol, to know a listener is up. */
const GREETINGS = { imap: /^\* OK/, pop3: /^\+OK/, submission: /^220 / };

// ---------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = { quick: false, build: true, only: ALL_TARGETS, phases: ALL_PHASES, cpuProf: false, heapSnapshot: false, nodeArgs: [] };
  for (const a of argv) {
    if (a === '--quick') o.quick = true;
    else if (a === '--no-build') o.build = false;
    else if (a === '--cpu-prof') o.cpuProf = true;
    else if (a === '--heap-snapshot') o.heapSnapshot = true;
    else if (a.startsWith('--node-args=')) o.nodeArgs = a.slice('--node-args='.length).split(/\s+/).filter(Boolean);
    else if (a.startsWith('--only=')) o.only = list(a, ALL_TARGETS);
    else if (a.startsWith('--phase=')) o.phases = list(a, ALL_PHASES);
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').match(/\/\*\*([\s\S]*?)\*\//)[1].replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else usage(`unknown argument ${a}`);
  }
  return o;
}

function list(arg, allowed) {
  const values = arg.slice(arg.indexOf('=') + 1).split(',').filter(Boolean);
  for (const v of values) if (!allowed.includes(v)) usage(`${arg}: ${v} is not one of ${allowed.join(', ')}`);
  return allowed.filter((v) => values.includes(v));
}

function usage(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

/**
 * Counts. 200 users so that no per-user cache sees one user unrealistically
 * often; a login round of 3 000 at C=64 runs for several seconds, enough for
 * /proc's 10 ms CPU ticks to be noise. C=1 is capped in time: nginx's 40 ms
 * Nagle stall per TLS login would otherwise take the run past its budget.
 */
const N = opts.quick
  ? {
      users: 200,
      loginRounds: 2,
      loginsC64: 1000,
      loginsC1: 100,
      c1MaxMs: 6_000,
      fetchRuns: 2,
      fetchMessages: 150,
      retrRuns: 2,
      retrMessages: 64,
      submitRounds: 2,
      submitSmall: 200,
      submitLarge: 60,
      idleSessions: 300,
    }
  : {
      users: 200,
      loginRounds: 3,
      loginsC64: 3000,
      loginsC1: 300,
      c1MaxMs: 15_000,
      fetchRuns: 5,
      fetchMessages: 150,
      retrRuns: 5,
      retrMessages: 64,
      submitRounds: 3,
      submitSmall: 600,
      submitLarge: 240,
      idleSessions: 1000,
    };
const CONCURRENCY = 64;
const IDLE_OPEN_CONCURRENCY = 32;
/** 1 MiB messages: 150 of them are the 157 MB of ANCHORS. */
const MESSAGE_BYTES = 1 << 20;
/** POP3 RETR: messages of 2 MiB, as in ANCHORS (Dovecot 572 MB/s, nginx 64 MB/s). */
const RETR_MESSAGE_BYTES = 2 << 20;
/** Submission: C=8 clients, messages of 10 KiB and 1 MiB, one session per message. */
const SUBMIT_CONCURRENCY = 8;
const SUBMIT_SIZES = [
  { label: '10 KiB', bytes: 10 << 10, count: () => N.submitSmall },
  { label: '1 MiB', bytes: 1 << 20, count: () => N.submitLarge },
];
/** Let teardown of the last connections finish before CPU is read again. */
const SETTLE_MS = 300;
/** Time for RSS to settle after sessions were opened (lazy frees, GC). */
const IDLE_SETTLE_MS = 2_000;
/**
 * Idle sessions are idle for minutes, so each proxy's RSS is also read this
 * long after the warm-up and after opening, beside the reading right after.
 * A burst of logins grows V8's young generation (measured through
 * mailfront's metrics: +16 MiB of semi-spaces over 1 000 logins, 16 KiB a
 * session), which V8's memory reducer gives back some seconds after a
 * mark-compact; whether one came after the warm-up is luck, so for the Node
 * targets the later figure moves by ±10 KiB a session and can even be
 * negative. The figure right after opening stays the headline.
 */
const IDLE_STEADY_MS = 20_000;

/**
 * Dovecot as the bench runs it. The testkit already allows 1 100 mail
 * processes and 5 000 clients per service: enough for 1 000 IDLE sessions (a
 * process each) plus stragglers.
 *
 * imap, pop3 and submission processes are reused (service_count; safe here
 * because every user is `nobody`): a fork+exec costs ~9 ms of CPU on these
 * VMs (`/bin/true` in a loop), which made each direct login cost ~25 ms of
 * Dovecot CPU and capped every target at ~50 logins/s, hiding the proxies
 * behind the backend. idle_kill ends spare processes 20 s after their last
 * client: long enough that one proxy's batch of IDLE sessions reuses the
 * previous batch's processes (1 000 forks take ~15 s here), short enough
 * that the direct batches, measured first, start from none and count new
 * processes' PSS.
 */
const DOVECOT_EXTRA_CONFIG = ['imap', 'pop3', 'submission']
  .map(
    (service) => `service ${service} {
  service_count = 100000
  idle_kill = 20 secs
}
`,
  )
  .join('');

// ---------------------------------------------------------------------------
// Cleanup: nothing this script starts outlives it (Ctrl-C and errors too).

cleanupOnSignals('bench');

/** A forked Node helper of this directory. */
const forkHelper = (script, args, logFile) => forkScript(path.join(HERE, script), args, logFile);

// ---------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Connects until the listener greets as `protocol` does, for up to timeoutMs. */
async function waitGreeting(port, useTls, protocol = 'imap', timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const line = await new Promise((resolve, reject) => {
        const s = useTls ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port });
        let buf = '';
        s.setTimeout(2_000, () => s.destroy(new Error('no greeting')));
        s.on('data', (d) => {
          buf += d.toString('latin1');
          if (buf.includes('\r\n')) {
            s.destroy();
            resolve(buf.slice(0, buf.indexOf('\r\n')));
          }
        });
        s.on('error', reject);
        s.on('close', () => reject(new Error('closed')));
      });
      if (GREETINGS[protocol].test(line)) return;
      last = line;
    } catch (e) {
      last = e.message;
    }
    await sleep(50);
  }
  throw new Error(`${protocol} port ${port}${useTls ? ' (TLS)' : ''} did not greet: ${last}`);
}

/** Every listener of `ports` ({imap:{plain,tls},…}) greets. */
function waitAllGreetings(ports) {
  return Promise.all(Object.entries(ports).flatMap(([protocol, p]) => [waitGreeting(p.plain, false, protocol), waitGreeting(p.tls, true, protocol)]));
}

function freePorts(n) {
  return require(path.join(ROOT, 'packages/testkit/dist/index.js')).freePorts(n);
}

/** The load client: commands over IPC, one at a time. */
function startLoadClient(dir) {
  const h = forkHelper('load.mjs', [], path.join(dir, 'load.log'));
  let seq = 0;
  const pending = new Map();
  h.child.on('message', (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error));
  });
  h.child.on('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`load client exited (${code}); see ${dir}/load.log`));
    pending.clear();
  });
  return {
    pid: h.pid,
    call(cmd, args) {
      const id = ++seq;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        h.child.send({ id, cmd, ...args });
      });
    },
  };
}

function versionOf(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] || undefined;
}

function log(msg) {
  process.stderr.write(`bench: ${msg}\n`);
}

// ---------------------------------------------------------------------------
// Build

function build() {
  const dists = ['packages/testkit/dist/index.js', 'packages/cli/dist/bin.js', 'packages/cli/dist/index.js'];
  if (opts.build) {
    log('pnpm build');
    const r = spawnSync('pnpm', ['build'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error('bench: `pnpm build` failed (see above). Fix the build, or run with --no-build to bench the existing dist.');
      process.exit(1);
    }
  }
  const missing = dists.filter((d) => !fs.existsSync(path.join(ROOT, d)));
  if (missing.length) {
    console.error(`bench: missing ${missing.join(', ')}: run \`pnpm build\` first`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------
// Targets. Each has ports {plain, tls}, cpuMs() of its own processes and
// memKiB() for the idle-session figure.

async function startDovecotTarget(users, sinkPort) {
  const d = await startBenchDovecot({ users, sinkPort, extraConfig: DOVECOT_EXTRA_CONFIG, startTimeoutMs: 20_000 });
  return {
    ...d,
    mailProcesses: () => d.members().filter((p) => exeName(p) === 'imap'),
    logFile: d.dovecot.logFile,
  };
}

/** Dovecot's plain ports by protocol: where every proxy goes. */
function backendPorts(dovecot) {
  return { imap: dovecot.ports.imap, pop3: dovecot.ports.pop3, submission: dovecot.ports.submission };
}

/**
 * Every bench client comes from 127.0.0.1, and 1 000 idle sessions are the
 * point: lift per-address and total connection caps where this build has them
 * (an unknown key is a configuration error, so only then).
 */
function connectionLimits() {
  const schema = path.join(ROOT, 'packages/server/dist/config.js');
  const has = (key) => fs.existsSync(schema) && fs.readFileSync(schema, 'utf8').includes(key);
  const lines = [];
  if (has('maxConnectionsPerAddress')) lines.push('  maxConnectionsPerAddress: 100000');
  if (has('maxConnections')) lines.push('  maxConnections: 100000');
  return lines.length ? `limits:\n${lines.join('\n')}\n` : '';
}

/** Where --cpu-prof and --heap-snapshot write, under .bench/. */
const DIAG_DIR = path.join(ROOT, '.bench', `diag-${new Date().toISOString().replace(/[:.]/g, '-')}`);

function diagnosticArgs() {
  const args = [...opts.nodeArgs];
  if (opts.cpuProf) args.push('--cpu-prof', `--cpu-prof-dir=${DIAG_DIR}`);
  if (opts.heapSnapshot) args.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${DIAG_DIR}`);
  if (opts.cpuProf || opts.heapSnapshot) fs.mkdirSync(DIAG_DIR, { recursive: true });
  return args;
}

/** SIGUSR2 to mailfront, then waits until the snapshot file stops growing. */
async function heapSnapshot(t, label) {
  const before = new Set(fs.readdirSync(DIAG_DIR));
  process.kill(t.pid, 'SIGUSR2');
  let file;
  let size = -1;
  for (let i = 0; i < 600; i++) {
    await sleep(500);
    file ??= fs.readdirSync(DIAG_DIR).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    const now = fs.statSync(path.join(DIAG_DIR, file)).size;
    if (now === size && now > 0) break;
    size = now;
  }
  if (!file) return log(`  no heap snapshot appeared in ${DIAG_DIR}`);
  const named = path.join(DIAG_DIR, `mailfront-${label}.heapsnapshot`);
  fs.renameSync(path.join(DIAG_DIR, file), named);
  log(`  heap snapshot: ${path.relative(ROOT, named)}`);
}

async function startMailfront(dir, backend, users) {
  const bin = path.join(ROOT, 'packages/cli/dist/bin.js');
  const free = await freePorts(6);
  const ports = {
    imap: { plain: free[0], tls: free[1] },
    pop3: { plain: free[2], tls: free[3] },
    submission: { plain: free[4], tls: free[5] },
  };
  fs.mkdirSync(dir, { recursive: true });
  const dataDir = path.join(dir, 'var');
  // auth.cacheTtlMs: the default 60 s would expire in the middle of a run
  // (hits do not extend an entry), mixing scrypt into some rounds and not
  // others. An hour keeps every measured login a cache hit; the warm-up
  // round, each user's first login, is the cache-miss figure.
  const common = `dataDir: ${dataDir}\nhostname: localhost\nauth:\n  cacheTtlMs: 3600000\nlog:\n  level: warn\n`;
  // Preparation needs no listeners' certificate; serving uses the one `cert generate` made.
  const prepConfig = path.join(dir, 'prepare.yaml');
  fs.writeFileSync(prepConfig, common);
  const job = path.join(dir, 'prepare.json');
  fs.writeFileSync(job, JSON.stringify({ config: prepConfig, dir, ports: backend, users }));
  log(`mailfront: preparing its store with the CLI (backend add, user import of ${users.length})`);
  const r = spawnSync(process.execPath, [path.join(HERE, 'prepare-mailfront.mjs'), job], { stdio: 'inherit' });
  fs.rmSync(job);
  if (r.status !== 0) throw new Error('preparing mailfront failed');
  const config = path.join(dir, 'mailfront.yaml');
  // STARTTLS is not measured: plaintext listeners that accept passwords, on loopback.
  const listeners = Object.entries(ports)
    .map(
      ([protocol, p]) => `  - { protocol: ${protocol}, host: 127.0.0.1, port: ${p.plain}, tls: none, allowPlaintextAuth: true }
  - { protocol: ${protocol}, host: 127.0.0.1, port: ${p.tls}, tls: implicit }
`,
    )
    .join('');
  fs.writeFileSync(
    config,
    `${common}tls:
  cert: ${path.join(dir, 'tls', 'cert.pem')}
  key: ${path.join(dir, 'tls', 'key.pem')}
${connectionLimits()}listeners:
${listeners}`,
  );
  const logFile = path.join(dir, 'mailfront.log');
  let p;
  const launch = async () => {
    p = startDetached(process.execPath, [...diagnosticArgs(), bin, '--config', config, 'serve'], logFile);
    await Promise.race([
      waitAllGreetings(ports),
      p.exited.then((code) => {
        throw new Error(`mailfront exited (${code}) at start: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
      }),
    ]);
  };
  await launch();
  return {
    name: 'mailfront',
    get pid() {
      return p.pid;
    },
    ports,
    logFile,
    cpuMs: () => preciseCpuMs(p.pid) ?? NaN,
    memKiB: () => rssKiB(p.pid),
    /** A fresh process on the same ports (the store and its users stay). */
    restart: async () => {
      await p.stop();
      await launch();
    },
    certFile: path.join(dir, 'tls', 'cert.pem'),
    keyFile: path.join(dir, 'tls', 'key.pem'),
  };
}

async function startPipe(dir, backend, certFile, keyFile) {
  let h;
  let ports;
  const launch = async () => {
    // The same ports again on a restart.
    const specs = Object.entries(backend).map(([protocol, port]) => `${protocol}=${port}${ports ? `:${ports[protocol].plain}:${ports[protocol].tls}` : ''}`);
    h = forkHelper('pipe.mjs', [certFile, keyFile, ...specs], path.join(dir, 'pipe.log'));
    ports = await h.ready;
    await waitAllGreetings(ports);
  };
  await launch();
  return {
    name: 'pipe',
    get pid() {
      return h.pid;
    },
    ports,
    cpuMs: () => preciseCpuMs(h.pid) ?? NaN,
    memKiB: () => rssKiB(h.pid),
    restart: async () => {
      await h.stop();
      await launch();
    },
  };
}

/**
 * nginx's mail proxy for the three protocols. SMTP: nginx answers EHLO and
 * AUTH itself, asks auth_http, then logs in to Dovecot's submission port
 * with the client's credentials (`proxy_smtp_auth on`, nginx ≥ 1.19.4:
 * Dovecot requires AUTH whatever XCLIENT says) after `XCLIENT ADDR=… LOGIN=…`
 * (`xclient on`, the default: Dovecot trusts 127.0.0.0/8, so it logs the
 * client's address, as mailfront makes it). smtp_capabilities are those
 * mailfront offers by default; nginx's default offers nothing but AUTH.
 */
async function startNginx(dir, backend, certFile, keyFile) {
  const auth = forkHelper('auth-http.mjs', [JSON.stringify({ imap: backend.imap, pop3: backend.pop3, smtp: backend.submission })], path.join(dir, 'auth-http.log'));
  const { port: authPort } = await auth.ready;
  const free = await freePorts(6);
  const ports = {
    imap: { plain: free[0], tls: free[1] },
    pop3: { plain: free[2], tls: free[3] },
    submission: { plain: free[4], tls: free[5] },
  };
  const nginxProtocol = { imap: 'imap', pop3: 'pop3', submission: 'smtp' };
  const servers = Object.entries(ports)
    .map(
      ([protocol, p]) => `  server { listen 127.0.0.1:${p.plain}; protocol ${nginxProtocol[protocol]}; }
  server { listen 127.0.0.1:${p.tls} ssl; protocol ${nginxProtocol[protocol]}; }
`,
    )
    .join('');
  const prefix = path.join(dir, 'nginx');
  fs.mkdirSync(prefix);
  const conf = path.join(prefix, 'nginx.conf');
  // Debian's defaults otherwise: no proxy_buffer, ssl_* or timeout changes.
  fs.writeFileSync(
    conf,
    `load_module ${NGINX_MAIL_MODULE};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
${process.getuid?.() === 0 ? 'user nobody nogroup;\n' : ''}pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
mail {
  server_name localhost;
  auth_http 127.0.0.1:${authPort}/auth;
  proxy on;
  imap_capabilities "IMAP4rev1" "SASL-IR" "LOGIN-REFERRALS" "ID" "ENABLE" "IDLE" "LITERAL+";
  pop3_auth plain;
  smtp_auth plain login;
  smtp_capabilities "PIPELINING" "8BITMIME" "ENHANCEDSTATUSCODES" "SIZE";
  proxy_smtp_auth on;
  xclient on;
  ssl_certificate ${certFile};
  ssl_certificate_key ${keyFile};
${servers}}
`,
  );
  const test = spawnSync(NGINX_BIN, ['-t', '-p', prefix, '-c', conf, '-e', path.join(prefix, 'error.log')], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t failed: ${test.stderr}`);
  let p;
  const launch = async () => {
    p = startDetached(NGINX_BIN, ['-p', prefix, '-c', conf, '-e', path.join(prefix, 'error.log')], path.join(prefix, 'stdout.log'));
    await Promise.race([
      waitAllGreetings(ports),
      p.exited.then((code) => {
        throw new Error(`nginx exited (${code}) at start: ${fs.readFileSync(path.join(prefix, 'error.log'), 'utf8').slice(-2000)}`);
      }),
    ]);
  };
  await launch();
  const tree = () => [p.pid, ...childrenOf(p.pid)];
  return {
    name: 'nginx',
    get pid() {
      return p.pid;
    },
    ports,
    /** Master and worker: both live as long as the run, so their threads' run time is exact. */
    cpuMs: () => tree().reduce((a, pid) => a + (preciseCpuMs(pid) ?? 0), 0),
    helperCpuMs: () => preciseCpuMs(auth.pid) ?? NaN,
    /** The worker holds the sessions; the master's memory does not move. */
    memKiB: () => childrenOf(p.pid).reduce((a, w) => a + (rssKiB(w) ?? 0), 0),
    /** Master and worker anew; the auth helper stays. */
    restart: async () => {
      await p.stop();
      await launch();
    },
  };
}

// ---------------------------------------------------------------------------
// Phases. Every measured round runs the targets one after another, and the
// rounds repeat: a burst of load from elsewhere on the box then hits every
// target alike, and the median round shrugs it off.

/** Everything this run's own processes have burnt so far (targets, Dovecot, load client, helpers, this script). */
function ourCpuMs(ctx) {
  let total = ctx.retiredCpuMs + ctx.backend.cpuMs() + (preciseCpuMs(ctx.load.pid) ?? 0);
  for (const t of ctx.running) total += (t.cpuMs?.() ?? 0) + (t.helperCpuMs?.() ?? 0);
  const self = process.cpuUsage();
  return total + (self.user + self.system) / 1000;
}

/**
 * Runs `fn` and measures CPU: the target's own processes, nginx's auth
 * helper, Dovecot (all of it), and what the rest of the machine burnt
 * meanwhile (`otherMs`: /proc/stat busy time minus all of ours).
 */
async function measured(ctx, t, fn) {
  const snap = () => ({
    proxy: t.name === 'direct' ? undefined : t.cpuMs(),
    helper: t.helperCpuMs?.(),
    dovecot: ctx.backend.cpuMs(),
    ours: ourCpuMs(ctx),
    machine: machineCpuMs(),
    at: Date.now(),
  });
  const a = snap();
  const result = await fn();
  await sleep(SETTLE_MS);
  const b = snap();
  const cpu = {
    dovecotMs: b.dovecot - a.dovecot,
    otherMs: Math.max(0, b.machine.busy - a.machine.busy - (b.ours - a.ours)),
    stealMs: b.machine.steal - a.machine.steal,
    wallMs: b.at - a.at,
  };
  if (a.proxy !== undefined) cpu.proxyMs = b.proxy - a.proxy;
  if (a.helper !== undefined) cpu.helperMs = b.helper - a.helper;
  return { ...result, cpu };
}

const targetOf = (t, mode, protocol = 'imap') => ({ host: '127.0.0.1', port: t.ports[protocol][mode], tls: mode === 'tls' });

function logRound(r, what = 'logins') {
  if (r.errors) log(`  ${r.errors} failed ${what}: ${r.errorSamples.join(' | ')}`);
}

/** Logins of `protocol` (imap, pop3) into results[key]: a warm-up round, C=64 rounds, C=1 rounds, per mode. */
async function phaseLogins(ctx, results, protocol, key) {
  const { targets, load, users } = ctx;
  const rounds = N.loginRounds;
  const P = protocol === 'imap' ? '' : `${protocol} `;
  for (const mode of ['plain', 'tls']) {
    const out = (results[key][mode] = {});
    for (const t of targets) {
      // Every user once: JIT, pools, and mailfront's auth cache filled (a miss each: scrypt).
      log(`${P}logins ${mode} → ${t.name}: warm-up, each user once`);
      const warmup = await measured(ctx, t, () =>
        load.call('logins', { protocol, target: targetOf(t, mode, protocol), users, count: users.length, concurrency: CONCURRENCY }),
      );
      logRound(warmup);
      out[t.name] = { warmup, c64: [], c1: [] };
    }
    // C=64 rounds, then C=1 rounds (bounded in time: a TLS login may stall).
    const series = [
      { key: 'c64', count: N.loginsC64, concurrency: CONCURRENCY, offset: (i) => i * 13 },
      { key: 'c1', count: N.loginsC1, concurrency: 1, offset: (i) => 7 + i * 31, maxMs: N.c1MaxMs / rounds },
    ];
    for (const { key: k, count, concurrency, offset, maxMs } of series) {
      for (let i = 0; i < rounds; i++) {
        for (const t of targets) {
          const job = { protocol, target: targetOf(t, mode, protocol), users, count: Math.round(count / rounds), concurrency, offset: offset(i) };
          if (maxMs !== undefined) job.maxMs = maxMs;
          const r = await measured(ctx, t, () => load.call('logins', job));
          logRound(r);
          out[t.name][k].push(r);
          const figure =
            concurrency === 1
              ? `p50 ${r.latencyMs.p50.toFixed(2)} ms`
              : `${r.perSecond.toFixed(0)}/s${r.cpu.proxyMs === undefined ? '' : `, ${(r.cpu.proxyMs / r.ok).toFixed(3)} ms CPU/login`}`;
          log(`${P}logins ${mode} C=${concurrency} round ${i + 1}/${rounds} → ${t.name}: ${figure}`);
        }
      }
    }
  }
}

async function phaseFetch(ctx, bigbox, results) {
  const { targets, load } = ctx;
  for (const mode of ['plain', 'tls']) {
    const out = (results.fetch[mode] = {});
    for (const t of targets) {
      await load.call('fetch', { target: targetOf(t, mode), user: bigbox, iterations: 1 });
      out[t.name] = { runs: [] };
    }
    for (let i = 0; i < N.fetchRuns; i++) {
      for (const t of targets) {
        const r = await measured(ctx, t, () => load.call('fetch', { target: targetOf(t, mode), user: bigbox, iterations: 1 }));
        const run = { ...r.runs[0], cpu: r.cpu };
        out[t.name].runs.push(run);
        const perMb = run.cpu.proxyMs === undefined ? '' : `, ${(run.cpu.proxyMs / (run.bytes / 1e6)).toFixed(3)} ms CPU/MB`;
        log(`fetch ${mode} run ${i + 1}/${N.fetchRuns} → ${t.name}: ${run.mbPerS.toFixed(0)} MB/s${perMb}`);
      }
    }
  }
}

/**
 * POP3 RETR of `bigpop`'s 2 MiB messages, one after another, each timed to
 * the end of its final `.` line. MB/s = bytes received ÷ the sum of the RETR
 * times (login and QUIT excluded); a proxy that stalls the tail of each
 * response (nginx: no TCP_NODELAY) loses that stall once per message.
 */
async function phaseRetr(ctx, bigpop, results) {
  const { targets, load } = ctx;
  for (const mode of ['plain', 'tls']) {
    const out = (results.retr[mode] = {});
    for (const t of targets) {
      await load.call('retr', { target: targetOf(t, mode, 'pop3'), user: bigpop });
      out[t.name] = { runs: [] };
    }
    for (let i = 0; i < N.retrRuns; i++) {
      for (const t of targets) {
        const r = await measured(ctx, t, () => load.call('retr', { target: targetOf(t, mode, 'pop3'), user: bigpop }));
        out[t.name].runs.push(r);
        const perMb = r.cpu.proxyMs === undefined ? '' : `, ${(r.cpu.proxyMs / (r.bytes / 1e6)).toFixed(3)} ms CPU/MB`;
        log(`retr ${mode} run ${i + 1}/${N.retrRuns} → ${t.name}: ${r.mbPerS.toFixed(0)} MB/s, RETR p50 ${r.retrMs.p50.toFixed(1)} ms${perMb}`);
      }
    }
  }
}

/**
 * Submission at C=8, one session per message (connect, EHLO, AUTH PLAIN,
 * MAIL, RCPT, DATA, QUIT: what a mail client does to send), 10 KiB and 1 MiB.
 * Dovecot relays each message to the sink; the sink's count must grow by
 * the messages accepted, or Dovecot did not relay them.
 */
async function phaseSubmission(ctx, results) {
  const { targets, load, users, sink } = ctx;
  const rounds = N.submitRounds;
  for (const size of SUBMIT_SIZES) {
    for (const mode of ['plain', 'tls']) {
      const out = (results.submission[`${size.bytes}_${mode}`] = { size: size.bytes, label: size.label, mode, targets: {} });
      for (const t of targets) {
        // Small messages: every user once (mailfront's auth cache already knows them from the logins phases, or learns them here).
        const count = size.bytes < 100_000 ? users.length : 2 * SUBMIT_CONCURRENCY;
        const w = await load.call('submit', { target: targetOf(t, mode, 'submission'), users, count, concurrency: SUBMIT_CONCURRENCY, size: size.bytes });
        logRound(w, 'submissions');
        out.targets[t.name] = { warmup: w, rounds: [] };
      }
      for (let i = 0; i < rounds; i++) {
        for (const t of targets) {
          const before = await sink.count();
          const r = await measured(ctx, t, () =>
            load.call('submit', {
              target: targetOf(t, mode, 'submission'),
              users,
              count: Math.round(size.count() / rounds),
              concurrency: SUBMIT_CONCURRENCY,
              size: size.bytes,
              offset: i * 17,
            }),
          );
          r.delivered = (await sink.count()) - before;
          logRound(r, 'submissions');
          out.targets[t.name].rounds.push(r);
          const perMsg = r.cpu.proxyMs === undefined ? '' : `, ${(r.cpu.proxyMs / r.ok).toFixed(3)} ms CPU/message`;
          log(`submission ${size.label} ${mode} round ${i + 1}/${rounds} → ${t.name}: ${r.perSecond.toFixed(1)} messages/s${perMsg}, ${r.delivered}/${r.ok} at the sink`);
        }
      }
    }
  }
}

/** The sink helper (sink.mjs): Dovecot's relay; count() = messages it has received so far. */
async function startSink(dir) {
  const h = forkHelper('sink.mjs', [], path.join(dir, 'sink.log'));
  const { port } = await h.ready;
  return {
    port,
    pid: h.pid,
    cpuMs: () => preciseCpuMs(h.pid) ?? 0,
    // Dovecot answers the client's end of data with the relay's own reply: a message accepted is already counted.
    count: () =>
      new Promise((resolve) => {
        h.child.once('message', (m) => resolve(m.count));
        h.child.send({ cmd: 'count' });
      }),
  };
}

async function waitMailProcesses(backend, max, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = backend.mailProcesses().length;
    if (n <= max) return;
    if (Date.now() > deadline) throw new Error(`Dovecot still has ${n} imap processes after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Samples `read()` every 500 ms until two in a row agree within 1 % (or 10 s): RSS moves for a while after a burst. */
async function settled(read) {
  const samples = [read()];
  for (let i = 0; i < 20; i++) {
    await sleep(500);
    samples.push(read());
    const [a, b] = samples.slice(-2);
    if (samples.length >= 3 && Math.abs(a - b) <= 0.01 * Math.max(a, b)) break;
  }
  return { value: samples.at(-1), samples };
}

async function phaseIdle(ctx, results) {
  const { targets, load, users, backend } = ctx;
  // Direct first: its batches must find no imap process to reuse.
  const order = [...targets].sort((a, b) => (b.name === 'direct') - (a.name === 'direct'));
  for (const mode of ['plain', 'tls']) {
    const out = (results.idle[mode] = {});
    for (const t of order) {
      const target = targetOf(t, mode);
      const direct = t.name === 'direct';
      const mem = direct ? () => backend.pssKiB() : () => t.memKiB();
      let freshKiB;
      const open = () => load.call('idle-open', { target, users, sessions: N.idleSessions, concurrency: IDLE_OPEN_CONCURRENCY });
      if (!direct) {
        // A fresh process, so that what earlier phases left in its heap and
        // malloc arenas neither hides nor inflates the growth. Then every user
        // logs in once: JIT, pools, and mailfront's auth cache (scrypt's
        // 24 MiB per hash is kept by glibc's per-thread arenas: a one-time
        // cost that would otherwise land on the first sessions).
        ctx.retiredCpuMs += t.cpuMs();
        await t.restart();
        log(`idle ${mode} → ${t.name}: fresh process, warm-up (each user once)`);
        const fresh = t.memKiB();
        const warm = await load.call('logins', { target, users, count: users.length, concurrency: IDLE_OPEN_CONCURRENCY });
        logRound(warm);
        freshKiB = { started: fresh, afterWarmup: undefined };
      }
      // Dovecot's PSS per session counts new processes: none may be left to reuse.
      if (direct) await waitMailProcesses(backend, 0);
      // Dovecot's PSS is a process per session: no garbage collector to wait for.
      const steady = async () => {
        if (direct) return undefined;
        await sleep(IDLE_STEADY_MS);
        return settled(mem);
      };
      const beforeAtOnce = await settled(mem);
      const before = (await steady()) ?? beforeAtOnce;
      if (freshKiB) freshKiB.afterWarmup = before.value;
      if (opts.heapSnapshot && t.name === 'mailfront') await heapSnapshot(t, `idle-${mode}-0`);
      log(`idle ${mode} → ${t.name}: ${N.idleSessions} sessions`);
      const opened = await open();
      const afterAtOnce = await settled(mem);
      const after = (await steady()) ?? afterAtOnce;
      if (opts.heapSnapshot && t.name === 'mailfront') await heapSnapshot(t, `idle-${mode}-${opened.opened}`);
      await load.call('idle-close', {});
      const released = direct ? undefined : (await settled(mem)).value;
      const sessions = opened.opened - opened.dropped;
      if (opened.errors || opened.dropped) log(`  ${opened.errors} failed, ${opened.dropped} dropped: ${opened.errorSamples.join(' | ')}`);
      out[t.name] = {
        ...opened,
        measure: direct ? 'Dovecot PSS, all processes' : t.name === 'nginx' ? 'worker RSS' : 'process RSS',
        beforeKiB: before.value,
        afterKiB: after.value,
        afterCloseKiB: released,
        freshProcessKiB: freshKiB,
        samplesKiB: { before: before.samples, after: after.samples, beforeAtOnce: beforeAtOnce.samples, afterAtOnce: afterAtOnce.samples },
        steadyAfterMs: direct ? 0 : IDLE_STEADY_MS,
        perSessionKiB: (afterAtOnce.value - beforeAtOnce.value) / sessions,
        perSessionKiBLater: (after.value - before.value) / sessions,
      };
      log(`  ${((afterAtOnce.value - beforeAtOnce.value) / sessions).toFixed(1)} KiB/session${direct ? '' : `; ${((after.value - before.value) / sessions).toFixed(1)} read ${IDLE_STEADY_MS / 1000} s later`}`);
    }
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  if (process.getuid?.() !== 0) usage('needs root: Dovecot switches to nobody for its mail processes');
  const started = new Date();
  build();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-bench-'));
  fs.chmodSync(dir, 0o755);
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  log(`work dir ${dir}${opts.quick ? ' (quick)' : ''}`);

  const tag = randomBytes(3).toString('hex');
  const users = Array.from({ length: N.users }, (_, i) => ({
    name: `user${String(i).padStart(3, '0')}@bench.test`,
    password: `pw-${i}-${tag}`,
  }));
  const bigbox = { name: 'bigbox@bench.test', password: `big-${tag}` };
  const bigpop = { name: 'bigpop@bench.test', password: `pop-${tag}` };
  const allUsers = [...users, bigbox, bigpop];

  const sink = await startSink(dir);
  log('starting Dovecot (imap, pop3, submission relaying to the sink)');
  const backend = await startDovecotTarget(allUsers, sink.port);
  const { dovecot } = backend;
  const toDovecot = backendPorts(dovecot);
  const load = startLoadClient(dir);

  const wanted = new Set(opts.only);
  const notes = [];
  const targets = [];
  if (wanted.has('direct')) {
    targets.push({
      name: 'direct',
      ports: {
        imap: { plain: dovecot.ports.imap, tls: dovecot.ports.imaps },
        pop3: { plain: dovecot.ports.pop3, tls: dovecot.ports.pop3s },
        submission: { plain: dovecot.ports.submission, tls: dovecot.ports.submissions },
      },
      cpuMs: () => backend.cpuMs(),
    });
  }
  // mailfront always prepares the certificate the others use (RSA-2048, self-signed), even when not benched.
  const mf = await startMailfront(path.join(dir, 'mf'), toDovecot, allUsers);
  if (wanted.has('mailfront')) targets.push(mf);
  if (wanted.has('nginx')) {
    if (fs.existsSync(NGINX_BIN) && fs.existsSync(NGINX_MAIL_MODULE)) {
      targets.push(await startNginx(dir, toDovecot, mf.certFile, mf.keyFile));
    } else {
      notes.push(`nginx skipped: ${NGINX_BIN} or ${NGINX_MAIL_MODULE} not installed (apt-get install nginx-light libnginx-mod-mail)`);
      log(notes.at(-1));
    }
  }
  if (wanted.has('pipe')) targets.push(await startPipe(dir, toDovecot, mf.certFile, mf.keyFile));

  const results = {
    startedAt: started.toISOString(),
    args: process.argv.slice(2),
    mailfrontNodeArgs: opts.nodeArgs,
    counts: {
      ...N,
      concurrency: CONCURRENCY,
      messageBytes: MESSAGE_BYTES,
      retrMessageBytes: RETR_MESSAGE_BYTES,
      submitConcurrency: SUBMIT_CONCURRENCY,
      submitSizes: SUBMIT_SIZES.map((z) => ({ label: z.label, bytes: z.bytes, count: z.count() })),
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
    },
    versions: {
      node: process.version,
      dovecot: versionOf('/usr/sbin/dovecot', ['--version']),
      nginx: fs.existsSync(NGINX_BIN) ? versionOf(NGINX_BIN, ['-v']) : undefined,
      openssl: process.versions.openssl,
      mailfrontCommit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim(),
    },
    targets: targets.map((t) => t.name),
    notes,
    logins: { plain: {}, tls: {} },
    fetch: { plain: {}, tls: {} },
    pop3Logins: { plain: {}, tls: {} },
    retr: { plain: {}, tls: {} },
    submission: {},
    idle: { plain: {}, tls: {} },
    /** Per phase: cores' worth of CPU that processes not ours burnt meanwhile (other users of the box), and VM steal. */
    background: {},
    loadAverageAtStart: os.loadavg(),
  };

  if (opts.phases.includes('fetch')) {
    log(`filling bigbox with ${N.fetchMessages} × 1 MiB (APPEND to Dovecot directly)`);
    const a = await load.call('append', {
      target: { host: '127.0.0.1', port: dovecot.ports.imap, tls: false },
      user: bigbox,
      count: N.fetchMessages,
      size: MESSAGE_BYTES,
    });
    results.fetch.mailbox = a;
    // Page cache and Dovecot's index warm before anything is timed.
    await load.call('fetch', { target: { host: '127.0.0.1', port: dovecot.ports.imap, tls: false }, user: bigbox, iterations: 1 });
  }
  if (opts.phases.includes('retr')) {
    log(`filling bigpop with ${N.retrMessages} × 2 MiB (APPEND to Dovecot directly)`);
    results.retr.mailbox = await load.call('append', {
      target: { host: '127.0.0.1', port: dovecot.ports.imap, tls: false },
      user: bigpop,
      count: N.retrMessages,
      size: RETR_MESSAGE_BYTES,
    });
    // Page cache, Dovecot's index and POP3's message sizes ready before anything is timed.
    await load.call('retr', { target: { host: '127.0.0.1', port: dovecot.ports.pop3, tls: false }, user: bigpop });
  }
  const ctx = {
    retiredCpuMs: 0,
    targets,
    running: [mf, ...targets.filter((t) => t !== mf && t.name !== 'direct'), sink],
    backend,
    load,
    users,
    sink,
  };
  const phase = async (name, fn) => {
    if (!opts.phases.includes(name)) return;
    const t0 = Date.now();
    const m0 = machineCpuMs();
    const o0 = ourCpuMs(ctx);
    await fn();
    const wall = Date.now() - t0;
    const m1 = machineCpuMs();
    results.background[name] = {
      wallMs: wall,
      otherCores: Math.max(0, m1.busy - m0.busy - (ourCpuMs(ctx) - o0)) / wall,
      stealCores: (m1.steal - m0.steal) / wall,
    };
  };
  await phase('logins', () => phaseLogins(ctx, results, 'imap', 'logins'));
  await phase('fetch', () => phaseFetch(ctx, bigbox, results));
  await phase('pop3-logins', () => phaseLogins(ctx, results, 'pop3', 'pop3Logins'));
  await phase('retr', () => phaseRetr(ctx, bigpop, results));
  await phase('submission', () => phaseSubmission(ctx, results));
  await phase('idle', () => phaseIdle(ctx, results));

  results.finishedAt = new Date().toISOString();
  results.durationS = (Date.now() - started.getTime()) / 1000;
  const outDir = path.join(ROOT, '.bench');
  fs.mkdirSync(outDir, { recursive: true });
  const outFile = path.join(outDir, `results-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  printReport(results);
  if (opts.cpuProf || opts.heapSnapshot) {
    console.log(`\ndiagnostics (mailfront ran with ${opts.cpuProf ? '--cpu-prof ' : ''}${opts.heapSnapshot ? '--heap-snapshot' : ''}: its figures above are not comparable): ${path.relative(ROOT, DIAG_DIR)}`);
  }
  console.log(`\nraw numbers: ${path.relative(ROOT, outFile)} (${results.durationS.toFixed(0)} s)`);
}

main()
  .catch((e) => {
    console.error(`bench: ${e.stack ?? e}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
