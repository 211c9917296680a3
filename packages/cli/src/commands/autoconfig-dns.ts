import type { Command } from 'commander';
import { offeredServices, srvRecords } from '@mailfront/server';
import type { CliContext } from '../context';
import { UsageError } from '../io';

// A DNS name: labels of letters, digits and hyphens.
const DOMAIN = /^(?=.{1,253}\.?$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\.?$/;

export function register(autoconfig: Command, ctx: CliContext): void {
  autoconfig
    .command('dns')
    .description("print the SRV records (RFC 6186, RFC 8314) that point a domain's mail clients at this server's listeners")
    .argument('<domain>', 'the mail domain, e.g. example.org')
    .option('--ttl <seconds>', 'TTL of the records (default: 3600)', (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) > 2_147_483_647) throw new UsageError('--ttl must be a whole number of seconds');
      return Number(v);
    })
    .addHelpText(
      'after',
      `
Zone-file lines for the domain, from the listeners in the config: the host
is autoconfig.hostname (else hostname), the ports the listeners' own. Implicit
TLS gets priority 0 and STARTTLS 10, so clients prefer implicit TLS; a
service without a TLS listener is published as not available (target ".").`,
    )
    .action((domain: string, opts: { ttl?: number }) => {
      if (!DOMAIN.test(domain)) throw new UsageError(`${domain} is not a domain name`);
      const config = ctx.config;
      const hostname = config.autoconfig.hostname ?? config.hostname;
      const zero = config.listeners.filter((l) => l.port === 0 && l.tls !== 'none');
      for (const l of zero) ctx.note(`a ${l.protocol} listener has port 0 (any free port): left out`);
      const lines = [
        `; mail client autoconfiguration for ${domain.replace(/\.$/, '')}: mailfront at ${hostname}`,
        ...srvRecords(domain, hostname, offeredServices(config.listeners), opts.ttl ?? 3600),
      ];
      if (config.autoconfig.port !== null) {
        lines.push(`; Thunderbird asks https://autoconfig.${domain.replace(/\.$/, '')}/mail/config-v1.1.xml and Outlook`);
        lines.push(`; https://autodiscover.${domain.replace(/\.$/, '')}/autodiscover/autodiscover.xml: publish the autoconfig listener there`);
      }
      ctx.out(lines.join('\n'));
    });
}
