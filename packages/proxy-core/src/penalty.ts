import { BlockList, isIPv6 } from 'node:net';

/**
 * Escalating penalties for failed logins, per client address (an IPv6 client
 * per /64: one host owns a whole /64) and per user name — Dovecot's anvil
 * auth penalty, made explicit. Only failures count. After `threshold`
 * failures a key is refused for `baseMs`, doubling with every further
 * failure up to `maxMs`. A refused login is answered as a temporary failure
 * without checking the password, so a penalised client learns nothing about
 * it. Memory is bounded: at most `maxEntries` keys, least recently used
 * first out, so a botnet cannot grow the table without end.
 */
export interface PenaltyOptions {
  /** Failures before the first refusal. 0 disables penalties. */
  threshold: number;
  /** First refusal period. */
  baseMs: number;
  /** Longest refusal period. */
  maxMs: number;
  /** A key with no failure for this long is forgotten. */
  forgetAfterMs: number;
  maxEntries: number;
  /** Clients never penalised (e.g. a webmail host that logs in for many users). */
  trusted?: BlockList;
  now?: () => number;
}

interface Entry {
  failures: number;
  lastFailure: number;
  blockedUntil: number;
}

export type PenaltyKey = string;

export class PenaltyBox {
  private readonly entries = new Map<PenaltyKey, Entry>();
  private readonly now: () => number;

  constructor(private opts: PenaltyOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** New settings (SIGHUP); the failures counted so far are kept. */
  configure(opts: PenaltyOptions): void {
    this.opts = { ...opts, now: this.opts.now };
    while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The keys a login counts against: the client's address block, and the user name if known. */
  keysFor(address: string, user?: string): PenaltyKey[] {
    if (this.isTrusted(address)) return [];
    const keys = [`ip:${addressBlock(address)}`];
    if (user) keys.push(`user:${user.toLowerCase()}`);
    return keys;
  }

  isTrusted(address: string): boolean {
    return this.opts.trusted?.check(address, isIPv6(address) ? 'ipv6' : 'ipv4') ?? false;
  }

  /** Milliseconds until every key may log in again; 0 when none is penalised. */
  refusedFor(keys: PenaltyKey[]): number {
    if (this.opts.threshold === 0) return 0;
    const now = this.now();
    let wait = 0;
    for (const k of keys) {
      const e = this.entries.get(k);
      if (e && e.blockedUntil > now) wait = Math.max(wait, e.blockedUntil - now);
    }
    return wait;
  }

  recordFailure(keys: PenaltyKey[]): void {
    if (this.opts.threshold === 0) return;
    const now = this.now();
    for (const k of keys) {
      let e = this.entries.get(k);
      if (e && now - e.lastFailure > this.opts.forgetAfterMs) e = undefined;
      e ??= { failures: 0, lastFailure: now, blockedUntil: 0 };
      e.failures++;
      e.lastFailure = now;
      const over = e.failures - this.opts.threshold;
      if (over >= 0) e.blockedUntil = now + Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(over, 30));
      // Re-insert: Map order is the LRU order.
      this.entries.delete(k);
      this.entries.set(k, e);
    }
    while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** A successful login clears its address block's record (not the user's: an attacker may guess right once). */
  recordSuccess(keys: PenaltyKey[]): void {
    for (const k of keys) if (k.startsWith('ip:')) this.entries.delete(k);
  }

  /** Keys under penalty now (for metrics and the admin). */
  active(): number {
    const now = this.now();
    let n = 0;
    for (const e of this.entries.values()) if (e.blockedUntil > now) n++;
    return n;
  }

  get size(): number {
    return this.entries.size;
  }
}

/** IPv4: the address; IPv6: its /64. */
export function addressBlock(address: string): string {
  if (!isIPv6(address)) return address;
  const expanded = expandIpv6(address);
  return `${expanded.slice(0, 4).join(':')}::/64`;
}

function expandIpv6(a: string): string[] {
  const [head = '', tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => (g.includes('.') ? g : parseInt(g || '0', 16).toString(16)));
}
