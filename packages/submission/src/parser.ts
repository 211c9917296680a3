import type { SubmissionLimits } from './limits';

/**
 * Client-side SMTP line parser for the pre-auth phase (RFC 5321 §4.1,
 * RFC 4954 §4). Bytes in, commands out; it never writes and never decides.
 *
 * Resumable: it keeps its position between chunks, so a command split at any
 * byte offset parses exactly as when it arrives whole. It consumes one line
 * per `next()` and nothing more: bytes pipelined after the AUTH line (RFC 2920
 * MAIL/RCPT/DATA) stay untouched for `takeRemaining()`, and so reach the
 * backend first when the relay starts.
 */

export type InvalidReason = 'nul' | 'syntax' | 'line-too-long' | 'auth-line-too-long';

export type SmtpParseResult =
  /** `verb` upper-cased (letters only); `arg` is everything after the first space, as a binary string. */
  | { type: 'command'; verb: string; arg: string }
  /** A raw line in 'sasl' mode: the response to a `334` challenge. */
  | { type: 'line'; text: string }
  /** `fatal`: the stream cannot be resynchronised without reading unbounded data; close. */
  | { type: 'invalid'; reason: InvalidReason; fatal: boolean };

export type ParseMode = 'command' | 'sasl';

const LF = 0x0a;
const CR = 0x0d;
/** RFC 5321 §4.1.1: verbs are letters; none is longer than this (STARTTLS, XCLIENT, XFORWARD). */
const VERB = /^[A-Za-z]{1,16}$/;
const AUTH_PREFIX = 'AUTH ';

export class SmtpParser {
  /** Index 0 is always the first byte of the line being parsed. */
  private buf: Buffer = Buffer.alloc(0);
  /** How far LF was already searched for. */
  private scanned = 0;
  private broken = false;

  constructor(private readonly limits: SubmissionLimits) {}

  push(chunk: Buffer): void {
    if (this.broken) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Every byte not consumed by a complete line, including a partial one. */
  takeRemaining(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    this.scanned = 0;
    return b;
  }

  next(mode: ParseMode = 'command'): SmtpParseResult | null {
    if (this.broken) return null;
    const limit = this.lineLimit(mode);
    const lf = this.buf.indexOf(LF, this.scanned);
    if (lf < 0) {
      this.scanned = this.buf.length;
      // Even if LF came next, the line (counted with its line end) would be too long.
      if (this.buf.length >= limit) return this.fatal(mode);
      return null;
    }
    if (lf + 1 > limit) return this.fatal(mode);
    const end = lf > 0 && this.buf[lf - 1] === CR ? lf - 1 : lf;
    const raw = this.buf.subarray(0, end);
    const hasNul = raw.includes(0);
    const text = raw.toString('latin1');
    this.buf = this.buf.subarray(lf + 1);
    this.scanned = 0;
    if (hasNul) return { type: 'invalid', reason: 'nul', fatal: false };
    if (mode === 'sasl') return { type: 'line', text };
    const sp = text.indexOf(' ');
    const verb = sp < 0 ? text : text.slice(0, sp);
    if (!VERB.test(verb)) return { type: 'invalid', reason: 'syntax', fatal: false };
    return { type: 'command', verb: verb.toUpperCase(), arg: sp < 0 ? '' : text.slice(sp + 1) };
  }

  /**
   * The line limit for the line being parsed: an authentication exchange may
   * be longer than a command (see limits.ts). Decided on the line's first
   * bytes, which are always there before either limit can be reached.
   */
  private lineLimit(mode: ParseMode): number {
    if (mode === 'sasl' || this.isAuthLine()) return Math.max(this.limits.maxAuthLineBytes, this.limits.maxCommandLineBytes);
    return this.limits.maxCommandLineBytes;
  }

  private isAuthLine(): boolean {
    if (this.buf.length < AUTH_PREFIX.length) return false;
    return this.buf.subarray(0, AUTH_PREFIX.length).toString('latin1').toUpperCase() === AUTH_PREFIX;
  }

  private fatal(mode: ParseMode): SmtpParseResult {
    const auth = mode === 'sasl' || this.isAuthLine();
    this.broken = true;
    this.buf = Buffer.alloc(0);
    return { type: 'invalid', reason: auth ? 'auth-line-too-long' : 'line-too-long', fatal: true };
  }
}
