import type { BackendRow, PlacementRow, Protocol, Store } from '@mailfront/store';
import { rendezvousPick } from './rendezvous';
import type { LocateHint, LocateResult, Locator } from './types';

/**
 * How many times to re-place a user whose chosen backend vanished between
 * reading the backend list and storing the placement (an admin's
 * `backend remove` racing a first login). Twice in a row is not a race any
 * more; give up with tempfail.
 */
const MAX_PLACE_ATTEMPTS = 3;

/**
 * user → backend. The mailbox lives on one backend, so a placement is per
 * user, shared by all protocols: a user is placed on the first login with any
 * protocol, and a later login with a protocol that backend lacks fails rather
 * than opening a second, empty mailbox elsewhere.
 *
 * - A stored placement (assigned by an admin, or hashed on first login) wins,
 *   even on a draining or down backend: the mailbox is there. Draining does
 *   not move mailboxes (that is `user move`); where such a user's logins go
 *   meanwhile (the standby, or nowhere) is the health-aware locator's call.
 * - Otherwise the user is placed by rendezvous hashing over the active
 *   backends the hint calls placeable (the healthy ones), and the choice is
 *   stored with placeIfAbsent, so that nodes placing the same user at once
 *   agree, and later backend additions do not move the user.
 */
export function createLocator(store: Store): Locator {
  async function locate(user: string, protocol: Protocol, hint?: LocateHint): Promise<LocateResult> {
    try {
      for (let attempt = 1; attempt <= MAX_PLACE_ATTEMPTS; attempt++) {
        const found = await placedOrNew(user, hint?.placeable);
        if (found.kind === 'no-backend') return { ok: false, kind: found.unavailable ? 'unavailable' : 'no-backend', reason: found.reason };
        if (found.kind === 'located') return withPort(found.backend, protocol, found.source);
        // 'retry': the backend went away under us; look again.
      }
      return { ok: false, kind: 'tempfail', reason: `placement of ${user} kept changing during ${MAX_PLACE_ATTEMPTS} attempts` };
    } catch (err) {
      return { ok: false, kind: 'tempfail', reason: `store: ${(err as Error).message}` };
    }
  }

  type Found =
    | { kind: 'located'; backend: BackendRow; source: 'assigned' | 'hashed' | 'new' }
    | { kind: 'no-backend'; reason: string; unavailable?: true }
    | { kind: 'retry' };

  async function placedOrNew(user: string, placeable: LocateHint['placeable']): Promise<Found> {
    const placement = await store.getPlacement(user);
    if (placement) {
      const backend = await store.getBackend(placement.backend);
      if (backend) return { kind: 'located', backend, source: placement.source };
      // The backend was removed after we read the placement (the SQLite
      // store's foreign key keeps a placement from outliving its backend
      // otherwise). Drop it and place the user afresh.
      await store.removePlacement(user);
    }

    const backends = await store.listBackends();
    // Any active backend, whatever its protocols: see the note on createLocator.
    const active = backends.filter((b) => b.state === 'active');
    // A new mailbox on a backend that is down now would make the first login fail.
    const candidates = placeable ? active.filter(placeable) : active;
    const choice = rendezvousPick(
      user,
      candidates.map((b) => b.name),
    );
    if (choice === undefined) {
      if (active.length > 0) return { kind: 'no-backend', reason: `no healthy active backend to place the user on (${active.length} active, all down)`, unavailable: true };
      return { kind: 'no-backend', reason: 'no active backend to place the user on' };
    }

    let stored: PlacementRow;
    try {
      stored = await store.placeIfAbsent(user, choice);
    } catch (err) {
      // The chosen backend was removed since we listed it.
      if ((err as { code?: unknown } | null)?.code === 'not-found') return { kind: 'retry' };
      throw err;
    }
    // Another node may have placed the user first, on another backend if its
    // view of the backend set differed; its row is the one that counts.
    const backend = stored.backend === choice ? active.find((b) => b.name === choice) : await store.getBackend(stored.backend);
    if (!backend) return { kind: 'retry' };
    return { kind: 'located', backend, source: stored.source === 'hashed' ? 'new' : 'assigned' };
  }

  return { locate };
}

function withPort(backend: BackendRow, protocol: Protocol, source: 'assigned' | 'hashed' | 'new'): LocateResult {
  const port = backend.ports[protocol];
  if (port === null) {
    return { ok: false, kind: 'no-backend', reason: `backend ${backend.name}, where the user is placed, has no ${protocol} port` };
  }
  return { ok: true, backend, port, source };
}
