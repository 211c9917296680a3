import type { Pop3Limits } from './limits';

/**
 * Client-side POP3 command parser for the pre-login phase (RFC 1939 §3,
 * RFC 2449 §4). A command is one line: a keyword of three or four letters,
 * case-insensitive, then optionally one space and arguments. Bytes in,
 * commands out; it never writes and never decides.
 *
 * Arguments are kept as the raw bytes after the first space, because USER
 * and PASS take the whole rest of the line (RFC 1939 §7: a password may
 * contain spaces) while AUTH splits it; the session knows which.
 *
 * Resumable: it keeps its position between chunks, so a command split at any
 * byte offset parses exactly as when it arrives whole.
 */

export interface Pop3Command {
  /** Upper-cased keyword. */
  keyword: string;
  /** The bytes after the first space ('' when there is none), without the line end. */
  args: Buffer;
}

export type InvalidReason =
  /** an empty line */
  | 'empty'
  /** the keyword is not three or four ASCII letters */
  | 'bad-keyword'
  | 'nul'
  | 'line-too-long';

export type ParseResult =
  | { type: 'command'; command: Pop3Command }
  /** A raw line, in 'line' mode (the SASL response after `+ `). */
  | { type: 'line'; line: Buffer }
  /** `fatal`: the rest of an overlong line cannot be told from the next command; close. */
  | { type: 'invalid'; reason: InvalidReason; fatal: boolean };

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
/** RFC 1939 §3: "Keywords are three or four characters long". */
const KEYWORD = /^[A-Za-z]{3,4}$/;

export class Pop3Parser {
  private buf: Buffer = Buffer.alloc(0);
  /** How many bytes from the start were already searched for LF. */
  private scanned = 0;
  private broken = false;

  constructor(private readonly limits: Pop3Limits) {}

  push(chunk: Buffer): void {
    if (this.broken) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Every byte not consumed by a complete command, including a partial one. */
  takeRemaining(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    this.scanned = 0;
    return b;
  }

  next(mode: 'command' | 'line' = 'command'): ParseResult | null {
    if (this.broken) return null;
    const max = mode === 'line' ? this.limits.maxSaslLineBytes : this.limits.maxLineBytes;
    const lf = this.buf.indexOf(LF, this.scanned);
    if (lf < 0) {
      this.scanned = this.buf.length;
      // A CR may still be waiting for its LF: it is not part of the line.
      const have = this.buf.length > 0 && this.buf[this.buf.length - 1] === CR ? this.buf.length - 1 : this.buf.length;
      return have > max ? this.fatal() : null;
    }
    // Bare LF ends a line too, as in Dovecot and nginx.
    const end = lf > 0 && this.buf[lf - 1] === CR ? lf - 1 : lf;
    if (end > max) return this.fatal();
    const line = Buffer.from(this.buf.subarray(0, end));
    this.buf = this.buf.subarray(lf + 1);
    this.scanned = 0;
    if (mode === 'line') return { type: 'line', line };
    return tokenize(line);
  }

  private fatal(): ParseResult {
    this.broken = true;
    this.buf = Buffer.alloc(0);
    this.scanned = 0;
    return { type: 'invalid', reason: 'line-too-long', fatal: true };
  }
}

function tokenize(line: Buffer): ParseResult {
  if (line.length === 0) return { type: 'invalid', reason: 'empty', fatal: false };
  // No POP3 argument may hold NUL; and a NUL in a password is a truncation attack on C backends.
  if (line.includes(0)) return { type: 'invalid', reason: 'nul', fatal: false };
  const sp = line.indexOf(SP);
  const keyword = line.subarray(0, sp < 0 ? line.length : sp).toString('latin1');
  if (!KEYWORD.test(keyword)) return { type: 'invalid', reason: 'bad-keyword', fatal: false };
  const args = sp < 0 ? Buffer.alloc(0) : line.subarray(sp + 1);
  return { type: 'command', command: { keyword: keyword.toUpperCase(), args } };
}
