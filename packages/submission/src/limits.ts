/** Pre-auth parser limits of the submission listener, with units in their names. */
export interface SubmissionLimits {
  /**
   * Longest command line, in bytes including its CRLF. RFC 5321 §4.5.3.1.4:
   * 512 octets. A client that needs more before AUTH is not a mail client.
   */
  maxCommandLineBytes: number;
  /**
   * Longest line of an authentication exchange (`AUTH PLAIN <initial
   * response>` and the responses to `334`), in bytes including its CRLF.
   * RFC 4954 §4 lets the initial response make the AUTH line no longer than
   * a command line, but deployed clients (Python's smtplib, nodemailer) send
   * it whatever its length, and the same section asks servers to take
   * responses of 12288 octets ("sufficient for deployed mechanisms"), which is
   * also Postfix's smtpd_sasl_response_limit. One figure for both keeps a
   * long password working however the client chooses to send it; longer
   * gets `500 5.5.6` and the connection is closed.
   */
  maxAuthLineBytes: number;
}

export const DEFAULT_SUBMISSION_LIMITS: Readonly<SubmissionLimits> = Object.freeze({
  maxCommandLineBytes: 512,
  maxAuthLineBytes: 12_288,
});
