import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { register as backendAdd } from './commands/backend-add';
import { register as backendList } from './commands/backend-list';
import { register as backendRemove } from './commands/backend-remove';
import { register as backendSet } from './commands/backend-set';
import { register as backendState } from './commands/backend-state';
import { register as certGenerate } from './commands/cert-generate';
import { register as configCheck } from './commands/config-check';
import { register as ldapTest } from './commands/ldap-test';
import { register as serve } from './commands/serve';
import { register as userAdd } from './commands/user-add';
import { register as userList } from './commands/user-list';
import { register as userMove } from './commands/user-move';
import { register as userPasswd } from './commands/user-passwd';
import { register as userRemove } from './commands/user-remove';
import { register as userShow } from './commands/user-show';
import { register as autoconfigDns } from './commands/autoconfig-dns';
import { register as backendStatus } from './commands/backend-status';
import { register as doctor } from './commands/doctor';
import { register as kick } from './commands/kick';
import { register as sessions } from './commands/sessions';
import { register as userImport } from './commands/user-import';
import { CliContext, type GlobalOptions } from './context';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIo } from './io';

export type { CliIo } from './io';

function version(): string {
  try {
    // One level up from both src/ (tests) and dist/ (installed).
    return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The whole command tree. A fresh one per run: commander keeps parse state on the objects. */
export function buildProgram(io: CliIo): { program: Command; ctx: CliContext } {
  const program = new Command('mailfront');
  const ctx = new CliContext(io, () => program.opts<GlobalOptions>());
  const columns = (s: unknown) => (s as { columns?: number }).columns ?? 80;

  // Settings first: subcommands made with .command() inherit them.
  program
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`mailfront: ${s.replace(/^error: /, '')}`),
      getOutHelpWidth: () => columns(io.stdout),
      getErrHelpWidth: () => columns(io.stderr),
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showHelpAfterError('(add --help for usage)')
    .description('mailfront: an IMAP (POP3, submission) front-end proxy that sends each user to their backend mail server')
    .version(version(), '-V, --version', 'print the version')
    .option('--config <file>', 'configuration file (default: $MAILFRONT_CONFIG, else ./mailfront.yaml if present, else the built-in defaults)')
    .option('--debug', 'show stack traces with errors; with serve, log at debug level')
    .addHelpText(
      'after',
      `
Exit status: 0 ok, 1 the command failed, 2 usage or configuration error.
Configuration reference: docs/config.md. Command reference: docs/cli.md.`,
    );

  serve(program, ctx);

  const backend = program.command('backend').description('manage the backend mail servers users are placed on: add, list, remove, set, drain, undrain, status');
  backendAdd(backend, ctx);
  backendList(backend, ctx);
  backendRemove(backend, ctx);
  backendSet(backend, ctx);
  backendState(backend, ctx);
  backendStatus(backend, ctx);

  const user = program.command('user').description('manage users, their passwords and placement: add, passwd, remove, list, show, move, import');
  userAdd(user, ctx);
  userPasswd(user, ctx);
  userRemove(user, ctx);
  userList(user, ctx);
  userShow(user, ctx);
  userMove(user, ctx);
  userImport(user, ctx);

  const cert = program.command('cert').description('TLS certificates: generate');
  certGenerate(cert, ctx);

  const config = program.command('config').description('the configuration file: check');
  configCheck(config, ctx);

  const ldap = program.command('ldap').description('the directory (ldap section): test a login step by step');
  ldapTest(ldap, ctx);

  // The running server, through its admin API.
  sessions(program, ctx);
  kick(program, ctx);
  doctor(program, ctx);

  const autoconfig = program.command('autoconfig').description('mail client autoconfiguration: the DNS records for a domain');
  autoconfigDns(autoconfig, ctx);

  return { program, ctx };
}

/** Errors that are the caller's fault: exit 2. Duck-typed: each package has its own error class. */
function exitCodeOf(err: unknown): number {
  const e = err as { exitCode?: unknown; code?: unknown; name?: unknown };
  if (e && (e.exitCode === EXIT_USAGE || e.exitCode === EXIT_FAILED)) return e.exitCode;
  if (e?.code === 'config') return EXIT_USAGE; // ConfigError
  if (e?.name === 'StoreError') return e.code === 'invalid' ? EXIT_USAGE : EXIT_FAILED;
  if (e?.name === 'AuthError') return e.code === 'invalid-user-name' || e.code === 'invalid-option' ? EXIT_USAGE : EXIT_FAILED;
  return EXIT_FAILED;
}

/**
 * Run the CLI with `argv` (without node and script) and return the exit
 * status. Never calls process.exit: bin.ts does, so tests can run this
 * in-process.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const { program, ctx } = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the message (or the help). Its exit
      // code is 0 for help and version asked for; anything else (unknown
      // command or option, bad value, missing argument, a group without a
      // subcommand) is a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`mailfront: ${message}\n`);
    if (ctx.debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}
