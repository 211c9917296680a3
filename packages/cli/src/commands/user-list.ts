import type { Command } from 'commander';
import type { CliContext } from '../context';
import { table, userView } from '../format';

export function register(user: Command, ctx: CliContext): void {
  user
    .command('list')
    .description('list users with their backend placement')
    .option('--json', 'print a JSON array (password hashes are never included)')
    .action(async (opts: { json?: boolean }) => {
      const views = await ctx.withStore(async (store) => {
        const users = await store.listUsers();
        return Promise.all(users.map(async (u) => userView(u, await store.getPlacement(u.name))));
      });
      if (opts.json) return ctx.json(views);
      if (views.length === 0) return ctx.out('no users; add one with: mailfront user add USER');
      ctx.io.stdout.write(
        table(
          ['USER', 'BACKEND', 'SOURCE', 'CREATED'],
          views.map((u) => [u.name, u.placement?.backend ?? '-', u.placement?.source ?? '-', u.createdAt]),
        ),
      );
    });
}
