import { performance } from 'node:perf_hooks';
import type { Protocol } from '@mailfront/store';

/**
 * Backend health: one circuit breaker per backend and protocol, fed by the
 * active checks (connect + greeting) and by real logins. Pure state here; the
 * checks' I/O lives in the server. Time comes from an injected monotonic
 * clock, so tests step through every transition without waiting.
 *
 *   closed ──(failuresToOpen failed checks, or logins, in a row)──▶ open
 *   open ──(openMs later: half-open)── next active check ok ──▶ closed
 *                                      next active check fails ──▶ open again
 *
 * While open or half-open the backend takes no new logins for that protocol.
 * Only an active check decides in half-open: the one probe, rather than a
 * burst of users finding out whether the backend is back.
 *
 * Checks and logins are counted apart: a greeting says less than a login, so
 * a backend that greets but then stalls every login (a full disk, a hung
 * auth process) must still open its breaker through the logins, however
 * many greeting checks succeed in between. A successful login proves both.
 */

export interface BreakerOptions {
  /** Consecutive failed checks, or consecutive failed logins, that open a closed breaker. */
  failuresToOpen: number;
  /** How long an open breaker stays shut before the next check may close it. */
  openMs: number;
}

/** Failures in a row while closed, per source. */
export interface FailureCounts {
  check: number;
  login: number;
}

export type Breaker = { at: 'closed'; failures: FailureCounts } | { at: 'open'; since: number };

export type BreakerPhase = 'closed' | 'open' | 'half-open';

/** Where a result came from: only a check is a half-open breaker's probe. */
export type ResultSource = 'check' | 'login';

export const CLOSED: Breaker = Object.freeze({ at: 'closed', failures: Object.freeze({ check: 0, login: 0 }) });

export function breakerPhase(b: Breaker, now: number, o: BreakerOptions): BreakerPhase {
  switch (b.at) {
    case 'closed':
      return 'closed';
    case 'open':
      return now - b.since >= o.openMs ? 'half-open' : 'open';
    default:
      return assertNever(b);
  }
}

/** The breaker after one result. Pure: the same inputs give the same breaker. */
export function onResult(b: Breaker, source: ResultSource, ok: boolean, now: number, o: BreakerOptions): Breaker {
  switch (b.at) {
    case 'closed': {
      const f = b.failures;
      if (ok) {
        // A login that worked proves what a check would; a check proves less.
        if (source === 'login') return f.check === 0 && f.login === 0 ? b : CLOSED;
        return f.check === 0 ? b : { at: 'closed', failures: { ...f, check: 0 } };
      }
      const n = f[source] + 1;
      return n >= o.failuresToOpen ? { at: 'open', since: now } : { at: 'closed', failures: { ...f, [source]: n } };
    }
    case 'open':
      // Open: nothing is learned until openMs have passed. Half-open: the
      // probe decides; a login that was already under way when the breaker
      // opened proves nothing either way.
      if (breakerPhase(b, now, o) === 'open' || source !== 'check') return b;
      return ok ? CLOSED : { at: 'open', since: now };
    default:
      return assertNever(b);
  }
}

/** What a login's outcome says about the backend (the session driver's FailureKind names). */
export type LoginVerdict = 'success' | 'failure' | 'irrelevant';

/**
 * connect, timeout and protocol are the backend's fault; a rejected password
 * proves the backend answers. The rest (the backend's own refusal, the client
 * leaving, our bugs) says nothing about whether the backend is up.
 */
export function loginVerdict(ok: boolean, kind: string | null | undefined): LoginVerdict {
  if (ok) return 'success';
  switch (kind) {
    case 'connect':
    case 'timeout':
    case 'protocol':
      return 'failure';
    case 'auth-failed':
      return 'success';
    default:
      return 'irrelevant';
  }
}

/** What the router asks: may this backend take a new login for this protocol now? */
export interface HealthView {
  isUp(backend: string, protocol: Protocol): boolean;
}

export type ProbeState = 'up' | 'down' | 'unknown';

/** One backend's health for one protocol, as `backend status` shows it. */
export interface ProtocolHealth {
  protocol: Protocol;
  /** The last active check: up, down, or unknown before the first one. */
  probe: ProbeState;
  /** ISO time of the last active check; null before the first. */
  lastCheckAt: string | null;
  /** Why the last failed check or login failed; cleared by a successful check. */
  lastError: string | null;
  breaker: BreakerPhase;
  /** Failed checks and failed logins in a row while closed (0 when open). */
  failures: FailureCounts;
  /** ISO time the breaker last opened; null while closed. */
  openedAt: string | null;
}

export interface BreakerChange {
  backend: string;
  protocol: Protocol;
  from: BreakerPhase;
  to: BreakerPhase;
  source: ResultSource;
  /** The failure that opened it (or the check that closed it). */
  detail: string | null;
}

export interface HealthBookOptions extends BreakerOptions {
  /** Monotonic ms (breaker timing). Default performance.now. */
  now?: () => number;
  /** Wall clock for the times shown to admins. Default Date.now. */
  wallNow?: () => number;
  /** Called when a breaker opens, closes or re-opens: for the log. */
  onChange?: (c: BreakerChange) => void;
}

interface Entry {
  breaker: Breaker;
  probe: ProbeState;
  lastCheckAt: number | null;
  lastError: string | null;
  openedAt: number | null;
}

/**
 * Every breaker of this node. Each node keeps its own: what matters is
 * whether this node can reach the backend. Unknown backends and protocols
 * are up (closed): a new backend takes logins before its first check.
 */
export class HealthBook implements HealthView {
  private opts: BreakerOptions;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly onChange: ((c: BreakerChange) => void) | undefined;
  private readonly entries = new Map<string, Map<Protocol, Entry>>();

  constructor(o: HealthBookOptions) {
    this.opts = checkOptions(o);
    this.now = o.now ?? (() => performance.now());
    this.wallNow = o.wallNow ?? (() => Date.now());
    this.onChange = o.onChange;
  }

  /** New thresholds apply to the next result; breakers keep their state. */
  configure(o: BreakerOptions): void {
    this.opts = checkOptions(o);
  }

  /** An active check's result. */
  recordCheck(backend: string, protocol: Protocol, ok: boolean, error?: string): void {
    const e = this.entry(backend, protocol);
    e.probe = ok ? 'up' : 'down';
    e.lastCheckAt = this.wallNow();
    if (ok) e.lastError = null;
    else e.lastError = `check: ${error ?? 'failed'}`;
    this.apply(backend, protocol, e, 'check', ok, ok ? null : e.lastError);
  }

  /** A real login's outcome, as the session driver reports it (ok, and the FailureKind when not). */
  recordLogin(backend: string, protocol: Protocol, ok: boolean, kind?: string | null, detail?: string): void {
    const verdict = loginVerdict(ok, kind);
    if (verdict === 'irrelevant') return;
    const e = this.entry(backend, protocol);
    if (verdict === 'failure') e.lastError = `login: ${kind}${detail ? `: ${detail}` : ''}`;
    this.apply(backend, protocol, e, 'login', verdict === 'success', verdict === 'failure' ? e.lastError : null);
  }

  isUp(backend: string, protocol: Protocol): boolean {
    const e = this.entries.get(backend)?.get(protocol);
    return e === undefined || breakerPhase(e.breaker, this.now(), this.opts) === 'closed';
  }

  /** Forget backends that no longer exist. */
  retain(backends: Iterable<string>): void {
    const keep = new Set(backends);
    for (const name of [...this.entries.keys()]) if (!keep.has(name)) this.entries.delete(name);
  }

  /** The health of `backend` for each of `protocols` (those it has a port for). */
  health(backend: string, protocols: readonly Protocol[]): ProtocolHealth[] {
    const now = this.now();
    return protocols.map((protocol) => {
      const e = this.entries.get(backend)?.get(protocol);
      if (!e) return { protocol, probe: 'unknown', lastCheckAt: null, lastError: null, breaker: 'closed', failures: { check: 0, login: 0 }, openedAt: null };
      return {
        protocol,
        probe: e.probe,
        lastCheckAt: e.lastCheckAt === null ? null : new Date(e.lastCheckAt).toISOString(),
        lastError: e.lastError,
        breaker: breakerPhase(e.breaker, now, this.opts),
        failures: e.breaker.at === 'closed' ? { ...e.breaker.failures } : { check: 0, login: 0 },
        openedAt: e.openedAt === null ? null : new Date(e.openedAt).toISOString(),
      };
    });
  }

  private entry(backend: string, protocol: Protocol): Entry {
    let byProtocol = this.entries.get(backend);
    if (!byProtocol) this.entries.set(backend, (byProtocol = new Map()));
    let e = byProtocol.get(protocol);
    if (!e) byProtocol.set(protocol, (e = { breaker: CLOSED, probe: 'unknown', lastCheckAt: null, lastError: null, openedAt: null }));
    return e;
  }

  private apply(backend: string, protocol: Protocol, e: Entry, source: ResultSource, ok: boolean, detail: string | null): void {
    const now = this.now();
    const from = breakerPhase(e.breaker, now, this.opts);
    const next = onResult(e.breaker, source, ok, now, this.opts);
    if (next.at === 'open' && next !== e.breaker) e.openedAt = this.wallNow();
    if (next.at === 'closed') e.openedAt = null;
    e.breaker = next;
    const to = breakerPhase(next, now, this.opts);
    if (from !== to) this.onChange?.({ backend, protocol, from, to, source, detail });
  }
}

function checkOptions(o: BreakerOptions): BreakerOptions {
  if (!Number.isInteger(o.failuresToOpen) || o.failuresToOpen < 1) throw new RangeError('failuresToOpen must be an integer ≥ 1');
  if (!Number.isInteger(o.openMs) || o.openMs < 0) throw new RangeError('openMs must be an integer ≥ 0');
  return { failuresToOpen: o.failuresToOpen, openMs: o.openMs };
}

function assertNever(x: never): never {
  throw new Error(`unexpected breaker ${JSON.stringify(x)}`);
}
