import { ImapParser, type ParseResult } from '@mailfront/imap';
import { DEFAULT_IMAP_LIMITS, type ImapLimits } from '../src/limits';

const limits: ImapLimits = { maxLineBytes: 200, maxLiteralBytes: 100, maxCommandBytes: 400 };

/** Feed `input` split at `cut`, collecting every result; sync literals are accepted. */
function parseAll(input: Buffer, cut: number[] = [], l: ImapLimits = limits): ParseResult[] {
  const p = new ImapParser(l);
  const out: ParseResult[] = [];
  const drain = (): void => {
    for (let r = p.next(); r !== null; r = p.next()) {
      out.push(r);
      if (r.type === 'literal') p.acceptLiteral();
      if (r.type === 'invalid' && r.fatal) return;
    }
  };
  let prev = 0;
  for (const c of [...cut, input.length]) {
    p.push(input.subarray(prev, c));
    prev = c;
    drain();
  }
  return out;
}

/** The same results at every single split point, and fed byte by byte. */
function parseEverySplit(text: string | Buffer, l: ImapLimits = limits): ParseResult[] {
  const input = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const whole = parseAll(input, [], l);
  for (let i = 1; i < input.length; i++) {
    expect(normalise(parseAll(input, [i], l))).toEqual(normalise(whole));
  }
  expect(normalise(parseAll(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1), l))).toEqual(normalise(whole));
  return whole;
}

function normalise(rs: ParseResult[]): unknown {
  return JSON.parse(JSON.stringify(rs, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v)));
}

const cmd = (r: ParseResult | undefined) => {
  if (!r || r.type !== 'command') throw new Error(`expected a command, got ${JSON.stringify(r)}`);
  return r.command;
};
const str = (b: unknown) => (b as { value: Buffer }).value.toString('latin1');

describe('IMAP pre-login parser', () => {
  test('simple commands, case-insensitive names, several per chunk', () => {
    const rs = parseEverySplit('a1 capability\r\nA2 NOOP\r\nx.y LOGOUT\r\n');
    expect(rs.map((r) => cmd(r).name)).toEqual(['CAPABILITY', 'NOOP', 'LOGOUT']);
    expect(rs.map((r) => cmd(r).tag)).toEqual(['a1', 'A2', 'x.y']);
  });

  test('LOGIN with atoms, quoted strings and escapes', () => {
    const [r] = parseEverySplit('a LOGIN "jo \\"the\\" user" "p\\\\ss word"\r\n');
    const c = cmd(r);
    expect(c.name).toBe('LOGIN');
    expect(str(c.args[0])).toBe('jo "the" user');
    expect(str(c.args[1])).toBe('p\\ss word');
    expect(cmd(parseEverySplit('b login alice secret\r\n')[0]).args).toEqual([
      { type: 'atom', value: 'alice' },
      { type: 'atom', value: 'secret' },
    ]);
  });

  test('synchronising literal is announced, then read', () => {
    const p = new ImapParser(limits);
    p.push(Buffer.from('a LOGIN {5}\r\n'));
    expect(p.next()).toEqual({ type: 'literal', tag: 'a', name: 'LOGIN', size: 5 });
    expect(p.next()).toBeNull(); // waits for the session's decision
    p.acceptLiteral();
    p.push(Buffer.from('alice {6}\r\n'));
    expect(p.next()).toEqual({ type: 'literal', tag: 'a', name: 'LOGIN', size: 6 });
    p.acceptLiteral();
    p.push(Buffer.from('s3cr\r\n\r\n'));
    const c = cmd(p.next() ?? undefined);
    expect(str(c.args[0])).toBe('alice');
    expect(str(c.args[1])).toBe('s3cr\r\n'); // literal bytes are taken as they are
  });

  test('LITERAL+ literals, split anywhere', () => {
    const rs = parseEverySplit('a LOGIN {5+}\r\nalice {4+}\r\np{}"\r\n');
    const c = cmd(rs[0]);
    expect(str(c.args[0])).toBe('alice');
    expect(str(c.args[1])).toBe('p{}"');
  });

  test('sync literals at every split point', () => {
    const rs = parseEverySplit('t LOGIN {3}\r\nbob "pw"\r\nu NOOP\r\n');
    expect(rs[0]!.type).toBe('literal');
    expect(str(cmd(rs[1]).args[0])).toBe('bob');
    expect(cmd(rs[2]).name).toBe('NOOP');
  });

  test('a rejected sync literal drops the command and keeps what follows', () => {
    const p = new ImapParser(limits);
    p.push(Buffer.from('a SELECT {5}\r\nb NOOP\r\n'));
    expect(p.next()).toMatchObject({ type: 'literal', name: 'SELECT' });
    p.rejectLiteral();
    expect(cmd(p.next() ?? undefined).name).toBe('NOOP');
  });

  test('ID with a parameter list and NIL', () => {
    const c = cmd(parseEverySplit('i ID ("name" "Thunderbird" "version" {3+}\r\n1.0)\r\n')[0]);
    expect(c.args[0]!.type).toBe('list');
    const items = (c.args[0] as { items: unknown[] }).items;
    expect(items.map(str)).toEqual(['name', 'Thunderbird', 'version', '1.0']);
    expect(cmd(parseEverySplit('i ID NIL\r\n')[0]).args).toEqual([{ type: 'nil', value: 'NIL' }]);
  });

  test('AUTHENTICATE with SASL-IR and a continuation line', () => {
    const p = new ImapParser(limits);
    p.push(Buffer.from('a AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n'));
    expect(cmd(p.next() ?? undefined).args).toEqual([{ type: 'atom', value: 'PLAIN' }]);
    expect(p.next('line')).toEqual({ type: 'line', line: Buffer.from('AGFsaWNlAHNlY3JldA==') });
    const c = cmd(parseEverySplit('a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n')[0]);
    expect(c.args[1]).toEqual({ type: 'atom', value: 'AGFsaWNlAHNlY3JldA==' });
  });

  test('bare LF ends a line too; empty lines are ignored', () => {
    const rs = parseEverySplit('\r\n\na NOOP\n\r\nb NOOP\r\n');
    expect(rs.map((r) => cmd(r).tag)).toEqual(['a', 'b']);
  });

  test('NUL in a quoted string, in a literal, or in an atom position is refused', () => {
    expect(parseEverySplit('a LOGIN "al\0ice" x\r\n')[0]).toEqual({ type: 'invalid', tag: 'a', reason: 'nul', fatal: false });
    expect(parseEverySplit('a LOGIN {3+}\r\na\0b x\r\n')[0]).toEqual({ type: 'invalid', tag: 'a', reason: 'nul', fatal: false });
    expect(parseEverySplit('a LOGIN \0 x\r\n')[0]).toMatchObject({ type: 'invalid', reason: 'nul' });
  });

  test('a tag with markup characters is invalid: tags are echoed (ALPACA)', () => {
    for (const tag of ['<script>', 'a>', 'a&b', "a'b"]) {
      expect(parseEverySplit(`${tag} NOOP\r\n`)[0]).toMatchObject({ type: 'invalid', reason: 'invalid-tag', tag: null });
    }
    expect(cmd(parseEverySplit('A.1-x_y:z NOOP\r\n')[0]).tag).toBe('A.1-x_y:z');
  });

  test('invalid tags and missing commands', () => {
    expect(parseEverySplit('+ NOOP\r\n')[0]).toMatchObject({ type: 'invalid', reason: 'invalid-tag', tag: null });
    expect(parseEverySplit('a{ NOOP\r\n')[0]).toMatchObject({ type: 'invalid', reason: 'invalid-tag' });
    expect(parseEverySplit(' NOOP\r\n')[0]).toMatchObject({ type: 'invalid', reason: 'invalid-tag' });
    expect(parseEverySplit('abc\r\n')[0]).toMatchObject({ type: 'invalid', reason: 'missing-command', tag: 'abc' });
    expect(parseEverySplit('abc \r\n')[0]).toMatchObject({ type: 'invalid', reason: 'missing-command', tag: 'abc' });
  });

  test('syntax errors: unterminated quote, bad escape, double space, unbalanced list', () => {
    for (const bad of ['a LOGIN "abc\r\n', 'a LOGIN "a\\b" x\r\n', 'a LOGIN  x y\r\n', 'a ID ("a" "b"\r\n', 'a ID ("a")) \r\n']) {
      expect(parseEverySplit(bad)[0]).toMatchObject({ type: 'invalid', tag: 'a' });
    }
  });

  test('a literal not followed by SP, ")" or CRLF is invalid', () => {
    expect(parseEverySplit('a LOGIN {3+}\r\nbobX y\r\n')[0]).toMatchObject({ type: 'invalid', reason: 'bad-literal' });
  });

  test('after an invalid command the next one parses', () => {
    const rs = parseEverySplit('a LOGIN "x\r\nb NOOP\r\n');
    expect(rs[0]).toMatchObject({ type: 'invalid' });
    expect(cmd(rs[1]).name).toBe('NOOP');
  });

  test('an overlong line is fatal, and memory stays bounded while it arrives', () => {
    const p = new ImapParser(limits);
    const chunk = Buffer.alloc(64, 'x');
    let r: ParseResult | null = null;
    let fed = 0;
    while (r === null && fed < 100_000) {
      p.push(chunk);
      fed += chunk.length;
      r = p.next();
    }
    expect(r).toMatchObject({ type: 'invalid', reason: 'line-too-long', fatal: true });
    expect(fed).toBeLessThanOrEqual(limits.maxLineBytes + 64);
    // Once broken, nothing more is parsed (the session closes the connection).
    p.push(Buffer.from('\r\na NOOP\r\n'));
    expect(p.next()).toBeNull();
  });

  test('a line of exactly maxLineBytes passes, even when its CR and LF arrive apart', () => {
    // Found by fuzzing: a CR still waiting for its LF was counted as content.
    const line = `a LOGIN u ${'p'.repeat(limits.maxLineBytes - 10)}`;
    expect(line.length).toBe(limits.maxLineBytes);
    expect(cmd(parseEverySplit(`${line}\r\n`)[0]).name).toBe('LOGIN');
    expect(parseEverySplit(`${line}x\r\n`)[0]).toMatchObject({ type: 'invalid', reason: 'line-too-long', fatal: true });
    // The same in 'line' mode (an AUTHENTICATE continuation).
    const p = new ImapParser(limits);
    p.push(Buffer.from(`${'A'.repeat(limits.maxLineBytes)}\r`));
    expect(p.next('line')).toBeNull();
    p.push(Buffer.from('\n'));
    expect(p.next('line')).toEqual({ type: 'line', line: Buffer.from('A'.repeat(limits.maxLineBytes)) });
  });

  test('a 70 KiB line with the default limits is fatal', () => {
    const rs = parseAll(Buffer.from('a LOGIN ' + 'x'.repeat(70 * 1024) + ' y\r\n'), [], DEFAULT_IMAP_LIMITS);
    expect(rs).toEqual([{ type: 'invalid', tag: 'a', reason: 'line-too-long', fatal: true }]);
  });

  test('oversized literals: sync → BAD and continue; LITERAL+ → fatal; 10^20 does not overflow', () => {
    const p = new ImapParser(limits);
    p.push(Buffer.from('a LOGIN {101}\r\nb NOOP\r\n'));
    expect(p.next()).toEqual({ type: 'invalid', tag: 'a', reason: 'literal-too-large', fatal: false });
    expect(cmd(p.next() ?? undefined).name).toBe('NOOP');
    expect(parseAll(Buffer.from('a LOGIN {101+}\r\n'))[0]).toMatchObject({ reason: 'literal-too-large', fatal: true });
    expect(parseAll(Buffer.from('a LOGIN {100000000000000000000+}\r\n'))[0]).toMatchObject({ reason: 'literal-too-large', fatal: true });
    expect(parseAll(Buffer.from('a LOGIN {100000000000000000000}\r\n'))[0]).toMatchObject({ reason: 'literal-too-large', fatal: false });
  });

  test('the whole command is bounded, however it is split into literals', () => {
    const many = 'a ID (' + Array.from({ length: 10 }, () => '{50+}\r\n' + 'x'.repeat(50)).join(' ') + ')\r\n';
    const rs = parseAll(Buffer.from(many));
    expect(rs[0]).toMatchObject({ type: 'invalid', fatal: true });
  });

  test('takeRemaining returns pipelined bytes untouched, including a partial command', () => {
    const p = new ImapParser(limits);
    p.push(Buffer.from('a LOGIN u p\r\nb SELECT INBOX\r\nc FETCH 1 (BODY[]'));
    expect(cmd(p.next() ?? undefined).name).toBe('LOGIN');
    expect(p.takeRemaining().toString()).toBe('b SELECT INBOX\r\nc FETCH 1 (BODY[]');
  });

  test('8-bit (UTF-8) bytes in quoted strings and literals are kept', () => {
    const input = Buffer.concat([Buffer.from('a LOGIN "'), Buffer.from('jürgen', 'utf8'), Buffer.from('" {4+}\r\n'), Buffer.from('pä', 'utf8'), Buffer.from(' \r\n')]);
    // "pä" is 3 bytes; the literal holds it plus one space
    const c = cmd(parseEverySplit(input)[0]);
    expect(c.args[0]).toEqual({ type: 'string', value: Buffer.from('jürgen', 'utf8') });
    expect((c.args[1] as { value: Buffer }).value.toString('utf8')).toBe('pä ');
  });
});
