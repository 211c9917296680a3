import { openSqliteStore, type Store } from '@mailfront/store';
import type { MailfrontConfig } from './config';

/**
 * Open the store the configuration names. The one place that maps
 * `store.kind` to an implementation, so the server and the CLI always open
 * the same database. Throws StoreError 'unavailable' if it cannot be opened.
 */
export function openStoreFromConfig(config: Pick<MailfrontConfig, 'store'>): Store {
  switch (config.store.kind) {
    case 'sqlite':
      return openSqliteStore(config.store.path);
    default: {
      const kind: never = config.store.kind;
      throw new Error(`unsupported store kind ${String(kind)}`);
    }
  }
}
