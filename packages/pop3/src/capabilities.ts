import type { SessionEnv } from '@mailfront/proxy-core';
import { SASL_MECHANISMS } from './commands';

/**
 * The CAPA list (RFC 2449 §5) before login, per connection state.
 *
 * What we handle ourselves is listed exactly as it is true now:
 * - STLS only while STLS can be used (RFC 2595 §4: not after TLS, and not on
 *   an implicit-TLS or plaintext-only port).
 * - USER and SASL PLAIN only when credentials may be sent now. POP3 has no
 *   LOGINDISABLED: a list without USER and SASL is how a POP3 server says
 *   "not yet", and RFC 2595 §4 has the client discard it after STLS and ask
 *   CAPA again, when both appear.
 * - RESP-CODES and AUTH-RESP-CODE (RFC 2449 §6.4, RFC 3206 §6): our own -ERR
 *   replies carry [AUTH], [SYS/TEMP] from the first command on.
 * - PIPELINING (RFC 2449 §6.6): the pre-login parser takes several commands
 *   per packet and answers them in order; what follows the login command is
 *   handed to the backend untouched.
 *
 * TOP and UIDL are TRANSACTION-state capabilities (RFC 2449 §6.1, §6.8): we
 * never answer them, the backend does. They are still listed before login,
 * because many clients (Thunderbird, Outlook, fetchmail) read CAPA once,
 * before authenticating, and decide there whether "leave messages on the
 * server" can work (it needs UIDL). RFC 2449 §6 names the state each
 * capability is valid in precisely so that a list read in the AUTHORIZATION
 * state can announce what the TRANSACTION state will offer, and Dovecot's
 * own pop3-login, in the same position in front of its pop3 process, lists
 * them too. Every backend mailfront fronts must therefore offer TOP and UIDL
 * (RFC 1939 §7 defines both; all common servers have them). A client that
 * asks CAPA again after login gets the backend's own list, relayed untouched.
 *
 * Not listed: EXPIRE and LOGIN-DELAY (backend policy, which RFC 2449 §6.5,
 * §6.7 lets differ after login), IMPLEMENTATION (nothing to tell an
 * attacker), APOP (not offered), XCLIENT (only between us and the backend).
 */
export function preLoginCapabilities(env: Pick<SessionEnv, 'starttlsAvailable' | 'authAllowed'>): string[] {
  const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
  if (env.starttlsAvailable) caps.push('STLS');
  if (env.authAllowed) caps.push('USER', `SASL ${SASL_MECHANISMS.join(' ')}`);
  return caps;
}

/**
 * A backend's CAPA list: one capability per line, upper-cased. The first
 * word is the capability; the rest are its arguments (`SASL PLAIN LOGIN`).
 */
export interface BackendCapabilities {
  has(name: string): boolean;
  /** Arguments of a capability (`SASL` → ['PLAIN', 'LOGIN']), [] if absent. */
  args(name: string): string[];
}

export function parseCapaLines(lines: readonly string[]): BackendCapabilities {
  const map = new Map<string, string[]>();
  for (const line of lines) {
    const words = line.split(' ').filter((w) => w.length > 0).map((w) => w.toUpperCase());
    if (words.length > 0) map.set(words[0]!, words.slice(1));
  }
  return { has: (name) => map.has(name), args: (name) => map.get(name) ?? [] };
}
