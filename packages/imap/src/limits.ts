/** Pre-login parser limits of the IMAP listener, with units in their names. */
export interface ImapLimits {
  /**
   * Longest command line before login, in bytes (without literals).
   * Dovecot's imap-login allows 4 KiB of input; LOGIN and AUTHENTICATE PLAIN
   * of realistic user names and passwords fit easily.
   */
  maxLineBytes: number;
  /** Largest literal accepted before login (a LOGIN user name or password). */
  maxLiteralBytes: number;
  /** Largest whole command (lines and literals) before login. */
  maxCommandBytes: number;
}

export const DEFAULT_IMAP_LIMITS: Readonly<ImapLimits> = Object.freeze({
  maxLineBytes: 8_192,
  maxLiteralBytes: 8_192,
  maxCommandBytes: 16_384,
});
