import type { Command } from 'commander';
import { PROTOCOLS, type BackendPatch, type BackendRow, type Store } from '@mailfront/store';
import type { CliContext } from '../context';
import { backendView } from '../format';
import { CommandFailed, UsageError } from '../io';

interface Options {
  /** A name, false for --no-standby, undefined if neither was given. */
  standby?: string | false;
  proxyProtocol?: boolean;
  json?: boolean;
}

/**
 * Say which of the backend's protocols its standby cannot take: those logins
 * get a temporary failure while the backend is down or draining.
 */
export async function noteStandbyGaps(ctx: CliContext, store: Pick<Store, 'getBackend'>, b: BackendRow): Promise<void> {
  if (b.standby === null) return;
  const s = await store.getBackend(b.standby);
  if (!s) return;
  const missing = PROTOCOLS.filter((p) => b.ports[p] !== null && s.ports[p] === null);
  if (missing.length) {
    ctx.note(`standby ${s.name} has no ${missing.join(' or ')} port: those logins get a temporary failure while ${b.name} is down or draining`);
  }
  if (s.state === 'draining') ctx.note(`standby ${s.name} is draining: it takes no logins until it is undrained`);
}

export function register(backend: Command, ctx: CliContext): void {
  backend
    .command('set')
    .description("change a backend's standby or PROXY header in place; its users and running sessions stay where they are")
    .argument('<name>', 'the backend')
    .option('--standby <name>', 'another backend that takes the logins of this one while it is down or draining; it must reach the same mailboxes')
    .option('--no-standby', 'no standby: while the backend is down or draining, its users get a temporary failure')
    .option('--proxy-protocol', "send a PROXY protocol v2 header with the client's address first on every connection (Dovecot: haproxy = yes)")
    .option('--no-proxy-protocol', 'send no PROXY header')
    .option('--json', 'print the changed backend as JSON')
    .addHelpText(
      'after',
      `
Changes apply to the next login on every node: each login reads the backend
from the store. Only one hop is followed: a standby's own standby is not
used. A PROXY header change needs the backend's listener changed at the same
moment (haproxy = yes in Dovecot), or its logins fail until both agree.

Examples:
  mailfront backend set dovecot1 --standby dovecot1-replica
  mailfront backend set dovecot1 --no-standby --proxy-protocol`,
    )
    .action(async (name: string, opts: Options) => {
      const patch: BackendPatch = {};
      if (opts.standby !== undefined) patch.standby = opts.standby === false ? null : opts.standby;
      if (opts.proxyProtocol !== undefined) patch.proxyProtocol = opts.proxyProtocol;
      if (Object.keys(patch).length === 0) {
        throw new UsageError('nothing to change: give --standby NAME, --no-standby, --proxy-protocol or --no-proxy-protocol');
      }
      if (patch.standby === name) throw new UsageError(`backend ${name} cannot be its own standby`);
      const row = await ctx.withStore(async (store) => {
        if (!(await store.getBackend(name))) throw new CommandFailed(`backend ${name} does not exist`);
        const updated = await store.updateBackend(name, patch);
        await noteStandbyGaps(ctx, store, updated);
        return updated;
      });
      if (opts.json) return ctx.json(backendView(row));
      ctx.out(`backend ${row.name}: standby=${row.standby ?? 'none'} proxy-protocol=${row.proxyProtocol ? 'yes' : 'no'}`);
    });
}
