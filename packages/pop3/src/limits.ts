/**
 * Pre-login parser limits of the POP3 listener, with units in their names.
 * Both count the bytes of one line without its CRLF.
 */
export interface Pop3Limits {
  /**
   * Longest command line before login, in bytes.
   *
   * RFC 2449 §4 caps a command at 255 octets including CRLF, and RFC 5034 §4
   * tells a client to send a SASL initial response that would not fit as a
   * continuation line instead. Real clients do not all keep to it: a PASS
   * line carries the password as it is, and a passphrase of a few hundred
   * bytes is not rare. Dovecot 2.3's pop3-login, which these clients are
   * used to, takes a 1030-byte PASS line and answers "Input buffer full" to
   * an 1100-byte one (measured against 2.3.19); 1 KiB matches it, and no
   * password a client could use with Dovecot is refused here.
   */
  maxLineBytes: number;
  /**
   * Longest SASL response line (the line after `+ ` to AUTH), in bytes.
   *
   * That line is a SASL response, not a command, and the 255-octet command
   * limit does not bound it: it is where RFC 5034 §4 puts responses too long
   * for the AUTH line. A PLAIN response with a 255-byte authorization
   * identity, a 255-byte user name and a 1 KiB password is under 2 KiB of
   * base64; Dovecot 2.3's pop3-login takes 8000 bytes there and closes at
   * 9000 (measured), so 8 KiB matches it.
   */
  maxSaslLineBytes: number;
}

export const DEFAULT_POP3_LIMITS: Readonly<Pop3Limits> = Object.freeze({
  maxLineBytes: 1_024,
  maxSaslLineBytes: 8_192,
});
