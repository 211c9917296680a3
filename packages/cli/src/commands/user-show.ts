import type { Command } from 'commander';
import { canonicalUserName } from '@mailfront/auth';
import { rendezvousPick } from '@mailfront/locator';
import type { CliContext } from '../context';
import { userView, type UserView } from '../format';
import { CommandFailed } from '../io';

interface UserShow extends UserView {
  /** For an unplaced user: where rendezvous hashing over the active backends would put them now; null if none is active. */
  wouldPlaceOn: string | null;
}

export function register(user: Command, ctx: CliContext): void {
  user
    .command('show')
    .description('show a user: creation time and placement, or where the first login would place them')
    .argument('<user>', 'login name')
    .option('--json', 'print JSON (the password hash is never included)')
    .action(async (rawName: string, opts: { json?: boolean }) => {
      const name = canonicalUserName(rawName);
      const view = await ctx.withStore(async (store): Promise<UserShow> => {
        const u = await store.getUser(name);
        if (!u) throw new CommandFailed(`user ${name} does not exist`);
        const v = userView(u, await store.getPlacement(name));
        let wouldPlaceOn: string | null = null;
        if (!v.placement) {
          // The locator's own rule: rendezvous over the active backends.
          const active = (await store.listBackends()).filter((b) => b.state === 'active').map((b) => b.name);
          wouldPlaceOn = rendezvousPick(name, active) ?? null;
        }
        return { ...v, wouldPlaceOn };
      });
      if (opts.json) return ctx.json(view);
      const placement = view.placement
        ? `${view.placement.backend} (${view.placement.source}, since ${view.placement.updatedAt})`
        : view.wouldPlaceOn
          ? `none yet; the first login would place the user on ${view.wouldPlaceOn} (rendezvous hashing over the active backends)`
          : 'none yet, and there is no active backend to place the user on';
      ctx.out([`user:       ${view.name}`, `created:    ${view.createdAt}`, `updated:    ${view.updatedAt}`, `placement:  ${placement}`].join('\n'));
    });
}
