import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as tls from 'node:tls';
import type { HealthBook } from '@mailfront/locator';
import { backendTlsOptions, clip, PROXY_V2_SIGNATURE, type Logger } from '@mailfront/proxy-core';
import { PROTOCOLS, type BackendRow, type Protocol, type Store } from '@mailfront/store';

/**
 * What a ready server says first, per protocol, and the polite way to leave:
 * a greeting check, not a login. RFC 9051 §7.1: `* OK` (PREAUTH would be
 * refused at login anyway, BYE means "not now"); RFC 1939 §4: `+OK`;
 * RFC 5321 §4.2: `220`, possibly the first line of several (`220-`).
 */
export const GREETINGS: Readonly<Record<Protocol, { ready: RegExp; quit: string }>> = Object.freeze({
  imap: { ready: /^\* OK(?: |$)/i, quit: 'h LOGOUT\r\n' },
  pop3: { ready: /^\+OK(?: |$)/, quit: 'QUIT\r\n' },
  submission: { ready: /^220(?:[ -]|$)/, quit: 'QUIT\r\n' },
});

/**
 * PROXY protocol v2 with the LOCAL command and no addresses (spec §2.2: "the
 * connection was established on purpose by the proxy without being relayed",
 * meant for health checks): a backend that expects a PROXY header from us
 * would otherwise wait for one and time the check out.
 */
const PROXY_V2_LOCAL = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);

export type CheckResult = { ok: true; ms: number } | { ok: false; error: string };

export interface CheckOptions {
  /** The whole check: connect, TLS handshake, greeting. */
  timeoutMs: number;
  /** A greeting line longer than this fails the check. */
  maxLineBytes: number;
  signal?: AbortSignal;
}

/** How long a polite goodbye may take before the socket is simply destroyed. */
const GOODBYE_MS = 1_000;

/**
 * One check of one backend port: connect, the PROXY header if the backend
 * wants one, the TLS handshake for an implicit-TLS backend (verified as a
 * login would be), and the greeting. Never rejects.
 */
export function checkBackendPort(b: BackendRow, protocol: Protocol, port: number, o: CheckOptions): Promise<CheckResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let stage: 'connect' | 'tls' | 'greeting' = 'connect';
    let settled = false;
    let buf = '';
    const raw = net.connect({ host: b.host, port });
    let sock: net.Socket = raw;

    const done = (r: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (r.ok) {
        sock.end(GREETINGS[protocol].quit, 'latin1');
        setTimeout(() => sock.destroy(), GOODBYE_MS).unref();
      } else {
        sock.destroy();
        raw.destroy();
      }
      resolve(r);
    };
    const fail = (why: string): void => done({ ok: false, error: `${stage}: ${why}` });
    const onAbort = (): void => fail('aborted');
    const timer = setTimeout(() => fail(`no answer within ${o.timeoutMs} ms`), o.timeoutMs);
    if (o.signal) {
      if (o.signal.aborted) return onAbort();
      o.signal.addEventListener('abort', onAbort, { once: true });
    }

    const onError = (e: Error): void => fail(`${(e as NodeJS.ErrnoException).code ?? 'error'}: ${clip(e.message, 200)}`);
    const onClose = (): void => fail('closed by the backend');
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > o.maxLineBytes) fail(`greeting line longer than ${o.maxLineBytes} bytes`);
        return;
      }
      const line = buf.slice(0, nl).replace(/\r$/, '');
      if (GREETINGS[protocol].ready.test(line)) done({ ok: true, ms: Math.round(performance.now() - started) });
      else fail(`not ready: ${clip(line, 100)}`);
    };
    const listen = (s: net.Socket): void => {
      s.on('error', onError);
      s.on('close', onClose);
      s.on('data', onData);
    };

    raw.on('error', onError);
    raw.on('close', onClose);
    raw.once('connect', () => {
      if (b.proxyProtocol) raw.write(PROXY_V2_LOCAL);
      if (b.tls !== 'implicit') {
        stage = 'greeting';
        raw.on('data', onData);
        return;
      }
      stage = 'tls';
      raw.removeListener('error', onError);
      raw.removeListener('close', onClose);
      const secure = tls.connect({ ...backendTlsOptions(b), socket: raw });
      sock = secure;
      secure.once('secureConnect', () => (stage = 'greeting'));
      listen(secure);
    });
  });
}

export interface HealthCheckerOptions {
  store: Pick<Store, 'listBackends'>;
  book: HealthBook;
  intervalMs: number;
  timeoutMs: number;
  maxLineBytes: number;
  log: Logger;
}

/**
 * Checks every port of every backend each intervalMs and records the results
 * in the book. Rounds do not overlap: the next starts intervalMs after the
 * previous one started, or at once if it ran longer. The backend list is
 * read from the store every round, so added and removed backends are seen
 * within one interval; if the store cannot be read, the last list is checked.
 */
export class HealthChecker {
  private o: HealthCheckerOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private started = false;
  private stopped = false;
  private known: BackendRow[] = [];
  private rounds = 0;

  constructor(o: HealthCheckerOptions) {
    this.o = o;
  }

  /** The backends as last read from the store. */
  get backends(): readonly BackendRow[] {
    return this.known;
  }

  /** Rounds completed: for tests that wait for a fresh look. */
  get completedRounds(): number {
    return this.rounds;
  }

  /** The first round starts now. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** New timings apply from the next round. */
  configure(o: Pick<HealthCheckerOptions, 'intervalMs' | 'timeoutMs' | 'maxLineBytes'>): void {
    this.o = { ...this.o, ...o };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }

  /**
   * Reads the backends from the store now, without checking them: what an
   * admin just changed (drain, standby) shows at once in `backend status`,
   * not one round later.
   */
  async relist(): Promise<void> {
    try {
      this.known = await this.o.store.listBackends();
      this.o.book.retain(this.known.map((b) => b.name));
    } catch (err) {
      this.o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'health: cannot list backends; checking the last known ones');
    }
  }

  /** One round now (also what the timer runs). */
  async runOnce(): Promise<void> {
    await this.relist();
    const checks: Array<Promise<void>> = [];
    for (const b of this.known) {
      for (const protocol of PROTOCOLS) {
        const port = b.ports[protocol];
        if (port === null) continue;
        checks.push(
          checkBackendPort(b, protocol, port, { timeoutMs: this.o.timeoutMs, maxLineBytes: this.o.maxLineBytes, signal: this.abort.signal }).then((r) => {
            // A check cut short by stop() says nothing about the backend.
            if (this.stopped) return;
            if (r.ok) this.o.book.recordCheck(b.name, protocol, true);
            else this.o.book.recordCheck(b.name, protocol, false, r.error);
            this.o.log.debug({ backend: b.name, protocol, ok: r.ok, ...(r.ok ? { ms: r.ms } : { err: r.error }) }, 'health check');
          }),
        );
      }
    }
    await Promise.all(checks);
    this.rounds++;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      const started = performance.now();
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(Math.max(0, this.o.intervalMs - (performance.now() - started)));
      });
    }, delayMs);
    // The checks alone must not keep a process alive (the CLI, tests).
    this.timer.unref();
  }
}
