/**
 * Every string that came from a peer is clipped and made printable before it
 * reaches a log line: a client must not be able to forge log lines, flood the
 * log, or smuggle terminal escapes to an admin's screen.
 */
export function clip(value: string | Buffer | undefined | null, max = 120): string {
  if (value === undefined || value === null) return '';
  const s = typeof value === 'string' ? value : value.toString('latin1');
  let out = '';
  const n = Math.min(s.length, max);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x100) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += '\\u' + c.toString(16).padStart(4, '0');
  }
  if (s.length > max) out += `…(+${s.length - max})`;
  return out;
}
