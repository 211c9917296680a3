/**
 * The core's limits, with units in their names. Protocol packages have their
 * own (parser) limits in their limits.ts; both are overridable from config.
 * An explicit 0 is a real value only where noted.
 */
export interface CoreLimits {
  /** From accept to a finished login (or STARTTLS handshake); then the session is closed. */
  loginTimeoutMs: number;
  /** Rejected commands before login, after which the connection is closed (nginx's max_errors). */
  maxBadCommands: number;
  /** Failed logins on one connection before it is closed. */
  maxAuthAttempts: number;
  backendConnectTimeoutMs: number;
  /** From backend connect to its final login reply. */
  backendLoginTimeoutMs: number;
  /** Longest backend response line during login (CAPABILITY lists can be long). */
  backendMaxLineBytes: number;
  /** Relay idle timeout; long enough for IMAP IDLE (RFC 9051 §6.3.13: clients re-IDLE within 29 min). 0 disables. */
  idleTimeoutMs: number;
  /** Delay before answering a failed login (Dovecot's auth_failure_delay). 0 = none. */
  authFailureDelayMs: number;
  /** Hop limit sent to trusted backends (x-proxy-ttl) against proxy loops. */
  proxyTtl: number;
}

export const DEFAULT_CORE_LIMITS: Readonly<CoreLimits> = Object.freeze({
  loginTimeoutMs: 60_000,
  maxBadCommands: 10,
  maxAuthAttempts: 3,
  backendConnectTimeoutMs: 5_000,
  backendLoginTimeoutMs: 15_000,
  backendMaxLineBytes: 65_536,
  idleTimeoutMs: 31 * 60_000,
  authFailureDelayMs: 2_000,
  proxyTtl: 5,
});
