import type { ByeReplies } from '@mailfront/proxy-core';

/**
 * Every client-visible string of the POP3 listener. None of them echoes what
 * a client sent (ALPACA reflection: an HTTP request sent to this port gets
 * nothing of its own back). Response codes are RFC 2449 §8 / RFC 3206.
 */
export const replies = {
  greeting: '+OK mailfront ready.\r\n',
  capa: (caps: readonly string[]) => `+OK Capability list follows.\r\n${caps.map((c) => `${c}\r\n`).join('')}.\r\n`,
  /** AUTH without arguments: the mechanisms, as Dovecot and Outlook-era clients expect. */
  authMechanisms: (mechs: readonly string[]) => `+OK Mechanisms follow.\r\n${mechs.map((m) => `${m}\r\n`).join('')}.\r\n`,
  quit: '+OK Logging out.\r\n',
  stls: '+OK Begin TLS negotiation now.\r\n',
  tlsActive: '-ERR TLS is already active.\r\n',
  stlsUnavailable: '-ERR STLS is not available on this port.\r\n',
  userOk: '+OK Send PASS.\r\n',
  passWithoutUser: '-ERR Send USER first.\r\n',
  /** RFC 3206 §5: [AUTH] — the client must change how it authenticates (here: use TLS). */
  plaintextDisallowed: '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n',
  authFailed: '-ERR [AUTH] Authentication failed.\r\n',
  /** RFC 3206 §4: [SYS/TEMP] — a passing problem on our side; retrying later may work. */
  tempFail: '-ERR [SYS/TEMP] Temporary failure, please try again later.\r\n',
  inUse: '-ERR [IN-USE] Mailbox is in use by another session, please try again later.\r\n',
  unsupportedMechanism: '-ERR Unsupported authentication mechanism.\r\n',
  saslContinue: '+ \r\n',
  authCancelled: '-ERR Authentication cancelled.\r\n',
  invalidBase64: '-ERR Invalid base64 data.\r\n',
  invalidPlain: '-ERR Invalid PLAIN authentication data.\r\n',
  syntax: '-ERR Syntax error in arguments.\r\n',
  unknownCommand: '-ERR Unknown command or not allowed before login.\r\n',
  nul: '-ERR NUL is not allowed in a command.\r\n',
  lineTooLong: '-ERR Input line too long.\r\n',
  loggedIn: '+OK Logged in.\r\n',
} as const;

/** When the core ends a session on its own. POP3 has no untagged BYE: an -ERR line, then the connection closes. */
export const byeReplies: ByeReplies = {
  timeout: '-ERR Disconnected for inactivity.\r\n',
  shutdown: '-ERR Server shutting down.\r\n',
  'too-many-errors': '-ERR Too many invalid commands.\r\n',
  internal: '-ERR [SYS/TEMP] Internal error, please try again later.\r\n',
  kicked: '-ERR Disconnected by administrator.\r\n',
  overloaded: '-ERR [SYS/TEMP] Too many connections, please try again later.\r\n',
};
