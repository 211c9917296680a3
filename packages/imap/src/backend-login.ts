import {
  encodeSaslPlain,
  failure,
  utf8AsBinary,
  type BackendLoginContext,
  type BackendProtocol,
  type BackendStep,
} from '@mailfront/proxy-core';
import { parseCapabilityCode, splitCaps } from './capabilities';

/**
 * Logging in to an IMAP backend, one backend line at a time:
 *   greeting → [CAPABILITY] → [STARTTLS → CAPABILITY] → [ID] + login
 * ID (when the backend is trusted) and the login are pipelined in one write,
 * as Dovecot's own proxy does, to save a round trip.
 *
 * Lines are binary strings (see LineReader); tags are ours, the client's tag
 * is put on the final reply by the client session.
 */
export type ImapBackendState =
  | { at: 'banner' }
  | { at: 'capability'; caps: string[] }
  | { at: 'starttls' }
  | { at: 'login'; idPending: boolean; continuation: string | null; untagged: string[] };

type Step = BackendStep<ImapBackendState>;

const TAG_CAPABILITY = 'C';
const TAG_STARTTLS = 'S';
const TAG_ID = 'I';
const TAG_LOGIN = 'L';

export const imapBackend: BackendProtocol<ImapBackendState> = {
  initial: () => ({ at: 'banner' }),
  onLine,
  literalLength(line: string): number | null {
    const m = /\{(\d{1,9})\+?\}$/.exec(line);
    return m ? Number(m[1]) : null;
  },
};

function onLine(s: ImapBackendState, line: string, ctx: BackendLoginContext): Step {
  if (/^\* BYE\b/i.test(line)) return { fail: failure('remote', `backend said BYE: ${line.slice(0, 200)}`) };
  switch (s.at) {
    case 'banner': {
      if (/^\* PREAUTH\b/i.test(line)) {
        // A backend that logs us in before we authenticated (RFC 9051 §7.1.4)
        // lets a STARTTLS stripper skip TLS; and it is not who the user is.
        return { fail: failure('protocol', 'backend greeted with PREAUTH') };
      }
      const m = /^\* OK (.*)$/i.exec(line);
      if (!m) return { fail: failure('protocol', 'unexpected banner') };
      return afterCapabilities(parseCapabilityCode(m[1]!), ctx);
    }
    case 'capability': {
      if (line.startsWith('* ')) {
        const m = /^\* CAPABILITY (.*)$/i.exec(line);
        return { next: m ? { at: 'capability', caps: splitCaps(m[1]!) } : s };
      }
      const t = tagged(line, TAG_CAPABILITY);
      if (!t) return { fail: failure('protocol', 'unexpected reply to CAPABILITY') };
      if (t.status !== 'OK') return { fail: failure('protocol', `CAPABILITY refused: ${t.status}`) };
      if (s.caps.length === 0) return { fail: failure('protocol', 'backend listed no capabilities') };
      return afterCapabilities(s.caps, ctx);
    }
    case 'starttls': {
      if (line.startsWith('* ')) return { next: s };
      const t = tagged(line, TAG_STARTTLS);
      if (!t) return { fail: failure('protocol', 'unexpected reply to STARTTLS') };
      if (t.status !== 'OK') return { fail: failure('protocol', `backend refused STARTTLS: ${t.status}`) };
      // Capabilities learned before TLS are forgotten (RFC 9051 §6.2.1).
      return { next: { at: 'capability', caps: [] }, startTls: true, send: `${TAG_CAPABILITY} CAPABILITY\r\n`, sent: 'capability' };
    }
    case 'login': {
      if (line.startsWith('+')) {
        if (s.continuation === null) return { fail: failure('protocol', 'unexpected continuation') };
        return { next: { ...s, continuation: null }, send: `${s.continuation}\r\n` };
      }
      if (line.startsWith('* ')) {
        if (s.idPending && /^\* ID /i.test(line)) return { next: s };
        return { next: { ...s, untagged: [...s.untagged, line] } };
      }
      const id = tagged(line, TAG_ID);
      if (id) return { next: { ...s, idPending: false } };
      const t = tagged(line, TAG_LOGIN);
      if (!t) return { fail: failure('protocol', 'unexpected reply to login') };
      if (t.status === 'OK') return { done: true, reply: [...s.untagged, `OK ${t.text}`] };
      if (t.status === 'BAD') return { fail: failure('protocol', `login BAD: ${t.text.slice(0, 200)}`) };
      return { fail: classifyNo(t.text, ctx) };
    }
  }
}

/** Capabilities known (or not): STARTTLS first if configured, then log in. */
function afterCapabilities(caps: string[] | null, ctx: BackendLoginContext): Step {
  const needTls = ctx.backend.tls === 'starttls' && !ctx.tls;
  if (caps === null) {
    return { next: { at: 'capability', caps: [] }, send: `${TAG_CAPABILITY} CAPABILITY\r\n`, sent: 'capability' };
  }
  if (needTls) {
    // No credentials to a backend that does not offer what it is configured for
    // (STARTTLS stripping).
    if (!caps.includes('STARTTLS')) return { fail: failure('protocol', 'backend does not offer STARTTLS') };
    return { next: { at: 'starttls' }, send: `${TAG_STARTTLS} STARTTLS\r\n`, sent: 'starttls' };
  }
  return login(caps, ctx);
}

function login(caps: string[], ctx: BackendLoginContext): Step {
  const b = ctx.backend;
  let out = '';
  const sent: string[] = [];
  if (ctx.forward) {
    const f = ctx.forward;
    // Dovecot accepts these from login_trusted_networks and logs them as the
    // client's own address and port (rip/rport).
    out +=
      `${TAG_ID} ID (` +
      `"x-session-id" "${f.sessionId}" ` +
      `"x-originating-ip" "${f.clientAddress}" "x-originating-port" "${f.clientPort}" ` +
      `"x-connected-ip" "${f.localAddress}" "x-connected-port" "${f.localPort}" ` +
      `"x-proxy-ttl" "${f.ttl}")\r\n`;
    sent.push('id');
  }
  const saslIr = caps.includes('SASL-IR');
  const plain = caps.includes('AUTH=PLAIN');
  let payload: string | null = null;
  if (b.login === 'master') {
    if (!plain) return { fail: failure('protocol', 'backend does not offer AUTH=PLAIN for a master login') };
    if (!b.masterUser || !b.masterPassword) return { fail: failure('internal', 'master login without master credentials') };
    payload = encodeSaslPlain(ctx.user, b.masterUser, b.masterPassword);
  } else if (plain) {
    payload = encodeSaslPlain('', ctx.user, ctx.password);
  }
  let continuation: string | null = null;
  if (payload !== null) {
    if (saslIr) out += `${TAG_LOGIN} AUTHENTICATE PLAIN ${payload}\r\n`;
    else {
      out += `${TAG_LOGIN} AUTHENTICATE PLAIN\r\n`;
      continuation = payload;
    }
  } else {
    if (caps.includes('LOGINDISABLED')) return { fail: failure('protocol', 'backend offers neither AUTH=PLAIN nor LOGIN') };
    const user = loginString(ctx.user, caps);
    const pass = loginString(ctx.password, caps);
    if (user === null || pass === null) return { fail: failure('protocol', 'credentials cannot be sent with LOGIN to this backend') };
    out += `${TAG_LOGIN} LOGIN ${user} ${pass}\r\n`;
  }
  sent.push('login');
  return { next: { at: 'login', idPending: ctx.forward !== null, continuation, untagged: [] }, send: out, sent: sent.join('+') };
}

/** A quoted string where possible, else a LITERAL+ literal; null when neither is allowed. */
function loginString(value: string, caps: string[]): string | null {
  const bin = utf8AsBinary(value);
  if (/^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(bin)) return `"${bin.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  if (caps.includes('LITERAL+') && !bin.includes('\0')) return `{${bin.length}+}\r\n${bin}`;
  return null;
}

function tagged(line: string, tag: string): { status: 'OK' | 'NO' | 'BAD'; text: string } | null {
  const m = /^(\S+) (OK|NO|BAD)(?: (.*))?$/i.exec(line);
  if (!m || m[1] !== tag) return null;
  return { status: m[2]!.toUpperCase() as 'OK' | 'NO' | 'BAD', text: m[3] ?? '' };
}

/**
 * A refused login: a temporary condition ([UNAVAILABLE], [SERVERBUG], [LIMIT]…)
 * is the backend's trouble; otherwise it is the user's credentials, except in
 * master mode, where the credentials are ours.
 */
function classifyNo(text: string, ctx: BackendLoginContext) {
  const code = /^\[([A-Z-]+)/i.exec(text)?.[1]?.toUpperCase();
  const detail = `login NO: ${text.slice(0, 200)}`;
  if (code === 'INUSE') return failure('remote', detail, undefined, 'in-use');
  if (code && ['UNAVAILABLE', 'SERVERBUG', 'LIMIT', 'CONTACTADMIN', 'EXPIRED'].includes(code)) {
    return failure('remote', detail);
  }
  if (ctx.backend.login === 'master') return failure('remote', `master ${detail}`);
  return failure('auth-failed', detail);
}
