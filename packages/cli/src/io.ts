/**
 * What the CLI talks to. Injected, so that tests run commands in-process with
 * fake streams and a temp directory instead of spawning a process.
 */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: { write(s: string): void };
  stderr: { write(s: string): void };
  env: NodeJS.ProcessEnv;
  /** Relative paths on the command line are resolved against this. */
  cwd: string;
}

/** Exit status 2: the command line (or the configuration it names) is wrong. */
export class UsageError extends Error {
  readonly exitCode = 2 as const;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit status 1: the command was well-formed but could not be done (backend exists, user not found). */
export class CommandFailed extends Error {
  readonly exitCode = 1 as const;
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailed';
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
