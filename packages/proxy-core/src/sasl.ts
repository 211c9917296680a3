/**
 * SASL PLAIN (RFC 4616) and strict base64 (RFC 4648 §4), shared by every
 * protocol: IMAP AUTHENTICATE, POP3 AUTH, SMTP AUTH.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decode base64, refusing anything Node's lenient decoder would silently skip. */
export function decodeBase64Strict(text: string): Buffer | null {
  if (!BASE64.test(text)) return null;
  return Buffer.from(text, 'base64');
}

export interface PlainCredentials {
  authzid: string;
  user: string;
  password: string;
}

export type PlainDecode = { ok: true; creds: PlainCredentials } | { ok: false; error: 'base64' | 'format' };

/** `[authzid] NUL authcid NUL passwd`, each UTF-8, authcid and passwd non-empty. */
export function decodeSaslPlain(base64: string): PlainDecode {
  const raw = decodeBase64Strict(base64);
  if (raw === null) return { ok: false, error: 'base64' };
  const first = raw.indexOf(0);
  const second = first < 0 ? -1 : raw.indexOf(0, first + 1);
  if (first < 0 || second < 0 || raw.indexOf(0, second + 1) >= 0) return { ok: false, error: 'format' };
  const authzid = raw.subarray(0, first).toString('utf8');
  const user = raw.subarray(first + 1, second).toString('utf8');
  const password = raw.subarray(second + 1).toString('utf8');
  if (user.length === 0 || password.length === 0) return { ok: false, error: 'format' };
  return { ok: true, creds: { authzid, user, password } };
}

export function encodeSaslPlain(authzid: string, authcid: string, password: string): string {
  return Buffer.concat([
    Buffer.from(authzid, 'utf8'),
    Buffer.from([0]),
    Buffer.from(authcid, 'utf8'),
    Buffer.from([0]),
    Buffer.from(password, 'utf8'),
  ]).toString('base64');
}

/** A JS string as the binary (latin1) string of its UTF-8 bytes, for writing with 'latin1'. */
export function utf8AsBinary(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}
