import type { Command } from 'commander';
import type { CliContext } from '../context';
import { backendView, portOrDash, table } from '../format';

export function register(backend: Command, ctx: CliContext): void {
  backend
    .command('list')
    .description('list backends with their ports, TLS, login mode, state, standby and placed users')
    .option('--json', 'print a JSON array (master passwords are never included)')
    .action(async (opts: { json?: boolean }) => {
      const views = await ctx.withStore(async (store) => {
        const rows = await store.listBackends();
        return Promise.all(rows.map(async (b) => backendView(b, await store.countPlacements(b.name))));
      });
      if (opts.json) return ctx.json(views);
      if (views.length === 0) return ctx.out('no backends; add one with: mailfront backend add NAME --host HOST');
      ctx.io.stdout.write(
        table(
          ['NAME', 'HOST', 'IMAP', 'POP3', 'SUBMISSION', 'TLS', 'LOGIN', 'STATE', 'STANDBY', 'TRUSTED', 'PROXY', 'ASSIGNED', 'HASHED'],
          views.map((b) => [
            b.name,
            b.host,
            portOrDash(b.ports.imap),
            portOrDash(b.ports.pop3),
            portOrDash(b.ports.submission),
            b.tls + (b.insecure ? ' (insecure)' : b.caFile ? ' (ca)' : ''),
            b.login === 'master' ? `master (${b.masterUser})` : b.login,
            b.state,
            b.standby ?? '-',
            b.trusted ? 'yes' : 'no',
            b.proxyProtocol ? 'yes' : 'no',
            String(b.users!.assigned),
            String(b.users!.hashed),
          ]),
        ),
      );
    });
}
