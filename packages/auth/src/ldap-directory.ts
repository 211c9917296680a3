import type { Entry } from 'ldapts';
import { AuthError } from './errors';
import { checkTemplate, expandDnTemplate, expandFilterTemplate } from './ldap-filter';
import { describeError, isLdapResult, LdapPool, openLdapConnection, parseLdapUrl, type LdapConnection } from './ldap-pool';
import { canonicalUserName } from './user-name';

export type LdapScope = 'base' | 'one' | 'sub';

export interface LdapDirectoryOptions {
  urls: readonly string[];
  /** ldap:// URLs: StartTLS before anything else, or fail. */
  startTls: boolean;
  /** PEM CA bundle for the directory's certificate; undefined = Node's default CAs. */
  ca?: string | Buffer;
  /** Service identity for searches; both or neither. Without: searches are anonymous. */
  bindDn?: string;
  bindPassword?: string;
  /** Search mode: where and how to look for the user. */
  baseDn?: string;
  scope?: LdapScope;
  /** Search mode: a filter with %u, e.g. `(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))`. */
  filter?: string;
  /** Direct-bind mode, instead of filter: the user's DN with %u, e.g. `uid=%u,ou=people,dc=example,dc=org`. */
  dnTemplate?: string;
  /** The attribute whose value is the user's canonical name (what backends are told). */
  userAttribute: string;
  /** More attributes read with the entry, e.g. the placement attribute. */
  attributes?: readonly string[];
  connectTimeoutMs: number;
  timeoutMs: number;
  /** Connections in each of the two pools (searches, user binds). */
  poolSize: number;
}

/** An entry as read: attribute names as configured (not as the server spelled them); a missing attribute is []. */
export interface DirectoryEntry {
  dn: string;
  attributes: Record<string, string[]>;
}

/** The outcome of checking a login against the directory, in enough detail for `mailfront ldap test`. */
export type LdapCheck =
  | { result: 'ok'; dn: string; user: string; attributes: Record<string, string[]> }
  /** the login name or password cannot be tried (empty password, control characters…) */
  | { result: 'refused'; reason: string }
  | { result: 'unknown-user'; dn?: string }
  | { result: 'ambiguous'; dns: string[] }
  | { result: 'password-mismatch'; dn: string; code: number }
  /** the entry cannot be used: no (valid) value of the user attribute */
  | { result: 'bad-entry'; dn: string; reason: string; attributes: Record<string, string[]> }
  | { result: 'unavailable'; reason: string; dn?: string };

/** How the directory is asked about a login, for display. */
export type LdapQuery =
  | { mode: 'search'; baseDn: string; scope: LdapScope; filter: string; serviceDn: string | null }
  | { mode: 'direct'; dn: string };

/**
 * Bind result codes that are about this user, not about the directory
 * (RFC 4511 Appendix A): wrong password (49), an entry that cannot
 * authenticate by password (48), an account the server will not let in now,
 * e.g. locked by a password policy (50, 53). Anything else is the directory's
 * trouble: a temporary failure, never "wrong password".
 */
const USER_BIND_FAILURES = new Set([48, 49, 50, 53]);
/** noSuchObject: the direct-bind DN names no entry (most servers say 49 instead). */
const NO_SUCH_OBJECT = 32;

/**
 * The directory: finds a user's entry, checks a password by binding as it,
 * reads the entry's attributes.
 *
 * Two pools, so that an identity never leaks from one use to the next:
 * - searches run on connections bound once as the service DN and never
 *   rebound;
 * - user binds run on connections used for nothing but binds (and, in
 *   direct-bind mode, for reading the entry just bound as). Whoever the last
 *   bind made such a connection, the next operation on it is another bind.
 * A connection is never moved from one pool to the other.
 */
export class LdapDirectory {
  private readonly search: LdapPool;
  private readonly bind: LdapPool;
  private readonly attributes: string[];

  constructor(private readonly o: LdapDirectoryOptions) {
    if (o.urls.length === 0) throw new AuthError('invalid-option', 'at least one LDAP URL is needed');
    for (const u of o.urls) parseLdapUrl(u);
    if ((o.filter === undefined) === (o.dnTemplate === undefined)) throw new AuthError('invalid-option', 'exactly one of filter and dnTemplate is needed');
    if ((o.bindDn === undefined) !== (o.bindPassword === undefined)) throw new AuthError('invalid-option', 'bindDn and bindPassword go together');
    if (o.bindPassword === '') throw new AuthError('invalid-option', 'the service bind password is empty (that would be an anonymous bind)');
    if (o.filter !== undefined) {
      if (o.baseDn === undefined) throw new AuthError('invalid-option', 'a search (filter) needs a baseDn');
      const problem = checkTemplate('filter', o.filter);
      if (problem) throw new AuthError('invalid-option', `filter ${problem}`);
    }
    if (o.dnTemplate !== undefined) {
      const problem = checkTemplate('dn', o.dnTemplate);
      if (problem) throw new AuthError('invalid-option', `dnTemplate ${problem}`);
    }
    if (!Number.isSafeInteger(o.poolSize) || o.poolSize < 1) throw new AuthError('invalid-option', `poolSize must be ≥ 1, got ${o.poolSize}`);
    // Case-insensitively unique, the user attribute first.
    const seen = new Set<string>();
    this.attributes = [o.userAttribute, ...(o.attributes ?? [])].filter((a) => !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));

    const connect = { urls: o.urls, startTls: o.startTls, ca: o.ca, connectTimeoutMs: o.connectTimeoutMs, timeoutMs: o.timeoutMs };
    // A caller waits for a free connection at most as long as one login's operations may take.
    const waitTimeoutMs = o.connectTimeoutMs + 2 * o.timeoutMs;
    this.search = new LdapPool({
      name: 'search',
      size: o.poolSize,
      waitTimeoutMs,
      open: async () => {
        const c = await openLdapConnection(connect);
        if (o.bindDn === undefined) return c;
        try {
          await c.client.bind(o.bindDn, o.bindPassword);
        } catch (err) {
          c.destroy();
          // Refused service credentials are a configuration fault: every login would fail alike.
          throw new AuthError('directory-unavailable', `service bind as ${o.bindDn} on ${c.url} failed: ${describeError(err)}`);
        }
        return c;
      },
      // Never reuse a connection that lost its service bind.
      reusable: (c) => c.open() && (o.bindDn === undefined || c.client.isBound),
    });
    this.bind = new LdapPool({
      name: 'bind',
      size: o.poolSize,
      waitTimeoutMs,
      open: () => openLdapConnection(connect),
      reusable: (c) => c.open(),
    });
  }

  /** What would be asked for `login` (canonical), for display. */
  query(login: string): LdapQuery {
    if (this.o.dnTemplate !== undefined) return { mode: 'direct', dn: expandDnTemplate(this.o.dnTemplate, login) };
    return { mode: 'search', baseDn: this.o.baseDn!, scope: this.o.scope ?? 'sub', filter: expandFilterTemplate(this.o.filter!, login), serviceDn: this.o.bindDn ?? null };
  }

  /** The attribute names read with every entry, the user attribute first. */
  get attributeNames(): readonly string[] {
    return this.attributes;
  }

  /** Connections opened so far by the search and bind pools. */
  get connectionsOpened(): { search: number; bind: number } {
    return { search: this.search.opened, bind: this.bind.opened };
  }

  /**
   * Check `password` for `rawLogin` (as the client sent it). Never throws:
   * every outcome, the directory being down included, is a result.
   */
  async verify(rawLogin: string, password: string): Promise<LdapCheck> {
    let login: string;
    try {
      login = canonicalUserName(rawLogin);
    } catch (err) {
      return { result: 'refused', reason: `invalid user name: ${(err as Error).message}` };
    }
    // RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an
    // "unauthenticated" bind, which some servers answer with success.
    if (password === '') return { result: 'refused', reason: 'empty password' };
    return this.o.dnTemplate !== undefined ? this.verifyDirect(login, password) : this.verifySearch(login, password);
  }

  private async verifySearch(login: string, password: string): Promise<LdapCheck> {
    let entries: DirectoryEntry[];
    try {
      entries = await this.find(login);
    } catch (err) {
      return { result: 'unavailable', reason: `search: ${describeError(err)}` };
    }
    if (entries.length === 0) return { result: 'unknown-user' };
    if (entries.length > 1) return { result: 'ambiguous', dns: entries.map((e) => e.dn) };
    const entry = entries[0]!;
    try {
      await this.bind.use((c) => c.client.bind(entry.dn, password));
    } catch (err) {
      return this.bindFailure(entry.dn, err);
    }
    return this.withCanonicalName(entry);
  }

  private async verifyDirect(login: string, password: string): Promise<LdapCheck> {
    const dn = expandDnTemplate(this.o.dnTemplate!, login);
    let entry: DirectoryEntry | undefined;
    try {
      entry = await this.bind.use(async (c) => {
        await c.client.bind(dn, password);
        // Read the entry as the user just bound: it needs no service account,
        // and users may read their own entry under the usual ACLs.
        return (await this.readEntry(c, dn))[0];
      });
    } catch (err) {
      return this.bindFailure(dn, err);
    }
    if (!entry) return { result: 'bad-entry', dn, reason: 'bound, but the entry cannot be read as its own user', attributes: {} };
    return this.withCanonicalName(entry);
  }

  private bindFailure(dn: string, err: unknown): LdapCheck {
    if (isLdapResult(err)) {
      if (USER_BIND_FAILURES.has(err.code)) return { result: 'password-mismatch', dn, code: err.code };
      if (err.code === NO_SUCH_OBJECT) return { result: 'unknown-user', dn };
    }
    return { result: 'unavailable', dn, reason: `bind: ${describeError(err)}` };
  }

  /**
   * The canonical user name is the value of the user attribute, trimmed and
   * lower-cased: the same whichever spelling or alias the user logged in
   * with, so one mailbox has one name (for the success cache, placements and
   * the backend login). Several values: the smallest, so the choice does not
   * depend on the order the server returns them in.
   */
  private withCanonicalName(entry: DirectoryEntry): LdapCheck {
    const user = this.canonicalNameOf(entry);
    if (user === undefined) {
      const values = entry.attributes[this.o.userAttribute] ?? [];
      return {
        result: 'bad-entry',
        dn: entry.dn,
        reason: values.length === 0 ? `entry has no ${this.o.userAttribute}` : `no usable ${this.o.userAttribute} value`,
        attributes: entry.attributes,
      };
    }
    return { result: 'ok', dn: entry.dn, user, attributes: entry.attributes };
  }

  /** The canonical user name an entry gives (see withCanonicalName); undefined if it has no usable value. */
  canonicalNameOf(entry: DirectoryEntry): string | undefined {
    const names: string[] = [];
    for (const v of entry.attributes[this.o.userAttribute] ?? []) {
      try {
        names.push(canonicalUserName(v));
      } catch {
        // unusable value; others may do
      }
    }
    return names.sort()[0];
  }

  /** The attribute the canonical name comes from, for display. */
  get userAttribute(): string {
    return this.o.userAttribute;
  }

  /**
   * The entry for `login` (canonical), without a password: for placement
   * lookups when the login did not come through verify() (a success-cache
   * hit, another auth source) and for `mailfront ldap test`. Uses the
   * search pool (the service identity), in direct-bind mode as a base-scope
   * read of the templated DN. Throws AuthError 'directory-unavailable' when
   * the directory cannot answer, and when several entries match.
   */
  async lookup(login: string): Promise<DirectoryEntry | undefined> {
    let entries: DirectoryEntry[];
    try {
      entries = await this.find(login);
    } catch (err) {
      throw new AuthError('directory-unavailable', `lookup of ${login}: ${describeError(err)}`);
    }
    if (entries.length > 1) throw new AuthError('directory-unavailable', `lookup of ${login}: ${entries.length} entries match`);
    return entries[0];
  }

  /** At most two entries: enough to tell one from many. */
  private find(login: string): Promise<DirectoryEntry[]> {
    if (this.o.dnTemplate !== undefined) {
      const dn = expandDnTemplate(this.o.dnTemplate, login);
      return this.search.use(async (c) => {
        try {
          return await this.readEntry(c, dn);
        } catch (err) {
          if (isLdapResult(err) && err.code === NO_SUCH_OBJECT) return [];
          throw err;
        }
      });
    }
    const filter = expandFilterTemplate(this.o.filter!, login);
    return this.search.use(async (c) => {
      const r = await c.client.search(this.o.baseDn!, {
        scope: this.o.scope ?? 'sub',
        filter,
        attributes: this.attributes,
        sizeLimit: 2,
        // The server's own limit, in whole seconds (RFC 4511 §4.5.1.5); ours is timeoutMs.
        timeLimit: Math.max(1, Math.ceil(this.o.timeoutMs / 1000)),
      });
      return r.searchEntries.map((e) => this.toEntry(e));
    });
  }

  private async readEntry(c: LdapConnection, dn: string): Promise<DirectoryEntry[]> {
    const r = await c.client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: this.attributes, sizeLimit: 1 });
    return r.searchEntries.map((e) => this.toEntry(e));
  }

  /** Attribute values as strings under the configured names; servers may spell names in another case. */
  private toEntry(e: Entry): DirectoryEntry {
    const attributes: Record<string, string[]> = {};
    for (const name of this.attributes) {
      const key = Object.keys(e).find((k) => k !== 'dn' && k.toLowerCase() === name.toLowerCase());
      const raw = key === undefined ? [] : e[key]!;
      const list = Array.isArray(raw) ? raw : [raw];
      attributes[name] = list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
    }
    return { dn: e.dn, attributes };
  }

  /** Close the pools' connections (idle ones now, busy ones when their operation ends). */
  close(): void {
    this.search.close();
    this.bind.close();
  }
}
