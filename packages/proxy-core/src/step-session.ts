import type { ByeReason, ByeReplies, ClientSession, ClientStep, LoginOutcome } from './protocol';

/** What a pure session transition returns: the next state and the steps to perform. */
export interface Transition<S> {
  next: S;
  steps: ClientStep[];
}

/** The parser surface the glue needs. */
export interface ResumableParser {
  push(chunk: Buffer): void;
  /** Every byte not consumed by a complete command (pipelined input for the backend). */
  takeRemaining(): Buffer;
  /** How many bytes it holds now: what its limits bound (read-only, for tests and diagnostics). */
  readonly buffered: number;
}

/**
 * The glue every protocol's client session shares: a parser, a state, and a
 * queue of steps produced by pure transitions. A protocol supplies how to read
 * its next input in a state (`advance`), how a login ends, which state
 * follows TLS, and its goodbyes (a ByeReplies table from its replies.ts).
 * While a STARTTLS or a login is under way nothing more is read: what the
 * client sent after STARTTLS is discarded with the parser, what it sent after
 * its login command goes to the backend.
 */
export abstract class StepSession<S, P extends ResumableParser> implements ClientSession {
  protected state: S;
  protected parser: P;
  private readonly queue: ClientStep[] = [];
  private waitingFor: 'tls' | 'login' | null = null;
  private readonly byeReplies: ByeReplies;

  /** `parser` is the first parser; newParser() makes the one after TLS. `byeReplies`: what bye() answers. */
  protected constructor(initial: S, parser: P, byeReplies: ByeReplies) {
    this.state = initial;
    this.parser = parser;
    this.byeReplies = byeReplies;
  }

  protected abstract newParser(): P;
  /** The transition for the next input, or null when more bytes are needed or the state reads nothing. */
  protected abstract advance(): Transition<S> | null;
  protected abstract onLoginOutcome(outcome: LoginOutcome): Transition<S>;
  /** The state after STARTTLS: everything learned before TLS is forgotten (RFC 3207 §4.2, RFC 2595 §3.1). */
  protected abstract stateAfterTls(): S;

  bye(reason: ByeReason): string {
    return this.byeReplies[reason];
  }

  feed(chunk: Buffer): void {
    this.parser.push(chunk);
  }

  next(): ClientStep | null {
    for (;;) {
      const queued = this.queue.shift();
      if (queued) {
        if (queued.do === 'starttls') this.waitingFor = 'tls';
        if (queued.do === 'login') this.waitingFor = 'login';
        return queued;
      }
      if (this.waitingFor) return null;
      const t = this.advance();
      if (t === null) return null;
      this.apply(t);
    }
  }

  loginDone(outcome: LoginOutcome): void {
    if (this.waitingFor === 'login') this.waitingFor = null;
    this.apply(this.onLoginOutcome(outcome));
  }

  tlsStarted(): void {
    this.parser = this.newParser();
    this.queue.length = 0;
    this.state = this.stateAfterTls();
    this.waitingFor = null;
  }

  takeUnconsumed(): Buffer {
    return this.parser.takeRemaining();
  }

  /** Bytes the parser holds now, unlike takeUnconsumed() without taking them. */
  get buffered(): number {
    return this.parser.buffered;
  }

  protected apply(t: Transition<S>): void {
    this.state = t.next;
    this.queue.push(...t.steps);
  }
}
