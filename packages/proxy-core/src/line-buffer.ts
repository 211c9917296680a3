/**
 * Client input of a line-based protocol (POP3, SMTP) before login: a resumable
 * splitter that keeps every byte it has not handed out. A line ends in CRLF or
 * a bare LF (as Dovecot and nginx accept). A line longer than the caller's
 * limit cannot be told apart from what follows it without reading unbounded
 * data, so it breaks the buffer for good: the session closes.
 */
export type NextLine = { line: Buffer } | 'more' | 'too-long';

export class LineBuffer {
  /** Index 0 is always the first byte of the line being read. */
  private buf: Buffer = Buffer.alloc(0);
  /** How far LF was already searched for. */
  private scanned = 0;
  private broken = false;

  push(chunk: Buffer): void {
    if (this.broken) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The bytes buffered so far: a partial line's start, for deciding its limit. */
  peek(): Buffer {
    return this.buf;
  }

  /** How many bytes are held: the partial line and anything after it. */
  get buffered(): number {
    return this.buf.length;
  }

  get isBroken(): boolean {
    return this.broken;
  }

  /**
   * The next line without its line end; `maxBytes` counts the line's content
   * (a CR before the LF is not content).
   */
  next(maxBytes: number): NextLine {
    if (this.broken) return 'more';
    const lf = this.buf.indexOf(0x0a, this.scanned);
    if (lf < 0) {
      this.scanned = this.buf.length;
      // A CR may still be waiting for its LF: it is not content.
      const have = this.buf.length > 0 && this.buf[this.buf.length - 1] === 0x0d ? this.buf.length - 1 : this.buf.length;
      return have > maxBytes ? this.fail() : 'more';
    }
    const end = lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end > maxBytes) return this.fail();
    const line = Buffer.from(this.buf.subarray(0, end));
    this.buf = this.buf.subarray(lf + 1);
    this.scanned = 0;
    return { line };
  }

  /** Every byte not handed out as a line, including a partial one. */
  takeRemaining(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    this.scanned = 0;
    return b;
  }

  private fail(): 'too-long' {
    this.broken = true;
    this.buf = Buffer.alloc(0);
    this.scanned = 0;
    return 'too-long';
  }
}

/**
 * What the line protocols' pre-login parsers (POP3, SMTP) share: bytes go
 * into one LineBuffer, and what no command consumed comes out again at
 * STARTTLS (to be discarded) or at login (to be relayed). Subclasses read
 * `lines` in their own `next()`.
 */
export abstract class LineCommandParser {
  protected readonly lines = new LineBuffer();

  push(chunk: Buffer): void {
    this.lines.push(chunk);
  }

  /** Every byte not consumed by a complete command, including a partial one. */
  takeRemaining(): Buffer {
    return this.lines.takeRemaining();
  }

  get buffered(): number {
    return this.lines.buffered;
  }
}
