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
    .option('--grace-ms <ms>', 'on shutdown, how long live sessions get to end before they are closed (default: limits.shutdownGraceMs)', parseNonNegativeInt)
    .addHelpText(
      'after',
      `
The server logs (to stdout, in log.format) each address it listens on.
A first SIGTERM or SIGINT closes the listeners and lets sessions finish (up to
limits.shutdownGraceMs; quiet sessions are closed politely at once); a second
one exits at once. SIGHUP reloads the config file: certificates (tls.cert,
tls.sni, re-read from disk), limits, penalties, health checks, PROXY networks
and the log level change in place; listeners, the store, the auth source and
the admin/metrics/autoconfig listeners need a restart. A config that does not
validate is refused with a log line and the running one is kept. With --debug
the log level is debug.`,
    )
    .action(async (opts: { graceMs?: number }) => {
      // The config is frozen; --debug makes a changed copy rather than editing it.
      const load = (again = false) => {
        const { config: loaded, warnings } = again ? ctx.reloadConfig() : ctx.loadConfig();
        for (const w of warnings) ctx.note(`warning: ${w}`);
        return ctx.debug ? Object.freeze({ ...loaded, log: Object.freeze({ ...loaded.log, level: 'debug' as const }) }) : loaded;
      };
      const config = load();
      // Listen before starting, so a signal during start-up is not lost.
      const stop = waitForSignal();
      let server;
      try {
        server = await startServer(config);
      } catch (err) {
        stop.dispose();
        throw err;
      }
      // SIGHUP: read the config again and apply what can change in place; a
      // config that does not validate is refused and the running one kept.
      const running = server;
      const onHup = (): void => {
        try {
          const r = running.reload(load(true));
          running.log.info({ applied: r.applied, needsRestart: r.needsRestart }, 'configuration reloaded');
          if (r.needsRestart.length) running.log.warn({ keys: r.needsRestart }, 'these changes take effect after a restart');
        } catch (err) {
          running.log.error({ err: err instanceof Error ? err.message : String(err) }, 'reload refused: the running configuration is kept');
        }
      };
      process.on('SIGHUP', onHup);
      await stop.signal;
      process.removeListener('SIGHUP', onHup);
      await server.close(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : undefined);
    });
}
