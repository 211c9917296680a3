import { StepSession, type LoginOutcome, type SessionEnv } from '@mailfront/proxy-core';
import type { ImapLimits } from './limits';
import { ImapParser } from './parser';
import { byeReplies } from './replies';
import { greet, onCommand, onInvalid, onLiteral, onLoginDone, onSaslLine, type ImapSessionState, type Transition } from './session';

/** Glue between the parser and the pure session transitions (the queue lives in StepSession). */
export class ImapClientSession extends StepSession<ImapSessionState, ImapParser> {
  constructor(
    private readonly env: SessionEnv,
    private readonly limits: ImapLimits,
  ) {
    super({ at: 'greeting' }, new ImapParser(limits), byeReplies);
  }

  protected newParser(): ImapParser {
    return new ImapParser(this.limits);
  }

  protected advance(): Transition | null {
    const s = this.state;
    if (s.at === 'greeting') return greet(this.env);
    if (s.at !== 'command' && s.at !== 'sasl') return null;
    const r = this.parser.next(s.at === 'sasl' ? 'line' : 'command');
    if (r === null) return null;
    switch (r.type) {
      case 'command':
        return onCommand(s, r.command, this.env);
      case 'line':
        return onSaslLine(s, r.line.toString('latin1'));
      case 'literal': {
        // A synchronising literal: invite it, or refuse it so the client does not send it.
        const t = onLiteral(s, r, this.env);
        if (t.accept) this.parser.acceptLiteral();
        else this.parser.rejectLiteral();
        return t;
      }
      case 'invalid':
        return onInvalid(s, r);
    }
  }

  protected onLoginOutcome(outcome: LoginOutcome): Transition {
    return onLoginDone(this.state, outcome);
  }

  protected stateAfterTls(): ImapSessionState {
    // RFC 9051 §6.2.1: the client must ask for CAPABILITY again; nothing else was learned.
    return { at: 'command' };
  }
}
