import type { Command } from 'commander';
import type { CliContext } from '../context';
import { AdminClient, withAdminOption } from '../admin-client';
import { table } from '../format';

interface Options {
  user?: string;
  backend?: string;
  json?: boolean;
  adminSocket?: string;
}

export function register(program: Command, ctx: CliContext): void {
  withAdminOption(
    program
      .command('sessions')
      .description("list the running server's sessions: id, protocol, user, client, backend, TLS, since, bytes each way")
      .option('--user <user>', "only this user's sessions")
      .option('--backend <name>', 'only sessions on this backend')
      .option('--json', 'print a JSON array'),
  )
    .addHelpText(
      'after',
      `
Asks the running server through its admin API (admin.socket). IN is bytes
from the client to the backend, OUT from the backend to the client, both
counted since the login. A session still logging in shows phase login and no
user yet; one before login, phase pre-login.`,
    )
    .action(async (opts: Options) => {
      const client = AdminClient.for(ctx, opts.adminSocket);
      const sessions = await client.sessions({ ...(opts.user !== undefined ? { user: opts.user } : {}), ...(opts.backend !== undefined ? { backend: opts.backend } : {}) });
      if (opts.json) return ctx.json(sessions);
      if (sessions.length === 0) return ctx.out('no sessions');
      ctx.io.stdout.write(
        table(
          ['ID', 'PROTOCOL', 'USER', 'CLIENT', 'BACKEND', 'TLS', 'PHASE', 'SINCE', 'IN', 'OUT'],
          sessions.map((s) => [
            s.id,
            s.protocol,
            s.user ?? '-',
            s.client,
            s.backend ?? '-',
            s.tls ? 'yes' : 'no',
            s.phase,
            s.since,
            String(s.bytesFromClient),
            String(s.bytesFromBackend),
          ]),
        ),
      );
    });
}
