/**
 * What the testkit's real daemons (Dovecot, slapd, PostgreSQL) share in how
 * they run: the child process and its exit, start/stop/kill in call order,
 * start errors with the log's tail, retries on free ports, their log file.
 * Cleanup past the test's end is in daemon-cleanup.ts; finding a daemon's
 * processes in session-processes.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { freePorts } from './ports';

/** Tries of startOnFreePorts before the last EADDRINUSE is thrown. */
const START_ATTEMPTS = 3;
/** How much of the log a start error quotes. */
export const LOG_TAIL_LINES = 40;
const LOG_POLL_MS = 20;

/** A daemon that did not start: EADDRINUSE when a probed port was taken meanwhile (startOnFreePorts tries others). */
export class DaemonStartError extends Error {
  readonly code: 'EADDRINUSE' | 'START_FAILED';
  constructor(message: string, code: 'EADDRINUSE' | 'START_FAILED') {
    super(message);
    this.code = code;
  }
}

/**
 * `start(ports)` with `portCount` ports free a moment ago; again with others
 * while it fails with EADDRINUSE (another process took a probed port between
 * probe and bind), noting each retry in `logFile`.
 */
export async function startOnFreePorts<T>(portCount: number, logFile: string, start: (ports: number[]) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const ports = await freePorts(portCount);
    try {
      return await start(ports);
    } catch (err) {
      lastError = err;
      if (!(err instanceof DaemonStartError && err.code === 'EADDRINUSE')) break;
      fs.appendFileSync(logFile, `--- testkit: one of ports ${ports.join(', ')} taken, retrying (attempt ${attempt + 1}) ---\n`);
    }
  }
  throw lastError;
}

/**
 * A daemon run as our child: in the foreground, so that Node reaps it when
 * it exits (PID 1 here reaps no orphans: a daemonised server would stay a
 * zombie after every stop), and detached, in its own session, which its
 * children join, so that they can be found and killed together.
 */
export class DaemonProcess {
  /** From spawn() until the child exits or fails to spawn. */
  running = false;
  /** Resolves when the latest child has exited or failed to spawn. */
  exited: Promise<void> = Promise.resolve();
  private child: ChildProcess | undefined;
  private exitNote: () => string = () => '';

  /** `what` names the process in exit notes: "<what> exited (code …, signal …)". */
  constructor(private readonly what: string) {}

  /** The PID of the latest child, running or not: its session is ours to clean up. */
  get lastPid(): number | undefined {
    return this.child?.pid;
  }

  /** The child's PID while it runs, else undefined. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** Starts the child with stdout and stderr appended to `outputFile`; unref'd, so it never holds the test process open. */
  spawn(bin: string, args: string[], outputFile: string, options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): void {
    const fd = fs.openSync(outputFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(bin, args, { ...options, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    child.unref();
    this.child = child;
    this.running = true;
    let note = '';
    this.exitNote = () => note;
    this.exited = new Promise<void>((resolve) => {
      const done = (why: string) => {
        note ||= why;
        this.running = false;
        resolve();
      };
      child.once('exit', (code, signal) => done(`${this.what} exited (code ${code}, signal ${signal})`));
      child.once('error', (err) => done(`spawn failed: ${err.message}`));
    });
  }

  /**
   * undefined once `ready` resolves; else why not: its error, or how the
   * child ended if that came first.
   */
  async startFailure(ready: Promise<unknown>): Promise<string | undefined> {
    const note = this.exitNote;
    const died = this.exited.then(() => {
      throw new Error(note());
    });
    // It rejects whenever the child ends, long after a successful start too.
    died.catch(() => undefined);
    try {
      await Promise.race([ready, died]);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}

/** Runs operations one at a time, in call order, whether the one before succeeded or not. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** The whole file, or '' before the daemon has written it. */
export async function readLogFile(file: string): Promise<string> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Resolves with the first line of `file` matching `pattern`; rejects with the log's tail after `timeoutMs`. */
export async function waitForLogLine(file: string, pattern: RegExp, timeoutMs = 5_000): Promise<string> {
  // A /g or /y pattern keeps lastIndex between test() calls; match each line afresh.
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await readLogFile(file);
    const line = log.split('\n').find((l) => re.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern} in ${file} after ${timeoutMs} ms; last lines:\n${tail(log, 15)}`);
    await sleep(LOG_POLL_MS);
  }
}

/** The part of a start error that quotes the log. */
export function logTailSection(file: string, log: string): string[] {
  return [`--- last ${LOG_TAIL_LINES} lines of ${file} ---`, tail(log, LOG_TAIL_LINES) || '(empty)'];
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `p` settles within `ms`; the timer is cleared either way, so nothing lingers to hold the process. */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}
