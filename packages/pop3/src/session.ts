import { decodeSaslPlain, type ClientStep, type Credentials, type LoginOutcome, type SessionEnv, type Transition as CoreTransition } from '@mailfront/proxy-core';
import { preLoginCapabilities } from './capabilities';
import { isPreLoginCommand, SASL_MECHANISMS } from './commands';
import type { InvalidReason, Pop3Command } from './parser';
import { replies } from './replies';

/**
 * The client-facing pre-login state machine of POP3 (the AUTHORIZATION
 * state of RFC 1939 §4), as pure transitions: (state, input, env) → (next
 * state, steps). No I/O, no parser: the glue in client-session.ts feeds it
 * parsed input and hands the steps to the driver.
 */
export type Pop3SessionState =
  | { at: 'greeting' }
  /** `user`: the name given with USER, waiting for PASS (RFC 1939 §7). */
  | { at: 'command'; user: string | null }
  /** AUTH PLAIN without initial response: the next line is the SASL response. */
  | { at: 'sasl' }
  /** Waiting for the driver's login outcome. */
  | { at: 'login' }
  | { at: 'relay' }
  | { at: 'closed' };

export type Transition = CoreTransition<Pop3SessionState>;

type Env = Pick<SessionEnv, 'tls' | 'starttlsAvailable' | 'authAllowed'>;

const send = (text: string): ClientStep => ({ do: 'send', text });
const error = (text: string): ClientStep => ({ do: 'send', text, error: true });
const READY = { at: 'command', user: null } as const;
const to = (next: Pop3SessionState, ...steps: ClientStep[]): Transition => ({ next, steps });

export function greet(): Transition {
  // No APOP timestamp in the greeting (RFC 1939 §7): APOP is not offered.
  return to(READY, send(replies.greeting));
}

export function onCommand(state: Pop3SessionState, cmd: Pop3Command, env: Env): Transition {
  if (state.at !== 'command') return to(state);
  const stay = (...steps: ClientStep[]) => to(state, ...steps);
  const { keyword } = cmd;
  if (!isPreLoginCommand(keyword)) return stay(error(replies.unknownCommand));
  // Arguments are bytes; user names and passwords are taken as UTF-8 (RFC 6856 defines it; clients send it regardless).
  const args = cmd.args.toString('utf8');
  switch (keyword) {
    case 'CAPA':
      return blank(args) ? stay(send(replies.capa(preLoginCapabilities(env)))) : stay(error(replies.syntax));
    case 'QUIT':
      // RFC 1939 §4: QUIT in the AUTHORIZATION state ends without an UPDATE state.
      return blank(args) ? to({ at: 'closed' }, send(replies.quit), { do: 'close', reason: 'quit' }) : stay(error(replies.syntax));
    case 'STLS':
      if (!blank(args)) return stay(error(replies.syntax));
      if (env.tls) return stay(error(replies.tlsActive));
      if (!env.starttlsAvailable) return stay(error(replies.stlsUnavailable));
      // A USER given before TLS is forgotten with everything else (RFC 2595 §4).
      return to(READY, send(replies.stls), { do: 'starttls' });
    case 'USER':
      if (!env.authAllowed) return to(READY, send(replies.plaintextDisallowed));
      // RFC 1939 §7 USER: the name is taken as the rest of the line, as Dovecot does. A second USER replaces the first.
      if (args.length === 0) return to(READY, error(replies.syntax));
      return to({ at: 'command', user: args }, send(replies.userOk));
    case 'PASS': {
      if (!env.authAllowed) return to(READY, send(replies.plaintextDisallowed));
      if (state.user === null) return stay(error(replies.passWithoutUser));
      // The whole rest of the line: a password may have spaces, even at its ends (RFC 1939 §7).
      if (args.length === 0) return to(READY, error(replies.syntax));
      return login({ user: state.user, password: args, authzid: '', mechanism: 'USER' });
    }
    case 'AUTH': {
      const words = args.length === 0 ? [] : args.split(' ');
      if (words.length === 0) {
        // AUTH alone lists the mechanisms: not in RFC 5034, but Outlook-era
        // clients probe with it and Dovecot answers it. No list until
        // credentials may be sent, as in CAPA.
        if (!env.authAllowed) return stay(send(replies.plaintextDisallowed));
        return stay(send(replies.authMechanisms(SASL_MECHANISMS)));
      }
      if (words.length > 2 || words.some((w) => w.length === 0)) return stay(error(replies.syntax));
      if (words[0]!.toUpperCase() !== 'PLAIN') return stay(send(replies.unsupportedMechanism));
      if (!env.authAllowed) return stay(send(replies.plaintextDisallowed));
      if (words.length === 1) return to({ at: 'sasl' }, send(replies.saslContinue));
      // RFC 5034 §4: "=" is an empty initial response.
      return plainResponse(words[1] === '=' ? '' : words[1]!);
    }
  }
}

/** The SASL response line after `+ ` (RFC 5034 §4). */
export function onSaslLine(state: Pop3SessionState, line: string): Transition {
  if (state.at !== 'sasl') return to(state);
  // RFC 5034 §4: "*" cancels, and the server answers -ERR.
  if (line === '*') return to(READY, error(replies.authCancelled));
  return plainResponse(line);
}

export function onInvalid(state: Pop3SessionState, inv: { reason: InvalidReason; fatal: boolean }): Transition {
  if (inv.fatal) {
    return to({ at: 'closed' }, send(replies.lineTooLong), { do: 'close', reason: `client sent ${inv.reason}` });
  }
  // An invalid SASL response line cannot happen (lines are raw); after a bad command, USER is kept.
  const next = state.at === 'sasl' ? READY : state;
  switch (inv.reason) {
    case 'nul':
      return to(next, error(replies.nul));
    case 'empty':
    case 'bad-keyword':
    case 'line-too-long':
      return to(next, error(replies.unknownCommand));
  }
}

export function onLoginDone(state: Pop3SessionState, outcome: LoginOutcome): Transition {
  if (state.at !== 'login') return to(state);
  if (!outcome.ok) {
    // RFC 1939 §7: after a failed PASS the client issues a new authentication command; USER is forgotten.
    const text = outcome.answer === 'auth-failed' ? replies.authFailed : outcome.hint === 'in-use' ? replies.inUse : replies.tempFail;
    return to(READY, send(text));
  }
  // The backend's own +OK to the login goes to the client as it came: it is
  // the answer to the client's PASS or AUTH, and may carry what the backend
  // wants said (Dovecot: "+OK Logged in."; others give the maildrop size).
  const last = outcome.backendReply[outcome.backendReply.length - 1];
  const text = last !== undefined && /^\+OK\b/.test(last) ? `${last}\r\n` : replies.loggedIn;
  return to({ at: 'relay' }, send(text), { do: 'relay' });
}

function login(credentials: Credentials): Transition {
  return to({ at: 'login' }, { do: 'login', credentials });
}

function plainResponse(base64: string): Transition {
  const d = decodeSaslPlain(base64);
  if (!d.ok) return to(READY, error(d.error === 'base64' ? replies.invalidBase64 : replies.invalidPlain));
  return login({ ...d.creds, mechanism: 'PLAIN' });
}

/** Argumentless commands tolerate trailing spaces, as Dovecot does. */
function blank(args: string): boolean {
  return /^ *$/.test(args);
}
