import type { Command } from 'commander';
import type { BackendState } from '@mailfront/store';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';
import { addDrainWaitOptions, waitForDrain, type DrainWaitOptions } from './backend-drain-wait';

/**
 * `backend drain` and `backend undrain` (alias `activate`): whether a backend
 * takes new logins and new users. Sessions already running are not touched.
 */
export function register(backend: Command, ctx: CliContext): void {
  const states: Array<[string, BackendState, string]> = [
    ['drain', 'draining', 'no new logins or new users on a backend: its users go to its standby, or get a temporary failure; running sessions go on'],
    ['undrain', 'active', 'let a drained backend take logins and new users again (alias: activate)'],
  ];
  for (const [verb, state, description] of states) {
    backend
      .command(verb)
      .description(description)
      .argument('<name>', 'the backend')
      .action(async (name: string, opts: DrainWaitOptions) => {
        await ctx.withStore(async (store) => {
          const b = await store.getBackend(name);
          if (!b) throw new CommandFailed(`backend ${name} does not exist`);
          if (b.state === state) return ctx.out(`backend ${name} is already ${state}`);
          await store.setBackendState(name, state);
          ctx.out(`backend ${name} is now ${state}`);
          if (state === 'draining') {
            ctx.note(
              b.standby
                ? `new logins of its users go to its standby ${b.standby} while that is up`
                : `it has no standby: its users get a temporary failure until it is undrained (or: mailfront backend set ${name} --standby OTHER)`,
            );
          }
        });
        if (opts.wait) await waitForDrain(ctx, name, opts);
      });
  }
  backend.commands.find((c) => c.name() === 'undrain')!.alias('activate');
  addDrainWaitOptions(backend.commands.find((c) => c.name() === 'drain')!);
}
