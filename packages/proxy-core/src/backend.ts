import * as net from 'node:net';
import * as tls from 'node:tls';
import type { BackendLoginContext, BackendProtocol } from './protocol';
import { failure, ProxyFailure } from './errors';
import { LineReader, LineTooLong } from './line-reader';
import { backendTlsOptions } from './tls';

export interface BackendLoginOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** From connect to the backend's final login reply. */
  loginTimeoutMs: number;
  maxLineBytes: number;
  /** Sent first on the connection (PROXY protocol v2 to a backend that expects it). */
  proxyHeader?: Buffer;
  /** Aborted when the client goes away: the backend connection is dropped at once. */
  signal?: AbortSignal;
}

export interface BackendLoginSuccess {
  socket: net.Socket;
  /** The backend's final reply lines (binary strings). */
  reply: string[];
  /** Bytes the backend sent after its final reply line; for the client, first. */
  head: Buffer;
  /** Dovecot-style progress for the log, e.g. `capability+id+login/login`. */
  state: string;
}

/** Thrown with the progress reached, for the `state=<sent>/<received>` log field. */
export class BackendLoginError extends Error {
  constructor(
    readonly failure: ProxyFailure,
    readonly state: string,
  ) {
    super(failure.message);
  }
}

/**
 * Connect to a backend and run the protocol's login machine, one backend line
 * at a time. The machine decides; this function does the I/O: connecting,
 * TLS, writes, timeouts and the STARTTLS injection guard.
 */
export function loginToBackend<S extends { at: string }>(
  proto: BackendProtocol<S>,
  ctx: BackendLoginContext,
  opts: BackendLoginOptions,
): Promise<BackendLoginSuccess> {
  return new Promise((resolve, reject) => {
    const sent: string[] = [];
    let state: S = proto.initial(ctx);
    let settled = false;
    let reader = new LineReader(opts.maxLineBytes, proto.literalLength?.bind(proto));
    let sock: net.Socket;
    let upgrading = false;
    const progress = (): string => `${sent.length ? sent.join('+') : 'none'}/${state.at}`;

    const fail = (f: ProxyFailure): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      sock?.destroy();
      reject(new BackendLoginError(f, progress()));
    };
    const onAbort = (): void => fail(failure('internal', 'client went away during backend login'));
    const timer = setTimeout(
      () => fail(failure('timeout', `no login reply within ${opts.loginTimeoutMs} ms`)),
      opts.loginTimeoutMs,
    );
    if (opts.signal) {
      if (opts.signal.aborted) return onAbort();
      opts.signal.addEventListener('abort', onAbort, { once: true });
    }

    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      try {
        for (;;) {
          if (settled || upgrading) return;
          const line = reader.nextLine();
          if (line === null) return;
          handleLine(line);
        }
      } catch (e) {
        if (e instanceof LineTooLong) fail(failure('protocol', e.message));
        else fail(failure('internal', 'backend login machine threw', e));
      }
    };

    const handleLine = (line: string): void => {
      const step = proto.onLine(state, line, ctx);
      if ('fail' in step) return fail(step.fail);
      if ('done' in step) {
        settled = true;
        clearTimeout(timer);
        clearTimeout(connectTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        // Nothing of the login (its closures hold the password) may stay
        // reachable from the socket for the session's lifetime.
        raw.removeListener('close', clearConnectTimer);
        sock.removeListener('data', onData);
        sock.removeListener('error', onError);
        sock.removeListener('close', onClose);
        sock.pause();
        resolve({ socket: sock, reply: step.reply, head: reader.takeRemaining(), state: progress() });
        return;
      }
      state = step.next;
      if (step.startTls) {
        // The backend's STARTTLS reply must be the last plaintext byte it sends:
        // anything after it would be read as if it came through TLS (response
        // injection, CVE-2011-0411's mirror image). Fail without credentials.
        if (reader.buffered > 0) return fail(failure('protocol', 'bytes after the STARTTLS reply'));
        return upgrade(step.send, step.sent);
      }
      if (step.send !== undefined) write(step.send, step.sent);
    };

    const write = (text: string, what?: string): void => {
      if (what) sent.push(what);
      sock.write(text, 'latin1');
    };

    const upgrade = (then?: string, what?: string): void => {
      upgrading = true;
      sock.removeListener('data', onData);
      sock.removeListener('error', onError);
      sock.removeListener('close', onClose);
      const plain = sock;
      const secure = tls.connect({ ...backendTlsOptions(ctx.backend), socket: plain });
      sock = secure;
      secure.on('error', onError);
      secure.on('close', onClose);
      secure.once('secureConnect', () => {
        upgrading = false;
        ctx.tls = true;
        reader = new LineReader(opts.maxLineBytes, proto.literalLength?.bind(proto));
        secure.on('data', onData);
        if (then !== undefined) write(then, what);
      });
    };

    const onError = (e: Error): void => {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      const tlsProblem = code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /certificate|self.signed|ssl|tls/i.test(e.message + code);
      fail(failure(tlsProblem ? 'protocol' : 'connect', `${code || 'error'}: ${e.message}`, e));
    };
    const onClose = (): void => fail(failure('remote', 'backend closed the connection during login'));

    const connectTimer = setTimeout(
      () => fail(failure('connect', `connect timeout after ${opts.connectTimeoutMs} ms`)),
      opts.connectTimeoutMs,
    );
    const raw = net.connect({ host: opts.host, port: opts.port, allowHalfOpen: true });
    sock = raw;
    raw.on('error', onError);
    raw.on('close', onClose);
    const clearConnectTimer = (): void => clearTimeout(connectTimer);
    raw.once('close', clearConnectTimer);
    raw.once('connect', () => {
      raw.setNoDelay(true);
      // A PROXY header is the very first thing on the connection, before TLS.
      if (opts.proxyHeader) raw.write(opts.proxyHeader);
      if (ctx.backend.tls !== 'implicit') {
        clearTimeout(connectTimer);
        raw.on('data', onData);
        return;
      }
      raw.removeListener('error', onError);
      raw.removeListener('close', onClose);
      const secure = tls.connect({ ...backendTlsOptions(ctx.backend), socket: raw });
      sock = secure;
      secure.on('data', onData);
      secure.on('error', onError);
      secure.on('close', onClose);
      // The connect timeout covers the handshake too.
      secure.once('secureConnect', () => {
        clearTimeout(connectTimer);
        ctx.tls = true;
      });
    });
  });
}
