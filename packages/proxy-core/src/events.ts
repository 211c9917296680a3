import type { Protocol } from '@mailfront/store';
import type { FailureKind } from './errors';

/**
 * What the core tells the server around it about logins and sessions, for
 * metrics and for the admin's user moves. One sink instead of metric code in
 * the driver: the core stays free of any one consumer. Hooks run inline on the
 * session's path, so they must be cheap and must not throw.
 */
export interface ProxyEvents {
  /** A login attempt ended: the backend's answer, or a failure before it. */
  onLogin?(e: LoginEvent): void;
  /** A session ended, in whatever phase. */
  onSessionEnd?(e: SessionEndEvent): void;
}

export interface LoginEvent {
  protocol: Protocol;
  /** The canonical name when authentication got that far, else the name as sent. */
  user: string;
  /** null: logged in. Otherwise the failure kind (retry, log level and the client's answer follow from it). */
  failure: FailureKind | null;
  /** The backend the locator chose, when it got that far. */
  backend: string | null;
  /** From the login command to the backend's answer (without the failure delay). */
  durationMs: number;
  /** The client left, or was closed, while the login ran. */
  abandoned: boolean;
}

export interface SessionEndEvent {
  protocol: Protocol;
  /** null: it ended before a login. */
  user: string | null;
  backend: string | null;
  tls: boolean;
  bytesFromClient: number;
  bytesFromBackend: number;
  durationMs: number;
  /** The relay's end (client-closed, backend-closed, stopped, idle-timeout, …), or `pre-login`. */
  end: string;
}
