import Database from 'better-sqlite3';
import { StoreError } from '@mailfront/store';
import { migrate } from '../src/sqlite/migrate';
import { MIGRATIONS } from '../src/migrations';

describe('migrate', () => {
  let db: Database.Database;
  beforeEach(() => {
    db = new Database(':memory:');
  });
  afterEach(() => db.close());

  const extra = { version: 2, name: 'add-notes', sql: 'CREATE TABLE notes (id INTEGER PRIMARY KEY) STRICT' };

  test('applies pending migrations in order, once', () => {
    expect(migrate(db, MIGRATIONS)).toEqual([1]);
    expect(migrate(db, MIGRATIONS)).toEqual([]);
    expect(migrate(db, [...MIGRATIONS, extra])).toEqual([2]);
    expect(db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all()).toEqual([1, 2]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'notes'").pluck().get()).toBe('notes');
  });

  test('a failing migration leaves nothing half-applied', () => {
    migrate(db, MIGRATIONS);
    const broken = { version: 2, name: 'broken', sql: 'CREATE TABLE half (id INTEGER); THIS IS NOT SQL' };
    expect(() => migrate(db, [...MIGRATIONS, broken])).toThrow();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(1);
  });

  test('refuses gaps and reordering', () => {
    expect(() => migrate(db, [extra])).toThrow(StoreError);
    expect(() => migrate(db, [extra, ...MIGRATIONS])).toThrow(/numbered/);
    // Nothing was touched.
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'").get()).toBeUndefined();
  });
});
