import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqliteStore, StoreError } from '@mailfront/store';
import type { NewBackend, Store } from '@mailfront/store';

let dir: string;
const open: Store[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-store-'));
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function openStore(file = path.join(dir, 'state.db'), opts?: { busyTimeoutMs?: number }): Store {
  const s = openSqliteStore(file, opts);
  open.push(s);
  return s;
}

function backend(name: string, over: Partial<NewBackend> = {}): NewBackend {
  return {
    name,
    host: `${name}.example.net`,
    ports: { imap: 143, pop3: 110, submission: 587 },
    tls: 'starttls',
    caFile: null,
    insecure: false,
    trusted: false,
    login: 'passthrough',
    masterUser: null,
    masterPassword: null,
    ...over,
  };
}

async function expectStoreError(p: Promise<unknown>, code: StoreError['code']): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  return err as StoreError;
}

function startChild(script: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [path.join(__dirname, 'fixtures', script), ...args], { stdio: 'pipe' });
}

/** Resolves with the child's next stdout line. */
function nextLine(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let stderr = '';
    const onErr = (d: Buffer) => (stderr += d.toString());
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        child.stdout.off('data', onData);
        child.stderr.off('data', onErr);
        child.off('exit', onExit);
        resolve(buf.slice(0, nl));
      }
    };
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) early: ${stderr}`));
    child.stdout.on('data', onData);
    child.stderr.on('data', onErr);
    child.once('exit', onExit);
  });
}

function exited(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', resolve);
  });
}

describe('opening', () => {
  test('creates missing parent directories and a 0600 file in WAL mode', async () => {
    const file = path.join(dir, 'a', 'b', 'state.db');
    const s = openStore(file);
    await s.addBackend(backend('b1')); // forces the WAL and shared-memory files into existence
    expect(s.kind).toBe('sqlite');
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      expect((fs.statSync(f).mode & 0o777).toString(8)).toBe('600');
    }
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  test('tightens an existing world-readable file to 0600', () => {
    const file = path.join(dir, 'state.db');
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o644);
    openStore(file);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');
  });

  test("':memory:' opens a private database and touches no file", async () => {
    const a = openStore(':memory:');
    const b = openStore(':memory:');
    await a.addBackend(backend('b1'));
    expect(await b.listBackends()).toEqual([]);
    expect(fs.existsSync(path.resolve(':memory:'))).toBe(false);
  });

  test('records migrations and does not re-run them on reopen', async () => {
    const file = path.join(dir, 'state.db');
    const s = openStore(file);
    await s.addUser('alice', '$scrypt$x');
    await s.close();
    const again = openStore(file);
    expect(await again.getUser('alice')).toBeDefined();
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.prepare('SELECT version, name FROM schema_migrations').all()).toEqual([{ version: 1, name: 'initial' }]);
    } finally {
      raw.close();
    }
  });

  test('refuses a database migrated by a newer version', () => {
    const file = path.join(dir, 'state.db');
    openStore(file);
    const raw = new Database(file);
    raw.prepare("INSERT INTO schema_migrations VALUES (99, 'future', 'now')").run();
    raw.close();
    let err: unknown;
    try {
      openSqliteStore(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('invalid');
    expect((err as StoreError).message).toMatch(/99/);
  });

  test('a file that is not a database is unavailable, not a crash', () => {
    const file = path.join(dir, 'state.db');
    fs.writeFileSync(file, 'this is not sqlite, just some text that is long enough to be read as a header'.repeat(20));
    expect(() => openSqliteStore(file)).toThrow(expect.objectContaining({ code: 'unavailable' }));
  });

  test('the schema rejects values outside the enums even when the code is bypassed', () => {
    const file = path.join(dir, 'state.db');
    openStore(file);
    const raw = new Database(file);
    try {
      const insert = (tls: string, state: string) =>
        raw
          .prepare(
            `INSERT INTO backends (name, host, tls, login, state, created_at) VALUES ('x', 'h', ?, 'passthrough', ?, 'now')`,
          )
          .run(tls, state);
      expect(() => insert('ssl', 'active')).toThrow(/CHECK/);
      expect(() => insert('none', 'broken')).toThrow(/CHECK/);
      expect(() =>
        raw.prepare(`INSERT INTO backends (name, host, tls, login, created_at) VALUES ('y', 'h', 'none', 'master', 'now')`).run(),
      ).toThrow(/CHECK/);
      expect(() =>
        raw.prepare(`INSERT INTO placements VALUES ('u', 'nowhere', 'guessed', 'now')`).run(),
      ).toThrow(/CHECK/);
    } finally {
      raw.close();
    }
  });
});

describe('backends', () => {
  test('round-trips every field, camelCase out', async () => {
    const s = openStore();
    const added = await s.addBackend(
      backend('b1', {
        ports: { imap: 993, pop3: null, submission: 465 },
        tls: 'implicit',
        caFile: '/etc/ssl/backend-ca.pem',
        insecure: true,
        trusted: true,
        login: 'master',
        masterUser: 'proxy',
        masterPassword: 's3cret',
        state: 'draining',
      }),
    );
    expect(added).toEqual({
      name: 'b1',
      host: 'b1.example.net',
      ports: { imap: 993, pop3: null, submission: 465 },
      tls: 'implicit',
      caFile: '/etc/ssl/backend-ca.pem',
      insecure: true,
      trusted: true,
      login: 'master',
      masterUser: 'proxy',
      masterPassword: 's3cret',
      state: 'draining',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(await s.getBackend('b1')).toEqual(added);
    expect(await s.getBackend('B1')).toBeUndefined();
    const plain = await s.addBackend(backend('a0'));
    expect(plain.state).toBe('active');
    expect(plain.insecure).toBe(false);
    expect((await s.listBackends()).map((b) => b.name)).toEqual(['a0', 'b1']);
  });

  test("a taken name is 'exists'", async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await expectStoreError(s.addBackend(backend('b1', { host: 'other' })), 'exists');
    expect((await s.getBackend('b1'))?.host).toBe('b1.example.net');
  });

  test.each<[string, Partial<NewBackend>]>([
    ['empty name', { name: '' }],
    ['control char in name', { name: 'b\n1' }],
    ['port 0', { ports: { imap: 0, pop3: null, submission: null } }],
    ['port 65536', { ports: { imap: 65536, pop3: null, submission: null } }],
    ['fractional port', { ports: { imap: 143.5, pop3: null, submission: null } }],
    ['unknown tls mode', { tls: 'ssl' as never }],
    ['unknown login mode', { login: 'kerberos' as never }],
    ['master login without credentials', { login: 'master', masterUser: 'proxy', masterPassword: null }],
    ['unknown state', { state: 'down' as never }],
    ['host with a space', { host: 'a b' }],
  ])("%s is 'invalid'", async (_what, over) => {
    const s = openStore();
    await expectStoreError(s.addBackend(backend('x', over)), 'invalid');
    expect(await s.listBackends()).toEqual([]);
  });

  test('setBackendState', async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await s.setBackendState('b1', 'draining');
    expect((await s.getBackend('b1'))?.state).toBe('draining');
    await s.setBackendState('b1', 'active');
    expect((await s.getBackend('b1'))?.state).toBe('active');
    await expectStoreError(s.setBackendState('nope', 'draining'), 'not-found');
    await expectStoreError(s.setBackendState('b1', 'down' as never), 'invalid');
  });

  test("removeBackend: 'not-found', then 'in-use' while users are assigned, hashed placements dropped", async () => {
    const s = openStore();
    await expectStoreError(s.removeBackend('b1'), 'not-found');
    await s.addBackend(backend('b1'));
    await s.addBackend(backend('b2'));
    await s.setPlacement('assigned-user', 'b1', 'assigned');
    await s.placeIfAbsent('hashed-user', 'b1');
    await s.placeIfAbsent('elsewhere', 'b2');
    expect(await s.countPlacements('b1')).toEqual({ assigned: 1, hashed: 1 });

    const err = await expectStoreError(s.removeBackend('b1'), 'in-use');
    expect(err.message).toMatch(/1 assigned/);
    // Refusal changes nothing.
    expect(await s.getBackend('b1')).toBeDefined();
    expect(await s.countPlacements('b1')).toEqual({ assigned: 1, hashed: 1 });

    await s.removePlacement('assigned-user');
    await s.removeBackend('b1');
    expect(await s.getBackend('b1')).toBeUndefined();
    expect(await s.getPlacement('hashed-user')).toBeUndefined();
    expect((await s.getPlacement('elsewhere'))?.backend).toBe('b2');
  });

  test('removeBackend with force drops assigned placements too', async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await s.setPlacement('u1', 'b1', 'assigned');
    await s.placeIfAbsent('u2', 'b1');
    await s.removeBackend('b1', { force: true });
    expect(await s.getBackend('b1')).toBeUndefined();
    expect(await s.getPlacement('u1')).toBeUndefined();
    expect(await s.getPlacement('u2')).toBeUndefined();
    expect(await s.countPlacements('b1')).toEqual({ assigned: 0, hashed: 0 });
  });
});

describe('users', () => {
  test('add, get (exact name), list, change password', async () => {
    const s = openStore();
    const u = await s.addUser('alice', 'hash-1');
    expect(u).toEqual({ name: 'alice', passwordHash: 'hash-1', createdAt: expect.any(String), updatedAt: u.createdAt });
    expect(await s.getUser('alice')).toEqual(u);
    // The caller canonicalises; the store does not fold case.
    expect(await s.getUser('Alice')).toBeUndefined();
    await s.addUser('bob', 'hash-2');
    expect((await s.listUsers()).map((x) => x.name)).toEqual(['alice', 'bob']);

    await s.setUserPassword('alice', 'hash-3');
    const changed = await s.getUser('alice');
    expect(changed?.passwordHash).toBe('hash-3');
    expect(changed?.createdAt).toBe(u.createdAt);
    expect(changed!.updatedAt >= u.updatedAt).toBe(true);
  });

  test("'exists', 'not-found', 'invalid'", async () => {
    const s = openStore();
    await s.addUser('alice', 'h');
    await expectStoreError(s.addUser('alice', 'other'), 'exists');
    expect((await s.getUser('alice'))?.passwordHash).toBe('h');
    await expectStoreError(s.setUserPassword('bob', 'h'), 'not-found');
    await expectStoreError(s.removeUser('bob'), 'not-found');
    await expectStoreError(s.addUser('', 'h'), 'invalid');
    await expectStoreError(s.addUser('carol', ''), 'invalid');
  });

  test('removeUser removes the placement too', async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await s.addUser('alice', 'h');
    await s.addUser('bob', 'h');
    await s.placeIfAbsent('alice', 'b1');
    await s.placeIfAbsent('bob', 'b1');
    await s.removeUser('alice');
    expect(await s.getUser('alice')).toBeUndefined();
    expect(await s.getPlacement('alice')).toBeUndefined();
    expect(await s.getPlacement('bob')).toBeDefined();
  });
});

describe('placements', () => {
  test('setPlacement inserts and replaces; a missing backend is not-found', async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await s.addBackend(backend('b2'));
    expect(await s.setPlacement('alice', 'b1', 'hashed')).toEqual({
      user: 'alice',
      backend: 'b1',
      source: 'hashed',
      updatedAt: expect.any(String),
    });
    await s.setPlacement('alice', 'b2', 'assigned');
    expect(await s.getPlacement('alice')).toMatchObject({ backend: 'b2', source: 'assigned' });
    await expectStoreError(s.setPlacement('alice', 'gone', 'assigned'), 'not-found');
    expect(await s.getPlacement('alice')).toMatchObject({ backend: 'b2', source: 'assigned' });
    await expectStoreError(s.setPlacement('alice', 'b1', 'guessed' as never), 'invalid');
  });

  test('placeIfAbsent keeps what is stored', async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await s.addBackend(backend('b2'));
    expect(await s.placeIfAbsent('alice', 'b1')).toMatchObject({ user: 'alice', backend: 'b1', source: 'hashed' });
    expect(await s.placeIfAbsent('alice', 'b2')).toMatchObject({ backend: 'b1', source: 'hashed' });
    await s.setPlacement('bob', 'b2', 'assigned');
    expect(await s.placeIfAbsent('bob', 'b1')).toMatchObject({ backend: 'b2', source: 'assigned' });
    await expectStoreError(s.placeIfAbsent('carol', 'gone'), 'not-found');
    expect(await s.getPlacement('carol')).toBeUndefined();
  });

  test('removePlacement and countPlacements', async () => {
    const s = openStore();
    await s.addBackend(backend('b1'));
    await s.placeIfAbsent('u1', 'b1');
    await s.placeIfAbsent('u2', 'b1');
    await s.setPlacement('u3', 'b1', 'assigned');
    expect(await s.countPlacements('b1')).toEqual({ assigned: 1, hashed: 2 });
    await s.removePlacement('u1');
    await s.removePlacement('u1'); // idempotent
    expect(await s.countPlacements('b1')).toEqual({ assigned: 1, hashed: 1 });
    expect(await s.countPlacements('nope')).toEqual({ assigned: 0, hashed: 0 });
  });

  test('two stores on one file agree on placeIfAbsent', async () => {
    const file = path.join(dir, 'shared.db');
    const a = openStore(file);
    const b = openStore(file);
    await a.addBackend(backend('b1'));
    await a.addBackend(backend('b2'));
    const [fromA, fromB] = await Promise.all([a.placeIfAbsent('alice', 'b1'), b.placeIfAbsent('alice', 'b2')]);
    expect(fromB).toEqual(fromA);
    expect(await b.getPlacement('alice')).toEqual(fromA);
    // And the other way round for a second user.
    const [fromB2, fromA2] = await Promise.all([b.placeIfAbsent('bob', 'b2'), a.placeIfAbsent('bob', 'b1')]);
    expect(fromA2).toEqual(fromB2);
    expect(fromA2.backend).toBe('b2');
  });

  test('processes racing placeIfAbsent on one file all see the same rows', async () => {
    const file = path.join(dir, 'race.db');
    const s = openStore(file);
    const names = ['b1', 'b2', 'b3'];
    for (const n of names) await s.addBackend(backend(n));
    const users = 300;
    const children = names.map((n) => startChild('place-race.js', [file, n, String(users)]));
    try {
      await Promise.all(children.map(nextLine)); // each has opened the store
      const results = children.map(nextLine);
      for (const c of children) c.stdin.write('go\n');
      const seen = (await Promise.all(results)).map((line) => JSON.parse(line) as Record<string, string>);
      for (let i = 0; i < users; i++) {
        const stored = (await s.getPlacement(`user-${i}`))!.backend;
        for (const rows of seen) expect(rows[`user-${i}`]).toBe(stored);
      }
      expect(await Promise.all(children.map(exited))).toEqual([0, 0, 0]);
    } finally {
      for (const c of children) c.kill();
    }
  });
});

describe('failures', () => {
  test("a closed store fails with 'unavailable'; close is idempotent", async () => {
    const s = openStore();
    await s.close();
    await s.close();
    await expectStoreError(s.getUser('alice'), 'unavailable');
    await expectStoreError(s.listBackends(), 'unavailable');
  });

  test('waits for another process holding the write lock (busy timeout)', async () => {
    const file = path.join(dir, 'state.db');
    const s = openStore(file);
    await s.addBackend(backend('b1'));
    const holder = startChild('hold-lock.js', [file, '300']);
    try {
      expect(await nextLine(holder)).toBe('locked');
      // Blocks until the holder commits; without a busy timeout this is SQLITE_BUSY at once.
      expect(await s.placeIfAbsent('alice', 'b1')).toMatchObject({ backend: 'b1' });
      expect(await exited(holder)).toBe(0);
    } finally {
      holder.kill();
    }
  });

  test("a lock held past the busy timeout is 'unavailable', and nothing is written", async () => {
    const file = path.join(dir, 'state.db');
    const s = openStore(file, { busyTimeoutMs: 0 });
    await s.addBackend(backend('b1'));
    const holder = startChild('hold-lock.js', [file]);
    try {
      expect(await nextLine(holder)).toBe('locked');
      const err = await expectStoreError(s.placeIfAbsent('alice', 'b1'), 'unavailable');
      expect(err.message).toMatch(/locked|busy/i);
      holder.stdin.write('release\n');
      expect(await exited(holder)).toBe(0);
      expect(await s.getPlacement('alice')).toBeUndefined();
    } finally {
      holder.kill();
    }
  });
});
