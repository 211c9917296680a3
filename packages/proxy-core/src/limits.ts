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
  /** Open client connections over all listeners; each session also holds a backend socket. */
  maxConnections: number;
  /** Open client connections from one address (an IPv6 client: one /64). */
  maxConnectionsPerAddress: number;
  /** On shutdown, how long sessions get to end by themselves before they are closed. */
  shutdownGraceMs: number;
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
  // Two descriptors per session: 8 000 sessions stay inside a 20 000 fd limit.
  maxConnections: 8_000,
  // Generous for NAT gateways and office networks; a single host needs far fewer.
  maxConnectionsPerAddress: 100,
  shutdownGraceMs: 30_000,
});
