import type { ByeReason, ClientSession, ClientStep, LoginOutcome, SessionEnv } from '@mailfront/proxy-core';
import type { ImapLimits } from './limits';
import { ImapParser } from './parser';
import { replies } from './replies';
import { greet, onCommand, onInvalid, onLiteral, onLoginDone, onSaslLine, type ImapSessionState, type Transition } from './session';

/** Glue between the parser, the pure session transitions and the core's driver. */
export class ImapClientSession implements ClientSession {
  private state: ImapSessionState = { at: 'greeting' };
  private parser: ImapParser;
  private readonly queue: ClientStep[] = [];

  constructor(
    private readonly env: SessionEnv,
    private readonly limits: ImapLimits,
  ) {
    this.parser = new ImapParser(limits);
  }

  feed(chunk: Buffer): void {
    this.parser.push(chunk);
  }

  next(): ClientStep | null {
    for (;;) {
      const queued = this.queue.shift();
      if (queued) return queued;
      const s = this.state;
      if (s.at === 'greeting') {
        this.apply(greet(this.env));
        continue;
      }
      if (s.at !== 'command' && s.at !== 'sasl') return null;
      const r = this.parser.next(s.at === 'sasl' ? 'line' : 'command');
      if (r === null) return null;
      switch (r.type) {
        case 'command':
          this.apply(onCommand(s, r.command, this.env));
          break;
        case 'line':
          this.apply(onSaslLine(s, r.line.toString('latin1')));
          break;
        case 'literal': {
          const t = onLiteral(s, r, this.env);
          if (t.accept) this.parser.acceptLiteral();
          else this.parser.rejectLiteral();
          this.apply(t);
          break;
        }
        case 'invalid':
          this.apply(onInvalid(s, r));
          break;
      }
    }
  }

  loginDone(outcome: LoginOutcome): void {
    this.apply(onLoginDone(this.state, outcome));
  }

  tlsStarted(): void {
    // RFC 9051 §6.2.1: discard buffered plaintext; a fresh parser reads TLS.
    this.parser = new ImapParser(this.limits);
    this.queue.length = 0;
  }

  takeUnconsumed(): Buffer {
    return this.parser.takeRemaining();
  }

  bye(reason: ByeReason): string {
    switch (reason) {
      case 'timeout':
        return replies.byeTimeout;
      case 'shutdown':
        return replies.byeShutdown;
      case 'too-many-errors':
        return replies.byeTooManyErrors;
      case 'kicked':
        return replies.byeKicked;
      case 'internal':
        return replies.byeInternal;
    }
  }

  private apply(t: Transition): void {
    this.state = t.next;
    this.queue.push(...t.steps);
  }
}
