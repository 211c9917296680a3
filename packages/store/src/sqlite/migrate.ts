import type Database from 'better-sqlite3';
import { StoreError } from '../types';
import { checkMigrationOrder, type Migration } from '../migrations';

/**
 * Bring the schema up to date. Runs in one IMMEDIATE transaction so that two
 * processes opening a fresh file at once cannot both apply the same
 * migration: the second waits on the write lock, then finds nothing to do.
 * Returns the versions it applied.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[]): number[] {
  checkMigrationOrder(migrations);
  const apply = db.transaction((): number[] => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER NOT NULL PRIMARY KEY,
      name       TEXT    NOT NULL,
      applied_at TEXT    NOT NULL
    ) STRICT`);
    const applied = new Set(
      db
        .prepare<[], number>('SELECT version FROM schema_migrations')
        .pluck()
        .all(),
    );
    const known = new Set(migrations.map((m) => m.version));
    const unknown = [...applied].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      // Written by a newer mailfront: running old code on it could corrupt it.
      throw new StoreError(
        'invalid',
        `database has schema migrations this version does not know (${unknown.join(', ')}); upgrade mailfront`,
      );
    }
    const record = db.prepare<[number, string, string]>(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
    );
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, new Date().toISOString());
      done.push(m.version);
    }
    return done;
  });
  return apply.immediate();
}
