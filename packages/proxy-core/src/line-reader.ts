/**
 * Splits a backend's byte stream into lines during login. Lines end in LF
 * (CR before it is dropped); a line that announces a literal (IMAP `{n}`) has
 * the next n bytes and the rest of the line appended, so a literal can never
 * be mistaken for a response line.
 *
 * Lines are binary strings (latin1: one char per byte) so that whatever the
 * backend sent can be written on unchanged with the same encoding.
 */
/** Bytes of literal data announced at the end of `line`, null if none (`{0}` announces 0 bytes). */
export type LiteralLength = (line: string) => number | null;

export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private pending: string | null = null;
  private literalLeft = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly literalLength?: LiteralLength,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next complete line, null if more bytes are needed. Throws on an overlong line. */
  nextLine(): string | null {
    for (;;) {
      if (this.literalLeft > 0) {
        if (this.buf.length < this.literalLeft) return null;
        this.pending += this.buf.subarray(0, this.literalLeft).toString('latin1');
        this.buf = this.buf.subarray(this.literalLeft);
        this.literalLeft = 0;
      }
      const lf = this.buf.indexOf(0x0a);
      if (lf < 0) {
        // A CR at the end may be waiting for its LF: like the line end, it is not counted.
        const cr = this.buf.length > 0 && this.buf[this.buf.length - 1] === 0x0d ? 1 : 0;
        if (this.buf.length - cr + (this.pending?.length ?? 0) > this.maxLineBytes) throw new LineTooLong(this.maxLineBytes);
        return null;
      }
      const end = lf > 0 && this.buf[lf - 1] === 0x0d ? lf - 1 : lf;
      const part = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(lf + 1);
      // After a literal the line simply continues: `{n}` CRLF <n bytes> rest-of-line.
      const line = this.pending === null ? part : this.pending + part;
      if (line.length > this.maxLineBytes) throw new LineTooLong(this.maxLineBytes);
      // A literal of 0 bytes still continues the line (RFC 9051 §4.3).
      const lit = this.literalLength?.(part) ?? null;
      if (lit !== null) {
        if (line.length + lit > this.maxLineBytes) throw new LineTooLong(this.maxLineBytes);
        this.pending = line + '\r\n';
        this.literalLeft = lit;
        continue;
      }
      this.pending = null;
      return line;
    }
  }

  /** Bytes received after the last complete line. */
  get buffered(): number {
    return this.buf.length + (this.pending?.length ?? 0);
  }

  takeRemaining(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }
}

export class LineTooLong extends Error {
  readonly code = 'line-too-long' as const;
  constructor(limit: number) {
    super(`line longer than ${limit} bytes`);
  }
}
