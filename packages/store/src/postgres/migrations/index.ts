import type { Migration } from '../../migrations';
import * as m001 from './001-initial';
import * as m002 from './002-standby-proxy-protocol';

/**
 * The PostgreSQL store's migrations, oldest first: one for each of the
 * SQLite store's, with the same number and name (a test checks), so that
 * both stores have the same schema at every version. Never edit an applied one.
 */
export const PG_MIGRATIONS: readonly Migration[] = [m001, m002];
