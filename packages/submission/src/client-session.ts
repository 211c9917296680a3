import { StepSession, type LoginOutcome, type SessionEnv } from '@mailfront/proxy-core';
import type { SubmissionLimits } from './limits';
import { SmtpParser } from './parser';
import { byeReplies } from './replies';
import { greet, onCommand, onInvalid, onLoginDone, onSaslLine, type SessionConfig, type SubmissionSessionState, type Transition } from './session';

/** Glue between the parser and the pure session transitions (the queue lives in StepSession). */
export class SubmissionClientSession extends StepSession<SubmissionSessionState, SmtpParser> {
  constructor(
    private readonly env: SessionEnv,
    private readonly cfg: SessionConfig,
    private readonly limits: SubmissionLimits,
  ) {
    super({ at: 'greeting' }, new SmtpParser(limits), byeReplies(cfg.hostname));
  }

  protected newParser(): SmtpParser {
    return new SmtpParser(this.limits);
  }

  protected advance(): Transition | null {
    const s = this.state;
    if (s.at === 'greeting') return greet(this.cfg);
    const sasl = s.at === 'auth-plain' || s.at === 'auth-login-user' || s.at === 'auth-login-pass';
    // While logging in, relaying or closed, nothing more is parsed: what
    // follows the AUTH line is the backend's (takeUnconsumed).
    if (s.at !== 'command' && !sasl) return null;
    const r = this.parser.next(sasl ? 'sasl' : 'command');
    if (r === null) return null;
    switch (r.type) {
      case 'command':
        return onCommand(s, r, this.env, this.cfg);
      case 'line':
        return onSaslLine(s, r.text);
      case 'invalid':
        return onInvalid(s, r);
    }
  }

  protected onLoginOutcome(outcome: LoginOutcome): Transition {
    return onLoginDone(this.state, outcome);
  }

  protected stateAfterTls(): SubmissionSessionState {
    // RFC 3207 §4.2: everything learned from the plaintext, the EHLO included, is forgotten.
    return { at: 'command', helo: null };
  }
}
