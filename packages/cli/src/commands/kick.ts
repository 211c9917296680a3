import type { Command } from 'commander';
import { canonicalUserName } from '@mailfront/auth';
import type { CliContext } from '../context';
import { AdminClient, withAdminOption } from '../admin-client';
import { UsageError } from '../io';
import { parseNonNegativeInt } from '../options';

interface Options {
  backend?: string;
  session?: string;
  spread?: number;
  json?: boolean;
  adminSocket?: string;
}

export function register(program: Command, ctx: CliContext): void {
  withAdminOption(
    program
      .command('kick')
      .description("end a user's sessions, a backend's, or one session, on the running server")
      .argument('[user]', 'end every session of this user')
      .option('--backend <name>', 'end every session on this backend')
      .option('--session <id>', 'end this one session (the id from mailfront sessions)')
      .option('--spread <seconds>', 'spread the closes evenly over this many seconds, so the clients do not all reconnect at once (default: 0, all now)', parseNonNegativeInt)
      .option('--json', 'print the result as JSON'),
  )
    .addHelpText(
      'after',
      `
Give exactly one of USER, --backend, --session. A session is closed with its
protocol's goodbye (IMAP "* BYE", POP3 "-ERR", SMTP "421") when it is quiet,
and without words in the middle of a transfer, so the goodbye never lands
inside a response or a message; the client sees the connection end and may
reconnect. Clients logging in again go wherever the user is placed then.

Examples:
  mailfront kick alice@example.org
  mailfront kick --backend dovecot2 --spread 300
  mailfront kick --session Zk3v9Q4c2Bx1YtAa`,
    )
    .action(async (user: string | undefined, opts: Options) => {
      const given = [user, opts.backend, opts.session].filter((x) => x !== undefined).length;
      if (given !== 1) throw new UsageError('give exactly one of USER, --backend NAME, --session ID');
      const selector =
        user !== undefined ? { user: canonicalUserName(user) } : opts.backend !== undefined ? { backend: opts.backend } : { session: opts.session! };
      const spread = opts.spread ?? 0;
      const r = await AdminClient.for(ctx, opts.adminSocket).kick(selector, spread);
      if (opts.json) return ctx.json(r);
      const what = 'user' in selector ? `of ${selector.user}` : 'backend' in selector ? `on backend ${selector.backend}` : selector.session;
      if (r.kicked === 0) return ctx.out(`no session ${what}`);
      const n = `${r.kicked} session${r.kicked === 1 ? '' : 's'}`;
      ctx.out(spread > 0 && r.kicked > 1 ? `closing ${n} ${what} over ${spread} s` : 'session' in selector ? `session ${what} closed` : `${n} ${what} closed`);
    });
}
