/**
 * A throwaway PostgreSQL (Debian's postgresql-15) on 127.0.0.1 for tests of
 * the shared store: its own data directory, socket directory and log under a
 * fresh temp dir, a free port, a database and a password user made for the
 * test, durability switched off for speed. Nothing of /etc/postgresql or the
 * packaged cluster is used.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { DaemonProcess, DaemonStartError, LOG_TAIL_LINES, logTailSection, readLogFile, SerialQueue, settlesWithin, sleep, startOnFreePorts, tail } from './daemon';
import { exitRegistry, makeDaemonTempDir, processWide, startSessionWatchdog, type DaemonKind } from './daemon-cleanup';
import { killSession, signalQuietly, waitSessionGone } from './session-processes';

const execFileAsync = promisify(execFile);

/** MAILFRONT_POSTGRES_BIN overrides (the directory holding initdb, postgres and psql). */
const PG_BIN = process.env['MAILFRONT_POSTGRES_BIN'] ?? '/usr/lib/postgresql/15/bin';
const INITDB = path.join(PG_BIN, 'initdb');
const POSTGRES = path.join(PG_BIN, 'postgres');
const PSQL = path.join(PG_BIN, 'psql');
/** PostgreSQL's processes are recognised by their executable, so that a reused PID is never killed. */
const PG_EXE_PREFIXES = [PG_BIN, '/usr/lib/postgresql/'];

const POSTGRES_KIND: DaemonKind = { name: 'postgres', keepEnv: 'MAILFRONT_KEEP_POSTGRES' };

const DEFAULT_START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 3_000;
const READY_POLL_MS = 5;
/** The superuser initdb makes; reachable only over the unix socket (trust), never over TCP. */
const SUPERUSER = 'postgres';
const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresOptions {
  /** The database made for the test, owned by `user`. Default 'mailfront'. */
  database?: string;
  /** A LOGIN role with a random password (scram-sha-256 over TCP), not a superuser. Default 'mailfront'. */
  user?: string;
  /** Deadline for the server to accept connections, per start; default 15 000 ms. */
  startTimeoutMs?: number;
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string | number>;
}

export interface Postgres {
  host: '127.0.0.1';
  port: number;
  database: string;
  user: string;
  password: string;
  /** A file holding `password` (mode 0600): what a mailfront config points at. */
  passwordFile: string;
  /** postgres://user@127.0.0.1:port/database — without the password, as a config holds it. */
  url: string;
  /** The temp dir holding everything below; removed at exit unless MAILFRONT_KEEP_POSTGRES is set. */
  baseDir: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  /** The postmaster's PID while it runs, else undefined. */
  readonly pid: number | undefined;
  /** How long the last start() took until the server accepted connections, in ms. */
  readonly lastStartMs: number;
  /** How long startPostgres took in all (data directory, start, role and database), in ms. */
  readonly setupMs: number;
  readLog(): Promise<string>;
  /**
   * Another empty database owned by `user` (a fresh one per test keeps tests
   * apart without a server each); returns its name and URL (without password).
   */
  createDatabase(name?: string): Promise<{ database: string; url: string }>;
  /**
   * Runs SQL as the superuser over the unix socket with psql; returns its
   * unaligned output. Each string of a list is its own transaction (CREATE
   * DATABASE cannot share one).
   */
  psql(sql: string | string[], database?: string): Promise<string>;
  /** Fast shutdown (SIGINT: sessions are ended, then a checkpoint); waits until every process is gone. Idempotent. */
  stop(): Promise<void>;
  /**
   * SIGKILL to the postmaster and every backend (a crash, for fault tests);
   * idempotent. With synchronous_commit off, commits of the last few hundred
   * ms are lost in a crash: run psql('CHECKPOINT') first to keep them.
   */
  kill(): Promise<void>;
  /** Starts again on the same port and data directory after stop() or kill(). */
  start(): Promise<void>;
}

export class PostgresStartError extends DaemonStartError {
  override readonly name = 'PostgresStartError';
}

/**
 * Start a PostgreSQL for one test file. initdb runs once per process into a
 * template that later calls copy (initdb costs about a second, a copy a few
 * tens of milliseconds). Runs the server as the `postgres` system user:
 * PostgreSQL refuses to run as root.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  const began = Date.now();
  const database = opts.database ?? 'mailfront';
  const user = opts.user ?? 'mailfront';
  for (const [what, v] of [['database', database], ['user', user]] as const) {
    if (!NAME.test(v) || v === SUPERUSER) throw new TypeError(`startPostgres: unusable ${what} name ${JSON.stringify(v)}`);
  }
  for (const bin of [INITDB, POSTGRES, PSQL]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: install Debian's postgresql (15), or set MAILFRONT_POSTGRES_BIN`);
  }
  const owner = systemUser('postgres');
  if (process.getuid?.() !== 0 && process.getuid?.() !== owner.uid) {
    throw new Error('startPostgres needs root (to run the server as the postgres user) or to run as postgres');
  }

  const base = await makeDaemonTempDir(POSTGRES_KIND);
  const layout: PgLayout = {
    base,
    dataDir: path.join(base, 'data'),
    socketDir: path.join(base, 'run'),
    logFile: path.join(base, 'postgres.log'),
    passwordFile: path.join(base, 'password'),
    owner,
  };
  fs.mkdirSync(layout.socketDir, { mode: 0o700 });
  fs.chownSync(base, owner.uid, owner.gid);
  fs.chownSync(layout.socketDir, owner.uid, owner.gid);
  fs.writeFileSync(layout.logFile, '');
  fs.chownSync(layout.logFile, owner.uid, owner.gid);
  await copyTemplate(layout);

  // Hex: no quoting needed in SQL, none in a URL.
  const password = randomBytes(16).toString('hex');
  fs.writeFileSync(layout.passwordFile, `${password}\n`, { mode: 0o600 });

  return startOnFreePorts(1, layout.logFile, async ([port]) => {
    const pg = new PostgresInstance(layout, port!, database, user, password, opts);
    try {
      await pg.start();
      await pg.psql([`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`, `CREATE DATABASE ${database} OWNER ${user}`], 'postgres');
    } catch (err) {
      await pg.kill().catch(() => undefined);
      throw err;
    }
    pg.setupMs = Date.now() - began;
    return pg;
  });
}

interface PgLayout {
  base: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  passwordFile: string;
  owner: { uid: number; gid: number };
}

function systemUser(name: string): { uid: number; gid: number } {
  const row = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((r) => r.startsWith(`${name}:`));
  if (row === undefined) throw new Error(`startPostgres: no system user ${name} (it comes with Debian's postgresql package)`);
  const f = row.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

// ---------------------------------------------------------------------------
// Template data directory

/**
 * One initdb per process. The template lives in its own temp dir, removed at
 * exit like the instances'. A failed initdb is not cached.
 */
function templateDir(owner: { uid: number; gid: number }): Promise<string> {
  const cache = processWide<{ template?: Promise<string> | undefined }>('postgres-template', () => ({}));
  cache.template ??= (async () => {
    const dir = await makeDaemonTempDir(POSTGRES_KIND, 'template-');
    fs.chownSync(dir, owner.uid, owner.gid);
    const data = path.join(dir, 'data');
    try {
      // --no-sync: a crash of the test machine may lose the template; nobody cares.
      // C locale: byte order, as SQLite sorts; UTF8 as mailfront's names are.
      // Local (socket) connections are trusted for the superuser's setup; TCP needs a password.
      await execFileAsync(
        INITDB,
        ['-D', data, '--no-sync', '--no-instructions', '-U', SUPERUSER, '-E', 'UTF8', '--locale=C', '--auth-local=trust', '--auth-host=scram-sha-256'],
        { uid: owner.uid, gid: owner.gid, env: pgEnv(), timeout: 60_000 },
      );
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`initdb failed: ${e.message}\n${tail(`${e.stdout ?? ''}${e.stderr ?? ''}`, LOG_TAIL_LINES)}`);
    }
    return data;
  })();
  cache.template.catch(() => (cache.template = undefined));
  return cache.template;
}

async function copyTemplate(layout: PgLayout): Promise<void> {
  const template = await templateDir(layout.owner);
  // cp -a keeps owner and the 0700 mode PostgreSQL insists on.
  await execFileAsync('cp', ['-a', template, layout.dataDir], { timeout: 60_000 });
}

/** A clean environment: no PG* variables or locale of the caller leak into the server. */
function pgEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' };
}

class PostgresInstance implements Postgres {
  readonly host = '127.0.0.1' as const;
  readonly url: string;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  readonly passwordFile: string;
  lastStartMs = 0;
  setupMs = 0;
  private readonly proc = new DaemonProcess('postmaster');
  private readonly ops = new SerialQueue();
  private databases = 0;

  constructor(
    private readonly layout: PgLayout,
    readonly port: number,
    readonly database: string,
    readonly user: string,
    readonly password: string,
    private readonly opts: PostgresOptions,
  ) {
    this.baseDir = layout.base;
    this.dataDir = layout.dataDir;
    this.socketDir = layout.socketDir;
    this.logFile = layout.logFile;
    this.passwordFile = layout.passwordFile;
    this.url = this.urlOf(database);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private urlOf(database: string): string {
    return `postgres://${this.user}@${this.host}:${this.port}/${database}`;
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

  async createDatabase(name?: string): Promise<{ database: string; url: string }> {
    const database = name ?? `${this.database}_${++this.databases}`;
    if (!NAME.test(database)) throw new TypeError(`createDatabase: unusable name ${JSON.stringify(database)}`);
    await this.psql(`CREATE DATABASE ${database} OWNER ${this.user}`, 'postgres');
    return { database, url: this.urlOf(database) };
  }

  async psql(sql: string | string[], database = this.database): Promise<string> {
    const commands = (Array.isArray(sql) ? sql : [sql]).flatMap((c) => ['-c', c]);
    try {
      const { stdout } = await execFileAsync(
        PSQL,
        ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.socketDir, '-p', String(this.port), '-U', SUPERUSER, '-d', database, ...commands],
        { env: pgEnv(), timeout: 30_000 },
      );
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`psql failed: ${(e.stderr || e.message).trim()}`);
    }
  }

  private settings(): string[] {
    const settings: Record<string, string | number> = {
      listen_addresses: this.host,
      port: this.port,
      unix_socket_directories: this.socketDir,
      // Durability off: a test database that a crash loses is simply made again.
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      // Small and quiet: a test server, often several at once on two cores.
      shared_buffers: '16MB',
      max_connections: 100,
      autovacuum: 'off',
      logging_collector: 'off',
      log_line_prefix: '%m [%p] %q%u@%d ',
      log_timezone: 'UTC',
      timezone: 'UTC',
      ...this.opts.settings,
    };
    return Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  }

  private async doStart(): Promise<void> {
    if (this.proc.running) return;
    const started = Date.now();
    const { owner } = this.layout;
    // The postmaster itself (not via pg_ctl), as the postgres user: PostgreSQL refuses to run as root.
    this.proc.spawn(POSTGRES, ['-D', this.dataDir, ...this.settings()], this.logFile, { uid: owner.uid, gid: owner.gid, env: pgEnv() });
    exitRegistry(POSTGRES_KIND).running.add(this);
    const pid = this.proc.lastPid;
    if (pid !== undefined) startSessionWatchdog(POSTGRES_KIND, pid, this.baseDir);

    const failure = await this.proc.startFailure(this.waitUntilReady(started + (this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS)));
    if (failure === undefined) {
      this.lastStartMs = Date.now() - started;
      return;
    }
    await this.doKill();
    const log = await this.readLog();
    const inUse = /could not bind|Address already in use/.test(log);
    throw new PostgresStartError(
      [`PostgreSQL did not start: ${failure}`, `data: ${this.dataDir}`, ...logTailSection(this.logFile, log)].join('\n'),
      inUse ? 'EADDRINUSE' : 'START_FAILED',
    );
  }

  /**
   * The postmaster writes its status as the 8th line of postmaster.pid;
   * "ready" means it accepts connections (what `pg_ctl -w` waits for).
   */
  private async waitUntilReady(deadline: number): Promise<void> {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    while (this.proc.running) {
      try {
        const lines = fs.readFileSync(pidFile, 'utf8').split('\n');
        if (Number(lines[0]) === this.proc.lastPid && lines[7]?.trim() === 'ready') return;
      } catch {
        // not written yet
      }
      if (Date.now() > deadline) throw new Error(`not accepting connections within ${this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms`);
      await sleep(READY_POLL_MS);
    }
    throw new Error('postmaster exited');
  }

  private async doStop(): Promise<void> {
    const pid = this.proc.lastPid;
    if (pid === undefined) return;
    if (this.proc.running) {
      signalQuietly(pid, 'SIGINT'); // fast shutdown
      if (!(await settlesWithin(this.proc.exited, STOP_TIMEOUT_MS))) {
        await this.doKill();
        return;
      }
    }
    await this.waitSessionGone(pid);
  }

  private async doKill(): Promise<void> {
    const pid = this.proc.lastPid;
    if (pid === undefined) return;
    if (this.proc.running) {
      killSession(pid, true, PG_EXE_PREFIXES);
      await settlesWithin(this.proc.exited, KILL_WAIT_MS);
    }
    await this.waitSessionGone(pid);
    // Every process is gone: the lock files of the crash only stand in the way of the next start.
    fs.rmSync(path.join(this.dataDir, 'postmaster.pid'), { force: true });
    fs.rmSync(path.join(this.socketDir, `.s.PGSQL.${this.port}.lock`), { force: true });
  }

  /** Once nothing of the postmaster's session is left, the exit hook may forget this instance. */
  private async waitSessionGone(sid: number): Promise<void> {
    await waitSessionGone(sid, PG_EXE_PREFIXES, 'PostgreSQL', KILL_WAIT_MS);
    if (!this.proc.running) exitRegistry(POSTGRES_KIND).running.delete(this);
  }

  /** For the exit hook: synchronous SIGKILL of the postmaster and its session. */
  killNow(): void {
    const pid = this.proc.lastPid;
    if (pid !== undefined) killSession(pid, this.proc.running, PG_EXE_PREFIXES);
  }

  readLog(): Promise<string> {
    return readLogFile(this.logFile);
  }
}
