/**
 * A real OpenLDAP slapd on 127.0.0.1 for integration tests: its own
 * slapd.conf, mdb database, log, CA and free ports under a fresh temp dir,
 * so that several run side by side and none reads /etc/ldap/slapd.d.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { DaemonProcess, DaemonStartError, logTailSection, readLogFile, SerialQueue, settlesWithin, sleep, startOnFreePorts, waitForLogLine } from './daemon';
import { exitRegistry, makeDaemonTempDir, startPidFileWatchdog, type DaemonKind } from './daemon-cleanup';
import { recordSecrets } from './secrets-audit';
import { signalQuietly } from './session-processes';
import { testTls } from './test-tls';

const execFileAsync = promisify(execFile);

/** Debian's paths; MAILFRONT_SLAPD_BIN overrides (slapadd and slaptest are links to it; ldap-utils are looked for in /usr/bin). */
const SLAPD_BIN = process.env['MAILFRONT_SLAPD_BIN'] ?? '/usr/sbin/slapd';
const SLAPADD_BIN = path.join(path.dirname(SLAPD_BIN), 'slapadd');
const SLAPTEST_BIN = path.join(path.dirname(SLAPD_BIN), 'slaptest');
const LDAPMODIFY_BIN = '/usr/bin/ldapmodify';
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';

const SLAPD: DaemonKind = { name: 'slapd', keepEnv: 'MAILFRONT_KEEP_SLAPD' };

const DEFAULT_START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 3_000;
const PROBE_RETRY_MS = 15;
/** slapd's `stats` log level: one line per connection, operation and result (what binds() counts). */
const LOGLEVEL_STATS = 256;

export interface SlapdUser {
  /** The RDN value: the entry is uid=<uid>,ou=people,<suffix>. */
  uid: string;
  /** Stored as {SSHA}; an empty string stores no userPassword at all. */
  password: string;
  /** Default `<uid>@example.org`; [] for none. */
  mail?: string | string[];
  /** misc.schema's inetLocalMailRecipient mailHost; omitted when undefined. */
  mailHost?: string;
  /** More attributes, as they are (objectClass inetOrgPerson + inetLocalMailRecipient allow many). */
  extra?: Record<string, string | string[]>;
}

export interface SlapdOptions {
  users: SlapdUser[];
  /** Default dc=example,dc=org. */
  suffix?: string;
  /**
   * Also serve ldaps:// on a second port and allow StartTLS on the plain
   * one, with a certificate for localhost and 127.0.0.1 from a test CA.
   */
  tls?: boolean;
  /** Deadline for the listeners to answer, per start; default 10 000 ms. */
  startTimeoutMs?: number;
  /** Appended to the database section of slapd.conf. */
  extraConfig?: string;
}

export interface Slapd {
  host: '127.0.0.1';
  /** ldap:// (StartTLS available with `tls`). */
  port: number;
  url: string;
  /** ldaps://, with `tls`. */
  tlsPort: number | undefined;
  tlsUrl: string | undefined;
  suffix: string;
  /** ou=people,<suffix>: where users are. */
  peopleDn: string;
  rootDn: string;
  rootPassword: string;
  /** cn=mailfront,<suffix>: may search and read every entry (not passwords). */
  serviceDn: string;
  servicePassword: string;
  /** A 0600 file holding servicePassword, for ldap.bindPasswordFile. */
  servicePasswordFile: string;
  /** With `tls`: the CA that signed slapd's certificate. */
  caFile: string | undefined;
  caPem: string | undefined;
  baseDir: string;
  configFile: string;
  logFile: string;
  /** slapd's PID while it runs (as written to its pidfile), else undefined. */
  readonly pid: number | undefined;
  userDn(uid: string): string;
  readLog(): Promise<string>;
  /** Resolves with the first log line matching `pattern`; rejects after timeoutMs (default 5 000). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Simple binds logged so far, to one DN (case-insensitive), or to any DN but the empty one. */
  binds(dn?: string): Promise<number>;
  /** Searches logged so far. */
  searches(): Promise<number>;
  /** ldapmodify as the root DN (LDIF with changetype lines). */
  modify(ldif: string): Promise<void>;
  /** SIGTERM by the PID in slapd's pidfile, then waits until it is gone (SIGKILL after 10 s); idempotent. */
  stop(): Promise<void>;
  /** SIGKILL; idempotent. */
  kill(): Promise<void>;
  /** SIGSTOP: connections are accepted by the kernel but nothing is answered (a hung directory). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts again on the same ports, config and data after stop() or kill(). */
  start(): Promise<void>;
}

export class SlapdStartError extends DaemonStartError {
  override readonly name = 'SlapdStartError';
}

/** RFC 2307 {SSHA}: base64(SHA-1(password ‖ salt) ‖ salt), which slapd checks without any module. */
export function sshaPassword(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

export async function startSlapd(opts: SlapdOptions): Promise<Slapd> {
  for (const bin of [SLAPD_BIN, SLAPADD_BIN]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: install Debian's slapd and ldap-utils`);
  }
  const suffix = opts.suffix ?? 'dc=example,dc=org';
  if (!/^dc=[a-z0-9-]+(,dc=[a-z0-9-]+)*$/i.test(suffix)) throw new TypeError(`startSlapd: suffix must be dc=…,dc=…, got ${suffix}`);
  const uids = new Set<string>();
  for (const u of opts.users) {
    if (uids.has(u.uid)) throw new TypeError(`startSlapd: duplicate uid ${u.uid}`);
    uids.add(u.uid);
  }
  const base = await makeDaemonTempDir(SLAPD);
  // One watchdog for the instance's whole life: slapd may be stopped and started again.
  startPidFileWatchdog(SLAPD, fs.realpathSync(SLAPD_BIN), base);
  const layout = await writeFixedFiles(base, suffix, opts);
  return startOnFreePorts(opts.tls ? 2 : 1, layout.logFile, async ([port, tlsPort]) => {
    const slapd = new SlapdInstance(layout, port!, tlsPort, opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    await slapd.start();
    return slapd;
  });
}

interface Layout {
  base: string;
  suffix: string;
  dbDir: string;
  configFile: string;
  logFile: string;
  pidFile: string;
  rootDn: string;
  rootPassword: string;
  serviceDn: string;
  servicePassword: string;
  servicePasswordFile: string;
  caFile: string | undefined;
  caPem: string | undefined;
}

/** An LDIF line; every value base64-encoded (RFC 2849 `::`), so no value can break the file. */
function ldifLine(attr: string, value: string): string {
  return `${attr}:: ${Buffer.from(value, 'utf8').toString('base64')}\n`;
}

function entryLdif(dn: string, attrs: Array<[string, string]>): string {
  return ldifLine('dn', dn) + attrs.map(([a, v]) => ldifLine(a, v)).join('') + '\n';
}

function usersLdif(suffix: string, people: string, serviceDn: string, servicePassword: string, users: SlapdUser[]): string {
  const dc = /^dc=([^,]+)/i.exec(suffix)![1]!;
  let out = entryLdif(suffix, [
    ['objectClass', 'dcObject'],
    ['objectClass', 'organization'],
    ['dc', dc],
    ['o', dc],
  ]);
  out += entryLdif(people, [
    ['objectClass', 'organizationalUnit'],
    ['ou', 'people'],
  ]);
  out += entryLdif(serviceDn, [
    ['objectClass', 'applicationProcess'],
    ['objectClass', 'simpleSecurityObject'],
    ['cn', 'mailfront'],
    ['userPassword', sshaPassword(servicePassword)],
  ]);
  for (const u of users) {
    const attrs: Array<[string, string]> = [
      ['objectClass', 'inetOrgPerson'],
      ['objectClass', 'inetLocalMailRecipient'],
      ['uid', u.uid],
      ['cn', u.uid],
      ['sn', u.uid],
    ];
    const mails = u.mail === undefined ? [`${u.uid}@example.org`] : Array.isArray(u.mail) ? u.mail : [u.mail];
    for (const m of mails) attrs.push(['mail', m]);
    if (u.mailHost !== undefined) attrs.push(['mailHost', u.mailHost]);
    if (u.password !== '') attrs.push(['userPassword', sshaPassword(u.password)]);
    for (const [a, v] of Object.entries(u.extra ?? {})) for (const x of Array.isArray(v) ? v : [v]) attrs.push([a, x]);
    out += entryLdif(`uid=${escapeRdnValue(u.uid)},${people}`, attrs);
  }
  return out;
}

/** RFC 4514 §2.4 for the test's own DNs. */
function escapeRdnValue(v: string): string {
  return v
    .replace(/[\\"+,;<>=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ')
    .replace(/[\u0000-\u001f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

async function writeFixedFiles(base: string, suffix: string, opts: SlapdOptions): Promise<Layout> {
  const layout: Layout = {
    base,
    suffix,
    dbDir: path.join(base, 'db'),
    configFile: path.join(base, 'slapd.conf'),
    logFile: path.join(base, 'slapd.log'),
    pidFile: path.join(base, 'slapd.pid'),
    rootDn: `cn=admin,${suffix}`,
    rootPassword: randomBytes(12).toString('base64url'),
    serviceDn: `cn=mailfront,${suffix}`,
    servicePassword: randomBytes(12).toString('base64url'),
    servicePasswordFile: path.join(base, 'service.pw'),
    caFile: undefined,
    caPem: undefined,
  };
  recordSecrets([
    ...opts.users.map((u) => ({ name: u.uid, password: u.password })),
    { name: layout.serviceDn, password: layout.servicePassword },
  ]);
  fs.mkdirSync(layout.dbDir, { mode: 0o700 });
  fs.writeFileSync(layout.servicePasswordFile, `${layout.servicePassword}\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(base, 'root.pw'), layout.rootPassword, { mode: 0o600 });
  let tlsLines = '';
  if (opts.tls) {
    const pair = await testTls('mailfront testkit LDAP CA');
    layout.caFile = path.join(base, 'ca.pem');
    layout.caPem = pair.ca.cert;
    fs.writeFileSync(layout.caFile, pair.ca.cert);
    fs.writeFileSync(path.join(base, 'cert.pem'), pair.leaf.cert);
    fs.writeFileSync(path.join(base, 'key.pem'), pair.leaf.key, { mode: 0o600 });
    tlsLines = `TLSCACertificateFile ${layout.caFile}
TLSCertificateFile ${path.join(base, 'cert.pem')}
TLSCertificateKeyFile ${path.join(base, 'key.pem')}
TLSProtocolMin 3.3
`;
  }
  const people = `ou=people,${suffix}`;
  fs.writeFileSync(
    layout.configFile,
    `# Generated by @mailfront/testkit for one test run. Throwaway users and keys.
include ${SCHEMA_DIR}/core.schema
include ${SCHEMA_DIR}/cosine.schema
include ${SCHEMA_DIR}/inetorgperson.schema
include ${SCHEMA_DIR}/misc.schema
pidfile ${layout.pidFile}
argsfile ${path.join(base, 'slapd.args')}
modulepath ${MODULE_DIR}
moduleload back_mdb
loglevel stats
${tlsLines}
database mdb
suffix "${suffix}"
rootdn "${layout.rootDn}"
rootpw ${layout.rootPassword}
directory ${layout.dbDir}
maxsize 67108864
# Passwords: only to authenticate with; the service account cannot read them.
access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
# Entries: the service account searches and reads them, users read their own.
access to *
  by dn.exact="${layout.serviceDn}" read
  by self read
  by * none
${opts.extraConfig ?? ''}
`,
  );
  // Loaded offline before the first start: no network, no ACLs in the way.
  const ldif = path.join(base, 'init.ldif');
  fs.writeFileSync(ldif, usersLdif(suffix, people, layout.serviceDn, layout.servicePassword, opts.users), { mode: 0o600 });
  try {
    await execFileAsync(SLAPADD_BIN, ['-q', '-f', layout.configFile, '-l', ldif], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new SlapdStartError(`slapd did not start: slapadd -f ${layout.configFile} failed:\n${(e.stderr || e.message).trim()}`, 'START_FAILED');
  }
  return layout;
}

// ---------------------------------------------------------------------------
// Processes

/** Whether `pid` is a live (non-zombie) slapd: a reused PID is never signalled. */
function isSlapd(pid: number): boolean {
  try {
    if (fs.readlinkSync(`/proc/${pid}/exe`) !== fs.realpathSync(SLAPD_BIN)) return false;
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  if (isSlapd(pid)) signalQuietly(pid, sig);
}

/** An anonymous simple bind (RFC 4511 §4.2), message id 1: the smallest request every LDAP server answers. */
const ANONYMOUS_BIND = Buffer.from([0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00]);
/** A successful BindResponse to message 1: SEQUENCE { 1, [APPLICATION 1] { resultCode 0, "", "" } }. */
const BIND_OK = /^\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00/;

class SlapdInstance implements Slapd {
  readonly host = '127.0.0.1' as const;
  readonly url: string;
  readonly tlsUrl: string | undefined;
  readonly suffix: string;
  readonly peopleDn: string;
  readonly rootDn: string;
  readonly rootPassword: string;
  readonly serviceDn: string;
  readonly servicePassword: string;
  readonly servicePasswordFile: string;
  readonly caFile: string | undefined;
  readonly caPem: string | undefined;
  readonly baseDir: string;
  readonly configFile: string;
  readonly logFile: string;
  private readonly proc = new DaemonProcess('slapd');
  private readonly ops = new SerialQueue();

  constructor(
    private readonly layout: Layout,
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly startTimeoutMs: number,
  ) {
    this.url = `ldap://127.0.0.1:${port}/`;
    this.tlsUrl = tlsPort === undefined ? undefined : `ldaps://127.0.0.1:${tlsPort}/`;
    this.suffix = layout.suffix;
    this.peopleDn = `ou=people,${layout.suffix}`;
    this.rootDn = layout.rootDn;
    this.rootPassword = layout.rootPassword;
    this.serviceDn = layout.serviceDn;
    this.servicePassword = layout.servicePassword;
    this.servicePasswordFile = layout.servicePasswordFile;
    this.caFile = layout.caFile;
    this.caPem = layout.caPem;
    this.baseDir = layout.base;
    this.configFile = layout.configFile;
    this.logFile = layout.logFile;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  userDn(uid: string): string {
    return `uid=${escapeRdnValue(uid)},${this.peopleDn}`;
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

  pause(): void {
    const pid = this.proc.pid;
    if (pid !== undefined) signal(pid, 'SIGSTOP');
  }
  resume(): void {
    const pid = this.proc.pid;
    if (pid !== undefined) signal(pid, 'SIGCONT');
  }

  private async doStart(): Promise<void> {
    if (this.proc.running) return;
    const logStart = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const listen = [this.url, ...(this.tlsUrl ? [this.tlsUrl] : [])].join(' ');
    // -d: stay in the foreground as our child (see DaemonProcess) and log to stderr, which is the log file.
    this.proc.spawn(SLAPD_BIN, ['-d', String(LOGLEVEL_STATS), '-f', this.configFile, '-h', listen], this.logFile);
    exitRegistry(SLAPD).running.add(this);
    const pid = this.proc.lastPid;
    // What the watchdog kills should this process die.
    if (pid !== undefined) fs.writeFileSync(path.join(this.baseDir, 'child.pid'), `${pid}\n`);

    const deadline = Date.now() + this.startTimeoutMs;
    let failure = await this.proc.startFailure(
      Promise.all([this.probe(this.port, false, deadline), ...(this.tlsPort ? [this.probe(this.tlsPort, true, deadline)] : [])]),
    );
    if (failure === undefined) failure = await this.waitForPidFile(deadline).then(() => undefined, (err: Error) => err.message);
    if (failure === undefined) return;
    await this.doKill();
    const log = (await this.readLog()).slice(logStart);
    const inUse = /Address already in use|bind\(\d+\) failed errno=98/.test(log);
    throw new SlapdStartError(await this.diagnose(failure, log), inUse ? 'EADDRINUSE' : 'START_FAILED');
  }

  /** The listener answers an anonymous bind (through a verified TLS handshake on the ldaps port). */
  private async probe(port: number, useTls: boolean, deadline: number): Promise<void> {
    let last = '';
    while (this.proc.running) {
      if (Date.now() > deadline) throw new Error(`port ${port} did not answer an LDAP bind in time: ${last}`);
      try {
        await bindProbe(port, useTls ? this.caPem : undefined, Math.min(2_000, Math.max(1, deadline - Date.now())));
        return;
      } catch (err) {
        last = (err as Error).message;
        await sleep(PROBE_RETRY_MS);
      }
    }
    throw new Error(`slapd exited before port ${port} answered`);
  }

  /** stop() goes by the pidfile; slapd writes it after its listeners are up, but not atomically with them. */
  private async waitForPidFile(deadline: number): Promise<void> {
    while (this.readPidFile() !== this.proc.lastPid) {
      if (Date.now() > deadline) throw new Error(`${this.layout.pidFile} does not hold slapd's PID ${this.proc.lastPid}`);
      await sleep(PROBE_RETRY_MS);
    }
  }

  private readPidFile(): number | undefined {
    try {
      const n = Number(fs.readFileSync(this.layout.pidFile, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  private async doStop(): Promise<void> {
    if (!this.proc.running) return;
    // SIGCONT first: a paused slapd cannot act on SIGTERM.
    const pid = this.readPidFile() ?? this.proc.lastPid;
    if (pid !== undefined) {
      signal(pid, 'SIGCONT');
      signal(pid, 'SIGTERM');
    }
    if (!(await settlesWithin(this.proc.exited, STOP_TIMEOUT_MS))) await this.doKill();
    exitRegistry(SLAPD).running.delete(this);
  }

  private async doKill(): Promise<void> {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    signal(pid, 'SIGKILL');
    if (!(await settlesWithin(this.proc.exited, KILL_WAIT_MS))) throw new Error(`slapd ${pid} survived SIGKILL`);
    fs.rmSync(this.layout.pidFile, { force: true });
    exitRegistry(SLAPD).running.delete(this);
  }

  /** For the exit hook: synchronous SIGKILL. */
  killNow(): void {
    const pid = this.proc.pid;
    if (pid !== undefined) signal(pid, 'SIGKILL');
  }

  readLog(): Promise<string> {
    return readLogFile(this.logFile);
  }

  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string> {
    return waitForLogLine(this.logFile, pattern, timeoutMs);
  }

  async binds(dn?: string): Promise<number> {
    // conn=1003 op=0 BIND dn="uid=alice,ou=people,dc=example,dc=org" method=128
    const lines = (await this.readLog()).split('\n').filter((l) => / BIND dn=".*" method=128$/.test(l));
    // Without a DN: not counting anonymous binds (dn=""), which are the testkit's own readiness probes.
    if (dn === undefined) return lines.filter((l) => !l.endsWith(' BIND dn="" method=128')).length;
    const want = `bind dn="${dn}" method=128`.toLowerCase();
    return lines.filter((l) => l.toLowerCase().endsWith(want)).length;
  }

  async searches(): Promise<number> {
    return (await this.readLog()).split('\n').filter((l) => / SRCH base=/.test(l)).length;
  }

  modify(ldif: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const args = ['-x', '-H', this.url, '-D', this.rootDn, '-y', path.join(this.baseDir, 'root.pw')];
      const p = execFile(LDAPMODIFY_BIN, args, { timeout: 10_000 }, (err, _out, stderr) =>
        err ? reject(new Error(`ldapmodify failed: ${stderr || err.message}`)) : resolve(),
      );
      p.stdin?.end(ldif);
    });
  }

  private async diagnose(reason: string, log: string): Promise<string> {
    let slaptest: string;
    try {
      const { stdout, stderr } = await execFileAsync(SLAPTEST_BIN, ['-u', '-f', this.configFile], { timeout: 5_000 });
      slaptest = `${stdout}${stderr}`.trim() || '(config OK)';
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      slaptest = `${e.stdout ?? ''}${e.stderr || e.message}`.trim();
    }
    return [
      `slapd did not start: ${reason}`,
      `config: ${this.configFile}`,
      ...logTailSection(this.logFile, log),
      `--- slaptest -u -f ${this.configFile} ---`,
      slaptest,
    ].join('\n');
  }
}

/** One anonymous bind on a fresh connection; resolves when the server answers success. */
function bindProbe(port: number, caPem: string | undefined, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock: net.Socket =
      caPem !== undefined ? tls.connect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost' }) : net.connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error('no answer')), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    sock.once(caPem !== undefined ? 'secureConnect' : 'connect', () => sock.write(ANONYMOUS_BIND));
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 14) finish(BIND_OK.test(got.toString('latin1')) ? undefined : new Error(`unexpected answer ${got.toString('hex')}`));
    });
    sock.once('error', (e) => finish(e));
    sock.once('close', () => finish(new Error('closed')));
  });
}
