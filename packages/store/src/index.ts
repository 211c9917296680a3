export * from './types';
export { openSqliteStore } from './sqlite/sqlite-store';
export type { SqliteStoreOptions } from './sqlite/sqlite-store';
export { openPostgresStore, POSTGRES_STORE_DEFAULTS } from './postgres/postgres-store';
export type { PostgresStoreOptions } from './postgres/postgres-store';
