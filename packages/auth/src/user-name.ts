import { AuthError } from './errors';
import type { AuthRequest, AuthResult } from './types';

/**
 * RFC 5321 §4.5.3.1 caps a local part at 64 octets and a domain at 255;
 * 255 octets for the whole name is what Dovecot and most directories accept.
 */
const MAX_USER_NAME_BYTES = 255;

// C0 (NUL included), DEL and C1. Such names break log lines and would let a
// SASL PLAIN message (NUL-separated) or an IMAP command smuggle fields.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The canonical form of a login name: trimmed and lower-cased, so that
 * "Alice@Example.org " and "alice@example.org" are one account. Checked for
 * control characters before trimming: trim() would silently drop a trailing
 * CR or LF. Throws AuthError 'invalid-user-name'.
 */
export function canonicalUserName(name: string): string {
  if (typeof name !== 'string') throw new AuthError('invalid-user-name', 'user name must be a string');
  if (CONTROL.test(name)) throw new AuthError('invalid-user-name', 'user name contains control characters');
  const canonical = name.trim().toLowerCase();
  if (canonical.length === 0) throw new AuthError('invalid-user-name', 'user name is empty');
  if (Buffer.byteLength(canonical, 'utf8') > MAX_USER_NAME_BYTES) {
    throw new AuthError('invalid-user-name', `user name is longer than ${MAX_USER_NAME_BYTES} bytes`);
  }
  return canonical;
}

/**
 * Who `req` logs in as: the canonical form of its user name, or the
 * 'auth-failed' result that ends it before any credential is looked at. An
 * unusable name has nothing to hide by timing (it can never exist); an
 * authzid naming someone else is refused, since acting as another identity
 * needs a proxy right (RFC 4616 §2) and no authenticator here grants one.
 */
export function loginUser(req: AuthRequest): { ok: true; user: string } | Extract<AuthResult, { ok: false }> {
  let user: string;
  try {
    user = canonicalUserName(req.user);
  } catch (err) {
    return { ok: false, kind: 'auth-failed', reason: `invalid user name: ${(err as Error).message}` };
  }
  if (req.authzid !== undefined && req.authzid !== '') {
    let authz: string | undefined;
    try {
      authz = canonicalUserName(req.authzid);
    } catch {
      authz = undefined;
    }
    if (authz !== user) return { ok: false, kind: 'auth-failed', reason: 'authzid not allowed' };
  }
  return { ok: true, user };
}
