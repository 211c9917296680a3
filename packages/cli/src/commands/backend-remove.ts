import type { Command } from 'commander';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';

export function register(backend: Command, ctx: CliContext): void {
  backend
    .command('remove')
    .description('remove a backend; refused while users are assigned to it')
    .argument('<name>', 'the backend to remove')
    .option('--force', 'remove even with assigned users: their placements are dropped and they are placed afresh at their next login')
    .action(async (name: string, opts: { force?: boolean }) => {
      await ctx.withStore(async (store) => {
        if (!(await store.getBackend(name))) throw new CommandFailed(`backend ${name} does not exist`);
        const { assigned, hashed } = await store.countPlacements(name);
        if (assigned > 0 && !opts.force) {
          throw new CommandFailed(
            `backend ${name} has ${assigned} assigned user${assigned === 1 ? '' : 's'}; move them first (mailfront user move USER BACKEND) or use --force`,
          );
        }
        await store.removeBackend(name, { force: opts.force === true });
        const dropped = assigned + hashed;
        ctx.out(
          `backend ${name} removed` +
            (dropped > 0 ? `; ${dropped} placement${dropped === 1 ? '' : 's'} dropped (${assigned} assigned, ${hashed} hashed): those users are placed afresh at their next login` : ''),
        );
      });
    });
}
