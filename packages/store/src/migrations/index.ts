import * as m001 from './001-initial';

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
export const MIGRATIONS: readonly Migration[] = [m001];
