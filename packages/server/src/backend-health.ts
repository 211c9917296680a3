import { createHealthAwareLocator, HealthBook, type BreakerChange, type Locator, type ProtocolHealth } from '@mailfront/locator';
import type { FailureKind, Logger, SessionRegistry } from '@mailfront/proxy-core';
import { PROTOCOLS, type BackendState, type Protocol, type Store } from '@mailfront/store';
import type { HealthConfig } from './config';
import { HealthChecker } from './health-checker';

/** One backend as this node sees it: `mailfront backend status`, the admin API. */
export interface BackendStatus {
  name: string;
  host: string;
  state: BackendState;
  standby: string | null;
  /** One entry per protocol the backend has a port for. */
  protocols: Array<ProtocolHealth & { port: number }>;
  /** Sessions on this node with this backend: logging in to it or relaying. */
  sessions: number;
}

/** Health checks, breakers and health-aware routing for one running server. */
export interface BackendHealth {
  readonly book: HealthBook;
  readonly checker: HealthChecker;
  /** `inner` with health-aware routing around it (standby, fast temporary failure). */
  locator(inner: Locator): Locator;
  /** The session driver's report of a backend login (ProxyServices.onBackendResult). */
  onBackendResult(backend: string, protocol: Protocol, ok: boolean, kind: FailureKind | null): void;
  status(): BackendStatus[];
  /** status() after reading the backends from the store again (the admin API's answer). */
  statusNow(): Promise<BackendStatus[]>;
  /** Apply new health settings (SIGHUP): thresholds at once, timings from the next round. */
  configure(health: HealthConfig, maxLineBytes: number): void;
  close(): Promise<void>;
}

export function createBackendHealth(
  config: { health: HealthConfig; limits: { backendMaxLineBytes: number } },
  store: Store,
  registry: SessionRegistry,
  log: Logger,
): BackendHealth {
  const h = config.health;
  let openMs = h.openMs;
  const onChange = (c: BreakerChange): void => {
    const fields = { backend: c.backend, protocol: c.protocol, from: c.from, to: c.to, source: c.source, ...(c.detail ? { reason: c.detail } : {}) };
    if (c.to === 'closed') log.info(fields, 'backend up: breaker closed, logins go there again');
    else log.warn(fields, `backend down: breaker open for ${openMs} ms, no new logins go there`);
  };
  const book = new HealthBook({ failuresToOpen: h.failuresToOpen, openMs: h.openMs, onChange });
  const checker = new HealthChecker({
    store,
    book,
    intervalMs: h.intervalMs,
    timeoutMs: h.timeoutMs,
    maxLineBytes: config.limits.backendMaxLineBytes,
    log,
  });
  checker.start();

  function status(): BackendStatus[] {
    const sessions = new Map<string, number>();
    for (const s of registry.list()) if (s.backend !== null) sessions.set(s.backend, (sessions.get(s.backend) ?? 0) + 1);
    return checker.backends.map((b) => {
      const protocols = PROTOCOLS.filter((p) => b.ports[p] !== null);
      return {
        name: b.name,
        host: b.host,
        state: b.state,
        standby: b.standby,
        protocols: book.health(b.name, protocols).map((ph) => ({ ...ph, port: b.ports[ph.protocol]! })),
        sessions: sessions.get(b.name) ?? 0,
      };
    });
  }

  return {
    book,
    checker,
    locator: (inner) => createHealthAwareLocator({ inner, store, health: book, log }),
    onBackendResult: (backend, protocol, ok, kind) => book.recordLogin(backend, protocol, ok, kind),
    status,
    async statusNow() {
      await checker.relist();
      return status();
    },
    configure(next, maxLineBytes) {
      book.configure({ failuresToOpen: next.failuresToOpen, openMs: next.openMs });
      openMs = next.openMs;
      checker.configure({ intervalMs: next.intervalMs, timeoutMs: next.timeoutMs, maxLineBytes });
    },
    close: () => checker.stop(),
  };
}
