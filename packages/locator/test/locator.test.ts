import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLocator, rendezvousPick } from '@mailfront/locator';
import type { LocateResult } from '@mailfront/locator';
import { openSqliteStore } from '@mailfront/store';
import type { BackendPorts, NewBackend, Store } from '@mailfront/store';
import { newBackend } from '@mailfront/testkit';

let dir: string;
const opened: Store[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-locator-'));
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function openStore(file = 'state.db'): Store {
  const s = openSqliteStore(path.join(dir, file));
  opened.push(s);
  return s;
}

const ALL_PORTS: BackendPorts = { imap: 143, pop3: 110, submission: 587 };

function backend(name: string, ports: Partial<BackendPorts> = {}, state: NewBackend['state'] = 'active'): NewBackend {
  return newBackend({ name, host: `${name}.example.net`, ports: { ...ALL_PORTS, ...ports }, tls: 'starttls', state });
}

async function withBackends(store: Store, ...names: string[]): Promise<void> {
  for (const n of names) await store.addBackend(backend(n));
}

function ok(r: LocateResult): Extract<LocateResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected a backend, got ${r.kind}: ${r.reason}`);
  return r;
}

/** A user whose rendezvous winner among `names` is `winner`. */
function userWinningOn(winner: string, names: string[], prefix = 'u'): string {
  for (let i = 0; ; i++) if (rendezvousPick(`${prefix}${i}`, names) === winner) return `${prefix}${i}`;
}

const users = (n: number, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}${i}@example.org`);

describe('createLocator', () => {
  test('places a new user by rendezvous, stores it as hashed, and returns the protocol’s port', async () => {
    const store = openStore();
    await store.addBackend(backend('b1', { imap: 1143, pop3: 1110, submission: 1587 }));
    await store.addBackend(backend('b2', { imap: 2143, pop3: 2110, submission: 2587 }));
    const loc = createLocator(store);
    const user = 'alice@example.org';
    const expected = rendezvousPick(user, ['b1', 'b2'])!;
    const prefix = expected === 'b1' ? 1 : 2;

    const first = ok(await loc.locate(user, 'imap'));
    expect(first).toMatchObject({ source: 'new', port: Number(`${prefix}143`) });
    expect(first.backend.name).toBe(expected);
    expect(await store.getPlacement(user)).toMatchObject({ backend: expected, source: 'hashed' });

    expect(ok(await loc.locate(user, 'pop3'))).toMatchObject({ source: 'hashed', port: Number(`${prefix}110`) });
    expect(ok(await loc.locate(user, 'submission'))).toMatchObject({ source: 'hashed', port: Number(`${prefix}587`) });
  });

  test('an admin’s assignment wins over hashing', async () => {
    const store = openStore();
    await withBackends(store, 'b1', 'b2');
    const user = userWinningOn('b1', ['b1', 'b2']);
    await store.setPlacement(user, 'b2', 'assigned');
    const r = ok(await createLocator(store).locate(user, 'imap'));
    expect(r.backend.name).toBe('b2');
    expect(r.source).toBe('assigned');
  });

  test('nodes with the same backend set place users alike, with or without a shared store', async () => {
    const a = openStore('a.db');
    const b = openStore('b.db');
    await withBackends(a, 'b1', 'b2', 'b3', 'b4');
    await withBackends(b, 'b4', 'b3', 'b2', 'b1');
    const [la, lb] = [createLocator(a), createLocator(b)];
    for (const u of users(200)) {
      expect(ok(await la.locate(u, 'imap')).backend.name).toBe(ok(await lb.locate(u, 'imap')).backend.name);
    }
  });

  test('two nodes sharing the store file agree even when their views differ', async () => {
    const a = openStore('shared.db');
    const b = openStore('shared.db');
    await withBackends(a, 'b1', 'b2');
    const user = userWinningOn('b1', ['b1', 'b2']);
    // Node b read "no placement" just before a stored one, and its view of
    // the backends lacks b1 (say, mid-way through an admin's change), so it
    // chooses b2 …
    const stale: Store = Object.create(b);
    stale.getPlacement = async () => undefined;
    stale.listBackends = async () => (await b.listBackends()).filter((x) => x.name !== 'b1');
    const ra = ok(await createLocator(a).locate(user, 'imap'));
    const rb = ok(await createLocator(stale).locate(user, 'imap'));
    // … but a stored first, and b follows the stored row.
    expect(ra.backend.name).toBe('b1');
    expect(rb.backend.name).toBe('b1');
    expect(rb.source).toBe('new');
    expect(await b.getPlacement(user)).toMatchObject({ backend: 'b1' });
  });

  test('stored placements stay put when a 5th backend arrives; new users start to use it', async () => {
    const store = openStore();
    await withBackends(store, 'b1', 'b2', 'b3', 'b4');
    const loc = createLocator(store);
    const placedBefore = new Map<string, string>();
    for (const u of users(500, 'old')) placedBefore.set(u, ok(await loc.locate(u, 'imap')).backend.name);

    await withBackends(store, 'b5');
    let wouldMove = 0;
    for (const [u, was] of placedBefore) {
      if (rendezvousPick(u, ['b1', 'b2', 'b3', 'b4', 'b5']) !== was) wouldMove++;
      const now = ok(await loc.locate(u, 'imap'));
      expect(now.backend.name).toBe(was);
      expect(now.source).toBe('hashed');
    }
    // The stickiness above is not vacuous: hashing alone would have moved these.
    expect(wouldMove).toBeGreaterThan(50);

    const fresh = await Promise.all(users(500, 'new').map(async (u) => ok(await loc.locate(u, 'imap')).backend.name));
    const onB5 = fresh.filter((n) => n === 'b5').length;
    expect(onB5).toBeGreaterThan(60); // ~100 expected
    expect(onB5).toBeLessThan(140);
  });

  test('a draining backend keeps its users but gets no new ones', async () => {
    const store = openStore();
    await withBackends(store, 'b1', 'b2', 'b3');
    const loc = createLocator(store);
    const user = userWinningOn('b2', ['b1', 'b2', 'b3']);
    ok(await loc.locate(user, 'imap'));
    await store.setPlacement('assigned-user', 'b2', 'assigned');
    await store.setBackendState('b2', 'draining');

    expect(ok(await loc.locate(user, 'imap'))).toMatchObject({ backend: { name: 'b2', state: 'draining' }, source: 'hashed' });
    expect(ok(await loc.locate('assigned-user', 'pop3'))).toMatchObject({ backend: { name: 'b2' }, source: 'assigned' });

    const newcomers = users(300, 'newcomer');
    expect(newcomers.some((u) => rendezvousPick(u, ['b1', 'b2', 'b3']) === 'b2')).toBe(true);
    for (const u of newcomers) expect(ok(await loc.locate(u, 'imap')).backend.name).not.toBe('b2');
    expect(await store.countPlacements('b2')).toEqual({ assigned: 1, hashed: 1 });
  });

  test('a removed backend’s users are placed again elsewhere', async () => {
    const store = openStore();
    await withBackends(store, 'b1', 'b2', 'b3');
    const loc = createLocator(store);
    const user = userWinningOn('b3', ['b1', 'b2', 'b3']);
    expect(ok(await loc.locate(user, 'imap')).backend.name).toBe('b3');
    await store.removeBackend('b3');
    const again = ok(await loc.locate(user, 'imap'));
    expect(again.source).toBe('new');
    expect(again.backend.name).toBe(rendezvousPick(user, ['b1', 'b2']));
    expect(await store.getPlacement(user)).toMatchObject({ backend: again.backend.name, source: 'hashed' });
  });

  test('a placement whose backend vanishes between reads is dropped and redone', async () => {
    const store = openStore();
    await withBackends(store, 'b1', 'b2');
    const user = userWinningOn('b2', ['b1', 'b2']);
    await store.setPlacement(user, 'b1', 'assigned');
    // Simulate `backend remove b1 --force` landing between getPlacement and getBackend.
    const racing: Store = Object.create(store);
    racing.getBackend = async (name) => {
      if (name === 'b1') {
        await store.removeBackend('b1', { force: true });
        return undefined;
      }
      return store.getBackend(name);
    };
    const r = ok(await createLocator(racing).locate(user, 'imap'));
    expect(r).toMatchObject({ backend: { name: 'b2' }, source: 'new' });
    expect(await store.getPlacement(user)).toMatchObject({ backend: 'b2', source: 'hashed' });
  });

  test('a chosen backend removed before the placement is stored: try again, give up with tempfail', async () => {
    const store = openStore();
    await withBackends(store, 'b1', 'b2');
    const ghost = backend('b0');
    const user = userWinningOn('b0', ['b0', 'b1', 'b2']);
    let staleLists = 1;
    const racing: Store = Object.create(store);
    racing.listBackends = async () => {
      const real = await store.listBackends();
      return staleLists-- > 0 ? [{ ...ghost, state: 'active', createdAt: '' }, ...real] : real;
    };
    const r = ok(await createLocator(racing).locate(user, 'imap'));
    expect(r.backend.name).toBe(rendezvousPick(user, ['b1', 'b2']));

    staleLists = Infinity;
    const other = userWinningOn('b0', ['b0', 'b1', 'b2'], 'v');
    expect(await createLocator(racing).locate(other, 'imap')).toMatchObject({ ok: false, kind: 'tempfail' });
    expect(await store.getPlacement(other)).toBeUndefined();
  });

  test('placement ignores protocols; a backend without the protocol’s port is no-backend', async () => {
    const store = openStore();
    await store.addBackend(backend('imap-only', { pop3: null, submission: null }));
    await store.addBackend(backend('full'));
    const loc = createLocator(store);
    const user = userWinningOn('imap-only', ['full', 'imap-only']);

    // A POP3 first login still places the user where the mailbox will live …
    const r = await loc.locate(user, 'pop3');
    expect(r).toMatchObject({ ok: false, kind: 'no-backend', reason: expect.stringMatching(/imap-only.*pop3/) });
    expect(await store.getPlacement(user)).toMatchObject({ backend: 'imap-only', source: 'hashed' });
    // … and IMAP there works, while POP3 does not go elsewhere.
    expect(ok(await loc.locate(user, 'imap'))).toMatchObject({ backend: { name: 'imap-only' }, port: 143 });
    expect(await loc.locate(user, 'pop3')).toMatchObject({ ok: false, kind: 'no-backend' });
  });

  test('no active backend → no-backend, and nothing is stored', async () => {
    const store = openStore();
    const loc = createLocator(store);
    expect(await loc.locate('alice', 'imap')).toMatchObject({ ok: false, kind: 'no-backend' });
    await store.addBackend(backend('b1', {}, 'draining'));
    expect(await loc.locate('alice', 'imap')).toMatchObject({ ok: false, kind: 'no-backend' });
    expect(await store.getPlacement('alice')).toBeUndefined();
  });

  test('a failing store is tempfail', async () => {
    const store = openStore();
    await withBackends(store, 'b1');
    const loc = createLocator(store);
    await store.close();
    expect(await loc.locate('alice', 'imap')).toMatchObject({ ok: false, kind: 'tempfail', reason: expect.stringMatching(/store/) });
  });
});
