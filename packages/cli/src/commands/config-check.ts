import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
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

/** What serve would fail on in the operations sections: an unreadable or empty admin token. Returns warnings. */
function checkOperations(config: MailfrontConfig): string[] {
  const warnings: string[] = [];
  const http = config.admin.http;
  if (http) {
    const token = (readPem('admin.http.tokenFile', http.tokenFile).toString('utf8').split(/\r?\n/, 1)[0] ?? '').trim();
    // Never echo the file: it is a secret.
    if (token === '') throw new UsageError(`admin.http.tokenFile: ${http.tokenFile} is empty: its first line must be the token`);
    if ((statSync(http.tokenFile).mode & 0o077) !== 0) warnings.push(`admin.http.tokenFile: ${http.tokenFile} is readable by others: chmod 600 it`);
  }
  return warnings;
}

function operationsSummary(config: MailfrontConfig): string[] {
  const { admin, metrics, autoconfig } = config;
  const at = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return [
    `admin:      ${admin.socket ? `socket ${admin.socket}` : 'no socket'}${admin.http ? `, http ${at(admin.http.host, admin.http.port)} (token from ${admin.http.tokenFile})` : ''}, logins wait ${admin.moveLoginWaitMs} ms during a user move`,
    `metrics:    ${metrics.port === null ? 'off' : `http://${at(metrics.host, metrics.port)}/metrics`}`,
    `autoconfig: ${autoconfig.port === null ? 'off' : `${autoconfig.tls ? 'https' : 'http'}://${at(autoconfig.host, autoconfig.port)} for ${autoconfig.hostname ?? config.hostname}`}`,
  ];
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
    ...operationsSummary(config),
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
      const all = [...warnings, ...checkTls(config, Date.now()), ...checkOperations(config)];
      if (opts.json) return ctx.json({ source, config, warnings: all });
      ctx.out(summary(config, source));
      for (const w of all) ctx.out(`warning: ${w}`);
      ctx.out('configuration OK');
    });
}
