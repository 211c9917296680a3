import type { Command } from 'commander';
import { canonicalUserName, type DirectoryEntry, type LdapCheck, type LdapQuery } from '@mailfront/auth';
import { rendezvousPick, resolveDirectoryPlacement } from '@mailfront/locator';
import { ldapDirectoryFromConfig } from '@mailfront/server';
import type { CliContext } from '../context';
import { CommandFailed, UsageError } from '../io';
import { readPassword } from '../password';

/** Where a login of this user would go, as the server's locator decides (without placing anyone). */
type BackendChoice =
  | { backend: string; by: 'directory'; attribute: string; matchedBy: 'name' | 'host' }
  | { backend: string; by: 'stored placement'; source: 'assigned' | 'hashed' }
  | { backend: string; by: 'hashing' }
  | { backend: null; reason: string };

interface LdapTestReport {
  user: string;
  directory: { urls: readonly string[]; startTls: boolean };
  query: LdapQuery;
  result: LdapCheck['result'];
  /** The entry's DN, when one was found. */
  dn: string | null;
  /** With result 'ambiguous': every DN that matched. */
  matches: string[];
  bind: string;
  canonicalUser: string | null;
  attributes: Record<string, string[]> | null;
  backend: BackendChoice | null;
  /** Why a login would fail, or null if it would succeed. */
  problem: string | null;
}

function bindLine(check: LdapCheck): string {
  switch (check.result) {
    case 'ok':
    case 'bad-entry':
      return 'ok';
    case 'password-mismatch':
      return `refused: LDAP result ${check.code}${check.code === 49 ? ' (invalid credentials: wrong password, or no password in the entry)' : ''}`;
    case 'unknown-user':
      return check.dn ? `refused: no entry ${check.dn}` : 'not tried: no entry matches';
    case 'ambiguous':
      return `not tried: ${check.dns.length} entries match`;
    case 'refused':
      return `not tried: ${check.reason}`;
    case 'unavailable':
      return `failed: ${check.reason}`;
  }
}

function problemOf(check: LdapCheck): string | null {
  switch (check.result) {
    case 'ok':
      return null;
    case 'bad-entry':
      return `the entry is unusable: ${check.reason} (temporary failure)`;
    case 'password-mismatch':
      return 'the password was refused (authentication failure)';
    case 'unknown-user':
      return 'no directory entry for this name (authentication failure)';
    case 'ambiguous':
      return 'several entries match (authentication failure)';
    case 'refused':
      return `${check.reason} (authentication failure)`;
    case 'unavailable':
      return 'the directory did not answer (temporary failure)';
  }
}

function queryLine(q: LdapQuery): string {
  if (q.mode === 'direct') return `bind to ${q.dn}`;
  return `search base ${q.baseDn}, scope ${q.scope}, filter ${q.filter}, as ${q.serviceDn ?? 'anonymous'}`;
}

function backendLine(b: BackendChoice | null, placementAttribute: string | null): string {
  if (b === null) return 'not decided: the login would fail first';
  if (b.backend === null) return `none: ${b.reason}`;
  switch (b.by) {
    case 'directory':
      return b.matchedBy === 'name' ? `${b.backend} (named by ${b.attribute})` : `${b.backend} (${b.attribute} is its host)`;
    case 'stored placement':
      return `${b.backend} (stored placement, ${b.source}${placementAttribute ? `; the entry has no ${placementAttribute}` : ''})`;
    case 'hashing':
      return `${b.backend} (no placement yet: the first login would place the user here by rendezvous hashing)`;
  }
}

export function register(ldap: Command, ctx: CliContext): void {
  ldap
    .command('test')
    .description('check one login against the configured directory, step by step: the entry found, the bind, the attributes, the backend it leads to')
    .argument('<user>', 'login name, as a client would send it')
    .option('--password-file <file>', 'read the password from the first line of this file instead of stdin')
    .option('--json', 'print JSON (never the password)')
    .addHelpText(
      'after',
      `
Uses the ldap section of the configuration (and the store, for backends and
placements) exactly as a login does, without the success cache, and places
nobody. Exit status 0: the login would succeed; 1: it would not (the output
says which step failed).

Examples:
  mailfront ldap test alice                       # asks for the password
  mailfront ldap test alice@example.org --password-file alice.pw --json`,
    )
    .action(async (rawName: string, opts: { passwordFile?: string; json?: boolean }) => {
      const config = ctx.config;
      if (!config.ldap) throw new UsageError('the configuration has no ldap section: there is no directory to test');
      const login = canonicalUserName(rawName);
      const password = await readPassword(ctx.io, opts.passwordFile);
      const directory = ldapDirectoryFromConfig(config.ldap);
      const placementAttribute = config.ldap.placementAttribute;
      let report: LdapTestReport;
      try {
        const check = await directory.verify(login, password);
        let entry: DirectoryEntry | undefined;
        let canonicalUser: string | null = null;
        if (check.result === 'ok') {
          entry = { dn: check.dn, attributes: check.attributes };
          canonicalUser = check.user;
        } else if (check.result === 'bad-entry') {
          entry = { dn: check.dn, attributes: check.attributes };
        } else if (check.result === 'password-mismatch') {
          // Show what the directory holds for the user anyway (as the service account).
          entry = await directory.lookup(login).catch(() => undefined);
          canonicalUser = entry ? (directory.canonicalNameOf(entry) ?? null) : null;
        }
        const backend = check.result === 'ok' ? await ctx.withStore((store) => chooseBackend(store, check.user, check.attributes, placementAttribute)) : null;
        report = {
          user: login,
          directory: { urls: config.ldap.urls, startTls: config.ldap.startTls },
          query: directory.query(login),
          result: check.result,
          dn: 'dn' in check && check.dn !== undefined ? check.dn : null,
          matches: check.result === 'ambiguous' ? check.dns : [],
          bind: bindLine(check),
          canonicalUser,
          attributes: entry?.attributes ?? null,
          backend,
          problem: problemOf(check) ?? (backend && backend.backend === null ? `no backend: ${backend.reason} (temporary failure)` : null),
        };
      } finally {
        directory.close();
      }

      if (opts.json) ctx.json(report);
      else {
        const lines = [
          `user:        ${report.user}`,
          `directory:   ${report.directory.urls.join(' ')}${report.directory.startTls ? ' (StartTLS on ldap://)' : ''}`,
          `query:       ${queryLine(report.query)}`,
          `entry:       ${report.dn ?? (report.matches.length ? report.matches.join(', ') : 'none')}`,
          `bind:        ${report.bind}`,
          `canonical:   ${report.canonicalUser ?? '-'}${report.canonicalUser ? ` (from ${directory.userAttribute})` : ''}`,
        ];
        if (report.attributes) {
          lines.push('attributes:');
          const width = Math.max(...Object.keys(report.attributes).map((k) => k.length)) + 2;
          for (const [k, vs] of Object.entries(report.attributes)) lines.push(`  ${`${k}:`.padEnd(width)} ${vs.length ? vs.join(', ') : '(none)'}`);
        }
        lines.push(`backend:     ${backendLine(report.backend, placementAttribute)}`);
        ctx.out(lines.join('\n'));
      }
      if (report.problem) throw new CommandFailed(`a login as ${login} would fail: ${report.problem}`);
    });
}

async function chooseBackend(
  store: Parameters<Parameters<CliContext['withStore']>[0]>[0],
  user: string,
  attributes: Record<string, string[]>,
  placementAttribute: string | null,
): Promise<BackendChoice> {
  const backends = await store.listBackends();
  if (placementAttribute !== null) {
    const placed = resolveDirectoryPlacement(attributes[placementAttribute] ?? [], backends);
    if (placed.kind === 'backend') return { backend: placed.backend.name, by: 'directory', attribute: placementAttribute, matchedBy: placed.matchedBy };
    if (placed.kind === 'invalid') return { backend: null, reason: `${placementAttribute} ${placed.reason}` };
  }
  // The store's locator: a stored placement, else rendezvous over the active backends.
  const stored = await store.getPlacement(user);
  if (stored) return { backend: stored.backend, by: 'stored placement', source: stored.source };
  const pick = rendezvousPick(
    user,
    backends.filter((b) => b.state === 'active').map((b) => b.name),
  );
  return pick === undefined ? { backend: null, reason: 'no active backend to place the user on' } : { backend: pick, by: 'hashing' };
}
