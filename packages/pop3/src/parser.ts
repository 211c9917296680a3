import { LineCommandParser } from '@mailfront/proxy-core';
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

const SP = 0x20;
/** RFC 1939 §3: "Keywords are three or four characters long". */
const KEYWORD = /^[A-Za-z]{3,4}$/;

export class Pop3Parser extends LineCommandParser {
  constructor(private readonly limits: Pop3Limits) {
    super();
  }

  next(mode: 'command' | 'line' = 'command'): ParseResult | null {
    if (this.lines.isBroken) return null;
    const r = this.lines.next(mode === 'line' ? this.limits.maxSaslLineBytes : this.limits.maxLineBytes);
    if (r === 'more') return null;
    if (r === 'too-long') return { type: 'invalid', reason: 'line-too-long', fatal: true };
    if (mode === 'line') return { type: 'line', line: r.line };
    return tokenize(r.line);
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
