import type { ByeReplies } from '@mailfront/proxy-core';

/**
 * Every client-visible string of the submission listener (RFC 5321 reply
 * codes, RFC 3463 enhanced status codes). None echoes what a client sent:
 * not its EHLO name, not its command (ALPACA reflection); the only name in
 * them is our own configured host name.
 */
export const replies = {
  greeting: (host: string) => `220 ${host} ESMTP mailfront\r\n`,
  /** RFC 5321 §4.1.1.1: first line the server's name, then one keyword per line. */
  ehlo: (host: string, keywords: readonly string[]) =>
    [host, ...keywords].map((text, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${text}\r\n`).join(''),
  helo: (host: string) => `250 ${host}\r\n`,
  ok: '250 2.0.0 OK\r\n',
  quit: '221 2.0.0 Bye\r\n',
  help: '214 2.0.0 EHLO, STARTTLS, AUTH, then submit; RSET NOOP QUIT HELP\r\n',
  starttls: '220 2.0.0 Ready to start TLS\r\n',
  tlsActive: '503 5.5.1 TLS is already active\r\n',
  starttlsUnavailable: '502 5.5.1 STARTTLS is not available on this port\r\n',
  ehloFirst: '503 5.5.1 Send EHLO first\r\n',
  authRequired: '530 5.7.0 Authentication required\r\n',
  encryptionRequired: '538 5.7.11 Encryption required for requested authentication mechanism\r\n',
  unknownMechanism: '504 5.5.4 Unrecognized authentication type\r\n',
  /** RFC 4954 §4: an empty challenge for PLAIN; AUTH LOGIN's are base64 "Username:" and "Password:". */
  saslContinue: '334 \r\n',
  saslUsername: '334 VXNlcm5hbWU6\r\n',
  saslPassword: '334 UGFzc3dvcmQ6\r\n',
  authCancelled: '501 5.0.0 Authentication cancelled\r\n',
  invalidBase64: '501 5.5.2 Invalid base64 data\r\n',
  invalidPlain: '501 5.5.2 Invalid authentication data\r\n',
  authSuccess: '235 2.7.0 Authentication successful\r\n',
  authFailed: '535 5.7.8 Authentication credentials invalid\r\n',
  tempFail: '454 4.7.0 Temporary authentication failure\r\n',
  unknownCommand: '500 5.5.1 Unknown command\r\n',
  syntax: '500 5.5.2 Syntax error\r\n',
  syntaxParams: '501 5.5.4 Syntax error in parameters\r\n',
  nul: '500 5.5.2 NUL is not allowed in a command\r\n',
  lineTooLong: '500 5.5.0 Line too long\r\n',
  /** RFC 4954 §4: an authentication line longer than the server's buffer fails with 500 5.5.6. */
  authLineTooLong: '500 5.5.6 Authentication exchange line is too long\r\n',
} as const;

/** When the core ends a session on its own: a 421 naming our host (RFC 5321 §3.8), then the connection closes. */
export function byeReplies(host: string): ByeReplies {
  return {
    timeout: `421 4.4.2 ${host} Timeout, closing connection\r\n`,
    shutdown: `421 4.3.2 ${host} Server shutting down\r\n`,
    'too-many-errors': `421 4.7.0 ${host} Too many errors, closing connection\r\n`,
    internal: `421 4.3.0 ${host} Internal error, please try again later\r\n`,
    kicked: `421 4.3.2 ${host} Disconnected by administrator\r\n`,
    overloaded: `421 4.7.0 ${host} Too many connections, try again later\r\n`,
  };
}
