import { StepSession, type LoginOutcome, type SessionEnv } from '@mailfront/proxy-core';
import type { Pop3Limits } from './limits';
import { Pop3Parser } from './parser';
import { byeReplies } from './replies';
import { greet, onCommand, onInvalid, onLoginDone, onSaslLine, type Pop3SessionState, type Transition } from './session';

/** Glue between the parser and the pure session transitions (the queue lives in StepSession). */
export class Pop3ClientSession extends StepSession<Pop3SessionState, Pop3Parser> {
  constructor(
    private readonly env: SessionEnv,
    private readonly limits: Pop3Limits,
  ) {
    super({ at: 'greeting' }, new Pop3Parser(limits), byeReplies);
  }

  protected newParser(): Pop3Parser {
    return new Pop3Parser(this.limits);
  }

  protected advance(): Transition | null {
    const s = this.state;
    if (s.at === 'greeting') return greet();
    if (s.at !== 'command' && s.at !== 'sasl') return null;
    const r = this.parser.next(s.at === 'sasl' ? 'line' : 'command');
    if (r === null) return null;
    switch (r.type) {
      case 'command':
        return onCommand(s, r.command, this.env);
      case 'line':
        return onSaslLine(s, r.line.toString('latin1'));
      case 'invalid':
        return onInvalid(s, r);
    }
  }

  protected onLoginOutcome(outcome: LoginOutcome): Transition {
    return onLoginDone(this.state, outcome);
  }

  protected stateAfterTls(): Pop3SessionState {
    // RFC 2595 §4: a USER given before STLS is forgotten with the plaintext.
    return { at: 'command', user: null };
  }
}
