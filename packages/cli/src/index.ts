export { runCli, buildProgram } from './program';
export { runCliCaptured, type CaptureOptions, type CapturedRun } from './capture';
export type { CliIo } from './io';
export { UsageError, CommandFailed } from './io';
