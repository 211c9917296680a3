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
  /** End the session politely (the protocol's BYE / -ERR / 421). */
  close(reason: 'shutdown' | 'kicked'): void;
}

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
  list(): SessionInfo[] {
    return [...this.sessions.values()].map((s) => s.info());
  }
  closeAll(reason: 'shutdown' | 'kicked'): void {
    for (const s of [...this.sessions.values()]) s.close(reason);
  }
}
