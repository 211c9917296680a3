/**
 * Which commands the POP3 listener answers before login: those of the
 * AUTHORIZATION state (RFC 1939 §4, §7) that we implement, CAPA (RFC 2449 §5),
 * STLS (RFC 2595 §4) and AUTH (RFC 5034 §4). Everything else, NOOP and APOP
 * included, is refused with -ERR until the backend takes over: NOOP is a
 * TRANSACTION-state command (RFC 1939 §5), and APOP needs the plaintext
 * password on our side, which we never store.
 */
export const PRE_LOGIN_COMMANDS = ['CAPA', 'STLS', 'USER', 'PASS', 'AUTH', 'QUIT'] as const;
export type PreLoginCommand = (typeof PRE_LOGIN_COMMANDS)[number];

export function isPreLoginCommand(keyword: string): keyword is PreLoginCommand {
  return (PRE_LOGIN_COMMANDS as readonly string[]).includes(keyword);
}

/** SASL mechanisms the listener offers. */
export const SASL_MECHANISMS = ['PLAIN'] as const;
