import { encodeProxyV2, looksLikeProxyHeader, parseProxyHeader, PROXY_V2_SIGNATURE } from '@mailfront/proxy-core';

/** Every strict prefix asks for more; the whole parses to the same result. */
function parseEveryPrefix(buf: Buffer) {
  for (let i = 0; i < buf.length; i++) {
    const r = parseProxyHeader(buf.subarray(0, i));
    if (r.status !== 'more') throw new Error(`prefix of ${i} bytes gave ${JSON.stringify(r)}`);
  }
  return parseProxyHeader(buf);
}

describe('PROXY protocol v1', () => {
  test('TCP4 and TCP6, with the bytes that follow left alone', () => {
    const h = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 51234 143\r\n');
    expect(parseEveryPrefix(h)).toEqual({
      status: 'ok',
      consumed: h.length,
      header: { command: 'proxy', version: 1, source: { address: '203.0.113.7', port: 51234 }, destination: { address: '192.0.2.1', port: 143 } },
    });
    expect(parseProxyHeader(Buffer.concat([h, Buffer.from('a1 NOOP\r\n')]))).toMatchObject({ status: 'ok', consumed: h.length });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'))).toMatchObject({
      status: 'ok',
      header: { source: { address: '2001:db8::1', port: 1 } },
    });
  });

  test('UNKNOWN is a local connection', () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ status: 'ok', consumed: 15, header: { command: 'local', version: 1 } });
  });

  test('malformed headers are invalid, never partial forever', () => {
    for (const bad of [
      'PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n',
      'PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.1 01 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n',
      'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
      'a1 LOGIN x y\r\n',
    ]) {
      expect(parseProxyHeader(Buffer.from(bad))).toMatchObject({ status: 'invalid' });
    }
    expect(parseProxyHeader(Buffer.from('PROXY ' + 'x'.repeat(200)))).toMatchObject({ status: 'invalid' });
  });
});

describe('PROXY protocol v2', () => {
  test('IPv4 and IPv6 round-trip through the encoder, at every split', () => {
    const v4 = encodeProxyV2({ address: '203.0.113.7', port: 51234 }, { address: '192.0.2.1', port: 993 });
    expect(v4.subarray(0, 12).equals(PROXY_V2_SIGNATURE)).toBe(true);
    expect(parseEveryPrefix(v4)).toEqual({
      status: 'ok',
      consumed: 28,
      header: { command: 'proxy', version: 2, source: { address: '203.0.113.7', port: 51234 }, destination: { address: '192.0.2.1', port: 993 } },
    });
    const v6 = encodeProxyV2({ address: '2001:db8::7', port: 1 }, { address: '::1', port: 2 });
    expect(parseEveryPrefix(v6)).toMatchObject({
      status: 'ok',
      consumed: 52,
      header: { source: { address: '2001:db8::7', port: 1 }, destination: { address: '::1', port: 2 } },
    });
    const mixed = encodeProxyV2({ address: '203.0.113.7', port: 1 }, { address: '2001:db8::2', port: 2 });
    // An IPv4 source in an IPv6 header travels IPv4-mapped and comes back as IPv4.
    expect(parseProxyHeader(mixed)).toMatchObject({ header: { source: { address: '203.0.113.7' }, destination: { address: '2001:db8::2' } } });
  });

  test('LOCAL, TLVs skipped, bad version or length invalid', () => {
    const local = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
    expect(parseProxyHeader(local)).toEqual({ status: 'ok', consumed: 16, header: { command: 'local', version: 2 } });
    const withTlv = Buffer.from(encodeProxyV2({ address: '10.0.0.1', port: 5 }, { address: '10.0.0.2', port: 6 }));
    const tlv = Buffer.from([0x20, 0x00, 0x01, 0x01]); // PP2_TYPE_SSL, 1 byte
    const h = Buffer.concat([withTlv.subarray(0, 14), Buffer.from([0, 12 + tlv.length]), withTlv.subarray(16), tlv]);
    expect(parseProxyHeader(h)).toMatchObject({ status: 'ok', consumed: h.length, header: { source: { address: '10.0.0.1' } } });
    expect(parseProxyHeader(Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x11, 0x11, 0, 12])]))).toMatchObject({ status: 'invalid' });
    expect(parseProxyHeader(Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]))).toMatchObject({ status: 'invalid' });
    // An address block shorter than its family needs: invalid, never a read past it.
    const short = (fam: number, n: number) => Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, fam, 0, n]), Buffer.alloc(n)]);
    expect(parseProxyHeader(short(0x11, 11))).toEqual({ status: 'invalid', reason: 'v2 short IPv4 block' });
    expect(parseProxyHeader(short(0x21, 35))).toEqual({ status: 'invalid', reason: 'v2 short IPv6 block' });
    expect(parseProxyHeader(short(0x11, 12))).toMatchObject({ status: 'ok', header: { source: { address: '0.0.0.0', port: 0 } } });
  });

  test('looksLikeProxyHeader spots both versions from their first bytes', () => {
    expect(looksLikeProxyHeader(Buffer.from('PRO'))).toBe(true);
    expect(looksLikeProxyHeader(PROXY_V2_SIGNATURE.subarray(0, 5))).toBe(true);
    expect(looksLikeProxyHeader(Buffer.from('a1 CAPABILITY\r\n'))).toBe(false);
    expect(looksLikeProxyHeader(Buffer.from([0x16, 0x03, 0x01]))).toBe(false); // a TLS ClientHello
  });
});
