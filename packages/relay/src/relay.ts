import type { Duplex } from 'node:stream';

/**
 * The byte pump between a client and its backend after login. It never looks
 * at the bytes: whatever one side sends reaches the other unchanged, in order.
 *
 * - Backpressure both ways: a side whose peer cannot keep up is paused until
 *   the peer drains, so a slow reader never makes us buffer a fast writer's data.
 * - Half-close: when one side ends its sending direction, the other side's
 *   sending direction is ended in turn once everything before it was written;
 *   the relay finishes when both directions are closed (or either socket closes).
 * - Idle timeout: no byte in either direction for `idleTimeoutMs` ends the relay.
 *   One timer per relay, re-armed lazily, so a busy relay does not churn timers.
 */

export type RelaySide = 'client' | 'backend';

export type RelayEnd =
  /** the client ended or closed the connection first */
  | 'client-closed'
  /** the backend ended or closed the connection first (e.g. after LOGOUT) */
  | 'backend-closed'
  | 'client-error'
  | 'backend-error'
  | 'idle-timeout'
  /** stopped from outside: kick, shutdown */
  | 'stopped';

export interface RelayOptions {
  /** No traffic in either direction for this long ends the relay. 0 disables. */
  idleTimeoutMs: number;
  /** Bytes that arrived from the client before the relay began (pipelined after login); sent to the backend first. */
  clientHead?: Buffer;
  /** Bytes that arrived from the backend before the relay began; sent to the client first. */
  backendHead?: Buffer;
  /** Called with the reason when the relay ends, before the sockets are destroyed. */
  onEnd?: (result: RelayResult) => void;
}

export interface RelayResult {
  end: RelayEnd;
  /** Bytes from client to backend (including clientHead). */
  bytesFromClient: number;
  /** Bytes from backend to client (including backendHead). */
  bytesFromBackend: number;
  durationMs: number;
  error?: Error;
  stopReason?: string;
}

export interface Relay {
  readonly done: Promise<RelayResult>;
  readonly bytesFromClient: number;
  readonly bytesFromBackend: number;
  /**
   * Milliseconds since the last byte in either direction. A quiet relay is
   * between a command and its response (or idling): words of our own can be
   * put in without landing inside a literal or a message transfer. 0 while
   * bytes wait to be written to either side (a reader that does not keep up).
   */
  quietForMs(): number;
  /** End the relay now: both sockets are destroyed after `beforeClose` (if any) is written to the client. */
  stop(reason: string, lastWordsToClient?: string): void;
}

export function startRelay(client: Duplex, backend: Duplex, opts: RelayOptions): Relay {
  const started = Date.now();
  let lastActivity = started;
  let fromClient = 0;
  let fromBackend = 0;
  let finished = false;
  let clientEnded = false;
  let backendEnded = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let resolveDone!: (r: RelayResult) => void;
  const done = new Promise<RelayResult>((resolve) => (resolveDone = resolve));

  const finish = (end: RelayEnd, error?: Error, stopReason?: string): void => {
    if (finished) return;
    finished = true;
    if (idleTimer) clearTimeout(idleTimer);
    client.removeListener('data', onClientData);
    backend.removeListener('data', onBackendData);
    const result: RelayResult = {
      end,
      bytesFromClient: fromClient,
      bytesFromBackend: fromBackend,
      durationMs: Date.now() - started,
    };
    if (error) result.error = error;
    if (stopReason !== undefined) result.stopReason = stopReason;
    opts.onEnd?.(result);
    // Whatever was already queued for writing is flushed by end(); destroy
    // follows so that a peer that never reads cannot hold the socket open.
    closeSoon(client);
    closeSoon(backend);
    resolveDone(result);
  };

  const onClientData = (chunk: Buffer): void => {
    fromClient += chunk.length;
    lastActivity = Date.now();
    if (!backend.write(chunk)) {
      client.pause();
      backend.once('drain', resumeClient);
    }
  };
  const onBackendData = (chunk: Buffer): void => {
    fromBackend += chunk.length;
    lastActivity = Date.now();
    if (!client.write(chunk)) {
      backend.pause();
      client.once('drain', resumeBackend);
    }
  };
  const resumeClient = (): void => {
    if (!finished) client.resume();
  };
  const resumeBackend = (): void => {
    if (!finished) backend.resume();
  };

  // Half-close: pass the end of one direction on to the other side.
  const onClientEnd = (): void => {
    clientEnded = true;
    if (!finished) backend.end();
    if (backendEnded) finish('client-closed');
  };
  const onBackendEnd = (): void => {
    backendEnded = true;
    if (!finished) client.end();
    if (clientEnded) finish('backend-closed');
  };

  client.on('end', onClientEnd);
  backend.on('end', onBackendEnd);
  client.on('close', () => finish(backendEnded && !clientEnded ? 'backend-closed' : 'client-closed'));
  backend.on('close', () => finish(clientEnded && !backendEnded ? 'client-closed' : 'backend-closed'));
  client.on('error', (e: Error) => finish('client-error', e));
  backend.on('error', (e: Error) => finish('backend-error', e));

  if (opts.idleTimeoutMs > 0) {
    const check = (): void => {
      const idle = Date.now() - lastActivity;
      if (idle >= opts.idleTimeoutMs) finish('idle-timeout');
      else idleTimer = setTimeout(check, opts.idleTimeoutMs - idle);
    };
    idleTimer = setTimeout(check, opts.idleTimeoutMs);
    idleTimer.unref?.();
  }

  if (opts.clientHead && opts.clientHead.length > 0) {
    fromClient += opts.clientHead.length;
    backend.write(opts.clientHead);
  }
  if (opts.backendHead && opts.backendHead.length > 0) {
    fromBackend += opts.backendHead.length;
    client.write(opts.backendHead);
  }

  client.on('data', onClientData);
  backend.on('data', onBackendData);
  client.resume();
  backend.resume();

  return {
    done,
    get bytesFromClient() {
      return fromClient;
    },
    get bytesFromBackend() {
      return fromBackend;
    },
    // Bytes still queued towards a side that does not keep up mean the relay
    // is in the middle of something (a literal, a message) however long ago
    // the last byte was read: paused by backpressure, no new byte arrives.
    quietForMs: () => (client.writableLength > 0 || backend.writableLength > 0 ? 0 : Date.now() - lastActivity),
    stop(reason: string, lastWordsToClient?: string) {
      if (finished) return;
      if (lastWordsToClient !== undefined) client.write(lastWordsToClient);
      finish('stopped', undefined, reason);
    },
  };
}

/** End politely (flush queued writes), and destroy if the peer does not let go. */
function closeSoon(sock: Duplex): void {
  if (sock.destroyed) return;
  sock.end();
  const t = setTimeout(() => sock.destroy(), 2000);
  t.unref?.();
  sock.once('close', () => clearTimeout(t));
}
