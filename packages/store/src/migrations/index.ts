import { StoreError } from '../types';
import * as m001 from './001-initial';
import * as m002 from './002-standby-proxy-protocol';

export interface Migration {
  /** Applied in increasing order; recorded in schema_migrations. */
  version: number;
  name: string;
  sql: string;
}

/**
 * Every migration, oldest first. A new one is a new numbered file added at the
 * end here; an applied migration is never edited, since databases already
 * past it would not see the change.
 */
export const MIGRATIONS: readonly Migration[] = [m001, m002];

/** A gap or a repeat in the numbering is a packaging mistake: refuse before touching the database. */
export function checkMigrationOrder(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StoreError('invalid', `migration #${i + 1} is numbered ${m.version}; migrations must be numbered 1, 2, 3, … in order`);
    }
  });
}
