import type { Command } from 'commander';
import type { CliContext } from '../context';
import { AdminClient, NoServerError, withAdminOption } from '../admin-client';
import { CommandFailed } from '../io';
import { parsePositiveInt } from '../options';

export interface DrainWaitOptions {
  wait?: boolean;
  timeout?: number;
  adminSocket?: string;
}

/** How often the running server is asked how many sessions are left. */
const POLL_MS = 500;

/** `backend drain NAME --wait [--timeout S]`: the options. */
export function addDrainWaitOptions(drain: Command): void {
  withAdminOption(
    drain
      .option('--wait', "then wait until the running server has no session left on the backend, showing how many are left")
      .option('--timeout <seconds>', 'with --wait: give up (exit 1) after this many seconds (default: wait as long as it takes)', parsePositiveInt),
  );
}

/**
 * Poll the running server until no session is on `backend`. Draining only
 * stops new placements: sessions end as their clients log out, or when moved
 * (user move) or kicked (kick --backend NAME --spread N).
 */
export async function waitForDrain(ctx: CliContext, backend: string, opts: DrainWaitOptions): Promise<void> {
  const client = AdminClient.for(ctx, opts.adminSocket);
  const tty = (ctx.io.stderr as { isTTY?: boolean }).isTTY === true;
  const deadline = opts.timeout !== undefined ? Date.now() + opts.timeout * 1000 : Infinity;
  let last = -1;
  for (;;) {
    let left: number;
    try {
      left = (await client.sessions({ backend })).length;
    } catch (e) {
      if (e instanceof NoServerError) {
        if (tty && last >= 0) ctx.io.stderr.write('\n');
        ctx.note(`${e.message}: no sessions to wait for`);
        return;
      }
      throw e;
    }
    if (left !== last) {
      const text = `${left} session${left === 1 ? '' : 's'} left on backend ${backend}`;
      // A terminal gets one line rewritten; a log gets a line per change.
      ctx.io.stderr.write(tty ? `\rmailfront: ${text}\u001b[K` : `mailfront: ${text}\n`);
      last = left;
    }
    if (left === 0) {
      if (tty) ctx.io.stderr.write('\n');
      ctx.out(`backend ${backend} has no sessions left`);
      return;
    }
    if (Date.now() >= deadline) {
      if (tty) ctx.io.stderr.write('\n');
      throw new CommandFailed(`backend ${backend} still has ${left} session${left === 1 ? '' : 's'} after ${opts.timeout} s`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
