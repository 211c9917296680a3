import type { ByeReason, ClientSession, ClientStep, LoginOutcome, SessionEnv } from '@mailfront/proxy-core';
import type { Pop3Limits } from './limits';
import { Pop3Parser } from './parser';
import { replies } from './replies';
import { greet, onCommand, onInvalid, onLoginDone, onSaslLine, type Pop3SessionState, type Transition } from './session';

/** Glue between the parser, the pure session transitions and the core's driver. */
export class Pop3ClientSession implements ClientSession {
  private state: Pop3SessionState = { at: 'greeting' };
  private parser: Pop3Parser;
  private readonly queue: ClientStep[] = [];

  constructor(
    private readonly env: SessionEnv,
    private readonly limits: Pop3Limits,
  ) {
    this.parser = new Pop3Parser(limits);
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
        this.apply(greet());
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
    // RFC 2595 §4 (POP3 STLS): discard buffered plaintext; a fresh parser reads TLS.
    this.parser = new Pop3Parser(this.limits);
    this.queue.length = 0;
    this.state = { at: 'command', user: null };
  }

  takeUnconsumed(): Buffer {
    return this.parser.takeRemaining();
  }

  bye(reason: ByeReason): string {
    // POP3 has no untagged BYE: an -ERR line, then the connection closes.
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
