/**
 * A socket address as people and backends know it: an IPv4 client reaching a
 * dual-stack listener shows up as `::ffff:192.0.2.1`; Dovecot, logs and
 * penalties want `192.0.2.1`.
 */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1]! : address;
}
