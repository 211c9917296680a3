/**
 * A real Dovecot 2.3 on 127.0.0.1 for integration tests: its own config,
 * base_dir, log, users, CA and free ports under a fresh temp dir, so that
 * several run side by side (jest runs two workers) and none reads /etc/dovecot.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { DaemonProcess, DaemonStartError, logTailSection, readLogFile, SerialQueue, settlesWithin, sleep, startOnFreePorts, tail, waitForLogLine } from './daemon';
import { exitRegistry, makeDaemonTempDir, startSessionWatchdog, type DaemonKind } from './daemon-cleanup';
import { rawConnect } from './imap-client';
import { recordSecrets } from './secrets-audit';
import { freePorts } from './ports';
import { killAll, killSession, sessionMembers, signalQuietly, waitSessionGone } from './session-processes';
import { testTls } from './test-tls';

const execFileAsync = promisify(execFile);

export type DovecotProtocol = 'imap' | 'pop3' | 'submission';

export interface DovecotUser {
  name: string;
  password: string;
}

export interface DovecotOptions {
  users: DovecotUser[];
  /** passdb master=yes, pass=yes; SASL PLAIN authzid=user, authcid=master works, and LOGIN `user*master`. */
  masterUser?: DovecotUser;
  /** Default ['imap']; imap is always enabled, since `ports.imap` is not optional. */
  protocols?: DovecotProtocol[];
  /** login_trusted_networks: who may forward a client address (IMAP ID x-originating-*, XCLIENT). Default '127.0.0.0/8'. */
  trustedNetworks?: string;
  /** submission_relay_host/port. Without it the relay is a closed port on 127.0.0.1, so no mail leaves. */
  submissionRelay?: { host: string; port: number };
  /**
   * Keep Dovecot's per-IP auth penalty (2, 4, 8… 15 s before each attempt
   * after a failure from an untrusted address). Off by default so that tests
   * of failed logins with forwarded addresses stay fast.
   */
  authPenalty?: boolean;
  /** auth_debug, mail_debug, verbose_ssl: much more in the log. */
  debug?: boolean;
  /** Appended verbatim to dovecot.conf (later settings win). */
  extraConfig?: string;
  /** Deadline for all listeners to greet, per start; default 10 000 ms. */
  startTimeoutMs?: number;
}

export interface DovecotPorts {
  imap: number;
  imaps: number;
  pop3?: number;
  pop3s?: number;
  submission?: number;
  submissions?: number;
}

export interface Dovecot {
  host: '127.0.0.1';
  ports: DovecotPorts;
  /** PEM file of the CA that signed Dovecot's certificate (hostnames localhost and 127.0.0.1). */
  caFile: string;
  caPem: string;
  baseDir: string;
  configFile: string;
  logFile: string;
  /** The master's PID while it runs, else undefined. */
  readonly pid: number | undefined;
  /** How long the last start() took until every listener greeted, in ms. */
  readonly lastStartMs: number;
  readLog(): Promise<string>;
  /** Resolves with the first log line matching `pattern`; rejects after timeoutMs (default 5 000). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** `doveadm -c CONF stop`, then waits until the master and its children are gone; idempotent. */
  stop(): Promise<void>;
  /** SIGKILL to the master and its children (for fault tests); idempotent. */
  kill(): Promise<void>;
  /** Starts again on the same ports and config after stop() or kill(). */
  start(): Promise<void>;
}

/** Where Debian puts the binaries; MAILFRONT_DOVECOT_BIN overrides (doveadm is looked for beside it). */
const DOVECOT_BIN = process.env['MAILFRONT_DOVECOT_BIN'] ?? '/usr/sbin/dovecot';
const DOVEADM_BIN = path.join(path.dirname(DOVECOT_BIN), 'doveadm');
/** Dovecot's service binaries: children are recognised by their executable, so a reused PID is never killed. */
const DOVECOT_EXE_PREFIXES = ['/usr/lib/dovecot/', '/usr/libexec/dovecot/', DOVECOT_BIN];

const DOVECOT: DaemonKind = { name: 'dovecot', keepEnv: 'MAILFRONT_KEEP_DOVECOT' };

const DEFAULT_START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 3_000;
const PROBE_RETRY_MS = 15;
const STOP_POLL_MS = 10;
/** How long the log process must have been the last child before stop() ends it. */
const LOG_DRAIN_MS = 50;
/** Enough for ~1 000 concurrent sessions: every logged-in IMAP, POP3 or submission session is its own process. */
const MAIL_PROCESS_LIMIT = 1_100;

interface ProtocolListeners {
  plain: keyof DovecotPorts;
  tls: keyof DovecotPorts;
  service: string;
  greeting: RegExp;
}

const LISTENERS: Record<DovecotProtocol, ProtocolListeners> = {
  imap: { plain: 'imap', tls: 'imaps', service: 'imap-login', greeting: /^\* OK/ },
  pop3: { plain: 'pop3', tls: 'pop3s', service: 'pop3-login', greeting: /^\+OK/ },
  submission: { plain: 'submission', tls: 'submissions', service: 'submission-login', greeting: /^220 / },
};

export class DovecotStartError extends DaemonStartError {
  override readonly name = 'DovecotStartError';
}

export async function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  const options = normalizeOptions(opts);
  recordSecrets([...opts.users, ...(opts.masterUser ? [opts.masterUser] : [])]);
  if (process.getuid?.() !== 0) throw new Error('startDovecot needs root: Dovecot switches users for its mail and login processes');
  if (!fs.existsSync(DOVECOT_BIN)) {
    throw new Error(`${DOVECOT_BIN} not found: install Debian's dovecot-core dovecot-imapd dovecot-pop3d dovecot-submissiond`);
  }
  const base = await makeDaemonTempDir(DOVECOT);
  // mkdtemp makes 0700; mail processes run as nobody and must reach BASE/home.
  fs.chmodSync(base, 0o755);
  const layout = await writeFixedFiles(base, options);
  return startOnFreePorts(options.protocols.length * 2, layout.logFile, async (numbers) => {
    const ports = assignPorts(options.protocols, numbers);
    fs.writeFileSync(layout.configFile, renderConfig(layout, options, ports));
    const dovecot = new DovecotInstance(layout, ports, options.startTimeoutMs);
    await dovecot.start();
    return dovecot;
  });
}

interface NormalizedOptions {
  users: DovecotUser[];
  masterUser: DovecotUser | undefined;
  protocols: DovecotProtocol[];
  trustedNetworks: string;
  submissionRelay: { host: string; port: number } | undefined;
  authPenalty: boolean;
  debug: boolean;
  extraConfig: string;
  startTimeoutMs: number;
}

function normalizeOptions(opts: DovecotOptions): NormalizedOptions {
  const names = new Set<string>();
  for (const u of [...opts.users, ...(opts.masterUser ? [opts.masterUser] : [])]) {
    // passwd-file is colon-separated and line-based; Dovecot expands % in some fields.
    if (!/^[A-Za-z0-9._@+-]+$/.test(u.name)) throw new TypeError(`startDovecot: unusable user name ${JSON.stringify(u.name)}`);
    if (/[:\r\n\0]/.test(u.password) || u.password === '') {
      throw new TypeError(`startDovecot: password of ${u.name} must be non-empty without ':', CR, LF or NUL`);
    }
    if (names.has(u.name)) throw new TypeError(`startDovecot: duplicate user ${u.name}`);
    names.add(u.name);
  }
  const protocols = [...new Set<DovecotProtocol>(['imap', ...(opts.protocols ?? [])])];
  for (const p of protocols) {
    if (!(p in LISTENERS)) throw new TypeError(`startDovecot: unknown protocol ${String(p)}`);
  }
  const trustedNetworks = opts.trustedNetworks ?? '127.0.0.0/8';
  if (/[\r\n]/.test(trustedNetworks)) throw new TypeError('startDovecot: trustedNetworks must be one line');
  return {
    users: opts.users,
    masterUser: opts.masterUser,
    protocols,
    trustedNetworks,
    submissionRelay: opts.submissionRelay,
    authPenalty: opts.authPenalty ?? false,
    debug: opts.debug ?? false,
    extraConfig: opts.extraConfig ?? '',
    startTimeoutMs: opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  };
}

interface Layout {
  base: string;
  runDir: string;
  stateDir: string;
  homeDir: string;
  configFile: string;
  logFile: string;
  stderrFile: string;
  passwdFile: string;
  masterFile: string;
  certFile: string;
  keyFile: string;
  caFile: string;
  caPem: string;
  instanceName: string;
  nobody: { uid: number; gid: number };
  /** A closed port used as the relay when the caller gives none. */
  deadRelayPort: number;
}

async function writeFixedFiles(base: string, o: NormalizedOptions): Promise<Layout> {
  const nobody = lookupNobody();
  const layout: Layout = {
    base,
    runDir: path.join(base, 'run'),
    stateDir: path.join(base, 'state'),
    homeDir: path.join(base, 'home'),
    configFile: path.join(base, 'dovecot.conf'),
    logFile: path.join(base, 'dovecot.log'),
    stderrFile: path.join(base, 'dovecot.stderr'),
    passwdFile: path.join(base, 'users.passwd'),
    masterFile: path.join(base, 'master-users.passwd'),
    certFile: path.join(base, 'tls', 'cert.pem'),
    keyFile: path.join(base, 'tls', 'key.pem'),
    caFile: path.join(base, 'tls', 'ca.pem'),
    caPem: '',
    // Shows in process titles (dovecot-<name>/imap-login) and keeps instances apart in logs.
    instanceName: `mailfront-test-${process.pid}-${randomBytes(3).toString('hex')}`,
    nobody,
    deadRelayPort: (await freePorts(1))[0]!,
  };
  for (const d of [layout.runDir, layout.stateDir, path.dirname(layout.certFile)]) fs.mkdirSync(d, { mode: 0o755 });
  fs.mkdirSync(layout.homeDir, { mode: 0o755 });
  fs.chownSync(layout.homeDir, nobody.uid, nobody.gid);

  const tlsPair = await testTls('mailfront testkit CA');
  layout.caPem = tlsPair.ca.cert;
  fs.writeFileSync(layout.caFile, tlsPair.ca.cert);
  fs.writeFileSync(layout.certFile, tlsPair.leaf.cert);
  fs.writeFileSync(layout.keyFile, tlsPair.leaf.key, { mode: 0o600 });

  // user:password:uid:gid:gecos:home:shell:extra — the uid/gid/home columns make it the userdb too.
  const line = (u: DovecotUser) => `${u.name}:{PLAIN}${u.password}:nobody:nogroup::${path.join(layout.homeDir, u.name)}::\n`;
  fs.writeFileSync(layout.passwdFile, o.users.map(line).join(''), { mode: 0o644 });
  fs.writeFileSync(layout.masterFile, o.masterUser ? `${o.masterUser.name}:{PLAIN}${o.masterUser.password}\n` : '', {
    mode: 0o644,
  });
  return layout;
}

/** Two of `numbers` per protocol: its plaintext and its TLS listener. */
function assignPorts(protocols: DovecotProtocol[], numbers: number[]): DovecotPorts {
  const ports: Partial<DovecotPorts> = {};
  protocols.forEach((p, i) => {
    ports[LISTENERS[p].plain] = numbers[2 * i]!;
    ports[LISTENERS[p].tls] = numbers[2 * i + 1]!;
  });
  return ports as DovecotPorts;
}

/** The generated dovecot.conf. Nothing is included from /etc: every path is under the temp dir. */
function renderConfig(l: Layout, o: NormalizedOptions, ports: DovecotPorts): string {
  const relay = o.submissionRelay ?? { host: '127.0.0.1', port: l.deadRelayPort };
  const loginService = (p: DovecotProtocol) => {
    const l = LISTENERS[p];
    return `service ${l.service} {
  inet_listener ${l.plain} {
    port = ${ports[l.plain]}
  }
  inet_listener ${l.tls} {
    port = ${ports[l.tls]}
    ssl = yes
  }
  # One login process serves many clients (and the TLS of each for its whole
  # session); one is kept ready so that the first client does not wait for a
  # fork. One rather than one per core: each costs ~20 ms more at start.
  service_count = 0
  process_min_avail = 1
  process_limit = 16
  client_limit = 2000
}
`;
  };
  const masterPassdb = o.masterUser
    ? `# SASL PLAIN authzid=user authcid=master, or LOGIN user*master. pass = yes:
# the target user must also exist in the passdb below.
passdb {
  driver = passwd-file
  args = ${l.masterFile}
  master = yes
  pass = yes
}
`
    : '';
  return `# Generated by @mailfront/testkit for one test run. Throwaway users and keys.
instance_name = ${l.instanceName}
base_dir = ${l.runDir}
state_dir = ${l.stateDir}
log_path = ${l.logFile}
info_log_path = ${l.logFile}
debug_log_path = ${l.logFile}
log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "
protocols = ${o.protocols.join(' ')}
listen = 127.0.0.1
hostname = localhost

ssl = yes
ssl_cert = <${l.certFile}
ssl_key = <${l.keyFile}
ssl_min_protocol = TLSv1.2
# mailfront may log in over plaintext on loopback.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
auth_verbose = yes
# 2.3 still answers a failure only on its 500 ms flush timer, so a wrong
# password costs up to 0.5 s instead of 2 s.
auth_failure_delay = 0
login_trusted_networks = ${o.trustedNetworks}
# Default elements plus the ports (%b remote, %a local); for a trusted client
# that sent ID x-originating-ip/-port, rip/rport are the forwarded ones.
login_log_format_elements = user=<%u> method=%m rip=%r rport=%b lip=%l lport=%a mpid=%e %c session=<%{session}>
${o.debug ? 'auth_debug = yes\nmail_debug = yes\nverbose_ssl = yes\n' : ''}
mail_location = maildir:~/Maildir
# Anvil counts per user and (forwarded) address: a proxy on loopback is one address.
mail_max_userip_connections = 10000
default_process_limit = ${MAIL_PROCESS_LIMIT}
default_client_limit = 5000

submission_relay_host = ${relay.host}
submission_relay_port = ${relay.port}
submission_relay_trusted = yes
submission_relay_ssl = no

${masterPassdb}passdb {
  driver = passwd-file
  args = ${l.passwdFile}
}
userdb {
  driver = passwd-file
  args = ${l.passwdFile}
}

${o.protocols.map(loginService).join('\n')}
${
  o.authPenalty
    ? ''
    : `# No per-IP auth penalty (doc: "Authentication penalty"): the auth process
# cannot reach anvil's penalty socket and treats penalties as disabled.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`
}${o.extraConfig ? `\n# extraConfig\n${o.extraConfig}\n` : ''}`;
}

function lookupNobody(): { uid: number; gid: number } {
  const field = (file: string, name: string): number | undefined => {
    try {
      const row = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .find((r) => r.startsWith(`${name}:`));
      return row === undefined ? undefined : Number(row.split(':')[2]);
    } catch {
      return undefined;
    }
  };
  return { uid: field('/etc/passwd', 'nobody') ?? 65534, gid: field('/etc/group', 'nogroup') ?? 65534 };
}

class DovecotInstance implements Dovecot {
  readonly host = '127.0.0.1' as const;
  readonly caFile: string;
  readonly caPem: string;
  readonly baseDir: string;
  readonly configFile: string;
  readonly logFile: string;
  lastStartMs = 0;
  private readonly proc = new DaemonProcess('master');
  private readonly ops = new SerialQueue();

  constructor(
    private readonly layout: Layout,
    readonly ports: DovecotPorts,
    private readonly startTimeoutMs: number,
  ) {
    this.caFile = layout.caFile;
    this.caPem = layout.caPem;
    this.baseDir = layout.base;
    this.configFile = layout.configFile;
    this.logFile = layout.logFile;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  start(): Promise<void> {
    return this.ops.run(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.ops.run(() => this.doStop());
  }

  kill(): Promise<void> {
    return this.ops.run(() => this.doKill());
  }

  private async doStart(): Promise<void> {
    if (this.proc.running) return;
    const started = Date.now();
    fs.writeFileSync(this.layout.stderrFile, '');
    // -F: stay in the foreground as our child (see DaemonProcess).
    this.proc.spawn(DOVECOT_BIN, ['-F', '-c', this.configFile], this.layout.stderrFile);
    exitRegistry(DOVECOT).running.add(this);
    const pid = this.proc.lastPid;
    if (pid !== undefined) startSessionWatchdog(DOVECOT, pid, this.baseDir);

    const failure = await this.proc.startFailure(this.waitUntilGreeting(started + this.startTimeoutMs));
    if (failure === undefined) {
      this.lastStartMs = Date.now() - started;
      return;
    }
    await this.doKill();
    const log = await this.readLog();
    const inUse = /Address already in use/.test(log) || /Address already in use/.test(this.readStderr());
    throw new DovecotStartError(await this.diagnose(failure, log), inUse ? 'EADDRINUSE' : 'START_FAILED');
  }

  /** Every listener accepts a connection and sends its protocol's greeting (TLS ones after a verified handshake). */
  private async waitUntilGreeting(deadline: number): Promise<void> {
    const probes: Array<Promise<void>> = [];
    for (const [protocol, l] of Object.entries(LISTENERS) as Array<[DovecotProtocol, ProtocolListeners]>) {
      for (const key of [l.plain, l.tls]) {
        const port = this.ports[key];
        if (port !== undefined) probes.push(this.probe(protocol, key, port, key === l.tls, l.greeting, deadline));
      }
    }
    await Promise.all(probes);
  }

  private async probe(
    protocol: DovecotProtocol,
    listener: string,
    port: number,
    useTls: boolean,
    greeting: RegExp,
    deadline: number,
  ): Promise<void> {
    let last = '';
    while (this.proc.running) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${protocol} listener ${listener} (port ${port}) did not greet in time: ${last}`);
      try {
        const c = await rawConnect({ port, tls: useTls, ca: this.caPem, connectTimeoutMs: Math.min(left, 2000) });
        try {
          const line = await c.readLine(Math.min(deadline - Date.now(), 2000));
          if (!greeting.test(line)) throw new Error(`unexpected greeting ${JSON.stringify(line)}`);
          return;
        } finally {
          c.socket.destroy();
        }
      } catch (err) {
        last = (err as Error).message;
        // A refused connection means "not yet"; TLS or greeting errors are real but may be transient at start.
        await sleep(PROBE_RETRY_MS);
      }
    }
    throw new Error(`master exited before ${protocol} listener ${listener} greeted`);
  }

  private async doStop(): Promise<void> {
    const pid = this.proc.lastPid;
    if (pid === undefined) return;
    if (!this.proc.running) {
      // Already stopped, killed, or died: make sure nothing of it is left.
      await this.waitSessionGone(pid);
      return;
    }
    try {
      await execFileAsync(DOVEADM_BIN, ['-c', this.configFile, 'stop'], { timeout: STOP_TIMEOUT_MS });
    } catch {
      // doveadm could not reach it (e.g. master.pid missing): signal the master directly.
      signalQuietly(pid, 'SIGTERM');
    }
    // The mail, login and auth processes end within milliseconds; the master
    // then keeps only its log process for about a second more before it
    // exits. Once the log process has been alone for LOG_DRAIN_MS (it has
    // written what the others sent), end both rather than wait.
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    let logAloneSince: number | undefined;
    while (this.proc.running && Date.now() < deadline) {
      const others = sessionMembers(pid, DOVECOT_EXE_PREFIXES).filter((m) => m.pid !== pid);
      if (others.every((m) => m.name === 'log')) {
        logAloneSince ??= Date.now();
        if (Date.now() - logAloneSince >= LOG_DRAIN_MS) {
          killAll([pid, ...others.map((m) => m.pid)]);
          fs.rmSync(path.join(this.layout.runDir, 'master.pid'), { force: true });
        }
      } else {
        logAloneSince = undefined;
      }
      await Promise.race([this.proc.exited, sleep(STOP_POLL_MS)]);
    }
    if (this.proc.running) {
      await this.doKill();
      return;
    }
    // Nothing may outlive stop().
    await this.waitSessionGone(pid);
  }

  private async doKill(): Promise<void> {
    const pid = this.proc.lastPid;
    if (pid === undefined) return;
    if (this.proc.running) {
      killSession(pid, true, DOVECOT_EXE_PREFIXES);
      await settlesWithin(this.proc.exited, KILL_WAIT_MS);
      fs.rmSync(path.join(this.layout.runDir, 'master.pid'), { force: true });
    }
    await this.waitSessionGone(pid);
  }

  /** Once nothing of the master's session is left, the exit hook may forget this instance. */
  private async waitSessionGone(sid: number): Promise<void> {
    await waitSessionGone(sid, DOVECOT_EXE_PREFIXES, 'Dovecot', KILL_WAIT_MS);
    if (!this.proc.running) exitRegistry(DOVECOT).running.delete(this);
  }

  /** For the exit hook: synchronous SIGKILL of the master and its session. */
  killNow(): void {
    const pid = this.proc.lastPid;
    if (pid !== undefined) killSession(pid, this.proc.running, DOVECOT_EXE_PREFIXES);
  }

  readLog(): Promise<string> {
    return readLogFile(this.logFile);
  }

  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string> {
    return waitForLogLine(this.logFile, pattern, timeoutMs);
  }

  private readStderr(): string {
    try {
      return fs.readFileSync(this.layout.stderrFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** The error text for a failed start: what failed, Dovecot's stderr, the log's tail and doveconf's verdict. */
  private async diagnose(reason: string, log: string): Promise<string> {
    let doveconf: string;
    try {
      const { stdout, stderr } = await execFileAsync(DOVECOT_BIN, ['-c', this.configFile, '-n'], { timeout: 5_000 });
      doveconf = `${stderr}${stderr ? '' : '(no errors or warnings)\n'}${tail(stdout, 200)}`;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      doveconf = `${e.stderr || e.message}\n${tail(e.stdout ?? '', 200)}`;
    }
    return [
      `Dovecot did not start: ${reason}`,
      `config: ${this.configFile}`,
      `--- dovecot stderr ---`,
      this.readStderr().trim() || '(empty)',
      ...logTailSection(this.logFile, log),
      `--- dovecot -c ${this.configFile} -n ---`,
      doveconf.trim(),
    ].join('\n');
  }
}
