import type { Protocol } from '@mailfront/store';

export type SessionPhase = 'pre-login' | 'starttls' | 'login' | 'relay';

/** A live session as the admin sees it (mailfront sessions, kick, shutdown). */
export interface SessionInfo {
  id: string;
  protocol: Protocol;
  client: string;
  phase: SessionPhase;
  tls: boolean;
  user: string | null;
  backend: string | null;
  since: Date;
  bytesFromClient: number;
  bytesFromBackend: number;
}

export interface SessionHandle {
  info(): SessionInfo;
  /**
   * Milliseconds without traffic: a quiet session is between commands, so
   * closing it cuts nothing in the middle. 0 while a login is under way.
   */
  quietForMs(): number;
  /**
   * End the session politely: the protocol's BYE / -ERR / 421 when the session
   * is quiet (QUIET_MS), so the words never land inside a response or a message
   * transfer; otherwise it is closed without words.
   */
  close(reason: 'shutdown' | 'kicked'): void;
}

/** How long a session must have been silent to count as between commands. */
export const QUIET_MS = 250;

export class SessionRegistry {
  private readonly sessions = new Map<string, SessionHandle>();

  add(id: string, handle: SessionHandle): void {
    this.sessions.set(id, handle);
  }
  remove(id: string): void {
    this.sessions.delete(id);
  }
  get size(): number {
    return this.sessions.size;
  }
  get(id: string): SessionHandle | undefined {
    return this.sessions.get(id);
  }
  ids(): string[] {
    return [...this.sessions.keys()];
  }
  list(): SessionInfo[] {
    return [...this.sessions.values()].map((s) => s.info());
  }
  closeAll(reason: 'shutdown' | 'kicked'): void {
    for (const s of [...this.sessions.values()]) s.close(reason);
  }
}
