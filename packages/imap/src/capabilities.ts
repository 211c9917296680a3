import type { SessionEnv } from '@mailfront/proxy-core';

/**
 * What the proxy itself handles before login, and nothing more: the backend's
 * own capabilities reach the client in its tagged OK after login.
 */
export function preLoginCapabilities(env: Pick<SessionEnv, 'starttlsAvailable' | 'authAllowed'>): string {
  const caps = ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID'];
  if (env.starttlsAvailable) caps.push('STARTTLS');
  // RFC 9051 §6.2.3 / RFC 2595 §3.2: LOGINDISABLED when credentials may not be sent yet.
  caps.push(env.authAllowed ? 'AUTH=PLAIN' : 'LOGINDISABLED');
  return caps.join(' ');
}

/** Parse `[CAPABILITY a b c]` at the start of a response text, or `* CAPABILITY a b c`. Upper-cased. */
export function parseCapabilityCode(text: string): string[] | null {
  const m = /^\[CAPABILITY ([^\]]*)\]/i.exec(text);
  return m ? splitCaps(m[1]!) : null;
}

export function splitCaps(list: string): string[] {
  return list
    .split(' ')
    .filter((c) => c.length > 0)
    .map((c) => c.toUpperCase());
}
