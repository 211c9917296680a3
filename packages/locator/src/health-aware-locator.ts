import { PROTOCOLS, type BackendRow, type Protocol, type Store } from '@mailfront/store';
import type { HealthView } from './health';
import type { LocateHint, LocateResult, Locator } from './types';

/** The little of a logger this needs (pino's shape), so that the locator depends on no logging package. */
export interface RouteLogger {
  info(obj: Record<string, unknown>, msg: string): void;
}

export interface HealthAwareLocatorOptions {
  /** Decides where the user's mailbox is: the store's placement, or the directory's. */
  inner: Locator;
  /** Reads the standby's row fresh, so that `backend set --standby` applies at the next login. */
  store: Pick<Store, 'getBackend'>;
  health: HealthView;
  log?: RouteLogger;
}

/**
 * Whether `b` may take a new placement: active, and every protocol it serves
 * up. A placement is for good, so a backend with any breaker open gets no
 * new mailboxes, whichever protocol the first login came with.
 */
export function placeableWith(health: HealthView): (b: BackendRow) => boolean {
  return (b) => b.state === 'active' && PROTOCOLS.every((p) => b.ports[p] === null || health.isUp(b.name, p));
}

/**
 * Routing around trouble, as a wrapper so that every locator (store or
 * directory placement) gets it:
 *
 * | the user's backend            | its standby                          | the login goes to          |
 * |-------------------------------|--------------------------------------|----------------------------|
 * | active, breaker closed        | (not asked)                          | the backend                |
 * | draining, or breaker open     | active, closed, has the protocol     | the standby                |
 * | draining, or breaker open     | none, draining, open, or no port     | nowhere: temporary failure |
 *
 * One hop only: a standby's own standby is not followed. The temporary
 * failure is immediate (`unavailable`), with no connect attempt to wait out.
 * New placements skip draining and unhealthy backends (see placeableWith).
 */
export function createHealthAwareLocator(o: HealthAwareLocatorOptions): Locator {
  const placeable = placeableWith(o.health);

  async function locate(user: string, protocol: Protocol, hint?: LocateHint): Promise<LocateResult> {
    const r = await o.inner.locate(user, protocol, { ...hint, placeable });
    if (!r.ok) return r;
    const b = r.backend;
    const reason = b.state === 'draining' ? 'draining' : o.health.isUp(b.name, protocol) ? null : 'down';
    if (reason === null) return r;

    const why = reason === 'down' ? `backend ${b.name} is down for ${protocol} (breaker open)` : `backend ${b.name} is draining`;
    const refuse = (detail: string): LocateResult => ({ ok: false, kind: 'unavailable', reason: `${why} and ${detail}` });
    if (b.standby === null) return refuse('has no standby');
    let s: BackendRow | undefined;
    try {
      s = await o.store.getBackend(b.standby);
    } catch (err) {
      return { ok: false, kind: 'tempfail', reason: `store: ${(err as Error).message}` };
    }
    // Removing a backend clears it as a standby; this is that race.
    if (!s) return refuse(`its standby ${b.standby} no longer exists`);
    if (s.state === 'draining') return refuse(`its standby ${s.name} is draining too`);
    if (!o.health.isUp(s.name, protocol)) return refuse(`its standby ${s.name} is down for ${protocol} too`);
    const port = s.ports[protocol];
    if (port === null) return refuse(`its standby ${s.name} has no ${protocol} port`);
    o.log?.info({ user, protocol, backend: s.name, standbyFor: b.name, why: reason }, 'login goes to the standby');
    return { ok: true, backend: s, port, source: r.source, standbyFor: { backend: b.name, reason } };
  }

  return { locate };
}
