import { isIP } from 'node:net';
import {
  encodeSaslPlain,
  failure,
  type BackendLoginContext,
  type BackendProtocol,
  type BackendStep,
  type ForwardInfo,
  type ProxyFailure,
} from '@mailfront/proxy-core';
import { parseEhloKeywords, unsupportedBy, type ExtensionPolicy } from './capabilities';

/**
 * Logging in to an SMTP submission backend, one backend line at a time:
 *
 *   220 → EHLO → [STARTTLS → 220 → EHLO] → [XCLIENT → 220 → EHLO] → AUTH PLAIN → 235 → EHLO
 *
 * and the backend is left where the client expects it after our 235: greeted
 * with EHLO and authenticated, no transaction open.
 *
 * - Only the EHLO inside TLS is trusted (RFC 3207 §4.2); STARTTLS configured
 *   but not offered means no credentials are sent.
 * - XCLIENT only to trusted backends, and only the attributes the backend
 *   lists. Dovecot 2.3's submission-login offers `XCLIENT ADDR PORT PROTO HELO
 *   LOGIN SESSION TTL TIMEOUT FORWARD` to login_trusted_networks and answers
 *   with a fresh `220` greeting, after which it wants EHLO again (as Postfix
 *   does). Its LOGIN is parsed but ignored (AUTH is still required), so it is
 *   never sent. The EHLO after XCLIENT carries the client's own EHLO name, as
 *   nginx does: Dovecot writes that name, not XCLIENT's HELO, into the
 *   Received header (`from <helo> ([<ADDR>])`).
 * - The final EHLO after 235 is the check of capabilities.ts: the
 *   authenticated session must offer every extension the client was promised.
 *   It repeats the name of the EHLO before it, which Dovecot would otherwise
 *   put into the Received header instead.
 *
 * Replies may span lines (`250-…` … `250 …`); the machine collects them.
 */
export type SubmissionBackendState =
  | { at: 'banner'; lines: string[] }
  /** `phase`: which EHLO this is the reply to. `auth` keeps the 235 reply for the client session. */
  | { at: 'ehlo'; phase: 'plain' | 'tls' | 'xclient'; lines: string[] }
  | { at: 'verify'; authReply: string[]; lines: string[] }
  | { at: 'starttls'; lines: string[] }
  | { at: 'xclient'; lines: string[] }
  /** `pending`: the SASL response still to send after a `334` (when it did not fit on the AUTH line). */
  | { at: 'auth'; pending: string | null; lines: string[] };

type Step = BackendStep<SubmissionBackendState>;

export interface SubmissionBackendOptions {
  /** Our name in EHLO (config `hostname`). */
  hostname: string;
  policy: ExtensionPolicy;
}

/** RFC 5321 §4.5.3.1.4: a command line, CRLF included, is at most 512 octets. */
const MAX_COMMAND_LINE = 512;

export function submissionBackend(opts: SubmissionBackendOptions): BackendProtocol<SubmissionBackendState> {
  return {
    initial: () => ({ at: 'banner', lines: [] }),
    onLine: (s, line, ctx) => onLine(s, line, ctx, opts),
  };
}

interface Reply {
  code: number;
  /** Each line's text after the code and separator. */
  texts: string[];
  /** The lines as received. */
  lines: string[];
}

/** Add one line to a reply in progress: the complete reply, the state to wait in, or a failure. */
function collect<S extends { lines: string[] }>(s: S, line: string): { reply: Reply } | { wait: S } | { fail: ProxyFailure } {
  const m = /^(\d{3})(?:([ -])(.*))?$/.exec(line);
  if (!m) return { fail: failure('protocol', `not an SMTP reply line: ${line.slice(0, 100)}`) };
  const lines = [...s.lines, line];
  // RFC 5321 §4.2.1: every line of a multi-line reply has the same code.
  if (s.lines.length > 0 && !s.lines[0]!.startsWith(m[1]!)) return { fail: failure('protocol', 'reply code changed within a multi-line reply') };
  if (m[2] === '-') return { wait: { ...s, lines } };
  return { reply: { code: Number(m[1]), lines, texts: lines.map((l) => l.slice(4)) } };
}

function onLine(s: SubmissionBackendState, line: string, ctx: BackendLoginContext, opts: SubmissionBackendOptions): Step {
  const c = collect(s, line);
  if ('fail' in c) return c;
  if ('wait' in c) return { next: c.wait };
  const r = c.reply;
  const said = `${r.code} ${(r.texts[r.texts.length - 1] ?? '').slice(0, 200)}`;
  switch (s.at) {
    case 'banner':
      if (r.code === 220) return ehlo('plain', opts.hostname);
      // 421 busy, 554 no service for us (RFC 5321 §3.1): the backend's own refusal.
      return { fail: failure('remote', `greeting: ${said}`) };
    case 'starttls':
      if (r.code !== 220) return { fail: failure('protocol', `backend refused STARTTLS: ${said}`) };
      // Nothing learned before TLS is kept (RFC 3207 §4.2): greet again inside it.
      return { ...ehlo('tls', opts.hostname), startTls: true };
    case 'xclient':
      if (r.code !== 220) return { fail: refused(r.code, `XCLIENT: ${said}`) };
      return ehlo('xclient', ehloNameFor(ctx));
    case 'ehlo':
      if (r.code !== 250) return { fail: refused(r.code, `EHLO: ${said}`) };
      return afterEhlo(s.phase, parseEhloKeywords(r.texts), ctx);
    case 'auth':
      if (r.code === 334) {
        if (s.pending === null) return { fail: failure('protocol', 'unexpected 334 challenge') };
        return { next: { at: 'auth', pending: null, lines: [] }, send: `${s.pending}\r\n` };
      }
      if (r.code === 235) {
        // The same name as the last EHLO: Dovecot's Received header takes the latest one.
        const name = ctx.forward ? ehloNameFor(ctx) : opts.hostname;
        return { next: { at: 'verify', authReply: r.lines, lines: [] }, send: `EHLO ${name}\r\n`, sent: 'ehlo' };
      }
      if (r.code === 535) {
        // RFC 4954 §6: credentials invalid. In master mode they are ours.
        return { fail: failure(ctx.backend.login === 'master' ? 'remote' : 'auth-failed', `${ctx.backend.login === 'master' ? 'master ' : ''}AUTH: ${said}`) };
      }
      return { fail: refused(r.code, `AUTH: ${said}`) };
    case 'verify': {
      if (r.code !== 250) return { fail: refused(r.code, `EHLO after AUTH: ${said}`) };
      const missing = unsupportedBy(parseEhloKeywords(r.texts), opts.policy);
      if (missing.length > 0) {
        return { fail: failure('protocol', `backend does not offer what clients are told (submission.extensions): ${missing.join(', ')}`) };
      }
      return { done: true, reply: s.authReply };
    }
  }
}

function ehlo(phase: 'plain' | 'tls' | 'xclient', name: string): Step {
  return { next: { at: 'ehlo', phase, lines: [] }, send: `EHLO ${name}\r\n`, sent: 'ehlo' };
}

/** 4xx (and 421): the backend's trouble, try later; 5xx or anything else: it does not speak as it should. */
function refused(code: number, detail: string): ProxyFailure {
  return failure(code >= 400 && code < 500 ? 'remote' : 'protocol', detail);
}

function afterEhlo(phase: 'plain' | 'tls' | 'xclient', kw: Map<string, string[]>, ctx: BackendLoginContext): Step {
  if (ctx.backend.tls === 'starttls' && !ctx.tls) {
    // No credentials to a backend that does not offer the TLS it is configured for (STARTTLS stripping).
    if (!kw.has('STARTTLS')) return { fail: failure('protocol', 'backend does not offer STARTTLS') };
    return { next: { at: 'starttls', lines: [] }, send: 'STARTTLS\r\n', sent: 'starttls' };
  }
  if (ctx.forward && phase !== 'xclient') {
    const offered = kw.get('XCLIENT');
    if (!offered?.some((a) => a.toUpperCase() === 'ADDR')) {
      return { fail: failure('protocol', 'trusted backend does not offer XCLIENT ADDR (is mailfront in its trusted networks?)') };
    }
    return { next: { at: 'xclient', lines: [] }, send: xclientCommand(ctx.forward, offered, ctx.clientContext), sent: 'xclient' };
  }
  return auth(kw, ctx);
}

function auth(kw: Map<string, string[]>, ctx: BackendLoginContext): Step {
  const mechs = (kw.get('AUTH') ?? []).map((m) => m.toUpperCase());
  if (!mechs.includes('PLAIN')) return { fail: failure('protocol', 'backend does not offer AUTH PLAIN') };
  const b = ctx.backend;
  let payload: string;
  if (b.login === 'master') {
    if (!b.masterUser || !b.masterPassword) return { fail: failure('internal', 'master login without master credentials') };
    payload = encodeSaslPlain(ctx.user, b.masterUser, b.masterPassword);
  } else {
    payload = encodeSaslPlain('', ctx.user, ctx.password);
  }
  const withIr = `AUTH PLAIN ${payload}\r\n`;
  // RFC 4954 §4: an initial response that would make the line too long is sent after an empty 334 instead.
  if (withIr.length <= MAX_COMMAND_LINE) return { next: { at: 'auth', pending: null, lines: [] }, send: withIr, sent: 'auth' };
  return { next: { at: 'auth', pending: payload, lines: [] }, send: 'AUTH PLAIN\r\n', sent: 'auth' };
}

/**
 * `XCLIENT ADDR=… PORT=… …` with the attributes the backend offers. Values are
 * xtext (RFC 3461 §4, as Postfix's XCLIENT defines); HELO is left out rather
 * than make the line longer than a command line may be.
 */
export function xclientCommand(f: ForwardInfo, offered: readonly string[], client: Readonly<Record<string, string>>): string {
  const has = new Set(offered.map((a) => a.toUpperCase()));
  const attrs = [`ADDR=${xclientAddress(f.clientAddress)}`];
  if (has.has('PORT')) attrs.push(`PORT=${f.clientPort}`);
  if (has.has('PROTO') && (client['proto'] === 'ESMTP' || client['proto'] === 'SMTP')) attrs.push(`PROTO=${client['proto']}`);
  if (has.has('DESTADDR')) attrs.push(`DESTADDR=${xclientAddress(f.localAddress)}`);
  if (has.has('DESTPORT')) attrs.push(`DESTPORT=${f.localPort}`);
  if (has.has('SESSION')) attrs.push(`SESSION=${xtext(f.sessionId)}`);
  if (has.has('TTL')) attrs.push(`TTL=${f.ttl}`);
  const line = `XCLIENT ${attrs.join(' ')}`;
  const helo = client['helo'];
  if (has.has('HELO') && helo) {
    const withHelo = `${line} HELO=${xtext(helo)}`;
    if (withHelo.length + 2 <= MAX_COMMAND_LINE) return `${withHelo}\r\n`;
  }
  return `${line}\r\n`;
}

/** Postfix's XCLIENT form: IPv6 addresses carry an `IPV6:` prefix. */
function xclientAddress(ip: string): string {
  return isIP(ip) === 6 ? `IPV6:${ip}` : ip;
}

/** RFC 3461 §4: `+` `=` and bytes outside 0x21..0x7e as `+HH`. Input is a binary string. */
export function xtext(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d ? s[i] : `+${(c & 0xff).toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const DOMAIN = /^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** RFC 5321 §4.1.2: Domain or address-literal. */
export function isEhloName(name: string): boolean {
  if (DOMAIN.test(name)) return true;
  const lit = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(name);
  if (!lit) return false;
  return /^\[IPv6:/i.test(name) ? isIP(lit[1]!) === 6 : isIP(lit[1]!) === 4;
}

/**
 * The name to greet a trusted backend with after XCLIENT: the client's own,
 * when it is one a server accepts; else its address as a literal, which is
 * what it is.
 */
function ehloNameFor(ctx: BackendLoginContext): string {
  const helo = ctx.clientContext['helo'] ?? '';
  if (isEhloName(helo)) return helo;
  const ip = ctx.forward?.clientAddress ?? '';
  return isIP(ip) === 6 ? `[IPv6:${ip}]` : `[${ip}]`;
}
