import type { Command } from 'commander';
import type { BackendStatus } from '@mailfront/server';
import type { CliContext } from '../context';
import { AdminClient, withAdminOption } from '../admin-client';
import { table } from '../format';

export function register(backend: Command, ctx: CliContext): void {
  withAdminOption(
    backend
      .command('status')
      .description("each backend as the running server sees it: state, health and breaker per protocol, sessions")
      .option('--json', 'print the server\'s answer as JSON'),
  )
    .addHelpText(
      'after',
      `
Asks the running server through its admin API (GET /backends/status). PROBE
is the last active check (up, down, unknown before the first); BREAKER is
closed (logins go there), open (they do not) or half-open (the next check
decides).`,
    )
    .action(async (opts: { json?: boolean; adminSocket?: string }) => {
      const status = (await AdminClient.for(ctx, opts.adminSocket).backendStatus()) as BackendStatus[];
      if (opts.json) return ctx.json(status);
      if (!Array.isArray(status) || status.length === 0) return ctx.out('no backends');
      const rows = status.flatMap((b) =>
        (b.protocols.length ? b.protocols : [null]).map((p) => [
          b.name,
          b.state,
          b.standby ?? '-',
          p ? `${p.protocol}:${p.port}` : '-',
          p?.probe ?? '-',
          p?.breaker ?? '-',
          p?.lastError ?? '',
          String(b.sessions),
        ]),
      );
      ctx.io.stdout.write(table(['NAME', 'STATE', 'STANDBY', 'PORT', 'PROBE', 'BREAKER', 'LAST ERROR', 'SESSIONS'], rows));
    });
}
