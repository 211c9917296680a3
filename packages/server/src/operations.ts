import type { Locator } from '@mailfront/locator';
import type { ClientTlsProvider, LoginEvent, Logger, ProxyEvents, SessionEndEvent, SessionRegistry, PenaltyBox, CoreLimits } from '@mailfront/proxy-core';
import type { Store } from '@mailfront/store';
import { startAdminApi, type AdminApi } from './admin-api';
import { offeredServices, startAutoconfigServer, type AutoconfigServer } from './autoconfig';
import type { MailfrontConfig } from './config';
import { Kicker } from './kick';
import { createMetrics, startMetricsServer, type MetricsServer } from './metrics';
import { UserMoves } from './user-moves';

/**
 * The operations side of a running server: the admin API, user moves and
 * kicks, Prometheus metrics and client autoconfiguration. The server hands
 * it the live state; it hands back an events sink and a locator wrapper for
 * the sessions, and listeners of its own.
 */

/** Where the operations listeners ended up (ports chosen by the system when 0 was configured). */
export interface OperationsInfo {
  admin: { socket: string | null; http: { host: string; port: number } | null };
  metrics: { host: string; port: number } | null;
  autoconfig: { host: string; port: number; tls: boolean } | null;
}

export interface OperationsDeps {
  config: MailfrontConfig;
  registry: SessionRegistry;
  store: Store;
  log: Logger;
  /** The session services of the moment (a reload replaces limits and certificates). */
  limits: () => CoreLimits;
  tls: () => ClientTlsProvider;
  penalties: () => PenaltyBox | undefined;
}

export interface OperationsStart {
  listeners: ReadonlyArray<{ protocol: string; host: string; port: number; tls: string }>;
  /** RunningServer.backendStatus, when the server keeps backend health. */
  backendStatus: (() => unknown) | undefined;
  /** The same, read fresh from the store: for the admin API (default: backendStatus). */
  backendStatusNow?: () => Promise<unknown>;
}

export interface Operations {
  /** For ProxyServices.events. */
  readonly events: ProxyEvents;
  /** For ProxyServices.locator: holds the logins of users being moved. */
  wrapLocator(inner: Locator): Locator;
  start(s: OperationsStart): Promise<OperationsInfo>;
  /** Stop the listeners and forget scheduled kicks. */
  close(): Promise<void>;
}

/** How long past its backend login timeout a located login is still waited for by a move. */
const LEASE_MARGIN_MS = 1_000;
/** How long past that a move keeps waiting for the user's sessions before it gives up. */
const MOVE_MARGIN_MS = 5_000;

/** Each sink sees every event; one that throws does not keep the others (or the session) from going on. */
export function combineEvents(log: Logger, ...sinks: ProxyEvents[]): Required<ProxyEvents> {
  const each = <E>(pick: (s: ProxyEvents) => ((e: E) => void) | undefined) => (e: E) => {
    for (const s of sinks) {
      try {
        pick(s)?.call(s, e);
      } catch (err) {
        log.error({ err: err instanceof Error ? err.stack : String(err) }, 'event sink failed');
      }
    }
  };
  return { onLogin: each<LoginEvent>((s) => s.onLogin), onSessionEnd: each<SessionEndEvent>((s) => s.onSessionEnd) };
}

export function createOperations(d: OperationsDeps): Operations {
  const { config, registry, store, log } = d;
  const kicker = new Kicker(registry);
  const leaseMs = () => d.limits().backendLoginTimeoutMs + LEASE_MARGIN_MS;
  const moves = new UserMoves({
    registry,
    store,
    kicker,
    loginWaitMs: () => config.admin.moveLoginWaitMs,
    leaseMs,
    drainTimeoutMs: () => leaseMs() + MOVE_MARGIN_MS,
  });
  let backendStatus: (() => unknown) | undefined;
  const metrics = config.metrics.port !== null
    ? createMetrics({
        registry,
        penalties: d.penalties,
        backendStatus: () => backendStatus?.(),
        protocols: [...new Set(config.listeners.map((l) => l.protocol))],
      })
    : null;
  const events = combineEvents(log, { onLogin: (e) => moves.onLogin(e) }, ...(metrics ? [metrics.events] : []));

  let admin: AdminApi | null = null;
  let metricsServer: MetricsServer | null = null;
  let autoconfig: AutoconfigServer | null = null;

  const close = async (): Promise<void> => {
    kicker.cancel();
    await Promise.all([admin?.close(), metricsServer?.close(), autoconfig?.close()]);
    admin = metricsServer = autoconfig = null;
  };

  return {
    events,
    wrapLocator: (inner) => moves.wrap(inner),
    async start(s) {
      backendStatus = s.backendStatus;
      try {
        const placementAttribute = config.ldap?.placementAttribute ?? null;
        admin = await startAdminApi(config.admin, {
          registry,
          kicker,
          moves,
          store,
          log,
          usersInStore: () => config.auth.source === 'sqlite',
          moveNotes: () =>
            placementAttribute === null
              ? []
              : [`ldap.placementAttribute (${placementAttribute}) is configured: a user whose directory entry names a backend goes there, whatever the store says`],
          listeners: s.listeners,
          ...(s.backendStatus ? { backendStatus: s.backendStatusNow ?? s.backendStatus } : {}),
        });
        if (metrics) metricsServer = await startMetricsServer(config.metrics.host, config.metrics.port!, metrics, log);
        const ac = config.autoconfig;
        if (ac.port !== null) {
          const hostname = ac.hostname ?? config.hostname;
          const services = offeredServices(s.listeners);
          autoconfig = await startAutoconfigServer({
            host: ac.host,
            port: ac.port,
            provider: () => ({ hostname, displayName: ac.displayName ?? hostname, services }),
            tls: ac.tls ? d.tls : null,
            log,
          });
        }
      } catch (e) {
        await close();
        throw e;
      }
      return {
        admin: { socket: admin.socket, http: admin.http },
        metrics: metricsServer?.address ?? null,
        autoconfig: autoconfig ? { ...autoconfig.address, tls: autoconfig.tls } : null,
      };
    },
    close,
  };
}
