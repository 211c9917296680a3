import type { SessionEnv } from '@mailfront/proxy-core';

/**
 * What the EHLO reply before AUTH advertises, and how that is kept true.
 *
 * After AUTH the client talks to the backend, with what it learned from *our*
 * EHLO (RFC 4954 §4: no security layer, so no new EHLO is needed). Every
 * extension we list must therefore work on whichever backend the user lands
 * on: nginx advertised CHUNKING that its backends never saw, and mail was lost.
 *
 * The list is configured (`submission.extensions`, `submission.maxMessageBytes`)
 * rather than learned by probing the backends, because:
 *  - the list the client relies on is the backend's list *after* AUTH, which
 *    no probe without credentials can see (Dovecot, for one, shows `SIZE`
 *    without its limit before AUTH and `SIZE 41943040` after);
 *  - the EHLO reply is needed at once, before we know the user and so the
 *    backend; a probe cache would be empty after a restart and stale after
 *    `backend add`, and an intersection over every backend changes what
 *    clients see whenever one backend is down;
 *  - an admin can read, diff and review a configured list.
 * And it is verified where it matters, on every login: after AUTH the backend
 * login sends EHLO once more and checks that the authenticated session offers
 * every configured extension, and a SIZE limit at least ours
 * (`unsupportedBy`). A backend that does not gets no session: the client gets
 * 454 and the log names the missing extension, instead of mail failing later.
 *
 * Only extensions that pass through a byte relay unchanged may be listed.
 * Never: STARTTLS and AUTH (ours, per connection), XCLIENT/XFORWARD (only
 * mailfront may speak for a client), BURL (its URLs name an IMAP server the
 * client may not reach as the backend sees it), ETRN/VRFY/EXPN (not for
 * submission clients).
 */
export const RELAYABLE_EXTENSIONS = [
  'PIPELINING', // RFC 2920
  '8BITMIME', // RFC 6152
  'ENHANCEDSTATUSCODES', // RFC 2034
  'SIZE', // RFC 1870
  'CHUNKING', // RFC 3030 (BDAT)
  'BINARYMIME', // RFC 3030; needs CHUNKING
  'SMTPUTF8', // RFC 6531
  'DSN', // RFC 3461
] as const;
export type RelayableExtension = (typeof RELAYABLE_EXTENSIONS)[number];

/**
 * What every submission server in use offers (Dovecot 2.3, Postfix, Exim):
 * a default that cannot fail verification. CHUNKING is left to the admin who
 * knows the backends (Dovecot 2.3 and Postfix ≥ 3.4 have it).
 */
export const DEFAULT_EXTENSIONS: readonly RelayableExtension[] = Object.freeze(['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE']);

export interface ExtensionPolicy {
  extensions: readonly RelayableExtension[];
  /**
   * The SIZE limit to advertise (RFC 1870), in bytes: the backends' own limit
   * (Dovecot: submission_max_mail_size). 0 advertises SIZE without a number
   * ("a limit exists, not declared"), as Dovecot does before AUTH, rather than
   * a made-up figure.
   */
  maxMessageBytes: number;
}

export const SASL_MECHANISMS = ['PLAIN', 'LOGIN'] as const;

/** The EHLO keywords after the greeting line, in order. */
export function ehloKeywords(policy: ExtensionPolicy, env: Pick<SessionEnv, 'starttlsAvailable' | 'authAllowed'>): string[] {
  const out: string[] = [];
  for (const e of policy.extensions) out.push(e === 'SIZE' && policy.maxMessageBytes > 0 ? `SIZE ${policy.maxMessageBytes}` : e);
  if (env.starttlsAvailable) out.push('STARTTLS');
  // RFC 4954 §4 / RFC 3207 §4: AUTH only where credentials may be sent.
  if (env.authAllowed) out.push(`AUTH ${SASL_MECHANISMS.join(' ')}`);
  return out;
}

/**
 * The keywords of an EHLO reply, upper-cased, with their parameters: the text
 * of each reply line after the first (which is the server's name).
 */
export function parseEhloKeywords(texts: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const t of texts.slice(1)) {
    const [kw, ...params] = t.trim().split(/\s+/);
    if (kw) out.set(kw.toUpperCase(), params);
  }
  return out;
}

/**
 * What we advertise that a backend's (authenticated) EHLO does not offer;
 * empty when the backend supports everything we promised.
 */
export function unsupportedBy(backend: ReadonlyMap<string, readonly string[]>, policy: ExtensionPolicy): string[] {
  const missing: string[] = [];
  for (const e of policy.extensions) {
    if (!backend.has(e)) {
      missing.push(e);
      continue;
    }
    if (e === 'SIZE' && policy.maxMessageBytes > 0) {
      const param = backend.get('SIZE')?.[0];
      const limit = param !== undefined && /^\d{1,15}$/.test(param) ? Number(param) : 0;
      // 0 or none: the backend declares no fixed limit (RFC 1870 §4).
      if (limit > 0 && limit < policy.maxMessageBytes) missing.push(`SIZE ${policy.maxMessageBytes} (backend: ${limit})`);
    }
  }
  return missing;
}
