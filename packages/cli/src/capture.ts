import { Readable } from 'node:stream';
import { runCli } from './program';
import type { CliIo } from './io';

export interface CapturedRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CaptureOptions {
  /** Relative paths on the command line are resolved against this. */
  cwd: string;
  /** Default: an empty stream that has already ended. */
  stdin?: CliIo['stdin'];
  /** Default: none (the CLI reads MAILFRONT_CONFIG and friends from here). */
  env?: NodeJS.ProcessEnv;
  /** Make stderr look like a terminal (progress lines are written only there). */
  stderrIsTTY?: boolean;
  /** Terminal width the help text is wrapped to. */
  columns?: number;
}

/**
 * runCli with what it writes kept as strings: how tests, the bench and other
 * tools drive the CLI in-process instead of spawning `mailfront`.
 */
export async function runCliCaptured(argv: string[], opts: CaptureOptions): Promise<CapturedRun> {
  const out = { stdout: '', stderr: '' };
  const sink = (key: 'stdout' | 'stderr', extra: object) =>
    Object.assign({ write: (s: string) => void (out[key] += s) }, opts.columns === undefined ? {} : { columns: opts.columns }, extra);
  const io: CliIo = {
    stdin: opts.stdin ?? Readable.from([]),
    stdout: sink('stdout', {}),
    stderr: sink('stderr', opts.stderrIsTTY ? { isTTY: true } : {}),
    env: opts.env ?? {},
    cwd: opts.cwd,
  };
  const code = await runCli(argv, io);
  return { code, ...out };
}
