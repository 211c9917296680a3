import type { Command } from 'commander';
import { startServer } from '@mailfront/server';
import type { CliContext } from '../context';
import { parseNonNegativeInt } from '../options';

const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Resolves on the first SIGTERM or SIGINT. Listening stops then, so that a
 * second signal gets Node's default (exit at once) during a slow shutdown.
 */
function waitForSignal(): { signal: Promise<NodeJS.Signals>; dispose(): void } {
  let on: (sig: NodeJS.Signals) => void = () => undefined;
  const dispose = () => {
    for (const s of SHUTDOWN_SIGNALS) process.removeListener(s, on);
  };
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    on = (sig) => {
      dispose();
      resolve(sig);
    };
    for (const s of SHUTDOWN_SIGNALS) process.on(s, on);
  });
  return { signal, dispose };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the proxy: open the listeners from the config and serve until SIGTERM or SIGINT')
    .option('--grace-ms <ms>', "on shutdown, how long live sessions get to end before they are closed (default: the server's)", parseNonNegativeInt)
    .addHelpText(
      'after',
      `
The server logs (to stdout, in log.format) each address it listens on.
A first SIGTERM or SIGINT closes the listeners and lets sessions finish; a
second one exits at once. With --debug the log level is debug.`,
    )
    .action(async (opts: { graceMs?: number }) => {
      const { config: loaded, warnings } = ctx.loadConfig();
      for (const w of warnings) ctx.note(`warning: ${w}`);
      // The config is frozen; --debug makes a changed copy rather than editing it.
      const config = ctx.debug ? Object.freeze({ ...loaded, log: Object.freeze({ ...loaded.log, level: 'debug' as const }) }) : loaded;
      // Listen before starting, so a signal during start-up is not lost.
      const stop = waitForSignal();
      let server;
      try {
        server = await startServer(config);
      } catch (err) {
        stop.dispose();
        throw err;
      }
      await stop.signal;
      await server.close(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : undefined);
    });
}
