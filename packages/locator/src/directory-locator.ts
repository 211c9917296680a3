import { performance } from 'node:perf_hooks';
import type { BackendRow, Protocol, Store } from '@mailfront/store';
import type { LocateHint, LocateResult, Locator } from './types';

/**
 * The user's directory attributes (attribute name → values), or undefined
 * when the directory has no entry for the user. Throws when the directory
 * cannot answer now.
 */
export type DirectoryLookup = (user: string) => Promise<Readonly<Record<string, readonly string[]>> | undefined>;

export interface DirectoryLocatorOptions {
  /** Where backends are listed, to resolve the attribute's value. */
  store: Pick<Store, 'listBackends'>;
  /** Used when the entry has no value (or there is no entry): the stored or hashed placement. */
  fallback: Locator;
  /** The attribute naming the user's backend, e.g. `mailHost` (misc.schema's inetLocalMailRecipient). */
  attribute: string;
  /** Asks the directory when the login brought no attributes and nothing is cached. */
  lookup: DirectoryLookup;
  /** How long a value read is used, in ms. Default 300 000; 0 = not cached. */
  positiveTtlMs?: number;
  /**
   * How long "no value" is remembered, in ms. Default 60 000; 0 = not cached.
   * Short, so that a placement an admin adds takes effect soon.
   */
  negativeTtlMs?: number;
  /** Users remembered at most; the least recently used goes first. Default 10 000. */
  maxEntries?: number;
  /** Monotonic clock in ms, for tests. */
  now?: () => number;
}

export interface DirectoryLocator extends Locator {
  /** Directory lookups made so far (not counting values that came with the login): for tests and diagnostics. */
  readonly lookups: number;
  /** Forget what is cached for `user`, or for everyone. */
  forget(user?: string): void;
}

/** What a placement attribute's values mean, given the backends there are. */
export type DirectoryPlacement =
  | { kind: 'none' }
  | { kind: 'backend'; backend: BackendRow; matchedBy: 'name' | 'host' }
  | { kind: 'invalid'; reason: string };

function cleanValues(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    const t = v.trim();
    if (t !== '' && !out.some((o) => o.toLowerCase() === t.toLowerCase())) out.push(t);
  }
  return out;
}

/**
 * Which backend the attribute's values name: a backend's name first, else
 * its host (case-insensitive, a trailing dot ignored). Anything unclear
 * (several values, a host several backends share, a name no backend has) is
 * 'invalid': sending the user elsewhere would open an empty mailbox, so the
 * login fails rather than guesses.
 */
export function resolveDirectoryPlacement(values: readonly string[], backends: readonly BackendRow[]): DirectoryPlacement {
  const vs = cleanValues(values);
  if (vs.length === 0) return { kind: 'none' };
  if (vs.length > 1) return { kind: 'invalid', reason: `has several values (${vs.join(', ')})` };
  const v = vs[0]!;
  const byName = backends.find((b) => b.name === v) ?? backends.find((b) => b.name.toLowerCase() === v.toLowerCase());
  if (byName) return { kind: 'backend', backend: byName, matchedBy: 'name' };
  const host = (h: string) => h.toLowerCase().replace(/\.$/, '');
  const byHost = backends.filter((b) => host(b.host) === host(v));
  if (byHost.length === 1) return { kind: 'backend', backend: byHost[0]!, matchedBy: 'host' };
  if (byHost.length > 1) {
    return { kind: 'invalid', reason: `${v} is the host of several backends (${byHost.map((b) => b.name).join(', ')}); name the backend instead` };
  }
  return { kind: 'invalid', reason: `${v} names no backend (neither a backend name nor a backend host)` };
}

/** The values of `attribute` in `attrs`, matching the name case-insensitively; undefined if it is not there at all. */
function valuesOf(attrs: Readonly<Record<string, readonly string[]>>, attribute: string): readonly string[] | undefined {
  if (attrs[attribute] !== undefined) return attrs[attribute];
  const key = Object.keys(attrs).find((k) => k.toLowerCase() === attribute.toLowerCase());
  return key === undefined ? undefined : attrs[key];
}

/**
 * Placement from the directory: the user's entry names the backend (by
 * name or host) in a configurable attribute; without a value the fallback
 * locator (stored or hashed placement) decides.
 *
 * The values usually come with the login (AuthResult.attributes → the
 * hint), so placement costs no second search. Otherwise (a success-cache
 * hit, an auth source that reads no directory) they come from the cache, or
 * from one lookup. Directory trouble is a temporary failure: the fallback is
 * for users the directory places nowhere, not for a directory that is down,
 * which would scatter its users over the wrong backends.
 */
export function createDirectoryLocator(o: DirectoryLocatorOptions): DirectoryLocator {
  const positiveTtlMs = o.positiveTtlMs ?? 300_000;
  const negativeTtlMs = o.negativeTtlMs ?? 60_000;
  const maxEntries = o.maxEntries ?? 10_000;
  const now = o.now ?? (() => performance.now());
  /** Insertion order is recency: the first key is the least recently used. */
  const cache = new Map<string, { values: string[]; expiresAt: number }>();
  let lookups = 0;

  function remember(user: string, values: string[]): void {
    const ttl = values.length > 0 ? positiveTtlMs : negativeTtlMs;
    cache.delete(user);
    if (ttl === 0 || maxEntries === 0) return;
    cache.set(user, { values, expiresAt: now() + ttl });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
  }

  function cached(user: string): string[] | undefined {
    const e = cache.get(user);
    if (!e) return undefined;
    if (now() >= e.expiresAt) {
      cache.delete(user);
      return undefined;
    }
    cache.delete(user);
    cache.set(user, e);
    return e.values;
  }

  async function locate(user: string, protocol: Protocol, hint?: LocateHint): Promise<LocateResult> {
    const given = hint?.attributes ? valuesOf(hint.attributes, o.attribute) : undefined;
    let values: string[] | undefined;
    if (given !== undefined) {
      values = cleanValues(given);
      remember(user, values);
    } else {
      values = cached(user);
    }
    if (values === undefined) {
      lookups++;
      try {
        const attrs = await o.lookup(user);
        values = cleanValues((attrs && valuesOf(attrs, o.attribute)) ?? []);
      } catch (err) {
        return { ok: false, kind: 'tempfail', reason: `directory: ${(err as Error).message}` };
      }
      remember(user, values);
    }
    if (values.length === 0) return o.fallback.locate(user, protocol, hint);

    let backends: BackendRow[];
    try {
      backends = await o.store.listBackends();
    } catch (err) {
      return { ok: false, kind: 'tempfail', reason: `store: ${(err as Error).message}` };
    }
    const placement = resolveDirectoryPlacement(values, backends);
    switch (placement.kind) {
      case 'none':
        return o.fallback.locate(user, protocol, hint);
      case 'invalid':
        return { ok: false, kind: 'no-backend', reason: `${o.attribute} of ${user} ${placement.reason}` };
      case 'backend': {
        // Like an assigned placement: the directory's word holds even for a
        // draining or down backend; the health-aware locator around this one
        // sends such a login to the standby, or refuses it for now.
        const b = placement.backend;
        const port = b.ports[protocol];
        if (port === null) return { ok: false, kind: 'no-backend', reason: `backend ${b.name}, named by ${o.attribute}, has no ${protocol} port` };
        return { ok: true, backend: b, port, source: 'directory' };
      }
    }
  }

  return {
    locate,
    get lookups() {
      return lookups;
    },
    forget(user?: string) {
      if (user === undefined) cache.clear();
      else cache.delete(user);
    },
  };
}
