import type { Command } from 'commander';
import { canonicalUserName, hashPassword } from '@mailfront/auth';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';
import { readNewPassword } from '../password';

export function register(user: Command, ctx: CliContext): void {
  user
    .command('add')
    .description('add a user; the password comes from --password-file, or stdin (asked twice on a terminal, else its first line)')
    .argument('<user>', 'login name; stored lower-cased and trimmed')
    .option('--backend <name>', 'assign the user to this backend (default: placed by rendezvous hashing at first login)')
    .option('--password-file <file>', 'read the password from the first line of this file instead of stdin')
    .addHelpText(
      'after',
      `
Examples:
  mailfront user add alice@example.org                      # asks for the password
  mailfront user add bob@example.org --backend dovecot1 --password-file bob.pw
  printf '%s\\n' "$PW" | mailfront user add carol@example.org`,
    )
    .action(async (rawName: string, opts: { backend?: string; passwordFile?: string }) => {
      const name = canonicalUserName(rawName);
      await ctx.withStore(async (store) => {
        // Check everything before asking for a password nobody will use.
        if (await store.getUser(name)) throw new CommandFailed(`user ${name} already exists`);
        if (opts.backend !== undefined && !(await store.getBackend(opts.backend))) {
          throw new CommandFailed(`backend ${opts.backend} does not exist; user ${name} not added`);
        }
        const hash = await hashPassword(await readNewPassword(ctx.io, opts.passwordFile));
        await store.addUser(name, hash);
        if (opts.backend !== undefined) {
          try {
            await store.setPlacement(name, opts.backend, 'assigned');
          } catch (err) {
            // The backend went away since we looked: leave no half-made user behind.
            await store.removeUser(name).catch(() => undefined);
            throw err;
          }
        }
      });
      ctx.out(`user ${name} added` + (opts.backend !== undefined ? `, assigned to backend ${opts.backend}` : ''));
    });
}
