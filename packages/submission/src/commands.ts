/**
 * Which commands the submission listener answers before AUTH (RFC 5321 §4.1,
 * RFC 3207, RFC 4954). Mail transaction commands get 530 until the backend
 * takes over; anything else is unknown.
 */
export const PRE_AUTH_COMMANDS = ['EHLO', 'HELO', 'STARTTLS', 'AUTH', 'RSET', 'NOOP', 'QUIT', 'HELP'] as const;
export type PreAuthCommand = (typeof PRE_AUTH_COMMANDS)[number];

/** RFC 4954 §6: "530 … may be returned by any command other than AUTH, EHLO, HELO, NOOP, RSET, or QUIT". */
export const NEEDS_AUTH_COMMANDS = ['MAIL', 'RCPT', 'DATA', 'BDAT', 'BURL', 'VRFY', 'EXPN', 'ETRN'] as const;
export type NeedsAuthCommand = (typeof NEEDS_AUTH_COMMANDS)[number];

/** Of those, the ones that belong to a mail transaction: they also need EHLO first (RFC 5321 §4.1.4). */
export const TRANSACTION_COMMANDS: readonly string[] = ['MAIL', 'RCPT', 'DATA', 'BDAT', 'BURL'];

export function isPreAuthCommand(verb: string): verb is PreAuthCommand {
  return (PRE_AUTH_COMMANDS as readonly string[]).includes(verb);
}

export function needsAuth(verb: string): verb is NeedsAuthCommand {
  return (NEEDS_AUTH_COMMANDS as readonly string[]).includes(verb);
}
