import type { Command } from 'commander';
import { canonicalUserName, hashPassword } from '@mailfront/auth';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';
import { readNewPassword } from '../password';

export function register(user: Command, ctx: CliContext): void {
  user
    .command('passwd')
    .description("change a user's password (from --password-file, or stdin as for `user add`)")
    .argument('<user>', 'login name')
    .option('--password-file <file>', 'read the new password from the first line of this file instead of stdin')
    .action(async (rawName: string, opts: { passwordFile?: string }) => {
      const name = canonicalUserName(rawName);
      const { config } = ctx.loadConfig();
      await ctx.withStore(async (store) => {
        if (!(await store.getUser(name))) throw new CommandFailed(`user ${name} does not exist`);
        const hash = await hashPassword(await readNewPassword(ctx.io, opts.passwordFile));
        await store.setUserPassword(name, hash);
      });
      ctx.out(`password of ${name} changed`);
      if (config.auth.cacheTtlMs > 0) {
        ctx.note(`a running server may accept the old password for up to auth.cacheTtlMs (${config.auth.cacheTtlMs} ms)`);
      }
    });
}
