export { runCli, buildProgram } from './program';
export type { CliIo } from './io';
export { UsageError, CommandFailed } from './io';
