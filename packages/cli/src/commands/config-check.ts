import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { MailfrontConfig } from '@mailfront/server';
import type { CliContext } from '../context';
import { UsageError } from '../io';

/** Warn this long before a configured certificate expires. */
const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 24 * 60 * 60 * 1000;

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** What serve would fail on at start: unreadable or mismatched certificate and key. Returns warnings. */
function checkTls(config: MailfrontConfig, now: number): string[] {
  if (!config.tls) return [];
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(readPem('tls.cert', config.tls.cert));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`tls.cert: ${config.tls.cert} is not a PEM certificate`);
  }
  try {
    key = createPrivateKey(readPem('tls.key', config.tls.key));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // Never echo the file: it is a private key.
    throw new UsageError(`tls.key: ${config.tls.key} is not a PEM private key (or it is encrypted)`);
  }
  if (!cert.checkPrivateKey(key)) throw new UsageError(`tls.key: ${config.tls.key} does not belong to the certificate in ${config.tls.cert}`);

  const warnings: string[] = [];
  const left = Math.floor((Date.parse(cert.validTo) - now) / DAY_MS);
  if (left < 0) warnings.push(`tls.cert: expired on ${cert.validTo}`);
  else if (left < EXPIRY_WARNING_DAYS) warnings.push(`tls.cert: expires in ${left} day(s), on ${cert.validTo}`);
  if (!cert.checkHost(config.hostname) && !cert.checkIP(config.hostname)) {
    warnings.push(`tls.cert: does not name hostname ${config.hostname} (it is for ${cert.subjectAltName ?? cert.subject})`);
  }
  return warnings;
}

function storeSummary(s: MailfrontConfig['store']): string {
  if (s.kind === 'sqlite') return `sqlite ${s.path}${s.path !== ':memory:' && !existsSync(s.path) ? ' (created on first use)' : ''}`;
  const tls = s.ssl === false ? 'no tls' : `tls${s.ssl.insecure ? ' (not verified)' : s.ssl.caFile ? ` (ca ${s.ssl.caFile})` : ''}`;
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  // The password never appears: only the file that holds it.
  return `postgres ${s.user}@${host}:${s.port}/${s.database}, ${s.passwordFile ? `password from ${s.passwordFile}` : 'no password file'}, ${tls}, pool ${s.poolSize}, connect ${s.connectTimeoutMs} ms, statement ${s.statementTimeoutMs} ms`;
}

function summary(config: MailfrontConfig, source: string): string {
  const l = config.limits;
  const lines = [
    `config:     ${source}`,
    `dataDir:    ${config.dataDir}`,
    `store:      ${storeSummary(config.store)}`,
    `tls:        ${config.tls ? `cert ${config.tls.cert}, key ${config.tls.key}` : `self-signed for ${config.hostname}, kept in ${join(config.dataDir, 'tls')}`}`,
    `hostname:   ${config.hostname}`,
    'listeners:',
    ...config.listeners.map(
      (x) => `  ${x.protocol.padEnd(10)} ${`${x.host.includes(':') ? `[${x.host}]` : x.host}:${x.port}`.padEnd(22)} tls=${x.tls.padEnd(8)} ${x.allowPlaintextAuth ? 'plaintext auth allowed' : 'auth only over TLS'}`,
    ),
    `auth:       ${config.auth.source}, failure delay ${config.auth.failureDelayMs} ms, cache ${config.auth.cacheTtlMs} ms × ${config.auth.cacheMaxEntries} entries`,
    ...(config.ldap
      ? [
          `ldap:       ${config.ldap.urls.join(' ')}${config.ldap.startTls ? ' (StartTLS on ldap://)' : ''}, ${config.ldap.dnTemplate !== null ? `bind to ${config.ldap.dnTemplate}` : `search ${config.ldap.baseDn} ${config.ldap.filter}`}, user ${config.ldap.userAttribute}, placement ${config.ldap.placementAttribute ?? 'from the store only'}`,
        ]
      : []),
    `limits:     login ${l.loginTimeoutMs} ms, ${l.maxBadCommands} bad commands, ${l.maxAuthAttempts} auth attempts, idle ${l.idleTimeoutMs} ms`,
    `backend:    connect ${l.backendConnectTimeoutMs} ms, login ${l.backendLoginTimeoutMs} ms, line ${l.backendMaxLineBytes} bytes, proxy ttl ${l.proxyTtl}`,
    `imap:       line ${config.imap.maxLineBytes} bytes, literal ${config.imap.maxLiteralBytes} bytes, command ${config.imap.maxCommandBytes} bytes`,
    `log:        ${config.log.level}, ${config.log.format}`,
  ];
  return lines.join('\n');
}

export function register(configCmd: Command, ctx: CliContext): void {
  configCmd
    .command('check')
    .description('validate the configuration (and the TLS files it names) and print the effective settings, like nginx -t; exit 2 naming the key if it is wrong')
    .option('--json', 'print {source, config, warnings} as JSON')
    .action((opts: { json?: boolean }) => {
      const { config, source, warnings } = ctx.loadConfig();
      const all = [...warnings, ...checkTls(config, Date.now())];
      if (opts.json) return ctx.json({ source, config, warnings: all });
      ctx.out(summary(config, source));
      for (const w of all) ctx.out(`warning: ${w}`);
      ctx.out('configuration OK');
    });
}
