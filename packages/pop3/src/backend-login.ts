import {
  encodeSaslPlain,
  failure,
  utf8AsBinary,
  type BackendLoginContext,
  type BackendProtocol,
  type BackendStep,
  type ProxyFailure,
} from '@mailfront/proxy-core';
import { parseCapaLines, type BackendCapabilities } from './capabilities';

/**
 * Logging in to a POP3 backend, one backend line at a time:
 *   greeting → CAPA → [STLS → CAPA] → [XCLIENT] → USER/PASS or AUTH PLAIN
 *
 * - CAPA (RFC 2449 §5) tells whether the backend offers STLS, SASL PLAIN
 *   and USER. A backend without CAPA (RFC 1939 only) gets USER/PASS,
 *   but never credentials when it is configured for STLS: RFC 2595 §4 servers
 *   with STLS have CAPA, so a missing CAPA there is stripping.
 * - XCLIENT (Dovecot's pop3-login) forwards the client's address, port and
 *   our session id. Dovecot 2.3 does not list it in CAPA: it puts `[XCLIENT]`
 *   in its greeting, and only for clients in login_trusted_networks
 *   (`+OK [XCLIENT] Dovecot (Debian) ready.`); others get a plain greeting and
 *   an XCLIENT there is answered "+OK You are not from trusted IP - ignoring".
 *   So it is sent only to a backend marked trusted (ctx.forward) that
 *   announced it, as Dovecot's own proxy does. The announcement may come
 *   from the plaintext greeting before STLS: it decides nothing but whether
 *   we tell the backend the client's address, which is no secret.
 * - AUTH PLAIN is preferred when offered, in master mode required: it carries
 *   any password bytes. USER/PASS (passthrough only) sends the password as
 *   its raw UTF-8 bytes and cannot carry CR, LF or NUL.
 *
 * Lines are binary strings (see LineReader), and so is everything sent.
 */
export type Pop3BackendState =
  | { at: 'banner' }
  /** `listing`: inside the multi-line CAPA answer; `xclient`: the greeting announced XCLIENT. */
  | { at: 'capa'; listing: boolean; lines: string[]; xclient: boolean }
  | { at: 'stls'; xclient: boolean }
  /** XCLIENT sent; the login command follows its +OK. */
  | { at: 'xclient'; login: LoginPlan }
  /** USER sent, PASS follows its +OK. */
  | { at: 'user' }
  | { at: 'pass' }
  /** AUTH PLAIN sent; `continuation`: the response still goes after `+ `. */
  | { at: 'auth'; continuation: boolean };

/** How to log in: the data (password, SASL payload) is rebuilt from ctx, never kept in the state. */
export type LoginPlan = { method: 'user' } | { method: 'auth'; continuation: boolean };

type Step = BackendStep<Pop3BackendState>;

/** RFC 2449 §4: a command line is at most 255 octets with its CRLF; RFC 5034 §4 applies it to AUTH's initial response. */
const MAX_COMMAND_OCTETS = 255;
/** A CAPA answer longer than this is not a capability list. Dovecot's has 8 lines. */
const MAX_CAPA_LINES = 128;

export const pop3Backend: BackendProtocol<Pop3BackendState> = {
  initial: () => ({ at: 'banner' }),
  onLine,
};

const isOk = (line: string) => /^\+OK(?: |$)/i.test(line);
const isErr = (line: string) => /^-ERR(?: |$)/i.test(line);
const isContinuation = (line: string) => /^\+(?: |$)/.test(line);
const clipLine = (line: string) => line.slice(0, 200);

function onLine(s: Pop3BackendState, line: string, ctx: BackendLoginContext): Step {
  switch (s.at) {
    case 'banner': {
      if (isErr(line)) return { fail: failure('remote', `backend refused the connection: ${clipLine(line)}`) };
      if (!isOk(line)) return { fail: failure('protocol', 'unexpected banner') };
      return capa(/^\+OK \[XCLIENT\]/i.test(line));
    }
    case 'capa': {
      if (!s.listing) {
        if (isOk(line)) return { next: { ...s, listing: true } };
        // An RFC 1939-only server: nothing is known about it.
        if (isErr(line)) return afterCapabilities(null, s.xclient, ctx);
        return { fail: failure('protocol', 'unexpected reply to CAPA') };
      }
      if (line === '.') return afterCapabilities(parseCapaLines(s.lines), s.xclient, ctx);
      if (s.lines.length >= MAX_CAPA_LINES) return { fail: failure('protocol', `CAPA answer longer than ${MAX_CAPA_LINES} lines`) };
      // RFC 1939 §3: a line of a multi-line answer that starts with "." has another "." before it.
      return { next: { ...s, lines: [...s.lines, line.startsWith('.') ? line.slice(1) : line] } };
    }
    case 'stls': {
      if (isErr(line)) return { fail: failure('protocol', `backend refused STLS: ${clipLine(line)}`) };
      if (!isOk(line)) return { fail: failure('protocol', 'unexpected reply to STLS') };
      // RFC 2595 §4: what CAPA said before TLS is forgotten; ask again through TLS.
      return { next: { at: 'capa', listing: false, lines: [], xclient: s.xclient }, startTls: true, send: 'CAPA\r\n', sent: 'capa' };
    }
    case 'xclient': {
      if (isErr(line)) return { fail: failure('remote', `XCLIENT refused: ${clipLine(line)}`) };
      if (!isOk(line)) return { fail: failure('protocol', 'unexpected reply to XCLIENT') };
      return sendLogin(s.login, ctx);
    }
    case 'user': {
      if (isOk(line)) return { next: { at: 'pass' }, send: `PASS ${utf8AsBinary(ctx.password)}\r\n`, sent: 'pass' };
      if (isErr(line)) return { fail: classifyErr(line, ctx) };
      return { fail: failure('protocol', 'unexpected reply to USER') };
    }
    case 'pass': {
      if (isOk(line)) return { done: true, reply: [line] };
      if (isErr(line)) return { fail: classifyErr(line, ctx) };
      return { fail: failure('protocol', 'unexpected reply to PASS') };
    }
    case 'auth': {
      if (isOk(line)) return { done: true, reply: [line] };
      if (isErr(line)) return { fail: classifyErr(line, ctx) };
      if (isContinuation(line)) {
        // PLAIN has one client message and no server challenge after it.
        if (!s.continuation) return { fail: failure('protocol', 'unexpected SASL challenge') };
        return { next: { at: 'auth', continuation: false }, send: `${saslPayload(ctx)}\r\n` };
      }
      return { fail: failure('protocol', 'unexpected reply to AUTH') };
    }
  }
}

function capa(xclient: boolean): Step {
  return { next: { at: 'capa', listing: false, lines: [], xclient }, send: 'CAPA\r\n', sent: 'capa' };
}

/** Capabilities known (null: the backend has no CAPA): STLS first if configured, then log in. */
function afterCapabilities(caps: BackendCapabilities | null, xclient: boolean, ctx: BackendLoginContext): Step {
  if (ctx.backend.tls === 'starttls' && !ctx.tls) {
    // No credentials to a backend that does not offer what it is configured for (STLS stripping).
    if (!caps?.has('STLS')) return { fail: failure('protocol', 'backend does not offer STLS') };
    return { next: { at: 'stls', xclient }, send: 'STLS\r\n', sent: 'stls' };
  }
  return login(caps, xclient || (caps?.has('XCLIENT') ?? false), ctx);
}

function login(caps: BackendCapabilities | null, xclientOffered: boolean, ctx: BackendLoginContext): Step {
  const b = ctx.backend;
  const plain = caps?.args('SASL').includes('PLAIN') ?? false;
  let plan: LoginPlan;
  if (b.login === 'master') {
    if (!plain) return { fail: failure('protocol', 'backend does not offer SASL PLAIN for a master login') };
    if (!b.masterUser || !b.masterPassword) return { fail: failure('internal', 'master login without master credentials') };
    plan = authPlan(ctx);
  } else if (plain) {
    plan = authPlan(ctx);
  } else {
    // A backend that lists its capabilities without USER would refuse it
    // (Dovecot before TLS with disable_plaintext_auth): that must not look
    // like the user's wrong password.
    if (caps !== null && !caps.has('USER')) return { fail: failure('protocol', 'backend offers neither SASL PLAIN nor USER') };
    if (/[\r\n\0]/.test(ctx.user) || /[\r\n\0]/.test(ctx.password)) {
      return { fail: failure('protocol', 'credentials cannot be sent with USER/PASS to this backend (CR, LF or NUL)') };
    }
    plan = { method: 'user' };
  }
  const f = ctx.forward;
  if (f === null || !xclientOffered) return sendLogin(plan, ctx);
  // Dovecot's pop3-login takes ADDR, PORT, SESSION and TTL and logs them as
  // rip, rport and session; unknown names are ignored, a bad value is -ERR.
  const xclient = `XCLIENT ADDR=${bareAddress(f.clientAddress)} PORT=${f.clientPort} SESSION=${f.sessionId} TTL=${f.ttl}\r\n`;
  // Never pipelined with the login, even to a backend that offers
  // PIPELINING: Dovecot 2.3's pop3-login answers an AUTH (or USER) that
  // came in the same packet as XCLIENT ~30 ms late (measured: login 45 ms
  // pipelined, 14 ms waiting for `+OK Updated`); a loopback round trip is
  // ~0.1 ms.
  return { next: { at: 'xclient', login: plan }, send: xclient, sent: 'xclient' };
}

function authPlan(ctx: BackendLoginContext): LoginPlan {
  const full = `AUTH PLAIN ${saslPayload(ctx)}\r\n`;
  return { method: 'auth', continuation: full.length > MAX_COMMAND_OCTETS };
}

/** The first login command. */
function sendLogin(plan: LoginPlan, ctx: BackendLoginContext): Step {
  if (plan.method === 'user') {
    return { next: { at: 'user' }, send: `USER ${utf8AsBinary(ctx.user)}\r\n`, sent: 'user' };
  }
  // RFC 5034 §4: an initial response that would make the AUTH line too long goes after `+ ` instead.
  const command = plan.continuation ? 'AUTH PLAIN\r\n' : `AUTH PLAIN ${saslPayload(ctx)}\r\n`;
  return { next: { at: 'auth', continuation: plan.continuation }, send: command, sent: 'auth' };
}

function saslPayload(ctx: BackendLoginContext): string {
  const b = ctx.backend;
  // Master mode: authorization identity = the user, authentication identity = the master.
  return b.login === 'master' ? encodeSaslPlain(ctx.user, b.masterUser ?? '', b.masterPassword ?? '') : encodeSaslPlain('', ctx.user, ctx.password);
}

/** An IPv6 zone (`fe80::1%eth0`) means nothing to the backend and may not parse there. */
function bareAddress(address: string): string {
  const zone = address.indexOf('%');
  return zone < 0 ? address : address.slice(0, zone);
}

/**
 * A refused login. RFC 2449 §8 / RFC 3206 codes that say the backend cannot
 * serve the mailbox now ([SYS/TEMP], [SYS/PERM], [IN-USE]: another POP3
 * session holds the maildrop lock, [LOGIN-DELAY]) are the backend's trouble;
 * [AUTH] or no code is the user's credentials, except in master mode, where
 * the credentials are ours.
 */
function classifyErr(line: string, ctx: BackendLoginContext): ProxyFailure {
  const code = /^-ERR \[([A-Z0-9/-]+)\]/i.exec(line)?.[1]?.toUpperCase();
  const detail = `login -ERR: ${clipLine(line)}`;
  if (code === 'IN-USE') return failure('remote', detail, undefined, 'in-use');
  if (code && ['SYS/TEMP', 'SYS/PERM', 'LOGIN-DELAY'].includes(code)) return failure('remote', detail);
  if (ctx.backend.login === 'master') return failure('remote', `master ${detail}`);
  return failure('auth-failed', detail);
}
