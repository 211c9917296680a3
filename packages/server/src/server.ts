import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import { BlockList, isIPv6 } from 'node:net';
import * as path from 'node:path';
import { imapProtocol } from '@mailfront/imap';
import { checkSubmissionBackends, submissionProtocol } from '@mailfront/submission';
import { pop3Protocol } from '@mailfront/pop3';
import {
  createListener,
  ConnectionGate,
  createLogger,
  PenaltyBox,
  QUIET_MS,
  reloadBackendCas,
  SessionRegistry,
  sniTlsProvider,
  type ClientTlsProvider,
  type Listener,
  type Logger,
  type ProtocolDescriptor,
  type ProxyServices,
} from '@mailfront/proxy-core';
import type { Protocol, Store } from '@mailfront/store';
import { ensureSelfSigned } from './certs';
import type { MailfrontConfig } from './config';
import { buildAccessServices } from './directory';
import { createBackendHealth, type BackendStatus } from './backend-health';
import { openStoreFromConfig } from './open-store';
import { createOperations, type OperationsInfo } from './operations';

export interface StartOptions {
  logger?: Logger;
  /** Use this store instead of opening the configured one (tests); it is not closed by close(). */
  store?: Store;
}

export interface RunningServer {
  listeners: Array<{ protocol: string; host: string; port: number; tls: string }>;
  registry: SessionRegistry;
  log: Logger;
  /** Open client connections over all listeners, whatever their phase. */
  openConnections(): Promise<number>;
  /**
   * SIGHUP: apply a new, already validated config to the running server.
   * Certificates, limits, penalties, PROXY networks and the log level change
   * at once (for new connections and logins; live sessions are untouched);
   * what needs new sockets or a new store is reported, not applied.
   */
  reload(config: MailfrontConfig): ReloadResult;
  /**
   * Each backend as this node sees it: state, standby, health and breaker per
   * protocol (as of the last check round), live sessions.
   */
  backendStatus(): BackendStatus[];
  /** backendStatus() after reading the backends from the store again: what `mailfront backend status` shows. */
  backendStatusNow(): Promise<BackendStatus[]>;
  /** Where the admin API, metrics and autoconfig listen (docs/operations.md). */
  operations: OperationsInfo;
  /** Stop accepting, give live sessions `graceMs` to end, then close them politely. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/**
 * submission.extensions are promised to clients on the backends' behalf: say at
 * start which backend would break that promise (each login checks it again
 * after AUTH and refuses the session).
 */
async function checkSubmissionAtStart(config: MailfrontConfig, store: Store, log: Logger, signal: AbortSignal): Promise<void> {
  try {
    const results = await checkSubmissionBackends(await store.listBackends(), {
      hostname: config.hostname,
      policy: { extensions: config.submission.extensions, maxMessageBytes: config.submission.maxMessageBytes },
      connectTimeoutMs: config.limits.backendConnectTimeoutMs,
      timeoutMs: config.limits.backendLoginTimeoutMs,
      maxLineBytes: config.limits.backendMaxLineBytes,
      signal,
    });
    for (const r of results) {
      if (r.error) log.warn({ backend: r.backend, err: r.error }, 'submission backend not checked');
      else if (r.missing.length) log.error({ backend: r.backend, missing: r.missing }, 'submission backend lacks what clients are told; its logins will fail');
      else log.info({ backend: r.backend }, 'submission backend offers every advertised extension');
    }
  } catch (e) {
    log.warn({ err: e instanceof Error ? e.message : String(e) }, 'submission backend check failed');
  }
}

function descriptorFor(protocol: Protocol, config: MailfrontConfig): ProtocolDescriptor {
  switch (protocol) {
    case 'imap':
      return imapProtocol(config.imap) as ProtocolDescriptor;
    case 'pop3':
      return pop3Protocol(config.pop3) as ProtocolDescriptor;
    case 'submission':
      // The SMTP greeting, EHLO reply and our EHLO to backends use the configured host name.
      return submissionProtocol({ hostname: config.hostname, ...config.submission }) as ProtocolDescriptor;
  }
}

export interface ReloadResult {
  applied: string[];
  /** Top-level keys that changed but take effect only after a restart. */
  needsRestart: string[];
}

/** Keys whose change needs new listeners, a new store or new protocol descriptors. */
const RESTART_KEYS = ['dataDir', 'store', 'listeners', 'auth', 'ldap', 'imap', 'pop3', 'submission', 'hostname', 'admin', 'metrics', 'autoconfig'] as const;

function reloadInPlace(
  old: MailfrontConfig,
  next: MailfrontConfig,
  svc: ProxyServices,
  proxyPolicy: { trusted: BlockList; headerTimeoutMs: number },
  log: Logger,
): ReloadResult {
  const applied: string[] = [];
  const changed = (k: keyof MailfrontConfig) => JSON.stringify(old[k]) !== JSON.stringify(next[k]);
  // Certificates are re-read even when the paths did not change: renewal replaces the files.
  svc.tls = clientTls(next, log).provider;
  applied.push('tls');
  reloadBackendCas();
  svc.limits = Object.freeze({ ...next.limits, authFailureDelayMs: next.auth.failureDelayMs });
  svc.connections?.setLimits(next.limits);
  if (changed('limits') || old.auth.failureDelayMs !== next.auth.failureDelayMs) applied.push('limits');
  if (changed('penalties')) {
    svc.penalties?.configure({ ...next.penalties, trusted: blockList(next.penalties.trustedNetworks) });
    applied.push('penalties');
  }
  if (changed('proxyProtocol')) {
    proxyPolicy.trusted = blockList(next.proxyProtocol.trustedNetworks);
    proxyPolicy.headerTimeoutMs = next.proxyProtocol.headerTimeoutMs;
    applied.push('proxyProtocol');
  }
  if (changed('log')) {
    log.level = next.log.level;
    applied.push('log');
  }
  const needsRestart: string[] = RESTART_KEYS.filter((k) => k !== 'auth' && k in next && changed(k));
  // auth.failureDelayMs is applied above (limits); the rest of auth builds the authenticator.
  const authRest = (c: MailfrontConfig) => JSON.stringify({ ...c.auth, failureDelayMs: 0 });
  if (authRest(old) !== authRest(next)) needsRestart.push('auth');
  return { applied, needsRestart };
}

/** CIDRs (validated by the config) as a BlockList. */
function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const n of cidrs) {
    const [addr, bits] = n.split('/') as [string, string];
    list.addSubnet(addr, Number(bits), isIPv6(addr) ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** Certificate files from config, or a self-signed pair made (once) in <dataDir>/tls. */
/**
 * What clients are shown: the default certificate and, with tls.sni, one per
 * server name. Files are read on every call, so that a reload picks up
 * renewed certificates at the same paths.
 */
function clientTls(config: MailfrontConfig, log: Logger): { provider: ClientTlsProvider; source: string } {
  const def = clientCertificate(config, log);
  const t = config.tls;
  const provider = sniTlsProvider({
    default: def,
    names: (t?.sni ?? []).map((e) => ({ names: e.names, cert: fs.readFileSync(e.cert), key: fs.readFileSync(e.key) })),
    strict: t?.strictSni ?? false,
    minVersion: t?.minVersion ?? 'TLSv1.2',
  });
  return { provider, source: def.source };
}

function clientCertificate(config: MailfrontConfig, log: Logger): { cert: Buffer; key: Buffer; source: string } {
  if (config.tls) {
    return { cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key), source: config.tls.cert };
  }
  const dir = path.join(config.dataDir, 'tls');
  const made = ensureSelfSigned(dir, config.hostname);
  if (made.created) log.warn({ cert: made.certFile, hostname: config.hostname }, 'generated a self-signed certificate; configure tls.cert/tls.key for production');
  return { cert: fs.readFileSync(made.certFile), key: fs.readFileSync(made.keyFile), source: made.certFile };
}

export async function startServer(config: MailfrontConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.logger ?? createLogger({ level: config.log.level, format: config.log.format });
  const store = opts.store ?? (await openStoreFromConfig(config));
  const ownStore = !opts.store;
  const cert = clientTls(config, log);
  const registry = new SessionRegistry();
  // auth.source and the ldap section decide who may log in and where they go.
  const access = buildAccessServices(config, store);
  // Active checks start now; breakers route logins around down or draining backends.
  const health = createBackendHealth(config, store, registry, log);
  // Admin API, user moves, metrics, autoconfig (operations.ts).
  const ops = createOperations({ config, registry, store, log, limits: () => svc.limits, tls: () => svc.tls, penalties: () => svc.penalties });
  const svc: ProxyServices = {
    auth: access.auth,
    locator: health.locator(access.locator),
    onBackendResult: health.onBackendResult,
    log,
    limits: Object.freeze({ ...config.limits, authFailureDelayMs: config.auth.failureDelayMs }),
    registry,
    tls: cert.provider,
    penalties: new PenaltyBox({ ...config.penalties, trusted: blockList(config.penalties.trustedNetworks) }),
    connections: new ConnectionGate(config.limits),
  };

  // One object shared by every PROXY listener, so that a reload reaches them all.
  const proxyPolicy = { trusted: blockList(config.proxyProtocol.trustedNetworks), headerTimeoutMs: config.proxyProtocol.headerTimeoutMs };
  let current = config;

  // Outermost, so a user being moved is held before anything else decides; the sink hears every login.
  svc.locator = ops.wrapLocator(svc.locator);
  svc.events = ops.events;

  const listeners: Listener[] = [];
  try {
    for (const l of config.listeners) {
      const listener = createListener(
        { host: l.host, port: l.port, tls: l.tls, allowPlaintextAuth: l.allowPlaintextAuth, proxyProtocol: l.proxyProtocol ? proxyPolicy : null },
        descriptorFor(l.protocol, config),
        svc,
      );
      await listener.listen();
      listeners.push(listener);
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    access.close();
    await health.close();
    if (ownStore) await store.close();
    throw e;
  }

  const bound = listeners.map((l) => {
    const a = l.address();
    return { protocol: l.protocol, host: a.address, port: a.port, tls: l.spec.tls };
  });
  for (const b of bound) log.info({ protocol: b.protocol, host: b.host, port: b.port, tls: b.tls }, 'listening');
  log.info({ store: store.kind, cert: cert.source }, 'mailfront started');
  const startChecks = new AbortController();
  // One listener per backend checked at start: many backends are not a leak.
  setMaxListeners(0, startChecks.signal);
  const checking = config.listeners.some((l) => l.protocol === 'submission')
    ? checkSubmissionAtStart(config, store, log, startChecks.signal)
    : Promise.resolve();

  let closing: Promise<void> | undefined;
  const running: RunningServer = {
    listeners: bound,
    operations: { admin: { socket: null, http: null }, metrics: null, autoconfig: null },
    registry,
    log,
    openConnections: async () => (await Promise.all(listeners.map((l) => l.connections()))).reduce((a, b) => a + b, 0),
    backendStatus: () => health.status(),
    backendStatusNow: () => health.statusNow(),
    reload(next: MailfrontConfig): ReloadResult {
      const result = reloadInPlace(current, next, svc, proxyPolicy, log);
      if (JSON.stringify(current.health) !== JSON.stringify(next.health)) {
        // Thresholds apply to the next result, timings from the next round; breakers keep their state.
        health.configure(next.health, next.limits.backendMaxLineBytes);
        result.applied.push('health');
      }
      current = next;
      return result;
    },
    close(closeOpts = {}) {
      closing ??= (async () => {
        const stopAccepting = Promise.all(listeners.map((l) => l.close()));
        const stopOperations = ops.close();
        const graceMs = closeOpts.graceMs ?? current.limits.shutdownGraceMs;
        const deadline = Date.now() + graceMs;
        // Sessions end by themselves meanwhile; one that is quiet (between
        // commands, idling) is closed politely now rather than at the deadline,
        // and one in the middle of a transfer is left to finish it.
        while (registry.size > 0 && Date.now() < deadline) {
          for (const id of registry.ids()) {
            const s = registry.get(id);
            if (s && s.quietForMs() >= QUIET_MS) s.close('shutdown');
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        registry.closeAll('shutdown');
        // Let the goodbyes flush before the store goes away.
        const until = Date.now() + 2_000;
        while (registry.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        startChecks.abort();
        await checking;
        await health.close();
        await stopAccepting;
        access.close();
        if (ownStore) await store.close();
        await stopOperations;
        log.info('mailfront stopped');
      })();
      return closing;
    },
  };
  try {
    const backendStatus = (running as { backendStatus?: () => unknown }).backendStatus;
    running.operations = await ops.start({
      listeners: bound,
      backendStatus: backendStatus && (() => backendStatus.call(running)),
      backendStatusNow: running.backendStatusNow,
    });
  } catch (e) {
    await running.close({ graceMs: 0 });
    throw e;
  }
  return running;
}
