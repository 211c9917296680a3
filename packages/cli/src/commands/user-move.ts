import type { Command } from 'commander';
import { canonicalUserName } from '@mailfront/auth';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';

export function register(user: Command, ctx: CliContext): void {
  user
    .command('move')
    .description("assign a user to a backend; new logins go there (moving the mailbox's data is up to you)")
    .argument('<user>', 'login name')
    .argument('<backend>', 'the backend to assign the user to')
    .action(async (rawName: string, backend: string) => {
      const name = canonicalUserName(rawName);
      const before = await ctx.withStore(async (store) => {
        if (!(await store.getUser(name))) throw new CommandFailed(`user ${name} does not exist`);
        const target = await store.getBackend(backend);
        if (!target) throw new CommandFailed(`backend ${backend} does not exist`);
        const previous = await store.getPlacement(name);
        await store.setPlacement(name, backend, 'assigned');
        if (target.state !== 'active') ctx.note(`backend ${backend} is ${target.state}; the assignment applies anyway`);
        return previous;
      });
      const from = before ? ` from ${before.backend} (${before.source})` : '';
      ctx.out(`user ${name} assigned to backend ${backend}${from}`);
      if (before && before.backend !== backend) {
        // Issue 6: the registry cannot end a user's sessions yet.
        ctx.out(`note: sessions of ${name} already open on ${before.backend} are not ended (not implemented yet, issue 6); they stay there until the client disconnects`);
      }
    });
}
