export * from './types';
export { openSqliteStore } from './sqlite/sqlite-store';
export type { SqliteStoreOptions } from './sqlite/sqlite-store';
