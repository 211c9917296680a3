import type { ByeReason, ClientSession, ClientStep, LoginOutcome, SessionEnv } from '@mailfront/proxy-core';
import type { SubmissionLimits } from './limits';
import { SmtpParser } from './parser';
import { replies } from './replies';
import { greet, onCommand, onInvalid, onLoginDone, onSaslLine, type SessionConfig, type SubmissionSessionState, type Transition } from './session';

/** Glue between the parser, the pure session transitions and the core's driver. */
export class SubmissionClientSession implements ClientSession {
  private state: SubmissionSessionState = { at: 'greeting' };
  private parser: SmtpParser;
  private readonly queue: ClientStep[] = [];

  constructor(
    private readonly env: SessionEnv,
    private readonly cfg: SessionConfig,
    private readonly limits: SubmissionLimits,
  ) {
    this.parser = new SmtpParser(limits);
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
        this.apply(greet(this.cfg));
        continue;
      }
      const sasl = s.at === 'auth-plain' || s.at === 'auth-login-user' || s.at === 'auth-login-pass';
      // While logging in, relaying or closed, nothing more is parsed: what
      // follows the AUTH line is the backend's (takeUnconsumed). Nor while
      // STARTTLS is under way: what follows it in plaintext is discarded.
      if (s.at !== 'command' && !sasl) return null;
      const r = this.parser.next(sasl ? 'sasl' : 'command');
      if (r === null) return null;
      switch (r.type) {
        case 'command':
          this.apply(onCommand(s, r, this.env, this.cfg));
          break;
        case 'line':
          this.apply(onSaslLine(s, r.text));
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
    // RFC 3207 §4.2: discard buffered plaintext and everything learned from
    // it, the EHLO included; a fresh parser reads TLS.
    this.parser = new SmtpParser(this.limits);
    this.queue.length = 0;
    this.state = { at: 'command', helo: null };
  }

  takeUnconsumed(): Buffer {
    return this.parser.takeRemaining();
  }

  bye(reason: ByeReason): string {
    const host = this.cfg.hostname;
    switch (reason) {
      case 'timeout':
        return replies.byeTimeout(host);
      case 'shutdown':
        return replies.byeShutdown(host);
      case 'too-many-errors':
        return replies.byeTooManyErrors(host);
      case 'kicked':
        return replies.byeKicked(host);
      case 'internal':
        return replies.byeInternal(host);
    }
  }

  private apply(t: Transition): void {
    this.state = t.next;
    this.queue.push(...t.steps);
  }
}
