import type { ImapLimits } from './limits';

/**
 * Client-side IMAP command parser for the pre-login phase (RFC 9051 §4, §7;
 * RFC 3501; RFC 7888 LITERAL+). Bytes in, commands out; it never writes and
 * never decides: the session answers synchronising literals through
 * `acceptLiteral()` / `rejectLiteral()`.
 *
 * Resumable: it keeps its position between chunks, so a command split at any
 * byte offset parses exactly as when it arrives whole.
 */

export type ImapArg =
  | { type: 'atom'; value: string }
  | { type: 'string'; value: Buffer }
  | { type: 'list'; items: ImapArg[] }
  /** The atom NIL in any case, as sent: only where the grammar has nil (nstring) is it one; in an astring it is text. */
  | { type: 'nil'; value: string };

export interface ImapCommand {
  tag: string;
  /** Upper-cased command name. */
  name: string;
  args: ImapArg[];
}

export type InvalidReason =
  | 'invalid-tag'
  | 'missing-command'
  | 'syntax'
  | 'nul'
  | 'line-too-long'
  | 'command-too-long'
  | 'literal-too-large'
  | 'bad-literal';

export type ParseResult =
  | { type: 'command'; command: ImapCommand }
  /** A synchronising literal was announced; answer with acceptLiteral() or rejectLiteral(). */
  | { type: 'literal'; tag: string | null; name: string | null; size: number }
  /** A raw line, in 'line' mode (AUTHENTICATE continuation). */
  | { type: 'line'; line: Buffer }
  /** `fatal`: the stream cannot be resynchronised (we would have to swallow unbounded data); close. */
  | { type: 'invalid'; tag: string | null; reason: InvalidReason; fatal: boolean };

type Segment = { kind: 'text'; start: number; end: number } | { kind: 'literal'; start: number; end: number };

type Phase =
  | { at: 'text' }
  | { at: 'literal'; left: number }
  | { at: 'await-literal'; size: number }
  | { at: 'broken' };

const LF = 0x0a;
const CR = 0x0d;
/** `{123}` or `{123+}` at the end of a line (RFC 7888 LITERAL+). */
const LITERAL_AT_END = /\{(\d+)(\+?)\}$/;

export class ImapParser {
  /** Index 0 is always the first byte of the command being parsed. */
  private buf: Buffer = Buffer.alloc(0);
  /** Where the current segment starts. */
  private pos = 0;
  /** How far LF was already searched for, from pos. */
  private scanned = 0;
  private segments: Segment[] = [];
  private phase: Phase = { at: 'text' };

  constructor(private readonly limits: ImapLimits) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Every byte not consumed by a complete command, including a partial one. */
  takeRemaining(): Buffer {
    const b = this.buf;
    this.reset(b.length);
    this.buf = Buffer.alloc(0);
    return b;
  }

  /** How many bytes are held: the command in progress (with its literals) and anything after it. */
  get buffered(): number {
    return this.buf.length;
  }

  acceptLiteral(): void {
    if (this.phase.at !== 'await-literal') throw new Error('no literal pending');
    this.phase = { at: 'literal', left: this.phase.size };
  }

  /** The client will not send the literal (RFC 9051 §4.3): drop the command, keep what follows. */
  rejectLiteral(): void {
    if (this.phase.at !== 'await-literal') throw new Error('no literal pending');
    this.reset(this.pos);
  }

  next(mode: 'command' | 'line' = 'command'): ParseResult | null {
    if (this.phase.at === 'broken') return null;
    if (mode === 'line') return this.nextLine();
    for (;;) {
      const phase = this.phase;
      switch (phase.at) {
        case 'await-literal':
          return null;
        case 'literal': {
          const have = this.buf.length - this.pos;
          if (have < phase.left) return null;
          this.segments.push({ kind: 'literal', start: this.pos, end: this.pos + phase.left });
          this.pos += phase.left;
          this.scanned = 0;
          this.phase = { at: 'text' };
          continue;
        }
        case 'text': {
          const lf = this.buf.indexOf(LF, this.pos + this.scanned);
          if (lf < 0) {
            this.scanned = this.buf.length - this.pos;
            if (this.lineContentSoFar() > this.limits.maxLineBytes) return this.fatal('line-too-long');
            if (this.buf.length > this.limits.maxCommandBytes) return this.fatal('command-too-long');
            return null;
          }
          const end = lf > this.pos && this.buf[lf - 1] === CR ? lf - 1 : lf;
          if (end - this.pos > this.limits.maxLineBytes) return this.fatal('line-too-long');
          if (lf + 1 > this.limits.maxCommandBytes) return this.fatal('command-too-long');
          const segStart = this.pos;
          this.pos = lf + 1;
          this.scanned = 0;
          // A literal announcement is short; only the line's tail can hold it.
          const tail = this.buf.subarray(Math.max(segStart, end - 64), end).toString('latin1');
          const m = LITERAL_AT_END.exec(tail);
          if (!m) {
            this.segments.push({ kind: 'text', start: segStart, end });
            const done = this.finishCommand();
            if (done === 'empty') continue; // empty lines are ignored, as Dovecot does
            return done;
          }
          this.segments.push({ kind: 'text', start: segStart, end: end - m[0].length });
          const nonSync = m[2] === '+';
          const size = Number(m[1]);
          const tooLarge = m[1]!.length > 15 || size > this.limits.maxLiteralBytes || lf + 1 + size > this.limits.maxCommandBytes;
          if (tooLarge) {
            // A LITERAL+ sender sends the data regardless: we cannot skip an
            // unbounded amount safely, so the connection ends (nginx answers
            // "+ OK" even to 10^20 bytes). A synchronising one waits for our
            // answer, so a BAD suffices (RFC 9051 §4.3).
            if (nonSync) return this.fatal('literal-too-large');
            const head = this.peekTagAndName();
            this.reset(this.pos);
            return { type: 'invalid', tag: head.tag, reason: 'literal-too-large', fatal: false };
          }
          if (nonSync) {
            this.phase = { at: 'literal', left: size };
            continue;
          }
          this.phase = { at: 'await-literal', size };
          const head = this.peekTagAndName();
          return { type: 'literal', tag: head.tag, name: head.name, size };
        }
        default:
          return null;
      }
    }
  }

  private nextLine(): ParseResult | null {
    const lf = this.buf.indexOf(LF, this.pos + this.scanned);
    if (lf < 0) {
      this.scanned = this.buf.length - this.pos;
      if (this.lineContentSoFar() > this.limits.maxLineBytes) return this.fatal('line-too-long');
      return null;
    }
    const end = lf > this.pos && this.buf[lf - 1] === CR ? lf - 1 : lf;
    if (end - this.pos > this.limits.maxLineBytes) return this.fatal('line-too-long');
    const line = Buffer.from(this.buf.subarray(this.pos, end));
    this.reset(lf + 1);
    return { type: 'line', line };
  }

  /**
   * The bytes of the line being read that count against maxLineBytes: a CR
   * at the end may be waiting for its LF, and a line end is not content, so
   * a line of exactly the limit passes however its CRLF is split.
   */
  private lineContentSoFar(): number {
    return this.scanned > 0 && this.buf[this.buf.length - 1] === CR ? this.scanned - 1 : this.scanned;
  }

  private fatal(reason: InvalidReason): ParseResult {
    const head = this.peekTagAndName();
    this.phase = { at: 'broken' };
    this.buf = Buffer.alloc(0);
    this.segments = [];
    return { type: 'invalid', tag: head.tag, reason, fatal: true };
  }

  /** Start the next command at `offset` of the buffer. */
  private reset(offset: number): void {
    this.buf = this.buf.subarray(offset);
    this.pos = 0;
    this.scanned = 0;
    this.segments = [];
    this.phase = { at: 'text' };
  }

  /** The tag and name of the command in progress, if they parse, for error replies. */
  private peekTagAndName(): { tag: string | null; name: string | null } {
    const first = this.segments[0];
    const text = first
      ? this.buf.subarray(first.start, first.end).toString('latin1')
      : this.buf.subarray(0, Math.min(this.buf.length, 256)).toString('latin1');
    const m = /^([^\s(){%*"\\+<>&'\x00-\x1f\x7f-\xff]+)(?: ([A-Za-z]+))?/.exec(text);
    return { tag: m ? m[1]! : null, name: m?.[2] ? m[2].toUpperCase() : null };
  }

  private finishCommand(): ParseResult | 'empty' {
    const result = tokenize(this.buf, this.segments);
    this.reset(this.pos);
    return result;
  }
}

// ---------------------------------------------------------------------------
// Tokenizer: segments of one complete command → tag, name, arguments

class Cursor {
  seg = 0;
  i: number;
  constructor(
    readonly buf: Buffer,
    readonly segs: Segment[],
  ) {
    this.i = segs[0]!.start;
  }
  get current(): Segment | undefined {
    return this.segs[this.seg];
  }
  /** The byte at the cursor in a text segment, -1 at a segment end, -2 at a literal. */
  peek(): number {
    const s = this.current;
    if (!s) return -1;
    if (s.kind === 'literal') return -2;
    return this.i < s.end ? this.buf[this.i]! : -1;
  }
  atEnd(): boolean {
    return this.seg === this.segs.length - 1 && this.peek() === -1;
  }
  /** Move past the end of a text segment into the following literal. */
  enterLiteral(): Buffer | null {
    const s = this.current;
    if (!s || s.kind !== 'text' || this.i !== s.end) return null;
    const lit = this.segs[this.seg + 1];
    if (!lit || lit.kind !== 'literal') return null;
    const value = Buffer.from(this.buf.subarray(lit.start, lit.end));
    this.seg += 2;
    this.i = this.segs[this.seg]!.start;
    return value;
  }
}

class SyntaxError_ extends Error {
  constructor(readonly reason: InvalidReason) {
    super(reason);
  }
}

/** RFC 9051 §9: ATOM-CHAR = any CHAR except atom-specials. */
function isAtomChar(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return false;
  // ( ) { SP CTL % * " \ ]
  return c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x25 && c !== 0x2a && c !== 0x22 && c !== 0x5c && c !== 0x5d;
}
/** tag = 1*<any ASTRING-CHAR except "+"> — ASTRING-CHAR adds "]". */
function isTagChar(c: number): boolean {
  // Narrower than RFC 9051 on purpose: a tag is echoed in every tagged reply,
  // so it may not carry markup (< > & ') that a cross-protocol attacker could
  // get reflected into a browser (ALPACA). No client uses these in tags.
  return (isAtomChar(c) || c === 0x5d) && c !== 0x2b && c !== 0x3c && c !== 0x3e && c !== 0x26 && c !== 0x27;
}

function tokenize(buf: Buffer, segs: Segment[]): ParseResult | 'empty' {
  const first = segs[0]!;
  if (segs.length === 1 && first.end === first.start) return 'empty';
  const cur = new Cursor(buf, segs);
  let tag: string | null = null;
  try {
    tag = readWhile(cur, isTagChar);
    if (tag === '' || (cur.peek() !== 0x20 && cur.peek() !== -1) || (cur.peek() === -1 && !cur.atEnd())) {
      return { type: 'invalid', tag: null, reason: 'invalid-tag', fatal: false };
    }
    if (cur.peek() !== 0x20) return { type: 'invalid', tag, reason: 'missing-command', fatal: false };
    cur.i++;
    const name = readWhile(cur, isAtomChar);
    if (name === '') return { type: 'invalid', tag, reason: 'missing-command', fatal: false };
    const args: ImapArg[] = [];
    for (;;) {
      const c = cur.peek();
      if (c === -1) {
        if (cur.atEnd()) break;
        throw new SyntaxError_('bad-literal');
      }
      if (c !== 0x20) throw new SyntaxError_(c === 0x00 ? 'nul' : 'syntax');
      cur.i++;
      args.push(readArg(cur, 0));
    }
    return { type: 'command', command: { tag, name: name.toUpperCase(), args } };
  } catch (e) {
    if (e instanceof SyntaxError_) return { type: 'invalid', tag, reason: e.reason, fatal: false };
    throw e;
  }
}

function readWhile(cur: Cursor, ok: (c: number) => boolean): string {
  const s = cur.current!;
  const start = cur.i;
  while (s.kind === 'text' && cur.i < s.end && ok(cur.buf[cur.i]!)) cur.i++;
  return cur.buf.subarray(start, cur.i).toString('latin1');
}

const MAX_LIST_DEPTH = 8;

function readArg(cur: Cursor, depth: number): ImapArg {
  const c = cur.peek();
  if (c === -1) {
    // `{n}` ended the previous text segment: the argument is the literal.
    const lit = cur.enterLiteral();
    if (lit === null) throw new SyntaxError_('syntax');
    if (lit.includes(0)) throw new SyntaxError_('nul');
    // After a literal: SP, ")" or the end of the command; anything else is invalid.
    const after = cur.peek();
    if (after !== 0x20 && after !== 0x29 && after !== -1) throw new SyntaxError_('bad-literal');
    return { type: 'string', value: lit };
  }
  if (c === 0x22) return readQuoted(cur);
  if (c === 0x28) {
    if (depth >= MAX_LIST_DEPTH) throw new SyntaxError_('syntax');
    cur.i++;
    const items: ImapArg[] = [];
    for (;;) {
      const d = cur.peek();
      if (d === 0x29) {
        cur.i++;
        return { type: 'list', items };
      }
      if (items.length > 0) {
        if (d !== 0x20) throw new SyntaxError_('syntax');
        cur.i++;
      }
      items.push(readArg(cur, depth + 1));
    }
  }
  if (c === 0x00) throw new SyntaxError_('nul');
  const atom = readWhile(cur, (x) => isAtomChar(x) || x === 0x5d);
  if (atom === '') throw new SyntaxError_('syntax');
  if (atom.toUpperCase() === 'NIL') return { type: 'nil', value: atom };
  return { type: 'atom', value: atom };
}

/** quoted = DQUOTE *QUOTED-CHAR DQUOTE; only `\"` and `\\` are escapes (RFC 9051 §9). */
function readQuoted(cur: Cursor): ImapArg {
  const s = cur.current!;
  cur.i++;
  const out: number[] = [];
  while (cur.i < s.end) {
    const c = cur.buf[cur.i++]!;
    if (c === 0x22) return { type: 'string', value: Buffer.from(out) };
    if (c === 0x00) throw new SyntaxError_('nul');
    if (c === 0x5c) {
      const e = cur.buf[cur.i++];
      if (e !== 0x22 && e !== 0x5c) throw new SyntaxError_('syntax');
      out.push(e);
      continue;
    }
    // 8-bit bytes are accepted (UTF-8 user names and passwords, RFC 6855 §3).
    out.push(c);
  }
  // A quoted string cannot contain CR/LF or continue across a literal.
  throw new SyntaxError_('syntax');
}
