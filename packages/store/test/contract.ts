/**
 * The Store contract: every guarantee of the Store interface, as tests that
 * run unchanged against each implementation. An implementation's own test
 * file supplies a StoreHarness and calls describeStoreContract; what only
 * one implementation has (file modes, advisory locks, reconnects) is tested
 * beside it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import { StoreError } from '@mailfront/store';
import type { NewBackend, Store } from '@mailfront/store';
import { newBackend } from '@mailfront/testkit';

export interface LockHolder {
  /** Commits the lock holder's transaction; resolves once it is released. */
  release(): Promise<void>;
}

export interface StoreHarness {
  kind: Store['kind'];
  /** Makes a fresh, empty database for the next test (before each test). */
  fresh(): Promise<void>;
  /** Removes what fresh() made (after each test, once its stores are closed). */
  cleanup(): Promise<void>;
  /**
   * Opens a store on this test's database; each call is another connection,
   * as another node or process would have. `shortLockTimeout`: waiting for a
   * lock gives up at once (SQLite busyTimeoutMs 0) or nearly (PostgreSQL
   * statementTimeoutMs 200).
   */
  open(opts?: { shortLockTimeout?: boolean }): Promise<Store>;
  /** Runs SQL on this test's database past the store (to bypass the code, or tamper). */
  exec(sql: string): Promise<void>;
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  /**
   * Another connection takes the write lock on the placements table (readers
   * go on) and holds it until release(), or for `releaseAfterMs`.
   */
  holdWriteLock(releaseAfterMs?: number): Promise<LockHolder>;
  /** What the error of a write that gave up waiting for that lock says. */
  lockTimeoutMessage: RegExp;
  /** Arguments for fixtures/place-race.js to open this test's database in a child process. */
  childArgs(): string[];
}

export function backend(name: string, over: Partial<NewBackend> = {}): NewBackend {
  return newBackend({ name, host: `${name}.example.net`, ports: { imap: 143, pop3: 110, submission: 587 }, tls: 'starttls', ...over });
}

export async function expectStoreError(p: Promise<unknown>, code: StoreError['code']): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect([(err as StoreError).code, (err as StoreError).message]).toEqual([code, expect.any(String)]);
  return err as StoreError;
}

export function startChild(script: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [path.join(__dirname, 'fixtures', script), ...args], { stdio: 'pipe' });
}

/** Resolves with the child's next stdout line. */
export function nextLine(child: ChildProcessWithoutNullStreams): Promise<string> {
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

export function exited(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', resolve);
  });
}

const CHECK_VIOLATION = /CHECK|check constraint/;

/**
 * The message `p` rejects with, or undefined if it resolves. Not
 * `rejects.toThrow`: better-sqlite3's native addon makes its errors in the
 * realm of the test file that loaded it first, and jest's toThrow does not
 * take an Error of another realm for one.
 */
async function rejection(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => String((e as { message?: unknown } | null)?.message ?? e),
  );
}
const T = "'2024-01-01T00:00:00.000Z'";

export function describeStoreContract(h: StoreHarness): void {
  const opened: Store[] = [];

  async function openStore(opts?: { shortLockTimeout?: boolean }): Promise<Store> {
    const s = await h.open(opts);
    opened.push(s);
    return s;
  }

  beforeEach(async () => {
    await h.fresh();
  });

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await h.cleanup();
  });

  describe(`Store contract (${h.kind})`, () => {
    describe('opening', () => {
      test('reports its kind, records migrations and does not re-run them on reopen', async () => {
        const s = await openStore();
        expect(s.kind).toBe(h.kind);
        await s.addUser('alice', '$scrypt$x');
        await s.close();
        const again = await openStore();
        expect(await again.getUser('alice')).toBeDefined();
        expect(await h.query('SELECT version, name FROM schema_migrations ORDER BY version')).toEqual([
          { version: 1, name: 'initial' },
          { version: 2, name: 'standby-proxy-protocol' },
        ]);
      });

      test("refuses a database migrated by a newer version ('invalid', naming it)", async () => {
        await (await openStore()).close();
        await h.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', ${T})`);
        const err = await expectStoreError(h.open(), 'invalid');
        expect(err.message).toMatch(/99/);
      });

      test('the schema rejects values outside the enums even when the code is bypassed', async () => {
        await openStore();
        const insert = (tls: string, state: string) =>
          h.exec(`INSERT INTO backends (name, host, tls, login, state, created_at) VALUES ('x', 'h', '${tls}', 'passthrough', '${state}', ${T})`);
        expect(await rejection(insert('ssl', 'active'))).toMatch(CHECK_VIOLATION);
        expect(await rejection(insert('none', 'broken'))).toMatch(CHECK_VIOLATION);
        expect(await rejection(h.exec(`INSERT INTO backends (name, host, tls, login, created_at) VALUES ('y', 'h', 'none', 'master', ${T})`))).toMatch(CHECK_VIOLATION);
        expect(
          await rejection(h.exec(`INSERT INTO backends (name, host, imap_port, tls, login, created_at) VALUES ('z', 'h', 70000, 'none', 'passthrough', ${T})`)),
        ).toMatch(CHECK_VIOLATION);
        expect(await rejection(h.exec(`INSERT INTO placements VALUES ('u', 'nowhere', 'guessed', ${T})`))).toMatch(CHECK_VIOLATION);
        expect(await rejection(h.exec(`INSERT INTO users VALUES ('', 'h', ${T}, ${T})`))).toMatch(CHECK_VIOLATION);
        expect(
          await rejection(h.exec(`INSERT INTO backends (name, host, tls, login, standby, created_at) VALUES ('s', 'h', 'none', 'passthrough', 's', ${T})`)),
        ).toMatch(CHECK_VIOLATION);
        expect(await h.query('SELECT name FROM backends')).toEqual([]);
      });
    });

    describe('backends', () => {
      test('round-trips every field, camelCase out', async () => {
        const s = await openStore();
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
            proxyProtocol: true,
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
          standby: null,
          proxyProtocol: true,
          createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        });
        expect(await s.getBackend('b1')).toEqual(added);
        expect(await s.getBackend('B1')).toBeUndefined();
        const plain = await s.addBackend(backend('a0'));
        expect(plain.state).toBe('active');
        expect(plain.insecure).toBe(false);
        expect(plain.trusted).toBe(false);
        expect(plain.standby).toBeNull();
        expect(plain.proxyProtocol).toBe(false);
        expect((await s.listBackends()).map((b) => b.name)).toEqual(['a0', 'b1']);
      });

      test('lists sort by code point, whatever the locale: upper case before lower, accents last', async () => {
        const s = await openStore();
        for (const n of ['b', 'é', 'B', 'a', 'Z']) await s.addBackend(backend(n));
        expect((await s.listBackends()).map((b) => b.name)).toEqual(['B', 'Z', 'a', 'b', 'é']);
        for (const n of ['bob', 'Bob', 'alice', 'Ålice']) await s.addUser(n, 'h');
        expect((await s.listUsers()).map((u) => u.name)).toEqual(['Bob', 'alice', 'bob', 'Ålice']);
      });

      test("a taken name is 'exists' and changes nothing", async () => {
        const s = await openStore();
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
        ['its own standby', { standby: 'x' }],
        ['an empty standby', { standby: '' }],
        ['proxyProtocol not a boolean', { proxyProtocol: 'yes' as never }],
      ])("%s is 'invalid'", async (_what, over) => {
        const s = await openStore();
        await expectStoreError(s.addBackend(backend('x', over)), 'invalid');
        expect(await s.listBackends()).toEqual([]);
      });

      test('setBackendState', async () => {
        const s = await openStore();
        await s.addBackend(backend('b1'));
        await s.setBackendState('b1', 'draining');
        expect((await s.getBackend('b1'))?.state).toBe('draining');
        await s.setBackendState('b1', 'active');
        expect((await s.getBackend('b1'))?.state).toBe('active');
        await expectStoreError(s.setBackendState('nope', 'draining'), 'not-found');
        await expectStoreError(s.setBackendState('b1', 'down' as never), 'invalid');
      });

      test("a standby must exist ('not-found'), and is stored and returned", async () => {
        const s = await openStore();
        await expectStoreError(s.addBackend(backend('b1', { standby: 'b2' })), 'not-found');
        expect(await s.listBackends()).toEqual([]);
        await s.addBackend(backend('b2'));
        expect(await s.addBackend(backend('b1', { standby: 'b2' }))).toMatchObject({ name: 'b1', standby: 'b2' });
        expect((await s.getBackend('b1'))?.standby).toBe('b2');
      });

      test('updateBackend sets and clears standby and proxyProtocol, each on its own, and returns the row', async () => {
        const s = await openStore();
        await s.addBackend(backend('b1'));
        await s.addBackend(backend('b2'));
        const before = (await s.getBackend('b1'))!;
        const set = await s.updateBackend('b1', { standby: 'b2' });
        expect(set).toEqual({ ...before, standby: 'b2' });
        expect(await s.updateBackend('b1', { proxyProtocol: true })).toEqual({ ...before, standby: 'b2', proxyProtocol: true });
        // Mutual standbys are a pair, not a loop: only one hop is ever followed.
        expect((await s.updateBackend('b2', { standby: 'b1', proxyProtocol: false })).standby).toBe('b1');
        expect(await s.updateBackend('b1', { standby: null })).toEqual({ ...before, standby: null, proxyProtocol: true });
        expect(await s.updateBackend('b1', {})).toEqual(await s.getBackend('b1'));
        expect(await s.getBackend('b1')).toEqual({ ...before, standby: null, proxyProtocol: true });
      });

      test("updateBackend: 'not-found' for the backend or its standby, 'invalid' for itself or another key; nothing changes", async () => {
        const s = await openStore();
        await s.addBackend(backend('b1'));
        const before = await s.getBackend('b1');
        expect((await expectStoreError(s.updateBackend('nope', { proxyProtocol: true }), 'not-found')).message).toMatch(/nope/);
        expect((await expectStoreError(s.updateBackend('b1', { standby: 'gone' }), 'not-found')).message).toMatch(/standby backend gone/);
        await expectStoreError(s.updateBackend('b1', { standby: 'b1' }), 'invalid');
        await expectStoreError(s.updateBackend('b1', { host: 'elsewhere' } as never), 'invalid');
        await expectStoreError(s.updateBackend('b1', { proxyProtocol: 1 as never }), 'invalid');
        expect(await s.getBackend('b1')).toEqual(before);
      });

      test('removing a backend clears it as the standby of others', async () => {
        const s = await openStore();
        await s.addBackend(backend('spare'));
        await s.addBackend(backend('b1', { standby: 'spare' }));
        await s.addBackend(backend('b2', { standby: 'spare' }));
        await s.updateBackend('spare', { standby: 'b1' });
        await s.removeBackend('spare');
        expect((await s.listBackends()).map((b) => [b.name, b.standby])).toEqual([
          ['b1', null],
          ['b2', null],
        ]);
        // And the other way round: the backend that had a standby can go.
        await s.updateBackend('b1', { standby: 'b2' });
        await s.removeBackend('b1');
        expect((await s.getBackend('b2'))?.standby).toBeNull();
      });

      test("removeBackend: 'not-found', then 'in-use' while users are assigned, hashed placements dropped", async () => {
        const s = await openStore();
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
        const s = await openStore();
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
        const s = await openStore();
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
        const s = await openStore();
        await s.addUser('alice', 'h');
        await expectStoreError(s.addUser('alice', 'other'), 'exists');
        expect((await s.getUser('alice'))?.passwordHash).toBe('h');
        await expectStoreError(s.setUserPassword('bob', 'h'), 'not-found');
        await expectStoreError(s.removeUser('bob'), 'not-found');
        await expectStoreError(s.addUser('', 'h'), 'invalid');
        await expectStoreError(s.addUser('carol', ''), 'invalid');
        await expectStoreError(s.setUserPassword('alice', ''), 'invalid');
        expect((await s.listUsers()).map((x) => x.name)).toEqual(['alice']);
      });

      test('removeUser removes the placement too', async () => {
        const s = await openStore();
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
        const s = await openStore();
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
        const s = await openStore();
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
        const s = await openStore();
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

      test('two stores on one database agree on placeIfAbsent', async () => {
        const a = await openStore();
        const b = await openStore();
        await a.addBackend(backend('b1'));
        await a.addBackend(backend('b2'));
        const [fromA, fromB] = await Promise.all([a.placeIfAbsent('alice', 'b1'), b.placeIfAbsent('alice', 'b2')]);
        expect(fromB).toEqual(fromA);
        expect(await b.getPlacement('alice')).toEqual(fromA);
        // And the other way round for a second user.
        const [fromB2, fromA2] = await Promise.all([b.placeIfAbsent('bob', 'b2'), a.placeIfAbsent('bob', 'b1')]);
        expect(fromA2).toEqual(fromB2);
        // Which call wins is up to the database (SQLite runs them in call
        // order, PostgreSQL's two connections race); that both report the
        // stored row is the guarantee.
        expect(await a.getPlacement('bob')).toEqual(fromA2);
      });

      test('processes racing placeIfAbsent on one database all see the same rows', async () => {
        const s = await openStore();
        const names = ['b1', 'b2', 'b3'];
        for (const n of names) await s.addBackend(backend(n));
        const users = 300;
        const children = names.map((n) => startChild('place-race.js', [...h.childArgs(), n, String(users)]));
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
        const s = await openStore();
        await s.close();
        await s.close();
        await expectStoreError(s.getUser('alice'), 'unavailable');
        await expectStoreError(s.listBackends(), 'unavailable');
        await expectStoreError(s.placeIfAbsent('alice', 'b1'), 'unavailable');
      });

      test('a write waits for another connection holding the write lock; reads do not', async () => {
        const s = await openStore();
        await s.addBackend(backend('b1'));
        const holder = await h.holdWriteLock(300);
        expect(await s.getBackend('b1')).toBeDefined();
        // Blocks until the holder commits; without waiting this fails at once.
        expect(await s.placeIfAbsent('alice', 'b1')).toMatchObject({ backend: 'b1' });
        await holder.release();
      });

      test("a lock held past the timeout is 'unavailable', and nothing is written", async () => {
        const s = await openStore({ shortLockTimeout: true });
        await s.addBackend(backend('b1'));
        const holder = await h.holdWriteLock();
        try {
          const err = await expectStoreError(s.placeIfAbsent('alice', 'b1'), 'unavailable');
          expect(err.message).toMatch(h.lockTimeoutMessage);
        } finally {
          await holder.release();
        }
        expect(await s.getPlacement('alice')).toBeUndefined();
        // And the store works on once the lock is gone.
        expect(await s.placeIfAbsent('alice', 'b1')).toMatchObject({ backend: 'b1' });
      });
    });
  });
}
