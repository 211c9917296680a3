import { LineReader, LineTooLong } from '@mailfront/proxy-core';

/** IMAP's rule: `{n}` or `{n+}` at the end of a line announces n bytes of literal data. */
const imapLiteral = (line: string): number | null => {
  const m = /\{(\d{1,9})\+?\}$/.exec(line);
  return m ? Number(m[1]) : null;
};

/** The lines a reader gives for `chunks`, fed one at a time. */
function read(reader: LineReader, chunks: string[]): string[] {
  const lines: string[] = [];
  for (const c of chunks) {
    reader.push(Buffer.from(c, 'latin1'));
    for (let l = reader.nextLine(); l !== null; l = reader.nextLine()) lines.push(l);
  }
  return lines;
}

describe('LineReader (backend lines during login)', () => {
  test('a line of exactly maxLineBytes passes, even when its CR and LF arrive apart', () => {
    // Found by fuzzing: a CR still waiting for its LF was counted as content.
    const line = 'x'.repeat(16);
    expect(read(new LineReader(16), [`${line}\r`, '\n'])).toEqual([line]);
    expect(read(new LineReader(16), [`${line}\r\n`])).toEqual([line]);
    expect(() => read(new LineReader(16), [`${line}x\r`])).toThrow(LineTooLong);
  });

  test('a literal of 0 bytes continues its line, like any literal', () => {
    // Found by fuzzing: `{0}` was taken for "no literal", so the rest of the line came out as a line of its own.
    expect(read(new LineReader(1024, imapLiteral), ['* ID ("name" {0}\r\n)\r\nI OK\r\n'])).toEqual(['* ID ("name" {0}\r\n)', 'I OK']);
    expect(read(new LineReader(1024, imapLiteral), ['* ID ("name" {3}\r\na\r\n)\r\n'])).toEqual(['* ID ("name" {3}\r\na\r\n)']);
  });
});
