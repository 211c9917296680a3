'use strict';
/**
 * proxy-core fuzz properties: the PROXY protocol header parser, LineBuffer
 * (client side of POP3 and SMTP), LineReader (backend side, with IMAP
 * literals), and SASL PLAIN / strict base64.
 *
 * `deps`: { core } — @mailfront/proxy-core.
 */
const net = require('node:net');
const c = require('./common');
const { fc, violated, latin1 } = c;

/** The literal rule of the IMAP backend machine: `{n}` or `{n+}` closing a line; null if none. */
const imapLiteralLength = (line) => {
  const m = /\{(\d{1,9})\+?\}$/.exec(line);
  return m ? Number(m[1]) : null;
};

function proxyCoreProperties(deps) {
  const { core } = deps;

  // -------------------------------------------------------------------------
  // PROXY protocol header

  /** The spec's limits: a v1 line is at most 107 bytes; a v2 header 16 + 1024 here (proxy-protocol.ts V2_MAX_LENGTH). */
  const MAX_V1 = 107;
  const MAX_HEADER = 16 + 1024;
  const arbEndpoint = fc.record({ address: fc.oneof(fc.ipV4(), fc.ipV6()), port: fc.integer({ min: 0, max: 65535 }) });
  const v1Line = fc.oneof(
    fc
      .tuple(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }))
      .map(([s, d, sp, dp]) => `PROXY TCP4 ${s} ${d} ${sp} ${dp}\r\n`),
    fc
      .tuple(fc.ipV6(), fc.ipV6(), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }))
      .map(([s, d, sp, dp]) => `PROXY TCP6 ${s} ${d} ${sp} ${dp}\r\n`),
    fc.string({ unit: 'binary-ascii', maxLength: 100 }).map((s) => `PROXY UNKNOWN${s.replace(/\n/g, '')}\r\n`),
    fc.constantFrom('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', 'PROXY TCP6 1.2.3.4 ::1 1 2\r\n', 'PROXY \r\n', 'PROXY'),
  ).map(latin1);
  const v2Header = fc.oneof(
    fc.tuple(arbEndpoint, arbEndpoint).map(([s, d]) => core.encodeProxyV2(s, d)),
    fc
      .record({
        verCmd: fc.oneof(fc.constantFrom(0x20, 0x21), fc.integer({ min: 0, max: 255 })),
        famProto: fc.oneof(fc.constantFrom(0x00, 0x11, 0x12, 0x21, 0x22, 0x31), fc.integer({ min: 0, max: 255 })),
        body: fc.uint8Array({ maxLength: 80 }),
        declared: fc.option(fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.constantFrom(1024, 1025, 65535)), { nil: null }),
      })
      .map(({ verCmd, famProto, body, declared }) => {
        const head = Buffer.alloc(16);
        core.PROXY_V2_SIGNATURE.copy(head);
        head[12] = verCmd;
        head[13] = famProto;
        head.writeUInt16BE(declared ?? body.length, 14);
        return Buffer.concat([head, Buffer.from(body)]);
      }),
  );
  /** Valid headers, their mutations and truncations, lookalikes, and arbitrary bytes; then anything. */
  const arbProxyInput = fc
    .tuple(
      fc.oneof(
        { weight: 3, arbitrary: v1Line },
        { weight: 3, arbitrary: v2Header },
        { weight: 2, arbitrary: c.arbBytes },
        { weight: 1, arbitrary: fc.constantFrom('P', 'PRO', 'PROXY', 'PROXY ', 'a1 LOGIN x y\r\n', '\r\n\r\n\0\r\nQUIT\n', '\r\n\r\n\0\r\nQUI').map(latin1) },
      ),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: -1, max: 255 })), { maxLength: 3 }),
      fc.oneof(fc.constant(Buffer.alloc(0)), c.arbBytes, c.arbLongRun([107, 1040]).map(latin1)),
    )
    .map(([h, mutations, tail]) => {
      let b = Buffer.from(h);
      for (const [at, value] of mutations) {
        if (b.length === 0) break;
        const i = at % b.length;
        // -1 deletes a byte, otherwise overwrite it.
        b = value < 0 ? Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]) : Buffer.concat([b.subarray(0, i), Buffer.from([value]), b.subarray(i + 1)]);
      }
      return Buffer.concat([b, tail]);
    });

  /** What the listener does (readProxyHeader): accumulate chunks, parse after each, stop at the first answer. */
  function listenerReads(chunks) {
    let buf = Buffer.alloc(0);
    for (const chunk of chunks) {
      buf = Buffer.concat([buf, chunk]);
      const r = core.parseProxyHeader(buf);
      if (r.status === 'more') {
        if (buf.length >= (buf[0] === 0x50 ? MAX_V1 : MAX_HEADER)) violated('bounded memory', `still 'more' after ${buf.length} bytes`);
        continue;
      }
      return r.status === 'ok' ? { status: 'ok', header: r.header, consumed: r.consumed } : { status: 'invalid' };
    }
    return { status: 'more' };
  }

  /** The 16 bytes of an address as IPv6 (IPv4 as ::ffff:a.b.c.d), to compare what may be written two ways. */
  const as16 = (address) => core.encodeProxyV2({ address, port: 0 }, { address: '::1', port: 0 }).subarray(16, 32).toString('hex');

  const proxy = {
    /** Any bytes: parseProxyHeader never throws, and what it returns is sane. */
    'PROXY no throw': fc.property(arbProxyInput, (b) => {
      const r = core.parseProxyHeader(b);
      if (r.status === 'ok') {
        if (r.consumed > b.length || r.consumed > MAX_HEADER || r.consumed < 1) violated('PROXY ok', `consumed ${r.consumed} of ${b.length}`);
        if (!core.looksLikeProxyHeader(b)) violated('PROXY ok', 'parsed a header that does not look like one');
        if (r.header.command === 'proxy') {
          for (const e of [r.header.source, r.header.destination]) {
            if (net.isIP(e.address) === 0 || !Number.isInteger(e.port) || e.port < 0 || e.port > 65535) violated('PROXY ok', `endpoint ${JSON.stringify(e)}`);
          }
        }
      }
      if (r.status === 'more' && b.length > 0 && !core.looksLikeProxyHeader(b)) violated('PROXY more', 'waits for bytes that cannot become a header');
    }),
    /** The listener's answer is the same whatever the chunks, and 'more' never holds more than a header can be. */
    'PROXY chunking': fc.property(arbProxyInput, c.arbCuts, (b, cuts) => {
      const whole = JSON.stringify(listenerReads([b]));
      const cut = JSON.stringify(listenerReads(c.chunksByFractions(b, cuts)));
      if (cut !== whole) violated('chunking', `cut at ${JSON.stringify(cuts)}: ${cut}, whole: ${whole}`);
      if (b.length <= 200) {
        const bytes = JSON.stringify(listenerReads(c.chunksOfOne(b)));
        if (bytes !== whole) violated('chunking', `byte by byte: ${bytes}, whole: ${whole}`);
      }
    }),
    /** Headers we write (and v1 lines a balancer writes) parse back to their addresses, whatever follows them. */
    'PROXY round trip': fc.property(arbEndpoint, arbEndpoint, c.arbBytes, fc.boolean(), (src, dst, tail, v1) => {
      const fam = net.isIP(src.address) === 6 || net.isIP(dst.address) === 6 ? 6 : 4;
      const head = v1
        ? latin1(`PROXY TCP${fam} ${fam === 6 && net.isIP(src.address) === 4 ? `::ffff:${src.address}` : src.address} ${fam === 6 && net.isIP(dst.address) === 4 ? `::ffff:${dst.address}` : dst.address} ${src.port} ${dst.port}\r\n`)
        : core.encodeProxyV2(src, dst);
      const r = core.parseProxyHeader(Buffer.concat([head, tail]));
      if (r.status !== 'ok' || r.header.command !== 'proxy') violated('PROXY round trip', `${head.toString('hex')} gave ${JSON.stringify(r)}`);
      if (r.consumed !== head.length) violated('PROXY round trip', `consumed ${r.consumed}, header is ${head.length}`);
      const same = (a, b) => a.port === b.port && as16(a.address) === as16(b.address);
      if (!same(r.header.source, src) || !same(r.header.destination, dst)) {
        violated('PROXY round trip', `wrote ${JSON.stringify([src, dst])}, read ${JSON.stringify([r.header.source, r.header.destination])}`);
      }
    }),
  };

  // -------------------------------------------------------------------------
  // LineBuffer (client side of POP3 and SMTP)

  const arbLineInput = fc
    .array(
      fc.oneof(
        { weight: 4, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
        { weight: 3, arbitrary: c.arbControl },
        { weight: 1, arbitrary: c.arbLongRun([8, 16, 64, 65, 66]) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u).toString('latin1')) },
      ),
      { maxLength: 16 },
    )
    .map((parts) => latin1(parts.join('')));
  const arbMax = fc.oneof(fc.integer({ min: 0, max: 80 }), fc.constant(1024));

  /** Lines out of a LineBuffer fed `chunks`, as the parsers drain it after each push. */
  function lineBufferReads(chunks, max, observe) {
    const lb = new core.LineBuffer();
    const lines = [];
    let tooLong = false;
    for (const chunk of chunks) {
      lb.push(chunk);
      for (;;) {
        const r = lb.next(max);
        if (r === 'more') break;
        if (r === 'too-long') {
          tooLong = true;
          break;
        }
        lines.push(r.line.toString('latin1'));
      }
      if (observe) observe(lb, chunk);
      if (tooLong) break;
    }
    return { lines, tooLong, rest: tooLong ? '' : lb.takeRemaining().toString('latin1') };
  }

  const lineBuffer = {
    /** The same lines, the same overlong line, the same rest, whatever the chunks; never more held than a line may be. */
    'LineBuffer chunking and memory': fc.property(arbLineInput, arbMax, c.arbCuts, (b, max, cuts) => {
      const observe = (lb, chunk) => {
        // A CR waiting for its LF is not content: max + 1.
        if (!lb.isBroken && lb.buffered > max + 1) violated('bounded memory', `LineBuffer holds ${lb.buffered} bytes after a chunk of ${chunk.length}, max ${max}`);
      };
      const whole = JSON.stringify(lineBufferReads([b], max, observe));
      const cut = JSON.stringify(lineBufferReads(c.chunksByFractions(b, cuts), max, observe));
      if (cut !== whole) violated('chunking', `LineBuffer cut at ${JSON.stringify(cuts)}: ${cut}, whole: ${whole}`);
      const bytes = JSON.stringify(lineBufferReads(c.chunksOfOne(b), max, observe));
      if (bytes !== whole) violated('chunking', `LineBuffer byte by byte: ${bytes}, whole: ${whole}`);
    }),
    /** Without CRs and overlong lines, lines + LF + rest are the input: nothing lost, nothing added. */
    'LineBuffer round trip': fc.property(arbLineInput, c.arbCuts, (b, cuts) => {
      const input = latin1(b.toString('latin1').replace(/\r/g, ''));
      const r = lineBufferReads(c.chunksByFractions(input, cuts), 1 << 20);
      const back = r.lines.map((l) => `${l}\n`).join('') + r.rest;
      if (back !== input.toString('latin1')) violated('LineBuffer round trip', `${JSON.stringify(back)} from ${JSON.stringify(input.toString('latin1'))}`);
    }),
  };

  // -------------------------------------------------------------------------
  // LineReader (backend side, IMAP literals)

  /** Backend responses, some announcing literals whose data holds CR and LF. */
  const arbResponse = fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => `${s.replace(/[\r\n]/g, '')}\r\n`) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(fc.constantFrom('* 1 FETCH (BODY[] ', '* ID ("name" ', 'C OK ', ''), fc.uint8Array({ maxLength: 20 }), fc.boolean(), fc.constantFrom(')\r\n', ' "x")\r\n', '\r\n', ' {2}\r\nab\r\n'))
            .map(([head, data, plus, tail]) => `${head}{${data.length}${plus ? '+' : ''}}\r\n${Buffer.from(data).toString('latin1')}${tail}`),
        },
        { weight: 1, arbitrary: c.arbControl },
        { weight: 1, arbitrary: fc.constantFrom('{99999}\r\n', '{999999999}\r\nx', '{5}\r\nab', '* {0}\r\n\r\n') },
        { weight: 1, arbitrary: c.arbLongRun([16, 64, 65, 66]) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 30 }).map((u) => Buffer.from(u).toString('latin1')) },
      ),
      { maxLength: 10 },
    )
    .map((parts) => latin1(parts.join('')));

  function lineReaderReads(chunks, max, observe) {
    const reader = new core.LineReader(max, imapLiteralLength);
    const lines = [];
    let threw = null;
    for (const chunk of chunks) {
      reader.push(chunk);
      try {
        for (let l = reader.nextLine(); l !== null; l = reader.nextLine()) lines.push(l);
      } catch (e) {
        if (!(e instanceof core.LineTooLong)) throw e;
        threw = e.code;
        break;
      }
      if (observe) observe(reader, chunk);
    }
    return { lines, threw, buffered: threw ? null : reader.buffered, rest: threw ? null : reader.takeRemaining().toString('latin1') };
  }

  const lineReader = {
    /** Only LineTooLong is thrown; the same lines, the same failure, the same rest whatever the chunks; bounded. */
    'LineReader chunking and memory': fc.property(arbResponse, fc.oneof(fc.integer({ min: 1, max: 80 }), fc.constant(65536)), c.arbCuts, (b, max, cuts) => {
      const observe = (reader, chunk) => {
        // Waiting for a literal: the line before it with its CRLF, and part of the literal (line + literal <= max).
        if (reader.buffered > max + 2) violated('bounded memory', `LineReader holds ${reader.buffered} bytes after a chunk of ${chunk.length}, max ${max}`);
      };
      const whole = JSON.stringify(lineReaderReads([b], max, observe));
      const cut = JSON.stringify(lineReaderReads(c.chunksByFractions(b, cuts), max, observe));
      if (cut !== whole) violated('chunking', `LineReader cut at ${JSON.stringify(cuts)} (max ${max}): ${cut}, whole: ${whole}`);
      if (b.length <= 400) {
        const bytes = JSON.stringify(lineReaderReads(c.chunksOfOne(b), max, observe));
        if (bytes !== whole) violated('chunking', `LineReader byte by byte (max ${max}): ${bytes}, whole: ${whole}`);
      }
    }),
    /** A literal is part of its line: its CR and LF never end a response line. */
    'LineReader literals': fc.property(
      fc.array(fc.tuple(fc.string({ unit: 'binary-ascii', maxLength: 12 }).map((s) => s.replace(/[\r\n{}]/g, '')), fc.uint8Array({ maxLength: 24 })), { minLength: 1, maxLength: 4 }),
      c.arbCuts,
      (parts, cuts) => {
        // One response: text {n} CRLF data … ending in a plain CRLF.
        const line = parts.map(([text, data]) => `${text}{${data.length}}\r\n${Buffer.from(data).toString('latin1')}`).join('') + ' end';
        const r = lineReaderReads(c.chunksByFractions(latin1(`${line}\r\nnext\r\n`), cuts), 65536);
        if (JSON.stringify(r.lines) !== JSON.stringify([line, 'next'])) violated('LineReader literals', `${JSON.stringify(r.lines)} from ${JSON.stringify(line)}`);
      },
    ),
  };

  // -------------------------------------------------------------------------
  // SASL PLAIN and strict base64

  const arbBase64ish = fc.oneof(
    c.arbBase64,
    fc.stringMatching(/^[A-Za-z0-9+/=\s\-_.*]{0,24}$/),
    fc.uint8Array({ maxLength: 30 }).map((u) => Buffer.from(u).toString('base64').replace(/=+$/, '')),
    fc.uint8Array({ maxLength: 30 }).map((u) => Buffer.from(u).toString('base64url')),
  );

  const sasl = {
    /**
     * Strict base64: any bytes round trip; whatever is accepted is whole
     * quanta of the base64 alphabet, every character of it decoded (Node
     * would skip the rest silently). Unused bits of a last character before
     * `=` are not checked: RFC 4648 §3.5 lets a decoder ignore them.
     */
    'base64 strict': fc.property(arbBase64ish, fc.uint8Array({ maxLength: 64 }), (text, bytes) => {
      const d = core.decodeBase64Strict(text);
      if (d !== null) {
        const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0 || d.length !== (text.length / 4) * 3 - pad) {
          violated('base64 strict', `accepted ${JSON.stringify(text)} as ${d.length} bytes`);
        }
      }
      const b = Buffer.from(bytes);
      const back = core.decodeBase64Strict(b.toString('base64'));
      if (back === null || !back.equals(b)) violated('base64 strict', `${b.toString('base64')} did not round trip`);
    }),
    /** PLAIN: what encodeSaslPlain wrote decodes to the same three strings; nothing else decodes to an empty user or password. */
    'SASL PLAIN': fc.property(c.arbNoNul(0, 16), c.arbNoNul(0, 24), c.arbNoNul(0, 24), arbBase64ish, (authzid, user, password, junk) => {
      const d = core.decodeSaslPlain(core.encodeSaslPlain(authzid, user, password));
      if (user === '' || password === '') {
        if (d.ok) violated('SASL PLAIN', `accepted an empty user or password: ${JSON.stringify(d)}`);
      } else if (!d.ok || d.creds.authzid !== authzid || d.creds.user !== user || d.creds.password !== password) {
        violated('SASL PLAIN', `${JSON.stringify([authzid, user, password])} decoded to ${JSON.stringify(d)}`);
      }
      const j = core.decodeSaslPlain(junk);
      if (j.ok && (j.creds.user === '' || j.creds.password === '' || [j.creds.authzid, j.creds.user, j.creds.password].some((s) => s.includes('\0')))) {
        violated('SASL PLAIN', `${JSON.stringify(junk)} decoded to ${JSON.stringify(j)}`);
      }
    }),
  };

  return { ...proxy, ...lineBuffer, ...lineReader, ...sasl };
}

module.exports = { proxyCoreProperties, imapLiteralLength };
