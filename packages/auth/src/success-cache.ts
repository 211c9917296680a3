import { createHmac, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AuthError } from './errors';

export interface SuccessCacheOptions {
  /**
   * How long a successful verification is trusted, in ms. Default 60 000.
   * Bounds how long an old password keeps working after it is changed by
   * another process (in-process changes call invalidateUser). 0 = no caching.
   */
  ttlMs?: number;
  /** Entries kept at most; the least recently used goes first. Default 10 000. 0 = no caching. */
  maxEntries?: number;
  /**
   * Clock in ms, for tests. Default performance.now(): monotonic, so setting
   * the wall clock back cannot stretch an entry's life.
   */
  now?: () => number;
}

interface Entry {
  user: string;
  /** What lookup() answers: `user` unless remember() was given another name. */
  result: string;
  expiresAt: number;
}

/**
 * Recently verified (user, password) pairs, so that a client that logs in
 * every few seconds (phones polling, webmail) costs one scrypt per TTL, not
 * one per login. Like Dovecot's auth cache, only successes are kept.
 *
 * Neither the password nor a plain hash of it is held: the key is
 * HMAC-SHA256 under a random key that never leaves this process, so a heap
 * dump gives nothing to brute-force offline. A different password gives a
 * different key, hence a miss, hence a full check.
 */
export class SuccessCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly hmacKey = randomBytes(32);
  /** Map iteration order is insertion order: the first key is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  /** user → its keys, so invalidateUser does not scan every entry. */
  private readonly byUser = new Map<string, Set<string>>();
  private invalidations = 0;

  constructor(opts: SuccessCacheOptions = {}) {
    this.ttlMs = checkCount('ttlMs', opts.ttlMs ?? 60_000);
    this.maxEntries = checkCount('maxEntries', opts.maxEntries ?? 10_000);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Number of entries held, expired ones included until they are next touched or evicted. */
  get size(): number {
    return this.entries.size;
  }

  /** The keys held (hex HMAC-SHA256 digests): for tests and diagnostics. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * A token to pass to remember(): take it before reading the stored hash.
   * If invalidateUser runs while that check is in flight, the result is not
   * cached, since it may have been made against the old password.
   */
  epoch(): number {
    return this.invalidations;
  }

  /** The name remember() was given for this pair (the canonical user name), if verified less than ttlMs ago. */
  lookup(user: string, password: string): string | undefined {
    const key = this.keyOf(user, password);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.drop(key, entry);
      return undefined;
    }
    // Refresh recency for LRU, but not the expiry: a hit must not let an old
    // password outlive the TTL after a change made elsewhere.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.result;
  }

  /**
   * Record a successful verification of `password` for `user` (canonical).
   * `result` is what a later lookup answers, when it is not `user` itself:
   * a directory maps the name a client logged in with (an alias, a uid) to
   * the canonical name it read from the user's entry.
   */
  remember(user: string, password: string, epoch: number, result: string = user): void {
    if (this.ttlMs === 0 || this.maxEntries === 0 || epoch !== this.invalidations) return;
    const key = this.keyOf(user, password);
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    this.entries.set(key, { user, result, expiresAt: this.now() + this.ttlMs });
    let keys = this.byUser.get(user);
    if (!keys) this.byUser.set(user, (keys = new Set()));
    keys.add(key);
    while (this.entries.size > this.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry];
      this.drop(oldestKey, oldest);
    }
  }

  /** Forget every cached password of `user` (canonical): after a password change or removal. */
  invalidateUser(user: string): void {
    this.invalidations++;
    const keys = this.byUser.get(user);
    if (!keys) return;
    for (const key of keys) this.entries.delete(key);
    this.byUser.delete(user);
  }

  clear(): void {
    this.invalidations++;
    this.entries.clear();
    this.byUser.clear();
  }

  /**
   * The user name cannot contain NUL (canonicalUserName refuses control
   * characters), so user + NUL + password is unambiguous.
   */
  private keyOf(user: string, password: string): string {
    return createHmac('sha256', this.hmacKey).update(user).update('\0').update(password).digest('hex');
  }

  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    const keys = this.byUser.get(entry.user);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) this.byUser.delete(entry.user);
  }
}

function checkCount(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new AuthError('invalid-option', `${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}
