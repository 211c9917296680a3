/**
 * Which commands the IMAP listener answers before login (RFC 9051 §6.1, §6.2;
 * RFC 2971 ID). Everything else is refused with BAD until the backend takes over.
 */
export const PRE_LOGIN_COMMANDS = ['CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'ID', 'LOGIN', 'AUTHENTICATE'] as const;
export type PreLoginCommand = (typeof PRE_LOGIN_COMMANDS)[number];

export function isPreLoginCommand(name: string): name is PreLoginCommand {
  return (PRE_LOGIN_COMMANDS as readonly string[]).includes(name);
}

/** Commands whose arguments may be literals before login: a LOGIN user/password, ID values. */
export function acceptsLiterals(name: string | null): boolean {
  return name === 'LOGIN' || name === 'ID';
}

/** SASL mechanisms the listener offers. */
export const SASL_MECHANISMS = ['PLAIN'] as const;
