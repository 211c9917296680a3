/**
 * Processes a bench or load run starts, and the promise that none of them
 * outlives it: cleanups run in reverse order on normal exit, on errors and on
 * SIGINT/SIGTERM/SIGHUP; process groups left behind get SIGKILL from the
 * 'exit' hook, and from a detached watchdog shell if this process itself is
 * killed with SIGKILL. Shared by scripts/bench/run.mjs and scripts/load/idle.mjs.
 */
import { fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';

const cleanups = [];
let cleaning;
/** Process groups to SIGKILL if we exit without cleanup() having run. */
const groups = new Set();

export function onCleanup(fn) {
  cleanups.push(fn);
}

/** Runs every registered cleanup once, last registered first; errors are reported, not thrown. */
export function cleanup(name = 'bench') {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        console.error(`${name}: cleanup: ${e.message}`);
      }
    }
  })();
  return cleaning;
}

/** Ctrl-C and friends stop everything, then exit 130. */
export function cleanupOnSignals(name = 'bench') {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\n${name}: ${sig}, stopping everything`);
      cleanup(name).finally(() => process.exit(130));
    });
  }
  process.on('exit', () => {
    for (const pgid of groups) killGroup(pgid, 'SIGKILL');
  });
}

export function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/**
 * Ends a detached process group if this process dies without its exit hook
 * (SIGKILL): a detached shell that polls our PID, as the testkit does for Dovecot.
 */
function watchdog(pgid) {
  const script = `while kill -0 "$1" 2>/dev/null; do [ -d "/proc/$2" ] || exit 0; sleep 1; done
kill -TERM -- "-$2" 2>/dev/null; sleep 2; kill -KILL -- "-$2" 2>/dev/null`;
  const w = spawn('/bin/sh', ['-c', script, 'bench-watchdog', String(process.pid), String(pgid)], { detached: true, stdio: 'ignore' });
  w.unref();
}

/**
 * Starts a long-running process in its own group; stop() = SIGTERM, then
 * SIGKILL after `killAfterMs` (default 5 s).
 */
export function startDetached(cmd, args, logFile, { env = process.env, killAfterMs = 5_000 } = {}) {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env });
  fs.closeSync(fd);
  groups.add(child.pid);
  watchdog(child.pid);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    killGroup(child.pid, 'SIGTERM');
    const t = setTimeout(() => killGroup(child.pid, 'SIGKILL'), killAfterMs);
    await exited;
    clearTimeout(t);
    // Anything of the group still there (an nginx worker whose master died).
    killGroup(child.pid, 'SIGKILL');
    groups.delete(child.pid);
  };
  onCleanup(stop);
  return { pid: child.pid, child, exited, stop };
}

/** A forked Node helper that reports ready over IPC (its first message) and exits when we disconnect. */
export function forkHelper(file, args, logFile) {
  const fd = fs.openSync(logFile, 'a');
  const child = fork(file, args, { stdio: ['ignore', fd, fd, 'ipc'] });
  fs.closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before it was ready: see ${logFile}`)));
  });
  // The load client never reports ready; nobody may be waiting when a helper exits.
  ready.catch(() => undefined);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  onCleanup(stop);
  return { pid: child.pid, child, ready, stop };
}
