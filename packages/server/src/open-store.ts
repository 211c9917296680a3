import { openPostgresStore, openSqliteStore, type Store } from '@mailfront/store';
import type { MailfrontConfig } from './config';

/**
 * Open the store the configuration names. The one place that maps
 * `store.kind` to an implementation, so the server and the CLI always open
 * the same database. Async because a PostgreSQL store connects and migrates
 * before it is returned. Rejects with StoreError 'unavailable' if it cannot
 * be opened, 'invalid' if its schema is newer than this code.
 */
export async function openStoreFromConfig(config: Pick<MailfrontConfig, 'store'>): Promise<Store> {
  const s = config.store;
  switch (s.kind) {
    case 'sqlite':
      return openSqliteStore(s.path);
    case 'postgres':
      return openPostgresStore({
        host: s.host,
        port: s.port,
        database: s.database,
        user: s.user,
        ...(s.passwordFile !== null ? { passwordFile: s.passwordFile } : {}),
        ssl: s.ssl === false ? false : { ...(s.ssl.caFile !== null ? { caFile: s.ssl.caFile } : {}), insecure: s.ssl.insecure },
        poolSize: s.poolSize,
        connectTimeoutMs: s.connectTimeoutMs,
        statementTimeoutMs: s.statementTimeoutMs,
      });
    default: {
      const kind: never = s;
      throw new Error(`unsupported store kind ${String((kind as { kind: unknown }).kind)}`);
    }
  }
}
