import * as net from 'node:net';

/**
 * HAProxy's PROXY protocol, versions 1 (text) and 2 (binary)
 * (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt): how a layer-4
 * balancer tells us the client's own address. Parsing is pure and resumable:
 * feed what arrived so far, get `more`, `invalid` or the header and how many
 * bytes it took.
 */

export interface ProxyEndpoint {
  address: string;
  port: number;
}

export type ProxyHeader =
  /** A proxied connection: the addresses are the client's and the address it connected to. */
  | { command: 'proxy'; source: ProxyEndpoint; destination: ProxyEndpoint; version: 1 | 2 }
  /** The balancer's own connection (health checks) or an unknown family: use the socket's addresses. */
  | { command: 'local'; version: 1 | 2 };

export type ProxyParse =
  | { status: 'more' }
  | { status: 'invalid'; reason: string }
  | { status: 'ok'; header: ProxyHeader; consumed: number };

export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** Spec §2.1: a v1 line is at most 107 bytes including CRLF. */
const V1_MAX = 107;
/** A v2 header with TLVs stays far below this; a larger length is not a balancer. */
const V2_MAX_LENGTH = 1024;

/** Whether `buf` (the first bytes of a connection) begins like a PROXY header, or could. */
export function looksLikeProxyHeader(buf: Buffer): boolean {
  const n = Math.min(buf.length, 6);
  if (buf.subarray(0, n).equals(V1_PREFIX.subarray(0, n))) return true;
  const m = Math.min(buf.length, 12);
  return buf.subarray(0, m).equals(PROXY_V2_SIGNATURE.subarray(0, m));
}

export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return { status: 'more' };
  if (buf[0] === 0x50) return parseV1(buf);
  if (buf[0] === 0x0d) return parseV2(buf);
  return { status: 'invalid', reason: 'no PROXY header' };
}

function parseV1(buf: Buffer): ProxyParse {
  const head = buf.subarray(0, Math.min(buf.length, 6));
  if (!head.equals(V1_PREFIX.subarray(0, head.length))) return { status: 'invalid', reason: 'no PROXY header' };
  const lf = buf.indexOf(0x0a);
  if (lf < 0) return buf.length >= V1_MAX ? { status: 'invalid', reason: 'v1 line too long' } : { status: 'more' };
  if (lf + 1 > V1_MAX || buf[lf - 1] !== 0x0d) return { status: 'invalid', reason: 'v1 line malformed' };
  const parts = buf.subarray(0, lf - 1).toString('latin1').split(' ');
  const consumed = lf + 1;
  if (parts[1] === 'UNKNOWN') return { status: 'ok', header: { command: 'local', version: 1 }, consumed };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { status: 'invalid', reason: 'v1 fields' };
  const family = parts[1] === 'TCP4' ? 4 : 6;
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  if (net.isIP(src) !== family || net.isIP(dst) !== family) return { status: 'invalid', reason: 'v1 address' };
  const sp = port(sport);
  const dp = port(dport);
  if (sp === null || dp === null) return { status: 'invalid', reason: 'v1 port' };
  return { status: 'ok', header: { command: 'proxy', version: 1, source: { address: src, port: sp }, destination: { address: dst, port: dp } }, consumed };
}

function port(s: string): number | null {
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

function parseV2(buf: Buffer): ProxyParse {
  const n = Math.min(buf.length, 12);
  if (!buf.subarray(0, n).equals(PROXY_V2_SIGNATURE.subarray(0, n))) return { status: 'invalid', reason: 'no PROXY header' };
  if (buf.length < 16) return { status: 'more' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { status: 'invalid', reason: 'v2 version' };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { status: 'invalid', reason: 'v2 command' };
  const famProto = buf[13]!;
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_LENGTH) return { status: 'invalid', reason: 'v2 length' };
  if (buf.length < 16 + len) return { status: 'more' };
  const consumed = 16 + len;
  const body = buf.subarray(16, consumed);
  if (cmd === 0) return { status: 'ok', header: { command: 'local', version: 2 }, consumed };
  // TCP over IPv4 (0x11) or IPv6 (0x21); anything else (UDP, unix, UNSPEC) is treated as local.
  const family = V2_FAMILIES.get(famProto);
  if (family) {
    // Source address, destination address, source port, destination port.
    const n = family.addressBytes;
    if (body.length < 2 * n + 4) return { status: 'invalid', reason: `v2 short ${family.name} block` };
    return {
      status: 'ok',
      consumed,
      header: {
        command: 'proxy',
        version: 2,
        source: { address: family.read(body, 0), port: body.readUInt16BE(2 * n) },
        destination: { address: family.read(body, n), port: body.readUInt16BE(2 * n + 2) },
      },
    };
  }
  return { status: 'ok', header: { command: 'local', version: 2 }, consumed };
}

/** PROXY v2 address families over TCP: 0x11 IPv4, 0x21 IPv6 (the spec's §2.2). */
const V2_FAMILIES = new Map<number, { name: string; addressBytes: number; read: (b: Buffer, at: number) => string }>([
  [0x11, { name: 'IPv4', addressBytes: 4, read: ipv4 }],
  [0x21, { name: 'IPv6', addressBytes: 16, read: ipv6 }],
]);

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Buffer, at: number): string {
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 client it stands for.
  if (b.subarray(at, at + 10).every((x) => x === 0) && b.readUInt16BE(at + 10) === 0xffff) return ipv4(b, at + 12);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + i * 2).toString(16));
  // Canonical form via the URL parser's IPv6 serialiser (RFC 5952 compression).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** A v2 PROXY header for a TCP connection from `source` to `destination` (towards a backend). */
export function encodeProxyV2(source: ProxyEndpoint, destination: ProxyEndpoint): Buffer {
  const fam = net.isIP(source.address) === 6 || net.isIP(destination.address) === 6 ? 6 : 4;
  const addrLen = fam === 4 ? 12 : 36;
  const out = Buffer.alloc(16 + addrLen);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = fam === 4 ? 0x11 : 0x21;
  out.writeUInt16BE(addrLen, 14);
  if (fam === 4) {
    writeIpv4(out, 16, source.address);
    writeIpv4(out, 20, destination.address);
    out.writeUInt16BE(source.port, 24);
    out.writeUInt16BE(destination.port, 26);
  } else {
    writeIpv6(out, 16, source.address);
    writeIpv6(out, 32, destination.address);
    out.writeUInt16BE(source.port, 48);
    out.writeUInt16BE(destination.port, 50);
  }
  return out;
}

function writeIpv4(out: Buffer, at: number, address: string): void {
  address.split('.').forEach((p, i) => (out[at + i] = Number(p)));
}

function writeIpv6(out: Buffer, at: number, address: string): void {
  // An IPv4 address in an IPv6 header is written IPv4-mapped; an embedded
  // dotted quad becomes its two 16-bit groups.
  const text = (net.isIP(address) === 4 ? `::ffff:${address}` : address).replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_m, a: string, b: string, c: string, d: string) =>
      `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), at + i * 2));
}
