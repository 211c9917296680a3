/**
 * What keeps a test's daemons (Dovecot, slapd, PostgreSQL) from outliving it:
 * an exit hook on the real process, temp dirs it removes, and a detached
 * watchdog shell for when the test process dies without running its hooks.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as vm from 'node:vm';
import { makeTempDir } from './tmp';

export interface DaemonKind {
  /** Names its temp dirs (`mailfront-<name>-XXXXXX`), its watchdog and its exit registry. */
  readonly name: string;
  /** When this environment variable is set, temp dirs are kept after the run for a post-mortem. */
  readonly keepEnv: string;
}

/** What the exit hook cleans up for one kind of daemon. */
export interface ExitRegistry {
  /** Instances whose processes may still exist. */
  running: Set<{ killNow(): void }>;
  /** Temp dirs, removed at exit unless the kind's keepEnv is set. */
  tempDirs: Set<string>;
}

/**
 * The real process object. Inside a jest test file the global `process` is a
 * per-file copy whose 'exit' listeners never run; vm.runInThisContext
 * evaluates in Node's own context, where `process` is the real one.
 */
function hostProcess(): NodeJS.Process {
  try {
    return vm.runInThisContext('process') as NodeJS.Process;
  } catch {
    return process;
  }
}

/**
 * One value per real process, made on first use: shared by every copy of this
 * module in the process (jest loads it afresh for each test file).
 */
export function processWide<T>(key: string, create: (host: NodeJS.Process) => T): T {
  const host = hostProcess();
  const slot = host as unknown as Record<symbol, T | undefined>;
  return (slot[Symbol.for(`@mailfront/testkit/${key}`)] ??= create(host));
}

/** The kind's registry, whose one 'exit' listener on the real process serves every test file. */
export function exitRegistry(kind: DaemonKind): ExitRegistry {
  return processWide(`${kind.name}-exit-registry`, (host) => {
    const registry: ExitRegistry = { running: new Set(), tempDirs: new Set() };
    // Synchronous by necessity: nothing async runs in 'exit'.
    host.on('exit', () => {
      for (const d of registry.running) d.killNow();
      if (host.env[kind.keepEnv]) return;
      for (const dir of registry.tempDirs) {
        try {
          fs.rmSync(dir, { recursive: true, force: true });
        } catch {
          // best effort at exit
        }
      }
    });
    return registry;
  });
}

/** A fresh `mailfront-<name>-<infix>XXXXXX` temp dir that the exit hook removes. */
export async function makeDaemonTempDir(kind: DaemonKind, infix = ''): Promise<string> {
  const tmp = await makeTempDir(`mailfront-${kind.name}-${infix}`);
  exitRegistry(kind).tempDirs.add(tmp.path);
  return tmp.path;
}

/**
 * The watchdog's last line: remove its temp dir, unless keepEnv is set; only
 * ever a testkit temp dir of this kind, whatever the environment holds.
 */
function removeDirLine(kind: DaemonKind): string {
  return `case "$WATCHDOG_DIR" in */mailfront-${kind.name}-*) [ -n "$${kind.keepEnv}" ] || rm -rf "$WATCHDOG_DIR" ;; esac\n`;
}

/**
 * Kills a daemon that leads its own session if this Node process disappears
 * without running its exit hook (a jest worker killed with SIGKILL): a
 * detached shell that polls our PID, started once per start of the daemon. It
 * ends by itself once the leader is gone. PID 1 here does not reap orphans, so
 * a dead leader may linger as a zombie: that counts as gone.
 */
const SESSION_WATCHDOG = `
node=$1; master=$2
while kill -0 "$node" 2>/dev/null; do
  [ -d "/proc/$master" ] || exit 0
  grep -q '^State:[[:space:]]*Z' "/proc/$master/status" 2>/dev/null && exit 0
  sleep 1
done
pkill -KILL -s "$master"
`;

export function startSessionWatchdog(kind: DaemonKind, leaderPid: number, baseDir: string): void {
  spawnWatchdog(kind, SESSION_WATCHDOG, [String(leaderPid)], baseDir);
}

/**
 * The same for a daemon that may be stopped and started again, found by the
 * PID the latest start wrote to <dir>/child.pid: one shell per instance for
 * its whole life. When our PID goes, it kills that PID (only if its
 * executable is `exe`) and removes the temp dir, even when the test had
 * stopped the daemon already. It ends by itself once the exit hook has
 * removed the directory.
 */
const PID_FILE_WATCHDOG = `
node=$1; exe=$2
while kill -0 "$node" 2>/dev/null; do
  [ -d "$WATCHDOG_DIR" ] || exit 0
  sleep 1
done
pid=$(cat "$WATCHDOG_DIR/child.pid" 2>/dev/null)
[ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe")" = "$exe" ] && kill -KILL "$pid"
`;

export function startPidFileWatchdog(kind: DaemonKind, exe: string, baseDir: string): void {
  spawnWatchdog(kind, PID_FILE_WATCHDOG, [exe], baseDir);
}

function spawnWatchdog(kind: DaemonKind, script: string, args: string[], baseDir: string): void {
  // The directory goes in the environment, not argv: `pgrep -f <configFile>` must not find the watchdog.
  const child = spawn('/bin/sh', ['-c', script + removeDirLine(kind), `mailfront-${kind.name}-watchdog`, String(process.pid), ...args], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, WATCHDOG_DIR: baseDir },
  });
  child.on('error', () => undefined);
  child.unref();
}
