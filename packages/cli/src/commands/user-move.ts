import type { Command } from 'commander';
import { canonicalUserName } from '@mailfront/auth';
import type { CliContext } from '../context';
import { AdminClient, adminEndpoint, NoServerError, withAdminOption } from '../admin-client';
import { CommandFailed } from '../io';

export function register(user: Command, ctx: CliContext): void {
  withAdminOption(
    user
      .command('move')
      .description("assign a user to a backend: the running server holds the user's logins, ends their sessions, then changes the placement")
      .argument('<user>', 'login name')
      .argument('<backend>', 'the backend to assign the user to'),
  )
    .addHelpText(
      'after',
      `
With a server running (its admin socket answers), the move is made there:
new logins of the user wait (admin.moveLoginWaitMs) while the user's
sessions are closed and the placement changes, then go to the new backend;
no session stays on the old one. Without a server, only the store is
changed. Moving the mailbox's data (dsync) is up to you: do it before, or
while the user cannot log in. See docs/operations.md.`,
    )
    .action(async (rawName: string, backend: string, opts: { adminSocket?: string }) => {
      const name = canonicalUserName(rawName);
      const before = await ctx.withStore(async (store) => {
        if (ctx.config.auth.source === 'sqlite' && !(await store.getUser(name))) throw new CommandFailed(`user ${name} does not exist`);
        const target = await store.getBackend(backend);
        if (!target) throw new CommandFailed(`backend ${backend} does not exist`);
        if (target.state !== 'active') ctx.note(`backend ${backend} is ${target.state}; the assignment applies anyway`);
        return store.getPlacement(name);
      });
      const from = before ? ` from ${before.backend} (${before.source})` : '';

      const endpoint = adminEndpoint(ctx, opts.adminSocket);
      if (endpoint !== null) {
        try {
          const r = await new AdminClient(endpoint).moveUser(name, backend);
          for (const n of r.notes) ctx.note(n);
          if (r.unchanged) return ctx.out(`user ${name} is already assigned to backend ${backend}`);
          const kicked = r.kicked === 0 ? 'no session was open' : `${r.kicked} session${r.kicked === 1 ? '' : 's'} closed`;
          return ctx.out(`user ${name} assigned to backend ${backend}${r.from ? ` from ${r.from}` : ''}; ${kicked}; logins held ${r.heldMs} ms`);
        } catch (e) {
          if (!(e instanceof NoServerError)) throw e;
          ctx.note(`${e.message}; changing the store only`);
        }
      } else {
        ctx.note('the configuration has no admin API: changing the store only; sessions a server has open for the user are not closed');
      }
      await ctx.withStore((store) => store.setPlacement(name, backend, 'assigned'));
      ctx.out(`user ${name} assigned to backend ${backend}${from} (no server running: the next login goes there)`);
    });
}
