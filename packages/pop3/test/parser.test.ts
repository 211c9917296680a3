import { Pop3Parser, type ParseResult } from '@mailfront/pop3';
import { DEFAULT_POP3_LIMITS, type Pop3Limits } from '../src/limits';

const limits: Pop3Limits = { maxLineBytes: 40, maxSaslLineBytes: 80 };

/** Feed `input` split at `cut`, collecting every result; `modes` gives the mode per result (default 'command'). */
function parseAll(input: Buffer, cut: number[] = [], modes: Array<'command' | 'line'> = [], l: Pop3Limits = limits): ParseResult[] {
  const p = new Pop3Parser(l);
  const out: ParseResult[] = [];
  const drain = (): void => {
    for (let r = p.next(modes[out.length] ?? 'command'); r !== null; r = p.next(modes[out.length] ?? 'command')) {
      out.push(r);
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
function parseEverySplit(text: string | Buffer, modes: Array<'command' | 'line'> = [], l: Pop3Limits = limits): ParseResult[] {
  const input = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const whole = parseAll(input, [], modes, l);
  for (let i = 1; i < input.length; i++) {
    expect(normalise(parseAll(input, [i], modes, l))).toEqual(normalise(whole));
  }
  expect(normalise(parseAll(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1), modes, l))).toEqual(normalise(whole));
  return whole;
}

function normalise(rs: ParseResult[]): unknown {
  return JSON.parse(JSON.stringify(rs, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v)));
}

const cmd = (r: ParseResult | undefined) => {
  if (!r || r.type !== 'command') throw new Error(`expected a command, got ${JSON.stringify(r)}`);
  return { keyword: r.command.keyword, args: r.command.args.toString('latin1') };
};

describe('POP3 pre-login parser', () => {
  test('keywords are case-insensitive; several commands per chunk', () => {
    const rs = parseEverySplit('capa\r\nUser alice\r\nQUIT\r\n');
    expect(rs.map(cmd)).toEqual([
      { keyword: 'CAPA', args: '' },
      { keyword: 'USER', args: 'alice' },
      { keyword: 'QUIT', args: '' },
    ]);
  });

  test('arguments are the raw rest of the line: spaces inside and at the ends are kept', () => {
    const [r] = parseEverySplit('PASS  pass word \r\n');
    expect(cmd(r)).toEqual({ keyword: 'PASS', args: ' pass word ' });
    expect(cmd(parseEverySplit('AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n')[0])).toEqual({ keyword: 'AUTH', args: 'PLAIN AGFsaWNlAHNlY3JldA==' });
  });

  test('8-bit (UTF-8) bytes in arguments are kept as bytes', () => {
    const input = Buffer.concat([Buffer.from('PASS '), Buffer.from('pä ß€', 'utf8'), Buffer.from('\r\n')]);
    const [r] = parseEverySplit(input);
    expect(r).toMatchObject({ type: 'command' });
    expect((r as { command: { args: Buffer } }).command.args.toString('utf8')).toBe('pä ß€');
  });

  test('bare LF ends a line too; a CR inside a line is data', () => {
    const rs = parseEverySplit('CAPA\nUSER a\rb\r\n');
    expect(rs.map(cmd)).toEqual([
      { keyword: 'CAPA', args: '' },
      { keyword: 'USER', args: 'a\rb' },
    ]);
  });

  test('keywords must be three or four letters (RFC 1939 §3)', () => {
    for (const bad of ['XCLIENT ADDR=1.2.3.4\r\n', 'NO\r\n', 'GET / HTTP/1.1\r\n'.replace('GET', 'G3T'), ' USER a\r\n', 'US3R a\r\n', 'USER\ta\r\n']) {
      expect(parseEverySplit(bad)).toEqual([{ type: 'invalid', reason: 'bad-keyword', fatal: false }]);
    }
    // An HTTP request line is just an unknown three-letter command to the parser.
    expect(cmd(parseEverySplit('GET / HTTP/1.1\r\n')[0]).keyword).toBe('GET');
  });

  test('an empty line is invalid, and the next command still parses', () => {
    const rs = parseEverySplit('\r\nCAPA\r\n');
    expect(rs[0]).toEqual({ type: 'invalid', reason: 'empty', fatal: false });
    expect(cmd(rs[1]).keyword).toBe('CAPA');
  });

  test('NUL anywhere in a line is refused, not fatal', () => {
    const rs = parseEverySplit('PASS a\0b\r\nQUIT\r\n');
    expect(rs[0]).toEqual({ type: 'invalid', reason: 'nul', fatal: false });
    expect(cmd(rs[1])).toEqual({ keyword: 'QUIT', args: '' });
    expect(parseEverySplit('\0\r\n')).toEqual([{ type: 'invalid', reason: 'nul', fatal: false }]);
  });

  test('SASL response lines in line mode, split anywhere, then commands again', () => {
    const rs = parseEverySplit('AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nQUIT\r\n', ['command', 'line', 'command']);
    expect(cmd(rs[0])).toEqual({ keyword: 'AUTH', args: 'PLAIN' });
    expect(rs[1]).toEqual({ type: 'line', line: Buffer.from('AGFsaWNlAHNlY3JldA==') });
    expect(cmd(rs[2]).keyword).toBe('QUIT');
  });

  test('a line of exactly maxLineBytes is taken; one byte more is fatal', () => {
    const exact = 'PASS ' + 'x'.repeat(limits.maxLineBytes - 5);
    expect(cmd(parseEverySplit(exact + '\r\n')[0]).args.length).toBe(limits.maxLineBytes - 5);
    expect(parseEverySplit(exact + 'y\r\nQUIT\r\n')).toEqual([{ type: 'invalid', reason: 'line-too-long', fatal: true }]);
  });

  test('the SASL line has its own, larger limit', () => {
    const long = 'A'.repeat(limits.maxSaslLineBytes);
    expect(parseEverySplit(long + '\r\n', ['line'])).toEqual([{ type: 'line', line: Buffer.from(long) }]);
    expect(parseEverySplit(long + 'A\r\n', ['line'])).toEqual([{ type: 'invalid', reason: 'line-too-long', fatal: true }]);
    // The same length as a command is too long.
    expect(parseAll(Buffer.from(long + '\r\n'))).toEqual([{ type: 'invalid', reason: 'line-too-long', fatal: true }]);
  });

  test('an overlong line is fatal before its end arrives, and memory stays bounded', () => {
    const p = new Pop3Parser(limits);
    const chunk = Buffer.alloc(8, 'x');
    let r: ParseResult | null = null;
    let fed = 0;
    while (r === null && fed < 100_000) {
      p.push(chunk);
      fed += chunk.length;
      r = p.next();
    }
    expect(r).toEqual({ type: 'invalid', reason: 'line-too-long', fatal: true });
    expect(fed).toBeLessThanOrEqual(limits.maxLineBytes + chunk.length);
    // Once broken, nothing more is parsed (the session closes the connection).
    p.push(Buffer.from('\r\nQUIT\r\n'));
    expect(p.next()).toBeNull();
    expect(p.takeRemaining().length).toBe(0);
  });

  test('a CR waiting for its LF does not count against the limit', () => {
    const p = new Pop3Parser(limits);
    p.push(Buffer.from('PASS ' + 'x'.repeat(limits.maxLineBytes - 5) + '\r'));
    expect(p.next()).toBeNull();
    p.push(Buffer.from('\n'));
    expect(p.next()).toMatchObject({ type: 'command' });
  });

  test('with the default limits a 1 KiB PASS line fits and 70 KiB is fatal', () => {
    const pass = 'PASS ' + 'p'.repeat(DEFAULT_POP3_LIMITS.maxLineBytes - 5) + '\r\n';
    expect(parseAll(Buffer.from(pass), [], [], DEFAULT_POP3_LIMITS)[0]).toMatchObject({ type: 'command' });
    expect(parseAll(Buffer.from('PASS ' + 'x'.repeat(70 * 1024) + '\r\n'), [], [], DEFAULT_POP3_LIMITS)).toEqual([
      { type: 'invalid', reason: 'line-too-long', fatal: true },
    ]);
  });

  test('takeRemaining returns pipelined bytes untouched, including a partial command (RFC 2449 PIPELINING)', () => {
    const p = new Pop3Parser(limits);
    p.push(Buffer.from('USER u\r\nPASS p\r\nSTAT\r\nRETR 1\r\nLI'));
    expect(cmd(p.next() ?? undefined).keyword).toBe('USER');
    expect(cmd(p.next() ?? undefined).keyword).toBe('PASS');
    expect(p.takeRemaining().toString()).toBe('STAT\r\nRETR 1\r\nLI');
    expect(p.next()).toBeNull();
  });
});
