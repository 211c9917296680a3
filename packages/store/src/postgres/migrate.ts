import type { ClientBase } from 'pg';
import { checkMigrationOrder, type Migration } from '../migrations';
import { StoreError } from '../types';

/**
 * The advisory lock that serialises migrations, per database: ASCII
 * "mfmigrat" as a bigint. Any fixed number would do; this one is unlikely to
 * be another application's.
 */
export const MIGRATION_LOCK_KEY = BigInt('0x6d666d6967726174').toString();

/**
 * Bring the schema up to date, in one transaction holding a transaction-level
 * advisory lock: nodes starting at once queue on the lock, the first applies
 * what is pending, the others then find nothing to do. Without the lock two
 * of them could both see an empty schema_migrations and both run
 * CREATE TABLE. DDL is transactional in PostgreSQL, so a failing migration
 * leaves nothing half-applied, and the lock ends with the transaction even if
 * the node dies. Returns the versions it applied.
 */
export async function migratePostgres(client: ClientBase, migrations: readonly Migration[]): Promise<number[]> {
  checkMigrationOrder(migrations);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER     NOT NULL PRIMARY KEY,
      name       TEXT        NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL
    )`);
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const known = new Set(migrations.map((m) => m.version));
    const unknown = [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b);
    if (unknown.length > 0) {
      // Written by a newer mailfront: running old code on it could corrupt it.
      throw new StoreError(
        'invalid',
        `database has schema migrations this version does not know (${unknown.join(', ')}); upgrade mailfront`,
      );
    }
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, new Date()]);
      done.push(m.version);
    }
    await client.query('COMMIT');
    return done;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
