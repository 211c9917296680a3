import { spawn } from 'node:child_process';

export interface PythonResult {
  /** Exit code; null when the process was killed (see `timedOut`). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface PythonOptions {
  /** SIGKILL after this long; 20 000 ms by default. */
  timeoutMs?: number;
  /** Written to the script's stdin, which is then closed. */
  input?: string | Buffer;
  /** Added to the inherited environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The interpreter; `python3` on PATH by default. */
  python?: string;
}

const DEFAULT_TIMEOUT_MS = 20_000;

/**
 * Runs `python3 -c script args…`: the tests drive Python's imaplib, poplib and
 * smtplib as independent third-party clients. `sys.argv[1:]` is `args`.
 * Never rejects for a failing script: check `code`.
 */
export function runPython(script: string, args: string[] = [], opts: PythonOptions = {}): Promise<PythonResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(opts.python ?? 'python3', ['-c', script, ...args], {
      cwd: opts.cwd,
      // Unbuffered, UTF-8 output whatever the locale.
      env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    // A script that exits without reading stdin makes the write fail with EPIPE; that is fine.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
