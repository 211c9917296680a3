import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqliteStore } from '@mailfront/store';
import type { Store } from '@mailfront/store';
import { backend, describeStoreContract, exited, nextLine, startChild, type StoreHarness } from './contract';

let dir: string;
const file = () => path.join(dir, 'state.db');

/** Runs `fn` on a second, raw connection to the test's file. */
function raw<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(file());
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const sqlite: StoreHarness = {
  kind: 'sqlite',
  async fresh() {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-store-'));
  },
  async cleanup() {
    fs.rmSync(dir, { recursive: true, force: true });
  },
  async open(opts = {}) {
    return openSqliteStore(file(), opts.shortLockTimeout ? { busyTimeoutMs: 0 } : {});
  },
  async exec(sql) {
    raw((db) => db.exec(sql));
  },
  async query(sql) {
    return raw((db) => db.prepare(sql).all() as Array<Record<string, unknown>>);
  },
  async holdWriteLock(releaseAfterMs) {
    // Another process: better-sqlite3 waits for a lock synchronously, so a
    // holder in this process could never release while the store waits.
    const holder = startChild('hold-lock.js', [file(), ...(releaseAfterMs === undefined ? [] : [String(releaseAfterMs)])]);
    expect(await nextLine(holder)).toBe('locked');
    return {
      async release() {
        // It may be exiting by itself already (releaseAfterMs): then the pipe is gone.
        holder.stdin.on('error', () => undefined);
        if (holder.exitCode === null) holder.stdin.write('release\n');
        expect(await exited(holder)).toBe(0);
      },
    };
  },
  lockTimeoutMessage: /locked|busy/i,
  childArgs: () => ['sqlite', file()],
};

describeStoreContract(sqlite);

describe('SQLite store only', () => {
  const opened: Store[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });
  function openStore(f: string): Store {
    const s = openSqliteStore(f);
    opened.push(s);
    return s;
  }

  test('creates missing parent directories and a 0600 file in WAL mode', async () => {
    const f = path.join(dir, 'a', 'b', 'state.db');
    const s = openStore(f);
    await s.addBackend(backend('b1')); // forces the WAL and shared-memory files into existence
    for (const x of [f, `${f}-wal`, `${f}-shm`]) {
      expect((fs.statSync(x).mode & 0o777).toString(8)).toBe('600');
    }
    const db = new Database(f, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  test('tightens an existing world-readable file to 0600', () => {
    fs.writeFileSync(file(), '');
    fs.chmodSync(file(), 0o644);
    openStore(file());
    expect((fs.statSync(file()).mode & 0o777).toString(8)).toBe('600');
  });

  test("':memory:' opens a private database and touches no file", async () => {
    const a = openStore(':memory:');
    const b = openStore(':memory:');
    await a.addBackend(backend('b1'));
    expect(await b.listBackends()).toEqual([]);
    expect(fs.existsSync(path.resolve(':memory:'))).toBe(false);
  });

  test('opening is synchronous: a newer schema throws at once', () => {
    openStore(file());
    raw((db) => db.prepare("INSERT INTO schema_migrations VALUES (99, 'future', 'now')").run());
    expect(() => openSqliteStore(file())).toThrow(expect.objectContaining({ code: 'invalid' }));
  });

  test('a file that is not a database is unavailable, not a crash', () => {
    fs.writeFileSync(file(), 'this is not sqlite, just some text that is long enough to be read as a header'.repeat(20));
    expect(() => openSqliteStore(file())).toThrow(expect.objectContaining({ code: 'unavailable' }));
  });
});
