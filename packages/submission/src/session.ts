import { decodeBase64Strict, decodeSaslPlain, type ClientStep, type Credentials, type LoginOutcome, type SessionEnv, type Transition as CoreTransition } from '@mailfront/proxy-core';
import { ehloKeywords, SASL_MECHANISMS, type ExtensionPolicy } from './capabilities';
import { isPreAuthCommand, needsAuth, TRANSACTION_COMMANDS } from './commands';
import type { InvalidReason } from './parser';
import { replies } from './replies';

/**
 * The client-facing pre-auth state machine of SMTP submission, as pure
 * transitions: (state, input, env) → (next state, steps). No I/O, no parser:
 * client-session.ts feeds it parsed lines and hands the steps to the driver.
 */

/** What the client said in EHLO/HELO: kept for the backend (XCLIENT HELO=, PROTO=). */
export interface Greeted {
  /** The argument as sent (a binary string); never echoed to the client. */
  name: string;
  /** EHLO (ESMTP) rather than HELO (SMTP). */
  extended: boolean;
}

export type SubmissionSessionState =
  | { at: 'greeting' }
  /** `helo` null: no EHLO yet, or forgotten with everything else at STARTTLS (RFC 3207 §4.2). */
  | { at: 'command'; helo: Greeted | null }
  /** AUTH PLAIN without initial response: the next line is the response to `334 `. */
  | { at: 'auth-plain'; helo: Greeted }
  | { at: 'auth-login-user'; helo: Greeted }
  | { at: 'auth-login-pass'; helo: Greeted; user: string }
  /** STARTTLS answered: nothing more is read until TLS is up (then `command`, with the EHLO forgotten). */
  | { at: 'starttls' }
  /** Waiting for the driver's login outcome. */
  | { at: 'login'; helo: Greeted }
  | { at: 'relay' }
  | { at: 'closed' };

export type Transition = CoreTransition<SubmissionSessionState>;

export interface SessionConfig {
  hostname: string;
  policy: ExtensionPolicy;
}

export interface SmtpCommand {
  verb: string;
  arg: string;
}

type Env = Pick<SessionEnv, 'tls' | 'starttlsAvailable' | 'authAllowed'>;

const send = (text: string): ClientStep => ({ do: 'send', text });
const error = (text: string): ClientStep => ({ do: 'send', text, error: true });
const at = (helo: Greeted | null, ...steps: ClientStep[]): Transition => ({ next: { at: 'command', helo }, steps });

/** EHLO/HELO argument: one word of printable ASCII or UTF-8 (RFC 6531 §3.7.1), at most a domain's 255 octets. */
const GREETING_NAME = /^[\x21-\x7e\x80-\xff]{1,255}$/;

export function greet(cfg: SessionConfig): Transition {
  return at(null, send(replies.greeting(cfg.hostname)));
}

export function onCommand(state: SubmissionSessionState, cmd: SmtpCommand, env: Env, cfg: SessionConfig): Transition {
  if (state.at !== 'command') return { next: state, steps: [] };
  const { helo } = state;
  const { verb, arg } = cmd;
  if (!isPreAuthCommand(verb)) {
    if (!needsAuth(verb)) return at(helo, error(replies.unknownCommand));
    // RFC 5321 §4.1.4: a mail transaction needs EHLO first; after STARTTLS that means again.
    if (helo === null && TRANSACTION_COMMANDS.includes(verb)) return at(helo, error(replies.ehloFirst));
    return at(helo, error(replies.authRequired));
  }
  switch (verb) {
    case 'EHLO':
    case 'HELO': {
      const name = arg.trim();
      if (!GREETING_NAME.test(name)) return at(helo, error(replies.syntaxParams));
      const greeted = { name, extended: verb === 'EHLO' };
      // RFC 5321 §4.1.4: EHLO resets the session to its initial state (there is no transaction yet).
      const text = greeted.extended ? replies.ehlo(cfg.hostname, ehloKeywords(cfg.policy, env)) : replies.helo(cfg.hostname);
      return at(greeted, send(text));
    }
    case 'STARTTLS':
      if (arg !== '') return at(helo, error(replies.syntaxParams));
      if (env.tls) return at(helo, error(replies.tlsActive));
      if (!env.starttlsAvailable) return at(helo, error(replies.starttlsUnavailable));
      // RFC 3207 §4.2: what follows in plaintext is never read (see tlsStarted),
      // and the EHLO is forgotten: the client must greet again inside TLS.
      return { next: { at: 'starttls' }, steps: [send(replies.starttls), { do: 'starttls' }] };
    case 'AUTH':
      return onAuth(helo, arg, env);
    case 'RSET':
    case 'NOOP':
      return at(helo, send(replies.ok));
    case 'QUIT':
      return { next: { at: 'closed' }, steps: [send(replies.quit), { do: 'close', reason: 'quit' }] };
    case 'HELP':
      return at(helo, send(replies.help));
  }
}

function onAuth(helo: Greeted | null, arg: string, env: Env): Transition {
  // RFC 4954 §4: AUTH is an EHLO extension; without EHLO the client cannot know of it.
  if (helo === null) return at(helo, error(replies.ehloFirst));
  const parts = arg.split(' ');
  if (parts.length < 1 || parts.length > 2 || parts.some((p) => p === '')) return at(helo, error(replies.syntaxParams));
  if (!env.authAllowed) return at(helo, send(replies.encryptionRequired));
  const mech = parts[0]!.toUpperCase();
  if (!(SASL_MECHANISMS as readonly string[]).includes(mech)) return at(helo, send(replies.unknownMechanism));
  const ir = parts[1];
  if (mech === 'PLAIN') {
    if (ir === undefined) return { next: { at: 'auth-plain', helo }, steps: [send(replies.saslContinue)] };
    // RFC 4954 §4: "=" is an empty initial response, which PLAIN cannot be.
    return plainResponse(helo, ir === '=' ? '' : ir);
  }
  if (ir === undefined) return { next: { at: 'auth-login-user', helo }, steps: [send(replies.saslUsername)] };
  return loginUser(helo, ir);
}

/** A response line to a `334` challenge (RFC 4954 §4); `*` cancels. */
export function onSaslLine(state: SubmissionSessionState, line: string): Transition {
  if (state.at !== 'auth-plain' && state.at !== 'auth-login-user' && state.at !== 'auth-login-pass') return { next: state, steps: [] };
  const { helo } = state;
  if (line === '*') return at(helo, error(replies.authCancelled));
  switch (state.at) {
    case 'auth-plain':
      return plainResponse(helo, line);
    case 'auth-login-user':
      return loginUser(helo, line);
    case 'auth-login-pass': {
      const password = decodeText(line);
      if (password === null) return at(helo, error(replies.invalidBase64));
      if (password === '' || password.includes('\0')) return at(helo, error(replies.invalidPlain));
      return login(helo, { user: state.user, password, authzid: '', mechanism: 'LOGIN' });
    }
  }
}

export function onInvalid(state: SubmissionSessionState, inv: { reason: InvalidReason; fatal: boolean }): Transition {
  if (inv.fatal) {
    const text = inv.reason === 'auth-line-too-long' ? replies.authLineTooLong : replies.lineTooLong;
    return { next: { at: 'closed' }, steps: [send(text), { do: 'close', reason: `client sent ${inv.reason}` }] };
  }
  // In an authentication exchange a bad line ends the exchange.
  const helo = 'helo' in state ? state.helo : null;
  return at(helo, error(inv.reason === 'nul' ? replies.nul : replies.syntax));
}

export function onLoginDone(state: SubmissionSessionState, outcome: LoginOutcome): Transition {
  if (state.at !== 'login') return { next: state, steps: [] };
  if (!outcome.ok) return at(state.helo, send(outcome.answer === 'auth-failed' ? replies.authFailed : replies.tempFail));
  // The backend is EHLO'd and authenticated: from here the client talks to it.
  return { next: { at: 'relay' }, steps: [send(replies.authSuccess), { do: 'relay' }] };
}

function login(helo: Greeted, credentials: Credentials): Transition {
  // What the backend login needs of this session: the client's own EHLO name for XCLIENT.
  const context = { helo: helo.name, proto: helo.extended ? 'ESMTP' : 'SMTP' };
  return { next: { at: 'login', helo }, steps: [{ do: 'login', credentials, context }] };
}

function plainResponse(helo: Greeted, base64: string): Transition {
  const d = decodeSaslPlain(base64);
  if (!d.ok) return at(helo, error(d.error === 'base64' ? replies.invalidBase64 : replies.invalidPlain));
  return login(helo, { ...d.creds, mechanism: 'PLAIN' });
}

function loginUser(helo: Greeted, base64: string): Transition {
  const user = decodeText(base64);
  if (user === null) return at(helo, error(replies.invalidBase64));
  if (user === '' || user.includes('\0')) return at(helo, error(replies.invalidPlain));
  return { next: { at: 'auth-login-pass', helo, user }, steps: [send(replies.saslPassword)] };
}

function decodeText(base64: string): string | null {
  const raw = decodeBase64Strict(base64);
  return raw === null ? null : raw.toString('utf8');
}
