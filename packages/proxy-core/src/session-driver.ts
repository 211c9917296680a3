import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { failureDelay, type Authenticator } from '@mailfront/auth';
import type { Locator } from '@mailfront/locator';
import type { BackendRow } from '@mailfront/store';
import { startRelay, type Relay } from '@mailfront/relay';
import { BackendLoginError, loginToBackend, type BackendLoginSuccess } from './backend';
import { clientAnswerFor, failure, logLevelFor, ProxyFailure } from './errors';
import type { CoreLimits } from './limits';
import type { Logger } from './log';
import type { ByeReason, ClientSession, ClientStep, Credentials, ProtocolDescriptor, SessionEnv } from './protocol';
import type { ConnectionGate } from './connection-gate';
import type { ProxyEvents } from './events';
import type { PenaltyBox } from './penalty';
import { QUIET_MS, type SessionRegistry, type SessionPhase } from './registry';
import { encodeProxyV2 } from './proxy-protocol';
import { clip } from './sanitize';
import { upgradeServerSocket, type ClientTlsProvider } from './tls';

export type ListenerTls = 'none' | 'starttls' | 'implicit';

export interface ListenerPolicy {
  /** A name for logs, e.g. `imap@127.0.0.1:1143`. */
  name: string;
  tls: ListenerTls;
  /** Accept credentials without TLS (legacy clients on trusted networks only). */
  allowPlaintextAuth: boolean;
}

/** The client's connection as far as we know it: from the socket, or from a trusted PROXY header. */
export interface Peer {
  address: string;
  port: number;
  localAddress: string;
  localPort: number;
  /** A balancer's own connection (PROXY LOCAL: its health checks), logged quietly. */
  balancerOwn?: boolean;
}

/** What every session needs from the server around it. */
export interface ProxyServices {
  auth: Authenticator;
  locator: Locator;
  log: Logger;
  limits: CoreLimits;
  registry: SessionRegistry;
  tls: ClientTlsProvider;
  /** Escalating refusals after failed logins; absent = none. */
  penalties?: PenaltyBox;
  /**
   * Told how each login to a backend went (ok, or the failure's kind), to
   * feed the backend's circuit breaker; absent = nobody listens.
   */
  onBackendResult?: (backend: string, protocol: ProtocolDescriptor['name'], ok: boolean, kind: ProxyFailure['kind'] | null) => void;
  /** Login and session-end notices (metrics, user moves); absent = none. */
  events?: ProxyEvents;
  /** Connection limits over all listeners; absent = none. */
  connections?: ConnectionGate;
}

/**
 * Input read and dropped after we ended a pre-login session, before the
 * connection is cut: room for a polite client's pipelined leftovers (a few
 * commands after LOGOUT or QUIT), far less than what a flood sends in the
 * two seconds finish() waits for the client to close.
 */
export const MAX_DISCARD_AFTER_CLOSE_BYTES = 64 * 1024;

/** Random bytes drawn in blocks: one getrandom call per 256 sessions, not per session. */
let idPool = Buffer.alloc(0);
let idPos = 0;

export function newSessionId(): string {
  // 12 random bytes, as Dovecot's session ids: unique enough to grep for across nodes.
  if (idPos + 12 > idPool.length) {
    idPool = randomBytes(12 * 256);
    idPos = 0;
  }
  const id = idPool.toString('base64url', idPos, idPos + 12);
  idPos += 12;
  return id;
}

/**
 * Drives one client connection from accept to hand-off: feeds client bytes to
 * the protocol's session, performs the steps it returns (writes, STARTTLS,
 * login), enforces the core limits, and finally starts the relay.
 */
export class SessionDriver implements SessionEnv {
  readonly sessionId = newSessionId();
  private sock: net.Socket | tls.TLSSocket;
  private readonly session: ClientSession;
  private readonly log: Logger;
  private phase: SessionPhase | 'closed' = 'pre-login';
  private tlsActive: boolean;
  private badCommands = 0;
  private authFailures = 0;
  private discardedAfterClose = 0;
  private readonly since = new Date();
  private lastInput = Date.now();
  private loginTimer: NodeJS.Timeout | undefined;
  private backendAbort: AbortController | undefined;
  private relay: Relay | undefined;
  private user: string | null = null;
  private backend: BackendRow | null = null;
  private readonly clientLabel: string;

  constructor(
    sock: net.Socket | tls.TLSSocket,
    private readonly desc: ProtocolDescriptor,
    private readonly policy: ListenerPolicy,
    private readonly svc: ProxyServices,
    private readonly peer: Peer,
  ) {
    this.sock = sock;
    this.tlsActive = policy.tls === 'implicit';
    this.clientLabel = `${peer.address}:${peer.port}`;
    this.log = svc.log.child({ session: this.sessionId, proto: desc.name, client: this.clientLabel });
    this.session = desc.createSession(this);
  }

  // SessionEnv
  get tls(): boolean {
    return this.tlsActive;
  }
  get starttlsAvailable(): boolean {
    return this.policy.tls === 'starttls' && !this.tlsActive;
  }
  get authAllowed(): boolean {
    return this.tlsActive || this.policy.allowPlaintextAuth;
  }

  start(): void {
    const sock = this.sock;
    sock.setNoDelay(true);
    this.attach(sock);
    // A listener that read a PROXY header paused the socket.
    sock.resume();
    this.svc.registry.add(this.sessionId, {
      info: () => ({
        id: this.sessionId,
        protocol: this.desc.name,
        client: this.clientLabel,
        phase: this.phase === 'closed' ? 'relay' : this.phase,
        tls: this.tlsActive,
        user: this.user,
        backend: this.backend?.name ?? null,
        since: this.since,
        bytesFromClient: this.relay?.bytesFromClient ?? 0,
        bytesFromBackend: this.relay?.bytesFromBackend ?? 0,
      }),
      quietForMs: () => this.quietForMs(),
      close: (reason) => this.closeFromOutside(reason),
    });
    this.loginTimer = setTimeout(() => this.bye('timeout', 'login timeout'), this.svc.limits.loginTimeoutMs);
    this.log.debug({ listener: this.policy.name, tls: this.tlsActive }, 'connected');
    this.pump();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.sock.destroyed) return;
    if (this.phase === 'closed') return this.discardAfterClose(chunk.length);
    if (this.phase !== 'pre-login') return;
    this.lastInput = Date.now();
    this.session.feed(chunk);
    this.pump();
  };
  /**
   * After we ended a session (goodbye, LOGOUT, too many errors), the client's
   * last bytes are still read and dropped until it closes or the grace in
   * finish() runs out, so that they do not turn our goodbye into a reset. A
   * client that keeps sending regardless (a flood without line ends) is cut
   * off once it has sent more than a client finishing politely ever would,
   * instead of being read at wire speed for the whole grace.
   */
  private discardAfterClose(bytes: number): void {
    this.discardedAfterClose += bytes;
    if (this.discardedAfterClose > MAX_DISCARD_AFTER_CLOSE_BYTES) this.sock.destroy();
  }

  private readonly onEnd = (): void => {
    // The client half-closed before login: what it sent is answered, then we close.
    if (this.phase === 'pre-login') this.finish('client ended before login');
  };
  private readonly onError = (e: Error): void => {
    this.log.debug({ err: clip(e.message) }, 'client socket error');
    this.finish(`client error: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  };
  private readonly onClose = (): void => this.finish('client closed');

  private attach(sock: net.Socket | tls.TLSSocket): void {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
  }
  private detach(sock: net.Socket | tls.TLSSocket): void {
    sock.removeListener('data', this.onData);
    sock.removeListener('end', this.onEnd);
    sock.removeListener('error', this.onError);
    sock.removeListener('close', this.onClose);
  }

  private write(text: string): void {
    if (!this.sock.destroyed) this.sock.write(text, 'latin1');
  }

  /** Perform steps until the session needs input, or a step that waits (TLS, login) starts. */
  private pump(): void {
    while (this.phase === 'pre-login') {
      let step: ClientStep | null;
      try {
        step = this.session.next();
      } catch (e) {
        this.log.error({ err: e instanceof Error ? e.stack : String(e) }, 'session failed');
        return this.bye('internal', 'internal error');
      }
      if (step === null) return;
      switch (step.do) {
        case 'send':
          this.write(step.text);
          if (step.error && ++this.badCommands >= this.svc.limits.maxBadCommands) {
            return this.bye('too-many-errors', `too many bad commands (${this.badCommands})`);
          }
          break;
        case 'starttls':
          return this.startTls();
        case 'login':
          return void this.login(step.credentials, step.context ?? {});
        case 'relay':
          return this.startRelay();
        case 'close':
          this.phase = 'closed';
          this.sock.end();
          return this.finish(step.reason);
        default:
          return assertNever(step);
      }
    }
  }

  private startTls(): void {
    this.phase = 'starttls';
    const plain = this.sock as net.Socket;
    this.detach(plain);
    const secure = upgradeServerSocket(plain, this.svc.tls, this.desc.alpn);
    this.sock = secure;
    secure.on('error', this.onError);
    secure.on('close', this.onClose);
    // Half-open socket: a client that leaves during the handshake would
    // otherwise hold its session until the login timeout.
    const left = (): void => this.finish('client ended during the TLS handshake');
    secure.once('end', left);
    secure.once('secure', () => {
      if (this.phase !== 'starttls') return;
      secure.removeListener('error', this.onError);
      secure.removeListener('close', this.onClose);
      secure.removeListener('end', left);
      this.tlsActive = true;
      // RFC 3207 §4.2 / RFC 2595 §3.1: nothing learned before TLS survives it.
      this.session.tlsStarted();
      this.attach(secure);
      this.phase = 'pre-login';
      this.log.debug({ tlsVersion: secure.getProtocol(), alpn: secure.alpnProtocol || null }, 'starttls done');
      this.pump();
    });
  }

  private async login(creds: Credentials, clientContext: Readonly<Record<string, string>>): Promise<void> {
    this.phase = 'login';
    this.sock.pause();
    const started = Date.now();
    const abort = (this.backendAbort = new AbortController());
    let state = 'none/none';
    let result: BackendLoginSuccess | undefined;
    let fail: ProxyFailure | undefined;
    let authUser = creds.user;
    let cached = false;
    const penaltyKeys = this.svc.penalties?.keysFor(this.peer.address, creds.user.trim()) ?? [];
    try {
      const refusedMs = this.svc.penalties?.refusedFor(penaltyKeys) ?? 0;
      // Refused before the password is looked at: the answer says nothing about it.
      if (refusedMs > 0) throw failure('penalised', `refused for another ${Math.ceil(refusedMs / 1000)} s after failed logins`);
      const auth = await this.svc.auth.authenticate({
        user: creds.user,
        password: creds.password,
        authzid: creds.authzid,
        protocol: this.desc.name,
        client: { address: this.peer.address, port: this.peer.port },
        sessionId: this.sessionId,
      });
      if (!auth.ok) throw failure(auth.kind, auth.reason);
      authUser = auth.user;
      cached = auth.cached;
      // Directory attributes read at login let the locator skip a second search.
      const loc = await this.svc.locator.locate(auth.user, this.desc.name, auth.attributes ? { attributes: auth.attributes } : undefined);
      if (!loc.ok) throw failure(loc.kind === 'tempfail' ? 'auth-tempfail' : 'no-backend', loc.reason);
      if (auth.verified === false && loc.backend.login !== 'passthrough') {
        // Nobody checked the password (auth source `backend`), and a master
        // login would not show it to the backend either: anyone would get in.
        throw failure('internal', `refusing ${loc.backend.login} login to backend ${loc.backend.name}: the auth source verifies no password, only passthrough backends may follow`);
      }
      this.backend = loc.backend;
      if (abort.signal.aborted) throw failure('internal', 'client went away');
      const forward = loc.backend.trusted
        ? {
            clientAddress: this.peer.address,
            clientPort: this.peer.port,
            localAddress: this.peer.localAddress,
            localPort: this.peer.localPort,
            sessionId: this.sessionId,
            ttl: this.svc.limits.proxyTtl,
          }
        : null;
      result = await loginToBackend(
        this.desc.backend,
        { user: auth.user, password: creds.password, backend: loc.backend, forward, tls: false, clientContext },
        {
          host: loc.backend.host,
          port: loc.port,
          connectTimeoutMs: this.svc.limits.backendConnectTimeoutMs,
          loginTimeoutMs: this.svc.limits.backendLoginTimeoutMs,
          maxLineBytes: this.svc.limits.backendMaxLineBytes,
          signal: abort.signal,
          // Dovecot `haproxy = yes` listeners: the client's address travels in a PROXY v2 header.
          ...(loc.backend.proxyProtocol
            ? { proxyHeader: encodeProxyV2({ address: this.peer.address, port: this.peer.port }, { address: this.peer.localAddress, port: this.peer.localPort }) }
            : {}),
        },
      );
      state = result.state;
    } catch (e) {
      if (e instanceof BackendLoginError) {
        fail = e.failure;
        state = e.state;
      } else if (e instanceof ProxyFailure) fail = e;
      else fail = failure('internal', e instanceof Error ? e.message : String(e), e);
    } finally {
      this.backendAbort = undefined;
    }
    // Only once a backend was chosen: its part of the outcome feeds its breaker.
    if (this.backend) this.svc.onBackendResult?.(this.backend.name, this.desc.name, result !== undefined, fail?.kind ?? null);
    this.svc.events?.onLogin?.({
      protocol: this.desc.name,
      user: authUser,
      failure: result && this.phase === 'login' ? null : (fail?.kind ?? 'internal'),
      backend: this.backend?.name ?? null,
      durationMs: Date.now() - started,
      abandoned: this.phase !== 'login',
    });
    if (this.phase !== 'login') {
      // The client left (or was closed) while we were busy.
      result?.socket.destroy();
      return;
    }
    if (result) {
      this.svc.penalties?.recordSuccess(penaltyKeys);
      this.user = authUser;
      this.log.info(
        { user: clip(authUser), backend: this.backend?.name, mech: creds.mechanism, cached, state, ms: Date.now() - started },
        'login',
      );
      this.session.loginDone({ ok: true, backendReply: result.reply });
      this.backendConn = result;
      this.phase = 'pre-login';
      return this.pump();
    }
    const f = fail!;
    this.log[logLevelFor(f.kind)](
      { user: clip(creds.user), mech: creds.mechanism, kind: f.kind, reason: clip(f.detail, 200), backend: this.backend?.name, state },
      'login failed',
    );
    this.backend = null;
    const answer = clientAnswerFor(f.kind);
    if (f.kind === 'auth-failed') this.svc.penalties?.recordFailure(penaltyKeys);
    if (answer === 'auth-failed' || f.kind === 'penalised') {
      this.authFailures++;
      // Same answer, same delay, whether the user exists or not, and whoever refused.
      await failureDelay(this.svc.limits.authFailureDelayMs);
      if (this.phase !== 'login') return;
    }
    this.session.loginDone({ ok: false, answer, kind: f.kind, ...(f.hint ? { hint: f.hint } : {}) });
    this.phase = 'pre-login';
    if (this.authFailures >= this.svc.limits.maxAuthAttempts) {
      this.pumpSendsOnly();
      return this.bye('too-many-errors', `too many failed logins (${this.authFailures})`);
    }
    this.sock.resume();
    this.pump();
  }

  private backendConn: BackendLoginSuccess | undefined;

  /** Write what the session has to say (the last NO) without reading more input. */
  private pumpSendsOnly(): void {
    for (;;) {
      const step = this.session.next();
      if (!step || step.do !== 'send') return;
      this.write(step.text);
    }
  }

  private startRelay(): void {
    const be = this.backendConn;
    if (!be) return this.bye('internal', 'relay without backend');
    this.backendConn = undefined;
    this.phase = 'relay';
    clearTimeout(this.loginTimer);
    // A relayed session may live for days: keep nothing of the login phase.
    this.loginTimer = undefined;
    this.detach(this.sock);
    const relay = startRelay(this.sock, be.socket, {
      idleTimeoutMs: this.svc.limits.idleTimeoutMs,
      clientHead: this.session.takeUnconsumed(),
      backendHead: be.head,
    });
    this.relay = relay;
    void relay.done.then((r) => {
      this.phase = 'closed';
      this.svc.registry.remove(this.sessionId);
      this.svc.events?.onSessionEnd?.({
        protocol: this.desc.name,
        user: this.user,
        backend: this.backend?.name ?? null,
        tls: this.tlsActive,
        bytesFromClient: r.bytesFromClient,
        bytesFromBackend: r.bytesFromBackend,
        durationMs: r.durationMs,
        end: r.end,
      });
      this.log.info(
        {
          user: clip(this.user),
          backend: this.backend?.name,
          tls: this.tlsActive,
          bytes_in: r.bytesFromClient,
          bytes_out: r.bytesFromBackend,
          duration_ms: r.durationMs,
          end: r.end,
          ...(r.stopReason ? { stop: r.stopReason } : {}),
          ...(r.error ? { err: clip(r.error.message) } : {}),
        },
        'session ended',
      );
    });
  }

  private quietForMs(): number {
    if (this.phase === 'relay') return this.relay?.quietForMs() ?? 0;
    if (this.phase === 'pre-login') return Date.now() - this.lastInput;
    return 0;
  }

  private closeFromOutside(reason: 'shutdown' | 'kicked'): void {
    if (this.phase === 'relay') {
      const quiet = (this.relay?.quietForMs() ?? 0) >= QUIET_MS;
      return this.relay?.stop(reason, quiet ? this.session.bye(reason) : undefined);
    }
    this.bye(reason, reason);
  }

  /** Say goodbye in the protocol's words and close. */
  private bye(reason: ByeReason, why: string): void {
    if (this.phase === 'closed') return;
    this.write(this.session.bye(reason));
    this.phase = 'closed';
    this.sock.end();
    this.finish(why);
  }

  /** Cleanup for every pre-relay end; the relay reports its own end. */
  private finish(why: string): void {
    if (this.phase === 'relay') return;
    const wasClosed = this.phase === 'closed';
    this.phase = 'closed';
    clearTimeout(this.loginTimer);
    this.backendAbort?.abort();
    this.backendConn?.socket.destroy();
    this.backendConn = undefined;
    if (!this.svc.registry.get(this.sessionId)) return;
    this.svc.registry.remove(this.sessionId);
    this.svc.events?.onSessionEnd?.({
      protocol: this.desc.name,
      user: null,
      backend: null,
      tls: this.tlsActive,
      bytesFromClient: 0,
      bytesFromBackend: 0,
      durationMs: Date.now() - this.since.getTime(),
      end: 'pre-login',
    });
    this.log[this.peer.balancerOwn ? 'debug' : 'info'](
      { reason: why, auth_failures: this.authFailures, bad_commands: this.badCommands, tls: this.tlsActive, user: this.user ? clip(this.user) : undefined },
      'disconnected before login',
    );
    // Give a polite end() a moment to flush, then make sure the socket is gone.
    const sock = this.sock;
    if (!wasClosed) sock.end();
    const t = setTimeout(() => sock.destroy(), 2_000);
    t.unref();
    sock.once('close', () => clearTimeout(t));
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected step ${JSON.stringify(x)}`);
}
