import { decodeSaslPlain, type ClientStep, type LoginOutcome, type SessionEnv, type Transition as CoreTransition } from '@mailfront/proxy-core';
import { preLoginCapabilities } from './capabilities';
import { acceptsLiterals, isPreLoginCommand } from './commands';
import type { ImapArg, ImapCommand, InvalidReason } from './parser';
import { echoableTag, replies } from './replies';

/**
 * The client-facing pre-login state machine of IMAP, as pure transitions:
 * (state, input, env) → (next state, steps). No I/O, no parser: the glue in
 * client-session.ts feeds it parsed input and hands the steps to the driver.
 */
export type ImapSessionState =
  | { at: 'greeting' }
  | { at: 'command' }
  /** AUTHENTICATE PLAIN without initial response: the next line is the SASL response. */
  | { at: 'sasl'; tag: string }
  /** Waiting for the driver's login outcome. */
  | { at: 'login'; tag: string }
  | { at: 'relay' }
  | { at: 'closed' };

export type Transition = CoreTransition<ImapSessionState>;

type Env = Pick<SessionEnv, 'tls' | 'starttlsAvailable' | 'authAllowed'>;

const send = (text: string): ClientStep => ({ do: 'send', text });
const error = (text: string): ClientStep => ({ do: 'send', text, error: true });
const stay = (...steps: ClientStep[]): Transition => ({ next: { at: 'command' }, steps });

export function greet(env: Env): Transition {
  return { next: { at: 'command' }, steps: [send(replies.greeting(preLoginCapabilities(env)))] };
}

export function onCommand(state: ImapSessionState, cmd: ImapCommand, env: Env): Transition {
  if (state.at !== 'command') return { next: state, steps: [] };
  const { tag, name, args } = cmd;
  // Errors echo the tag only when it looks like a real client's (see echoableTag).
  const etag = echoableTag(tag);
  if (!isPreLoginCommand(name)) return stay(error(replies.notAllowed(etag)));
  switch (name) {
    case 'CAPABILITY':
      return args.length ? stay(error(replies.syntax(etag))) : stay(send(replies.capability(tag, preLoginCapabilities(env))));
    case 'NOOP':
      return args.length ? stay(error(replies.syntax(etag))) : stay(send(replies.noop(tag)));
    case 'LOGOUT':
      return { next: { at: 'closed' }, steps: [send(replies.logout(tag)), { do: 'close', reason: 'logout' }] };
    case 'ID':
      // RFC 2971: answered here, never BAD; the client's fields are not passed on.
      return args.length === 1 && (args[0]!.type === 'list' || args[0]!.type === 'nil')
        ? stay(send(replies.id(tag)))
        : stay(error(replies.syntax(etag)));
    case 'STARTTLS':
      if (args.length) return stay(error(replies.syntax(etag)));
      if (env.tls) return stay(error(replies.tlsActive(etag)));
      if (!env.starttlsAvailable) return stay(error(replies.starttlsUnavailable(etag)));
      return stay(send(replies.starttls(tag)), { do: 'starttls' });
    case 'LOGIN': {
      if (args.length !== 2) return stay(error(replies.syntax(etag)));
      if (!env.authAllowed) return stay(send(replies.privacyRequired(tag)));
      const user = astring(args[0]!);
      const password = astring(args[1]!);
      if (user === null || password === null) return stay(error(replies.syntax(etag)));
      return login(tag, { user, password, authzid: '', mechanism: 'LOGIN' });
    }
    case 'AUTHENTICATE': {
      if (args.length < 1 || args.length > 2 || args[0]!.type !== 'atom') return stay(error(replies.syntax(etag)));
      if (args[0]!.value.toUpperCase() !== 'PLAIN') return stay(send(replies.unsupportedMechanism(tag)));
      if (!env.authAllowed) return stay(send(replies.privacyRequired(tag)));
      if (args.length === 1) return { next: { at: 'sasl', tag }, steps: [send(replies.saslContinue)] };
      const ir = args[1]!;
      if (ir.type !== 'atom') return stay(error(replies.syntax(etag)));
      // RFC 4959: "=" is an empty initial response.
      return plainResponse(tag, ir.value === '=' ? '' : ir.value);
    }
  }
}

/** A synchronising literal was announced: invite it or refuse it (the client then does not send it). */
export function onLiteral(
  state: ImapSessionState,
  lit: { tag: string | null; name: string | null; size: number },
  env: Env,
): Transition & { accept: boolean } {
  const tag = echoableTag(lit.tag);
  if (state.at !== 'command' || !acceptsLiterals(lit.name)) {
    return { next: state.at === 'command' ? state : { at: 'command' }, steps: [error(replies.literalNotAllowed(tag))], accept: false };
  }
  if (lit.name === 'LOGIN' && !env.authAllowed) {
    return { ...stay(send(replies.privacyRequired(tag))), accept: false };
  }
  return { ...stay(send(replies.literalContinue)), accept: true };
}

/** The continuation line of AUTHENTICATE PLAIN (RFC 9051 §6.2.2). */
export function onSaslLine(state: ImapSessionState, line: string): Transition {
  if (state.at !== 'sasl') return { next: state, steps: [] };
  if (line === '*') return stay(error(replies.authCancelled(echoableTag(state.tag))));
  return plainResponse(state.tag, line);
}

export function onInvalid(state: ImapSessionState, inv: { tag: string | null; reason: InvalidReason; fatal: boolean }): Transition {
  if (inv.fatal) {
    const bye = inv.reason === 'literal-too-large' ? replies.byeLiteralTooLarge : replies.byeLineTooLong;
    return { next: { at: 'closed' }, steps: [send(bye), { do: 'close', reason: `client sent ${inv.reason}` }] };
  }
  const next = state.at === 'sasl' ? ({ at: 'command' } as const) : state;
  const tag = echoableTag(inv.tag);
  switch (inv.reason) {
    case 'invalid-tag':
      return { next, steps: [error(replies.invalidTag)] };
    case 'missing-command':
      return { next, steps: [error(replies.missingCommand(tag))] };
    case 'nul':
      return { next, steps: [error(replies.nul(tag))] };
    case 'literal-too-large':
      return { next, steps: [error(replies.literalTooLarge(tag))] };
    case 'syntax':
    case 'bad-literal':
    case 'line-too-long':
    case 'command-too-long':
      return { next, steps: [error(replies.syntax(tag))] };
  }
}

export function onLoginDone(state: ImapSessionState, outcome: LoginOutcome): Transition {
  if (state.at !== 'login') return { next: state, steps: [] };
  const { tag } = state;
  if (!outcome.ok) {
    const text = outcome.answer === 'auth-failed' ? replies.authFailed(tag) : outcome.hint === 'in-use' ? replies.inUse(tag) : replies.tempFail(tag);
    return stay(send(text));
  }
  // The backend's untagged lines as they came, then its tagged OK (with its
  // [CAPABILITY …]) under the client's own tag.
  const lines = outcome.backendReply;
  const last = lines[lines.length - 1] ?? 'OK Logged in.';
  const text = lines
    .slice(0, -1)
    .map((l) => `${l}\r\n`)
    .join('');
  return { next: { at: 'relay' }, steps: [send(`${text}${tag} ${last}\r\n`), { do: 'relay' }] };
}

function login(tag: string, credentials: { user: string; password: string; authzid: string; mechanism: string }): Transition {
  return { next: { at: 'login', tag }, steps: [{ do: 'login', credentials }] };
}

function plainResponse(tag: string, base64: string): Transition {
  const d = decodeSaslPlain(base64);
  const etag = echoableTag(tag);
  if (!d.ok) return stay(error(d.error === 'base64' ? replies.invalidBase64(etag) : replies.invalidPlain(etag)));
  return login(tag, { ...d.creds, mechanism: 'PLAIN' });
}

/** astring: an atom or a string (quoted or literal), as UTF-8 text. */
function astring(arg: ImapArg): string | null {
  if (arg.type === 'atom') return arg.value;
  if (arg.type === 'string') return arg.value.toString('utf8');
  // RFC 9051 §9: an astring may be spelt NIL; it is the text as sent, not nil.
  if (arg.type === 'nil') return arg.value;
  return null;
}
