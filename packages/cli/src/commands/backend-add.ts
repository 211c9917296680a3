import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { BackendLoginMode, BackendTlsMode, NewBackend } from '@mailfront/store';
import type { CliContext } from '../context';
import { backendView, json } from '../format';
import { UsageError } from '../io';
import { existingFile, parsePort } from '../options';
import { readSecretFile } from '../password';
import { noteStandbyGaps } from './backend-set';

interface Options {
  host: string;
  imapPort?: number;
  pop3Port?: number;
  submissionPort?: number;
  tls: BackendTlsMode;
  ca?: string;
  insecure?: boolean;
  trusted?: boolean;
  login: BackendLoginMode;
  masterUser?: string;
  masterPasswordFile?: string;
  standby?: string;
  proxyProtocol?: boolean;
  json?: boolean;
}

/** RFC 8314 / IANA: IMAP 143 (STARTTLS) or 993 (implicit TLS). */
const IMAP_PORT = 143;
const IMAPS_PORT = 993;

export function register(backend: Command, ctx: CliContext): void {
  backend
    .command('add')
    .description('add a backend mail server that users can be placed on')
    .argument('<name>', 'a name for the backend, used by `user add --backend` and `user move`')
    .requiredOption('--host <host>', 'host name or IP address of the backend (required)')
    .option('--imap-port <port>', 'IMAP port (default: 143, or 993 with --tls implicit)', parsePort)
    .option('--pop3-port <port>', 'POP3 port (default: none, the backend does not serve POP3)', parsePort)
    .option('--submission-port <port>', 'submission port (default: none, the backend does not serve submission)', parsePort)
    .addOption(
      new Option('--tls <mode>', 'how mailfront reaches the backend: none (plaintext), starttls (upgrade; fails if not offered), implicit (TLS from the first byte)')
        .choices(['none', 'starttls', 'implicit'])
        .default('starttls'),
    )
    .option('--ca <file>', "PEM CA bundle to verify the backend's certificate (default: the system CAs)")
    .option('--insecure', "do not verify the backend's certificate (testing only; not with --tls none or --ca)")
    .option('--trusted', "send the client's address to this backend (IMAP ID x-originating-ip, x-proxy-ttl); only for backends configured to trust mailfront (default: not trusted)")
    .addOption(
      new Option('--login <mode>', "how mailfront logs in: passthrough (the user's own name and password) or master (a master user logs in on the user's behalf)")
        .choices(['passthrough', 'master'])
        .default('passthrough'),
    )
    .option('--master-user <user>', 'master user name (required with --login master)')
    .option('--master-password-file <file>', 'file whose first line is the master password (required with --login master); stored in the database, never printed')
    .option('--standby <name>', 'another backend that takes the logins of this one while it is down or draining; it must reach the same mailboxes (default: none)')
    .option('--proxy-protocol', "send a PROXY protocol v2 header with the client's address first on every connection (Dovecot: haproxy = yes on the listener); default: not sent")
    .option('--json', 'print the added backend as JSON')
    .addHelpText(
      'after',
      `
Examples:
  mailfront backend add dovecot1 --host 10.0.0.5
  mailfront backend add dovecot2 --host imap2.internal --tls implicit --ca /etc/ssl/internal-ca.pem --trusted
  mailfront backend add replica2 --host 10.0.0.6 --standby dovecot1 --proxy-protocol
  mailfront backend add legacy --host 10.0.0.9 --tls none --pop3-port 110 \\
      --login master --master-user proxy --master-password-file /etc/mailfront/legacy.pw`,
    )
    .action(async (name: string, opts: Options) => {
      const nb = toNewBackend(name, opts, ctx.io.cwd);
      const row = await ctx.withStore(async (store) => {
        const added = await store.addBackend(nb);
        await noteStandbyGaps(ctx, store, added);
        return added;
      });
      if (opts.json) ctx.io.stdout.write(json(backendView(row)));
      else ctx.out(`backend ${row.name} added: ${row.host} imap=${row.ports.imap ?? '-'} pop3=${row.ports.pop3 ?? '-'} submission=${row.ports.submission ?? '-'} tls=${row.tls} login=${row.login}${row.standby ? ` standby=${row.standby}` : ''}${row.proxyProtocol ? ' proxy-protocol' : ''}`);
    });
}

function toNewBackend(name: string, o: Options, cwd: string): NewBackend {
  if (o.insecure && o.tls === 'none') throw new UsageError('--insecure makes no sense with --tls none: there is no certificate to skip checking');
  if (o.ca !== undefined && o.tls === 'none') throw new UsageError('--ca makes no sense with --tls none: there is no certificate to verify');
  if (o.ca !== undefined && o.insecure) throw new UsageError('--ca and --insecure contradict each other: verify with the CA, or do not verify');

  let caFile: string | null = null;
  if (o.ca !== undefined) {
    caFile = existingFile('--ca', o.ca, cwd);
    // Refuse now what would make every login to this backend fail later.
    try {
      new X509Certificate(readFileSync(caFile));
    } catch {
      throw new UsageError(`--ca ${o.ca}: not a PEM certificate`);
    }
  }

  let masterUser: string | null = null;
  let masterPassword: string | null = null;
  if (o.login === 'master') {
    if (!o.masterUser) throw new UsageError('--login master needs --master-user');
    if (!o.masterPasswordFile) throw new UsageError('--login master needs --master-password-file');
    masterUser = o.masterUser;
    masterPassword = readSecretFile('--master-password-file', o.masterPasswordFile, cwd);
  } else if (o.masterUser !== undefined || o.masterPasswordFile !== undefined) {
    // Silently storing an unused master login would hide a forgotten --login master.
    throw new UsageError('--master-user and --master-password-file need --login master');
  }

  return {
    name,
    host: o.host,
    ports: {
      imap: o.imapPort ?? (o.tls === 'implicit' ? IMAPS_PORT : IMAP_PORT),
      pop3: o.pop3Port ?? null,
      submission: o.submissionPort ?? null,
    },
    tls: o.tls,
    caFile,
    insecure: o.insecure === true,
    trusted: o.trusted === true,
    login: o.login,
    masterUser,
    masterPassword,
    standby: o.standby ?? null,
    proxyProtocol: o.proxyProtocol === true,
  };
}
