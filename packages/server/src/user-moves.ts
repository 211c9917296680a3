import type { LoginEvent, SessionRegistry } from '@mailfront/proxy-core';
import type { Locator, LocateResult } from '@mailfront/locator';
import type { Store } from '@mailfront/store';
import type { Kicker } from './kick';

/** Why a move was refused: the admin API turns the code into its HTTP status. */
export class MoveError extends Error {
  constructor(
    readonly code: 'not-found' | 'busy' | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'MoveError';
  }
}

export interface MoveResult {
  user: string;
  /** The stored placement before the move; null when the user had none. */
  from: string | null;
  to: string;
  /** Sessions of the user that were closed. */
  kicked: number;
  /** The user was already assigned there: nothing was done. */
  unchanged: boolean;
  /** From taking the lock to releasing it: how long the user's logins were held. */
  heldMs: number;
}

export interface UserMovesOptions {
  registry: SessionRegistry;
  store: Store;
  kicker: Kicker;
  /** How long a login of a user being moved waits for the move (admin.moveLoginWaitMs); read at each login. */
  loginWaitMs: () => number;
  /**
   * The longest a located login can take to show up in the registry (or
   * fail): its backend login timeout, and a margin. A login whose end
   * notice never comes is no longer waited for after this.
   */
  leaseMs: () => number;
  /** The move gives up (and changes nothing) when the user's sessions are not gone by then. */
  drainTimeoutMs: () => number;
  /** Poll interval while waiting for sessions to go. */
  pollMs?: number;
}

interface Lock {
  released: Promise<void>;
  release(): void;
}

/** A login between its lock check and its end; it expires (is no longer waited for) leaseMs after the locator answered. */
interface Lease {
  expires: number;
}

/**
 * `user move` on a running node, Dovecot's `delay_until` pattern:
 *
 *   lock the user → close their sessions and wait until none is left and no
 *   login of theirs is still on its way to the old backend → store the new
 *   placement → unlock.
 *
 * While locked, the user's logins wait (up to admin.moveLoginWaitMs) and then
 * go to the new backend, or get a temporary failure. So no login reaches the
 * old backend after the placement changed, and no session on the old backend
 * outlives the move: mailfront never has the user on two backends at once.
 *
 * "On its way": a login takes a lease before it asks the locator and gives it
 * back when the driver reports the login's end (LoginEvent), by which time a
 * successful one is in the registry and gets closed like the others. The
 * lease is taken in the same tick as the lock is checked, so a login either
 * sees the lock or is waited for.
 *
 * Per node: with several nodes on one store, each node holds its own locks
 * (see docs/operations.md).
 */
export class UserMoves {
  private readonly locks = new Map<string, Lock>();
  /** Per user: the logins between lock check and login end. */
  private readonly leases = new Map<string, Set<Lease>>();

  constructor(private readonly o: UserMovesOptions) {}

  isMoving(user: string): boolean {
    return this.locks.has(user);
  }

  /** The locator the sessions use: it holds logins of users being moved. */
  wrap(inner: Locator): Locator {
    return {
      locate: async (user, protocol, hint): Promise<LocateResult> => {
        const deadline = Date.now() + this.o.loginWaitMs();
        for (let lock = this.locks.get(user); lock; lock = this.locks.get(user)) {
          const left = deadline - Date.now();
          if (left <= 0 || !(await settlesWithin(lock.released, left))) {
            return { ok: false, kind: 'tempfail', reason: `${user} is being moved to another backend` };
          }
        }
        // No await between the lock check above and this lease.
        const lease = this.takeLease(user);
        let r: LocateResult;
        try {
          r = await inner.locate(user, protocol, hint);
        } catch (e) {
          this.dropLease(user, lease);
          throw e;
        }
        if (!r.ok) this.dropLease(user, lease);
        else lease.expires = Date.now() + this.o.leaseMs();
        return r;
      },
    };
  }

  /** The driver's login notice: a located login has ended (and, if it succeeded, is in the registry). */
  onLogin(e: LoginEvent): void {
    // Only a login the locator placed took a lease; which of the user's
    // located logins ended does not matter, only how many are left.
    if (e.backend === null) return;
    const set = this.leases.get(e.user);
    const located = set && [...set].find((l) => l.expires !== Infinity);
    if (located) this.dropLease(e.user, located);
  }

  async move(user: string, backend: string): Promise<MoveResult> {
    if (this.locks.has(user)) throw new MoveError('busy', `a move of ${user} is already under way`);
    if (!(await this.o.store.getBackend(backend))) throw new MoveError('not-found', `backend ${backend} does not exist`);
    if (this.locks.has(user)) throw new MoveError('busy', `a move of ${user} is already under way`);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.locks.set(user, { released, release });
    const started = Date.now();
    try {
      const previous = await this.o.store.getPlacement(user);
      if (previous?.backend === backend && previous.source === 'assigned') {
        return { user, from: backend, to: backend, kicked: 0, unchanged: true, heldMs: Date.now() - started };
      }
      const kicked = await this.closeSessions(user, started + this.o.drainTimeoutMs());
      await this.o.store.setPlacement(user, backend, 'assigned');
      return { user, from: previous?.backend ?? null, to: backend, kicked, unchanged: false, heldMs: Date.now() - started };
    } finally {
      this.locks.delete(user);
      release();
    }
  }

  /** Close the user's sessions until none is left and no located login is pending. */
  private async closeSessions(user: string, deadline: number): Promise<number> {
    const closed = new Set<string>();
    for (;;) {
      const live = this.o.registry.list().filter((s) => s.user === user);
      const fresh = live.filter((s) => !closed.has(s.id));
      for (const s of fresh) closed.add(s.id);
      if (fresh.length) this.o.kicker.kick(fresh);
      if (live.length === 0 && this.pendingLogins(user) === 0) return closed.size;
      if (Date.now() >= deadline) {
        throw new MoveError('timeout', `sessions or logins of ${user} were still open after ${this.o.drainTimeoutMs()} ms; the placement is unchanged`);
      }
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 20));
    }
  }

  private takeLease(user: string): Lease {
    const lease: Lease = { expires: Infinity };
    let set = this.leases.get(user);
    if (!set) this.leases.set(user, (set = new Set()));
    set.add(lease);
    return lease;
  }

  private dropLease(user: string, lease: Lease): void {
    const set = this.leases.get(user);
    set?.delete(lease);
    if (set?.size === 0) this.leases.delete(user);
  }

  /** Leases of the user not yet given back nor expired. */
  private pendingLogins(user: string): number {
    const now = Date.now();
    for (const l of this.leases.get(user) ?? []) if (l.expires <= now) this.dropLease(user, l);
    return this.leases.get(user)?.size ?? 0;
  }
}

/** Whether `p` settles within `ms`; the timer never outlives the wait. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}
