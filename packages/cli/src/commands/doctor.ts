import type { Command } from 'commander';
import { runDoctor, type DoctorCheck } from '@mailfront/server';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';
import { readPassword } from '../password';
import { table } from '../format';

interface Options {
  user?: string;
  passwordFile?: string;
  backend?: string[];
  json?: boolean;
}

const STATUS = { ok: 'OK', fail: 'FAIL', skip: 'SKIP' } as const;

export function register(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description('check every backend as a login would meet it: connect, TLS, capabilities, and a login with a test account')
    .option('--user <user>', 'a test account to log in with on each backend (default: stop before sending credentials)')
    .option('--password-file <file>', "the test account's password, first line (else asked on a terminal, or the first line of stdin)")
    .option('--backend <name>', 'check only this backend; repeat for more', (v: string, acc: string[] = []) => [...acc, v])
    .option('--json', 'print the checks as a JSON array')
    .addHelpText(
      'after',
      `
One line per backend, protocol (each port the backend has) and check:
  connect       TCP (and for implicit TLS the handshake's start)
  tls           handshake and certificate verification as configured (--ca, --insecure)
  capabilities  greeting and CAPABILITY / CAPA / EHLO: all the login needs before credentials
  extensions    submission: the EHLO offers what submission.extensions promises clients
  login         the test account logs in (only with --user)
OK, FAIL with the reason (and where the login stopped, state=<sent>/<received>),
or SKIP (not reached, or not asked for). Exit 1 if any check fails.

The backends' own login code runs, one connection per backend and protocol;
without --user it stops where it would send credentials.`,
    )
    .action(async (opts: Options) => {
      const config = ctx.config;
      if (opts.passwordFile !== undefined && opts.user === undefined) throw new CommandFailed('--password-file needs --user');
      const password = opts.user !== undefined ? await readPassword(ctx.io, opts.passwordFile) : undefined;
      const backends = await ctx.withStore(async (store) => {
        const all = await store.listBackends();
        for (const n of opts.backend ?? []) if (!all.some((b) => b.name === n)) throw new CommandFailed(`backend ${n} does not exist`);
        return opts.backend ? all.filter((b) => opts.backend!.includes(b.name)) : all;
      });
      if (backends.length === 0) throw new CommandFailed('no backends to check; add one with: mailfront backend add NAME --host HOST');
      const checks: DoctorCheck[] = await runDoctor(config, backends, {
        ...(opts.user !== undefined ? { user: opts.user, password: password! } : {}),
      });
      if (opts.json) ctx.json(checks);
      else ctx.io.stdout.write(table(['STATUS', 'BACKEND', 'PROTOCOL', 'CHECK', 'DETAIL'], checks.map((c) => [STATUS[c.status], c.backend, c.protocol, c.check, c.detail])));
      const failed = checks.filter((c) => c.status === 'fail').length;
      if (failed > 0) throw new CommandFailed(`${failed} check${failed === 1 ? '' : 's'} failed`);
      if (!opts.json) ctx.out(`all ${checks.filter((c) => c.status === 'ok').length} checks passed`);
    });
}
