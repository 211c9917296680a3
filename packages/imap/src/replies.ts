import type { ByeReplies } from '@mailfront/proxy-core';

/**
 * Every client-visible string of the IMAP listener. None of them echoes what
 * a client sent, except the tag where IMAP requires it (ALPACA reflection).
 */
export const replies = {
  greeting: (caps: string) => `* OK [CAPABILITY ${caps}] mailfront ready.\r\n`,
  capability: (tag: string, caps: string) =>
    `* CAPABILITY ${caps}\r\n${tag} OK Pre-login capabilities listed, post-login capabilities have more.\r\n`,
  noop: (tag: string) => `${tag} OK NOOP completed.\r\n`,
  logout: (tag: string) => `* BYE Logging out.\r\n${tag} OK Logout completed.\r\n`,
  id: (tag: string) => `* ID ("name" "mailfront")\r\n${tag} OK ID completed.\r\n`,
  starttls: (tag: string) => `${tag} OK Begin TLS negotiation now.\r\n`,
  tlsActive: (tag: string) => `${tag} BAD TLS is already active.\r\n`,
  starttlsUnavailable: (tag: string) => `${tag} BAD STARTTLS is not available on this port.\r\n`,
  privacyRequired: (tag: string) =>
    `${tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n`,
  authFailed: (tag: string) => `${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`,
  tempFail: (tag: string) => `${tag} NO [UNAVAILABLE] Temporary failure, please try again later.\r\n`,
  inUse: (tag: string) => `${tag} NO [INUSE] Mailbox is in use by another session, please try again later.\r\n`,
  unsupportedMechanism: (tag: string) => `${tag} NO Unsupported authentication mechanism.\r\n`,
  saslContinue: '+ \r\n',
  literalContinue: '+ OK\r\n',
  authCancelled: (tag: string) => `${tag} BAD Authentication cancelled.\r\n`,
  invalidBase64: (tag: string) => `${tag} BAD Invalid base64 data.\r\n`,
  invalidPlain: (tag: string) => `${tag} BAD Invalid PLAIN authentication data.\r\n`,
  notAllowed: (tag: string) => `${tag} BAD Command unknown or not allowed before login.\r\n`,
  syntax: (tag: string) => `${tag} BAD Syntax error in arguments.\r\n`,
  nul: (tag: string) => `${tag} BAD NUL is not allowed in a command.\r\n`,
  literalTooLarge: (tag: string) => `${tag} BAD Literal too large.\r\n`,
  literalNotAllowed: (tag: string) => `${tag} BAD Literal not allowed here.\r\n`,
  invalidTag: '* BAD Invalid or missing tag.\r\n',
  missingCommand: (tag: string) => `${tag} BAD Missing command.\r\n`,
  byeLineTooLong: '* BYE Input line too long.\r\n',
  byeLiteralTooLarge: '* BYE Literal too large.\r\n',
} as const;

/** When the core ends a session on its own: an untagged BYE, then the connection closes. */
export const byeReplies: ByeReplies = {
  timeout: '* BYE Disconnected for inactivity.\r\n',
  shutdown: '* BYE Server shutting down.\r\n',
  'too-many-errors': '* BYE Too many invalid commands.\r\n',
  internal: '* BYE Internal error, please try again later.\r\n',
  kicked: '* BYE Disconnected by administrator.\r\n',
  overloaded: '* BYE [UNAVAILABLE] Too many connections, please try again later.\r\n',
};

/**
 * A tag is echoed in an error only when it looks like one a real client uses;
 * otherwise the error goes untagged, so that a cross-protocol request (an HTTP
 * request line sent to the IMAP port) cannot get its bytes reflected.
 */
export function echoableTag(tag: string | null): string {
  return tag !== null && /^[A-Za-z0-9.\-_:]{1,64}$/.test(tag) ? tag : '*';
}
