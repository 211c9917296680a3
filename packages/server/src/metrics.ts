import * as http from 'node:http';
import type * as net from 'node:net';
import { clientAnswerFor, type LoginEvent, type Logger, type PenaltyBox, type ProxyEvents, type SessionEndEvent, type SessionRegistry } from '@mailfront/proxy-core';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics. Counters move on the core's events (logins, session
 * ends); gauges are read from the live state at each scrape (sessions by
 * phase and backend, penalties in force, backend health). Bytes relayed are
 * counted when a session ends plus what live sessions have relayed so far,
 * so a long IMAP session shows up before it ends. Each server has its own
 * registry: several servers in one process (tests) do not mix.
 */

export type LoginResult = 'ok' | 'failed' | 'tempfail';

export interface MetricsSources {
  registry: SessionRegistry;
  penalties: () => PenaltyBox | undefined;
  /** The backends' health (RunningServer.backendStatus), or undefined when the server keeps none. */
  backendStatus: () => unknown;
  /** Protocols with a listener: their series exist (at 0) from the start. */
  protocols: readonly string[];
}

export interface Metrics {
  readonly register: Registry;
  readonly events: Required<ProxyEvents>;
}

const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;
const DIRECTIONS = { client_to_backend: 'bytesFromClient', backend_to_client: 'bytesFromBackend' } as const;
type Direction = keyof typeof DIRECTIONS;

/** ok, or what the client was told: a refusal (auth failed) or "try again later". */
export function loginResult(e: LoginEvent): LoginResult {
  if (e.failure === null) return 'ok';
  return clientAnswerFor(e.failure) === 'auth-failed' ? 'failed' : 'tempfail';
}

export function createMetrics(src: MetricsSources): Metrics {
  const register = new Registry();
  collectDefaultMetrics({ register });

  const logins = new Counter({
    name: 'mailfront_logins_total',
    help: 'Login attempts by protocol, result (ok, failed: credentials refused, tempfail: try again later) and failure kind (none when ok).',
    labelNames: ['protocol', 'result', 'kind'],
    registers: [register],
  });
  const loginSeconds = new Histogram({
    name: 'mailfront_login_duration_seconds',
    help: 'From the login command to the backend\'s answer (auth, placement, backend login), without the failure delay.',
    labelNames: ['protocol', 'result'],
    // A cached login on loopback takes a millisecond or two; a scrypt check tens; a slow backend seconds.
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [register],
  });
  const ended = new Counter({
    name: 'mailfront_sessions_ended_total',
    help: 'Sessions ended, by protocol and how (client-closed, backend-closed, stopped, idle-timeout, …; pre-login: before a login).',
    labelNames: ['protocol', 'end'],
    registers: [register],
  });

  // Bytes of sessions that ended; live sessions are added at each scrape.
  const endedBytes = new Map<string, number>();
  const reportedBytes = new Map<string, number>();
  const bytesKey = (protocol: string, direction: Direction) => `${protocol}\u0000${direction}`;
  new Counter({
    name: 'mailfront_relayed_bytes_total',
    help: 'Bytes relayed after login, by protocol and direction (client_to_backend, backend_to_client); live sessions included.',
    labelNames: ['protocol', 'direction'],
    registers: [register],
    collect() {
      const totals = new Map(endedBytes);
      for (const s of src.registry.list()) {
        for (const d of Object.keys(DIRECTIONS) as Direction[]) {
          const k = bytesKey(s.protocol, d);
          totals.set(k, (totals.get(k) ?? 0) + s[DIRECTIONS[d]]);
        }
      }
      for (const [k, total] of totals) {
        const [protocol, direction] = k.split('\u0000') as [string, Direction];
        // A live session's count only grows, and moves to the ended count with its final value.
        const delta = total - (reportedBytes.get(k) ?? 0);
        if (delta > 0) {
          this.inc({ protocol, direction }, delta);
          reportedBytes.set(k, total);
        } else if (!reportedBytes.has(k)) {
          this.inc({ protocol, direction }, 0);
          reportedBytes.set(k, 0);
        }
      }
    },
  });

  new Gauge({
    name: 'mailfront_connections',
    help: 'Client sessions open now, by protocol and phase (pre-login, starttls, login, relay).',
    labelNames: ['protocol', 'phase'],
    registers: [register],
    collect() {
      this.reset();
      for (const p of src.protocols) for (const phase of ['pre-login', 'relay']) this.set({ protocol: p, phase }, 0);
      for (const s of src.registry.list()) this.inc({ protocol: s.protocol, phase: s.phase });
    },
  });
  new Gauge({
    name: 'mailfront_backend_sessions',
    help: 'Sessions logged in (or logging in) to each backend now, by protocol.',
    labelNames: ['backend', 'protocol'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of src.registry.list()) if (s.backend !== null) this.inc({ backend: s.backend, protocol: s.protocol });
    },
  });
  new Gauge({
    name: 'mailfront_penalties_active',
    help: 'Client address blocks and user names refused now after failed logins.',
    registers: [register],
    collect() {
      this.set(src.penalties()?.active() ?? 0);
    },
  });

  {
    const status = src.backendStatus;
    new Gauge({
      name: 'mailfront_backend_up',
      help: "1 when the backend's last active check for the protocol succeeded, 0 when it failed (no series before the first check).",
      labelNames: ['backend', 'protocol'],
      registers: [register],
      async collect() {
        this.reset();
        for (const h of healthRows(await status())) {
          if (h.probe === 'up' || h.probe === 'down') this.set({ backend: h.backend, protocol: h.protocol }, h.probe === 'up' ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'mailfront_backend_breaker',
      help: 'The circuit breaker of each backend and protocol: 1 for its current state (closed, open, half-open), 0 for the others.',
      labelNames: ['backend', 'protocol', 'state'],
      registers: [register],
      async collect() {
        this.reset();
        for (const h of healthRows(await status())) {
          if (!h.breaker) continue;
          for (const state of BREAKER_STATES) this.set({ backend: h.backend, protocol: h.protocol, state }, state === h.breaker ? 1 : 0);
        }
      },
    });
  }

  for (const p of src.protocols) {
    logins.inc({ protocol: p, result: 'ok', kind: 'none' }, 0);
    logins.inc({ protocol: p, result: 'failed', kind: 'auth-failed' }, 0);
  }

  return {
    register,
    events: {
      onLogin(e: LoginEvent) {
        const result = loginResult(e);
        logins.inc({ protocol: e.protocol, result, kind: e.failure ?? 'none' });
        loginSeconds.observe({ protocol: e.protocol, result }, e.durationMs / 1000);
      },
      onSessionEnd(e: SessionEndEvent) {
        ended.inc({ protocol: e.protocol, end: e.end });
        for (const d of Object.keys(DIRECTIONS) as Direction[]) {
          const k = bytesKey(e.protocol, d);
          endedBytes.set(k, (endedBytes.get(k) ?? 0) + e[DIRECTIONS[d]]);
        }
      },
    },
  };
}

interface HealthRow {
  backend: string;
  protocol: string;
  probe: string | null;
  breaker: string | null;
}

/**
 * The rows of whatever backendStatus() returns: a list of backends (or
 * `{ backends: [...] }`), each with a `name` and a `health` (or `protocols`)
 * list of `{ protocol, probe, breaker }`. Anything else is skipped: a
 * scrape must not fail over a shape it does not know.
 */
export function healthRows(status: unknown): HealthRow[] {
  const list = Array.isArray(status) ? status : (status as { backends?: unknown } | null)?.backends;
  if (!Array.isArray(list)) return [];
  const out: HealthRow[] = [];
  for (const b of list as Array<Record<string, unknown>>) {
    const name = typeof b?.name === 'string' ? b.name : typeof b?.backend === 'string' ? b.backend : null;
    const rows = Array.isArray(b?.health) ? b.health : Array.isArray(b?.protocols) ? b.protocols : null;
    if (name === null || rows === null) continue;
    for (const h of rows as Array<Record<string, unknown>>) {
      if (typeof h?.protocol !== 'string') continue;
      out.push({
        backend: name,
        protocol: h.protocol,
        probe: typeof h.probe === 'string' ? h.probe : null,
        breaker: typeof h.breaker === 'string' ? h.breaker : null,
      });
    }
  }
  return out;
}

export interface MetricsServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** GET /metrics in Prometheus' text format; nothing else. */
export async function startMetricsServer(host: string, port: number, metrics: Metrics, log: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' }).end('GET only\n');
      return;
    }
    metrics.register.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.register.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (e: unknown) => {
        log.error({ err: e instanceof Error ? e.message : String(e) }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const a = server.address() as net.AddressInfo;
  log.info({ host: a.address, port: a.port }, 'metrics listening');
  return {
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
