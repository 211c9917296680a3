import type { Command } from 'commander';
import { canonicalUserName } from '@mailfront/auth';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';

export function register(user: Command, ctx: CliContext): void {
  user
    .command('remove')
    .description('remove a user and their placement (the mailbox on the backend is not touched)')
    .argument('<user>', 'login name')
    .action(async (rawName: string) => {
      const name = canonicalUserName(rawName);
      await ctx.withStore(async (store) => {
        if (!(await store.getUser(name))) throw new CommandFailed(`user ${name} does not exist`);
        await store.removeUser(name);
      });
      ctx.out(`user ${name} removed`);
    });
}
