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

  const all = MIGRATIONS.map((m) => m.version);
  const next = MIGRATIONS.length + 1;
  const extra = { version: next, name: 'add-notes', sql: 'CREATE TABLE notes (id INTEGER PRIMARY KEY) STRICT' };

  test('applies pending migrations in order, once', () => {
    expect(migrate(db, MIGRATIONS)).toEqual(all);
    expect(migrate(db, MIGRATIONS)).toEqual([]);
    expect(migrate(db, [...MIGRATIONS, extra])).toEqual([next]);
    expect(db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all()).toEqual([...all, next]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'notes'").pluck().get()).toBe('notes');
  });

  test('a failing migration leaves nothing half-applied', () => {
    migrate(db, MIGRATIONS);
    const broken = { version: next, name: 'broken', sql: 'CREATE TABLE half (id INTEGER); THIS IS NOT SQL' };
    expect(() => migrate(db, [...MIGRATIONS, broken])).toThrow();
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(next - 1);
  });

  test('refuses gaps and reordering', () => {
    expect(() => migrate(db, [extra])).toThrow(StoreError);
    expect(() => migrate(db, [extra, ...MIGRATIONS])).toThrow(/numbered/);
    // Nothing was touched.
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'").get()).toBeUndefined();
  });

  test('002 on a database with backends: no standby, no PROXY header; then standby and the not-self check work', () => {
    migrate(db, MIGRATIONS.slice(0, 1));
    db.exec(`INSERT INTO backends (name, host, tls, login, created_at) VALUES ('a', 'h', 'none', 'passthrough', 'now'), ('b', 'h', 'none', 'passthrough', 'now')`);
    expect(migrate(db, MIGRATIONS)).toEqual([2]);
    db.pragma('foreign_keys = ON');
    expect(db.prepare('SELECT name, standby, proxy_protocol FROM backends ORDER BY name').all()).toEqual([
      { name: 'a', standby: null, proxy_protocol: 0 },
      { name: 'b', standby: null, proxy_protocol: 0 },
    ]);
    db.exec(`UPDATE backends SET standby = 'b' WHERE name = 'a'`);
    expect(() => db.exec(`UPDATE backends SET standby = 'b' WHERE name = 'b'`)).toThrow(/CHECK/);
    expect(() => db.exec(`UPDATE backends SET standby = 'nope' WHERE name = 'b'`)).toThrow(/FOREIGN KEY/);
    db.exec(`DELETE FROM backends WHERE name = 'b'`);
    expect(db.prepare("SELECT standby FROM backends WHERE name = 'a'").pluck().get()).toBeNull();
  });
});
