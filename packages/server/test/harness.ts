import * as fs from 'node:fs';
import * as path from 'node:path';
import { hashPassword } from '@mailfront/auth';
import { createLogger } from '@mailfront/proxy-core';
import { openStoreFromConfig, startServer, validateConfig, type RunningServer } from '@mailfront/server';
import type { NewBackend, Store } from '@mailfront/store';
import { auditLogFile, makeTempDir, newBackend, recordSecrets, type TempDir } from '@mailfront/testkit';

export interface MailfrontUnderTest {
  server: RunningServer;
  store: Store;
  dir: TempDir;
  /** Port of the first listener with this protocol and TLS mode. */
  port(protocol: string, tls: 'starttls' | 'implicit' | 'none'): number;
  /** mailfront's own (self-signed) certificate, to trust as a CA in clients. */
  certPem: string;
  logFile: string;
  readLog(): string;
  /** The first log line matching, waiting for the asynchronous log file to catch up. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface MailfrontOptions {
  backends: Array<Partial<NewBackend> & { name: string; host: string }>;
  users: Array<{ name: string; password: string; backend?: string }>;
  /** Raw config merged over the test defaults (validated like a config file); its `store` section picks the store. */
  config?: Record<string, unknown>;
  /** Use this store (shared with another node, say) instead of opening the configured one; stop() leaves it open. */
  store?: Store;
}

/** mailfront in-process with its own store (SQLite unless configured or given), log file and self-signed certificate. */
export async function startMailfront(opts: MailfrontOptions): Promise<MailfrontUnderTest> {
  const dir = await makeTempDir('mailfront-e2e-');
  // Under `pnpm test`, the log outlives the test: the run's secrets audit reads it.
  const logFile = auditLogFile(path.basename(expect.getState().testPath ?? 'mailfront')) ?? path.join(dir.path, 'mailfront.log');
  recordSecrets([
    ...opts.users,
    ...opts.backends.flatMap((b) => (b.masterPassword ? [{ name: b.masterUser ?? b.name, password: b.masterPassword }] : [])),
  ]);
  const config = validateConfig(
    {
      dataDir: path.join(dir.path, 'var'),
      hostname: 'localhost',
      listeners: [
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'starttls' },
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
      ],
      auth: { failureDelayMs: 200 },
      log: { level: 'debug' },
      // Checks every 10 s would open the breakers of the suites' deliberately
      // dead backends part-way through a suite, turning their connect failures
      // into fast breaker refusals; backend-faults.e2e configures its own.
      health: { intervalMs: 600_000 },
      ...opts.config,
    },
    { baseDir: dir.path },
  );
  const store = opts.store ?? (await openStoreFromConfig(config));
  for (const b of opts.backends) await store.addBackend(newBackend(b));
  for (const u of opts.users) {
    await store.addUser(u.name, await hashPassword(u.password));
    if (u.backend) await store.setPlacement(u.name, u.backend, 'assigned');
  }
  const logStream = fs.createWriteStream(logFile);
  const logger = createLogger({ level: 'debug', destination: logStream });
  const server = await startServer(config, { store, logger });
  const certPem = fs.readFileSync(config.tls?.cert ?? path.join(config.dataDir, 'tls', 'selfsigned-cert.pem'), 'utf8');
  return {
    server,
    store,
    dir,
    certPem,
    logFile,
    readLog: () => fs.readFileSync(logFile, 'utf8'),
    async waitForLog(pattern, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = fs.readFileSync(logFile, 'utf8').split('\n').find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (Date.now() > deadline) throw new Error(`no mailfront log line matching ${pattern}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    port(protocol, tls) {
      const l = server.listeners.find((x) => x.protocol === protocol && x.tls === tls);
      if (!l) throw new Error(`no ${protocol}/${tls} listener`);
      return l.port;
    },
    async stop() {
      // No grace: a test's sessions are over or abandoned when it stops.
      await server.close({ graceMs: 0 });
      if (!opts.store) await store.close();
      await new Promise((r) => logStream.end(r));
      await dir.cleanup();
    },
  };
}
