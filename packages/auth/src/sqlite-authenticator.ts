import type { Store } from '@mailfront/store';
import { AuthError } from './errors';
import { dummyHash, verifyPassword } from './password-hash';
import { SuccessCache } from './success-cache';
import type { AuthRequest, AuthResult, Authenticator } from './types';
import { canonicalUserName, loginUser } from './user-name';

export interface StoreAuthenticatorOptions {
  /** See SuccessCacheOptions.ttlMs. Default 60 000; 0 disables the cache. */
  cacheTtlMs?: number;
  /** See SuccessCacheOptions.maxEntries. Default 10 000. */
  cacheMaxEntries?: number;
  /** Clock for the cache, in ms; for tests. */
  now?: () => number;
}

export interface StoreAuthenticator extends Authenticator {
  /**
   * Drop the cached successes of a user (any spelling; it is canonicalised).
   * Call after changing or removing the user's password in this process.
   */
  invalidateUser(user: string): void;
}

/**
 * Verifies passwords against the scrypt hashes in the store's users table.
 *
 * It decides, it does not punish: no failure delay here, the session driver
 * applies one to every 'auth-failed' (see failure-delay.ts). Every outcome
 * carries a reason for the log; the client is told the same for all
 * 'auth-failed' reasons.
 */
export function createStoreAuthenticator(store: Store, opts: StoreAuthenticatorOptions = {}): StoreAuthenticator {
  const cache = new SuccessCache({ ttlMs: opts.cacheTtlMs, maxEntries: opts.cacheMaxEntries, now: opts.now });
  // Compute the dummy hash now, so the first unknown user does not pay for it
  // (and show, by a slower reply, that the name does not exist).
  dummyHash().catch(() => undefined);

  async function authenticate(req: AuthRequest): Promise<AuthResult> {
    const who = loginUser(req);
    if (!who.ok) return who;
    const user = who.user;

    const cached = cache.lookup(user, req.password);
    if (cached !== undefined) return { ok: true, user: cached, cached: true };

    const epoch = cache.epoch();
    let row;
    try {
      row = await store.getUser(user);
    } catch (err) {
      return tempfail(`store unavailable: ${(err as Error).message}`);
    }

    if (!row) {
      // Spend the same scrypt time as a real check, so a fast reply does
      // not reveal that the name is unknown.
      try {
        await verifyPassword(req.password, await dummyHash());
      } catch {
        // The outcome is 'unknown user' whatever happened here.
      }
      return failed('unknown user');
    }

    let match: boolean;
    try {
      match = await verifyPassword(req.password, row.passwordHash);
    } catch (err) {
      // A broken row is our fault, not the client's: tempfail, as Dovecot
      // does for an unknown scheme, rather than count it as a bad password.
      if (err instanceof AuthError && err.code === 'malformed-hash') return tempfail(`stored password hash is malformed: ${err.message}`);
      return tempfail(`password check failed: ${(err as Error).message}`);
    }
    if (!match) return failed('password mismatch');

    cache.remember(user, req.password, epoch);
    return { ok: true, user: row.name, cached: false };
  }

  return {
    authenticate,
    invalidateUser(name: string): void {
      let user: string;
      try {
        user = canonicalUserName(name);
      } catch {
        return; // no such name can have cache entries
      }
      cache.invalidateUser(user);
    },
  };
}

function failed(reason: string): AuthResult {
  return { ok: false, kind: 'auth-failed', reason };
}

function tempfail(reason: string): AuthResult {
  return { ok: false, kind: 'auth-tempfail', reason };
}
