import type { Command } from 'commander';
import type { BackendState } from '@mailfront/store';
import type { CliContext } from '../context';
import { CommandFailed } from '../io';

/** `backend drain` and `backend activate`: whether a backend takes new placements. */
export function register(backend: Command, ctx: CliContext): void {
  const states: Array<[string, BackendState, string]> = [
    ['drain', 'draining', 'stop placing new users on a backend; users already placed there keep logging in to it'],
    ['activate', 'active', 'let a drained backend take new users again'],
  ];
  for (const [verb, state, description] of states) {
    backend
      .command(verb)
      .description(description)
      .argument('<name>', 'the backend')
      .action(async (name: string) => {
        await ctx.withStore(async (store) => {
          const b = await store.getBackend(name);
          if (!b) throw new CommandFailed(`backend ${name} does not exist`);
          if (b.state === state) return ctx.out(`backend ${name} is already ${state}`);
          await store.setBackendState(name, state);
          ctx.out(`backend ${name} is now ${state}`);
        });
      });
  }
}
