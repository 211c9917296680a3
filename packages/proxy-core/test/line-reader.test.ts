import { LineReader, LineTooLong } from '@mailfront/proxy-core';

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
});
