import { LineCommandParser } from '@mailfront/proxy-core';
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

/** RFC 5321 §4.1.1: verbs are letters; none is longer than this (STARTTLS, XCLIENT, XFORWARD). */
const VERB = /^[A-Za-z]{1,16}$/;
const AUTH_PREFIX = 'AUTH ';

export class SmtpParser extends LineCommandParser {
  constructor(private readonly limits: SubmissionLimits) {
    super();
  }

  next(mode: ParseMode = 'command'): SmtpParseResult | null {
    if (this.lines.isBroken) return null;
    const auth = mode === 'sasl' || this.isAuthLine();
    // RFC 5321 §4.5.3.1.4 counts the CRLF in a line's length.
    const r = this.lines.next(this.lineLimit(auth) - 2);
    if (r === 'more') return null;
    if (r === 'too-long') return { type: 'invalid', reason: auth ? 'auth-line-too-long' : 'line-too-long', fatal: true };
    if (r.line.includes(0)) return { type: 'invalid', reason: 'nul', fatal: false };
    const text = r.line.toString('latin1');
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
  private lineLimit(auth: boolean): number {
    return auth ? Math.max(this.limits.maxAuthLineBytes, this.limits.maxCommandLineBytes) : this.limits.maxCommandLineBytes;
  }

  private isAuthLine(): boolean {
    const head = this.lines.peek();
    if (head.length < AUTH_PREFIX.length) return false;
    return head.subarray(0, AUTH_PREFIX.length).toString('latin1').toUpperCase() === AUTH_PREFIX;
  }
}
