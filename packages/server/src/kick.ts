import type { SessionInfo, SessionRegistry } from '@mailfront/proxy-core';

/** Which sessions an admin means: exactly one of these. */
export type KickSelector = { user: string } | { backend: string } | { session: string };

export function selectSessions(registry: SessionRegistry, sel: KickSelector): SessionInfo[] {
  const all = registry.list();
  if ('session' in sel) return all.filter((s) => s.id === sel.session);
  if ('user' in sel) return all.filter((s) => s.user === sel.user);
  return all.filter((s) => s.backend === sel.backend);
}

/**
 * Ends sessions from outside (`mailfront kick`, `user move`). Each is closed
 * with the protocol's goodbye when it is quiet (IMAP `* BYE`, POP3 `-ERR`,
 * SMTP `421`), else without words: see SessionHandle.close. Spread over a
 * time, the closes are evenly spaced, oldest session first, so that a
 * backend's clients do not all reconnect in the same second.
 */
export class Kicker {
  private readonly pending = new Set<NodeJS.Timeout>();

  constructor(private readonly registry: SessionRegistry) {}

  /** Close the sessions now (spreadMs 0), or the first now and the rest spaced evenly within spreadMs. */
  kick(sessions: readonly SessionInfo[], spreadMs = 0): number {
    const ordered = [...sessions].sort((a, b) => a.since.getTime() - b.since.getTime());
    ordered.forEach((s, i) => {
      const delay = Math.floor((i * spreadMs) / ordered.length);
      if (delay === 0) return this.close(s.id);
      const t = setTimeout(() => {
        this.pending.delete(t);
        this.close(s.id);
      }, delay);
      t.unref();
      this.pending.add(t);
    });
    return ordered.length;
  }

  /** Forget the kicks still scheduled (server shutdown closes every session anyway). */
  cancel(): void {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }

  private close(id: string): void {
    // Gone already (the client left while it waited its turn): nothing to do.
    this.registry.get(id)?.close('kicked');
  }
}
