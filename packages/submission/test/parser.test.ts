import { SmtpParser, type SmtpParseResult } from '@mailfront/submission';
import { DEFAULT_SUBMISSION_LIMITS, type SubmissionLimits } from '../src/limits';

const limits: SubmissionLimits = { maxCommandLineBytes: 64, maxAuthLineBytes: 200 };

/** Feed `input` split at `cuts`, collecting every result; `modes` picks the mode per result (default command). */
function parseAll(input: Buffer, cuts: number[] = [], l: SubmissionLimits = limits, modes: Array<'command' | 'sasl'> = []): SmtpParseResult[] {
  const p = new SmtpParser(l);
  const out: SmtpParseResult[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    p.push(input.subarray(prev, c));
    prev = c;
    for (let r = p.next(modes[out.length] ?? 'command'); r !== null; r = p.next(modes[out.length] ?? 'command')) {
      out.push(r);
      if (r.type === 'invalid' && r.fatal) return out;
    }
  }
  return out;
}

/** The same results at every single split point, and fed byte by byte. */
function parseEverySplit(text: string | Buffer, l: SubmissionLimits = limits, modes: Array<'command' | 'sasl'> = []): SmtpParseResult[] {
  const input = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const whole = parseAll(input, [], l, modes);
  for (let i = 1; i < input.length; i++) expect(parseAll(input, [i], l, modes)).toEqual(whole);
  expect(parseAll(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1), l, modes)).toEqual(whole);
  return whole;
}

describe('SMTP pre-auth parser', () => {
  test('commands: verb upper-cased, the argument as sent, several per chunk', () => {
    expect(parseEverySplit('ehlo client.example.net\r\nNOOP\r\nAuth PLAIN AGEAYg==\r\nQUIT\r\n')).toEqual([
      { type: 'command', verb: 'EHLO', arg: 'client.example.net' },
      { type: 'command', verb: 'NOOP', arg: '' },
      { type: 'command', verb: 'AUTH', arg: 'PLAIN AGEAYg==' },
      { type: 'command', verb: 'QUIT', arg: '' },
    ]);
  });

  test('bare LF ends a line; the argument keeps its own spaces', () => {
    expect(parseEverySplit('HELO  x \nRSET\r\n')).toEqual([
      { type: 'command', verb: 'HELO', arg: ' x ' },
      { type: 'command', verb: 'RSET', arg: '' },
    ]);
  });

  test('sasl mode returns raw lines, including "*"', () => {
    expect(parseEverySplit('AUTH LOGIN\r\ndXNlcg==\r\n*\r\n', limits, ['command', 'sasl', 'sasl'])).toEqual([
      { type: 'command', verb: 'AUTH', arg: 'LOGIN' },
      { type: 'line', text: 'dXNlcg==' },
      { type: 'line', text: '*' },
    ]);
  });

  test('NUL anywhere in a line is refused, and the next line parses', () => {
    expect(parseEverySplit('EHLO a\0b\r\nNOOP\r\n')).toEqual([
      { type: 'invalid', reason: 'nul', fatal: false },
      { type: 'command', verb: 'NOOP', arg: '' },
    ]);
    expect(parseEverySplit('\0\r\n', limits, ['sasl'])).toEqual([{ type: 'invalid', reason: 'nul', fatal: false }]);
  });

  test('a verb that is not letters, and an empty line, are syntax errors', () => {
    expect(parseEverySplit('<script>alert(1)</script>\r\n\r\nMAIL1 FROM:<>\r\n')).toEqual([
      { type: 'invalid', reason: 'syntax', fatal: false },
      { type: 'invalid', reason: 'syntax', fatal: false },
      { type: 'invalid', reason: 'syntax', fatal: false },
    ]);
  });

  test('command lines: at most maxCommandLineBytes including CRLF; longer is fatal', () => {
    const ok = `EHLO ${'a'.repeat(64 - 7)}\r\n`; // exactly 64
    expect(parseEverySplit(ok)).toEqual([{ type: 'command', verb: 'EHLO', arg: 'a'.repeat(57) }]);
    const long = `EHLO ${'a'.repeat(64 - 6)}\r\nNOOP\r\n`; // 65
    expect(parseEverySplit(long)).toEqual([{ type: 'invalid', reason: 'line-too-long', fatal: true }]);
  });

  test('an AUTH line and a SASL response may be up to maxAuthLineBytes', () => {
    const ir = 'A'.repeat(200 - 'AUTH PLAIN \r\n'.length);
    expect(parseEverySplit(`AUTH PLAIN ${ir}\r\n`)).toEqual([{ type: 'command', verb: 'AUTH', arg: `PLAIN ${ir}` }]);
    expect(parseEverySplit(`auth PLAIN ${ir}A\r\n`)).toEqual([{ type: 'invalid', reason: 'auth-line-too-long', fatal: true }]);
    expect(parseEverySplit(`${'B'.repeat(198)}\r\n`, limits, ['sasl'])).toEqual([{ type: 'line', text: 'B'.repeat(198) }]);
    expect(parseEverySplit(`${'B'.repeat(199)}\r\n`, limits, ['sasl'])).toEqual([{ type: 'invalid', reason: 'auth-line-too-long', fatal: true }]);
    // Only AUTH gets the longer limit.
    expect(parseEverySplit(`AUTHX ${'a'.repeat(60)}\r\n`)).toEqual([{ type: 'invalid', reason: 'line-too-long', fatal: true }]);
  });

  test('defaults: 512 for commands (RFC 5321), 12288 for AUTH (RFC 4954)', () => {
    expect(DEFAULT_SUBMISSION_LIMITS).toEqual({ maxCommandLineBytes: 512, maxAuthLineBytes: 12288 });
    expect(parseAll(Buffer.from(`EHLO ${'x'.repeat(505)}\r\n`), [], DEFAULT_SUBMISSION_LIMITS)[0]).toMatchObject({ type: 'command' });
    expect(parseAll(Buffer.from(`EHLO ${'x'.repeat(506)}\r\n`), [], DEFAULT_SUBMISSION_LIMITS)[0]).toMatchObject({ fatal: true });
    const ir = 'A'.repeat(12288 - 13);
    expect(parseAll(Buffer.from(`AUTH PLAIN ${ir}\r\n`), [], DEFAULT_SUBMISSION_LIMITS)[0]).toMatchObject({ type: 'command' });
  });

  test('an overlong line is fatal before its end arrives; memory stays bounded; nothing parses after', () => {
    const p = new SmtpParser(limits);
    let r: SmtpParseResult | null = null;
    let fed = 0;
    while (r === null && fed < 100_000) {
      p.push(Buffer.alloc(16, 'x'));
      fed += 16;
      r = p.next();
    }
    expect(r).toEqual({ type: 'invalid', reason: 'line-too-long', fatal: true });
    expect(fed).toBeLessThanOrEqual(limits.maxCommandLineBytes + 16);
    p.push(Buffer.from('\r\nNOOP\r\n'));
    expect(p.next()).toBeNull();
  });

  test('takeRemaining returns pipelined bytes untouched, including a partial line and 8-bit data', () => {
    const p = new SmtpParser(limits);
    const tail = Buffer.concat([Buffer.from('MAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: \xff\xfe', 'latin1'), Buffer.from([0, 13])]);
    p.push(Buffer.concat([Buffer.from('AUTH PLAIN AGEAYg==\r\n'), tail]));
    expect(p.next()).toEqual({ type: 'command', verb: 'AUTH', arg: 'PLAIN AGEAYg==' });
    expect(p.takeRemaining().equals(tail)).toBe(true);
    expect(p.takeRemaining().length).toBe(0);
  });

  test('a long pipelined tail after AUTH is not a line-length error while it is not parsed', () => {
    const p = new SmtpParser(limits);
    const body = Buffer.alloc(10_000, 'y');
    p.push(Buffer.concat([Buffer.from('AUTH PLAIN AGEAYg==\r\n'), body]));
    expect(p.next()).toMatchObject({ type: 'command', verb: 'AUTH' });
    expect(p.takeRemaining().equals(body)).toBe(true);
  });
});
