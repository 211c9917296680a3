import type { LdapCheck, LdapDirectory } from './ldap-directory';
import { SuccessCache } from './success-cache';
import type { AuthRequest, AuthResult, Authenticator } from './types';
import { loginUser } from './user-name';

export interface LdapAuthenticatorOptions {
  /** See SuccessCacheOptions.ttlMs. Default 60 000; 0 disables the cache. */
  cacheTtlMs?: number;
  /** See SuccessCacheOptions.maxEntries. Default 10 000. */
  cacheMaxEntries?: number;
  /** Clock for the cache, in ms; for tests. */
  now?: () => number;
}

export interface LdapAuthenticator extends Authenticator {
  readonly directory: LdapDirectory;
  /** Close the directory connections. */
  close(): void;
}

/**
 * Logins checked against an LDAP directory (search, then bind as the entry
 * found; or bind to a DN made from a template), behind the success cache:
 * a repeat login with the same password inside the TTL costs no directory
 * round trip. As with the store, only successes are cached, and a password
 * changed in the directory keeps working until its entry expires.
 *
 * The cache is keyed by the name the client typed (canonicalised), and
 * answers the canonical name read from the entry: `alice` and
 * `alice@example.org` are two keys for one user.
 */
export function createLdapAuthenticator(directory: LdapDirectory, opts: LdapAuthenticatorOptions = {}): LdapAuthenticator {
  const cache = new SuccessCache({ ttlMs: opts.cacheTtlMs, maxEntries: opts.cacheMaxEntries, now: opts.now });

  async function authenticate(req: AuthRequest): Promise<AuthResult> {
    const who = loginUser(req);
    if (!who.ok) return who;
    const login = who.user;
    if (req.password === '') return failed('empty password');

    const cached = cache.lookup(login, req.password);
    if (cached !== undefined) return { ok: true, user: cached, cached: true };

    const epoch = cache.epoch();
    const check = await directory.verify(login, req.password);
    const result = toAuthResult(check);
    if (result.ok) cache.remember(login, req.password, epoch, result.user);
    return result;
  }

  return {
    authenticate,
    directory,
    close: () => directory.close(),
  };
}

/** What the session driver is told for each directory outcome. The reasons are for the log only. */
export function toAuthResult(check: LdapCheck): AuthResult {
  switch (check.result) {
    case 'ok':
      return { ok: true, user: check.user, cached: false, attributes: check.attributes };
    case 'refused':
      return failed(check.reason);
    case 'unknown-user':
      return failed(check.dn ? `unknown user (no entry ${check.dn})` : 'unknown user');
    case 'ambiguous':
      return failed(`ambiguous: ${check.dns.length} entries match`);
    case 'password-mismatch':
      return failed(`password mismatch (bind as ${check.dn}: LDAP result ${check.code})`);
    case 'bad-entry':
      // The directory's data, not the user's password: say so loudly, and let the client retry later.
      return { ok: false, kind: 'auth-tempfail', reason: `directory entry ${check.dn} unusable: ${check.reason}` };
    case 'unavailable':
      return { ok: false, kind: 'auth-tempfail', reason: `directory unavailable: ${check.reason}` };
  }
}

function failed(reason: string): AuthResult {
  return { ok: false, kind: 'auth-failed', reason };
}
