import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createDirectoryLocator,
  createHealthAwareLocator,
  createLocator,
  placeableWith,
  rendezvousPick,
  type HealthView,
  type LocateResult,
  type Locator,
} from '@mailfront/locator';
import { openSqliteStore, type BackendPorts, type NewBackend, type Protocol, type Store } from '@mailfront/store';
import { backendRow, newBackend } from '@mailfront/testkit';

let dir: string;
let store: Store;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-health-loc-'));
  store = openSqliteStore(path.join(dir, 'state.db'));
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function backend(name: string, over: Partial<NewBackend> = {}, ports: Partial<BackendPorts> = {}): NewBackend {
  return newBackend({ name, host: `${name}.example.net`, ports: { imap: 143, pop3: 110, submission: 587, ...ports }, ...over });
}

/** A health view from a set of "backend/protocol" pairs that are down. */
function fakeHealth(...down: string[]): HealthView & { down: Set<string> } {
  const set = new Set(down);
  return { down: set, isUp: (b: string, p: Protocol) => !set.has(`${b}/${p}`) };
}

function downEverywhere(name: string): string[] {
  return (['imap', 'pop3', 'submission'] as const).map((p) => `${name}/${p}`);
}

function ok(r: LocateResult): Extract<LocateResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected a backend, got ${r.kind}: ${r.reason}`);
  return r;
}

function wrap(health: HealthView, inner: Locator = createLocator(store)) {
  const lines: Array<Record<string, unknown>> = [];
  const loc = createHealthAwareLocator({ inner, store, health, log: { info: (o) => lines.push(o) } });
  return { loc, lines };
}

/** A user whose rendezvous winner among `names` is `winner`. */
function userWinningOn(winner: string, names: string[], prefix = 'u'): string {
  for (let i = 0; ; i++) if (rendezvousPick(`${prefix}${i}`, names) === winner) return `${prefix}${i}`;
}

describe('placeableWith', () => {
  test('active and every protocol it serves up', () => {
    const h = fakeHealth('b1/pop3');
    const placeable = placeableWith(h);
    expect(placeable(backendRow({ name: 'b1', ports: { imap: 143, pop3: 110, submission: null } }))).toBe(false);
    // A protocol it has no port for does not matter.
    expect(placeable(backendRow({ name: 'b1', ports: { imap: 143, pop3: null, submission: null } }))).toBe(true);
    expect(placeable(backendRow({ name: 'b2', ports: { imap: 143, pop3: 110, submission: null } }))).toBe(true);
    expect(placeable(backendRow({ name: 'b2', state: 'draining' }))).toBe(false);
  });
});

describe('createHealthAwareLocator', () => {
  test('healthy and active: the user’s own backend, untouched', async () => {
    await store.addBackend(backend('b1'));
    await store.addBackend(backend('spare'));
    await store.updateBackend('b1', { standby: 'spare' });
    await store.setPlacement('alice', 'b1', 'assigned');
    const { loc, lines } = wrap(fakeHealth());
    const r = ok(await loc.locate('alice', 'imap'));
    expect(r).toMatchObject({ backend: { name: 'b1' }, port: 143, source: 'assigned' });
    expect(r.standbyFor).toBeUndefined();
    expect(lines).toEqual([]);
  });

  test.each<[string, 'down' | 'draining']>([
    ['breaker open', 'down'],
    ['draining', 'draining'],
  ])('%s → the standby, with the reason, logged', async (_what, reason) => {
    await store.addBackend(backend('spare', {}, { imap: 1143 }));
    await store.addBackend(backend('b1', { standby: 'spare', state: reason === 'draining' ? 'draining' : 'active' }));
    await store.setPlacement('alice', 'b1', 'assigned');
    const { loc, lines } = wrap(fakeHealth(...(reason === 'down' ? ['b1/imap'] : [])));
    const r = ok(await loc.locate('alice', 'imap'));
    expect(r).toMatchObject({ backend: { name: 'spare' }, port: 1143, source: 'assigned', standbyFor: { backend: 'b1', reason } });
    expect(lines).toEqual([{ user: 'alice', protocol: 'imap', backend: 'spare', standbyFor: 'b1', why: reason }]);
    // The placement is not moved: the mailbox's home is still b1.
    expect(await store.getPlacement('alice')).toMatchObject({ backend: 'b1', source: 'assigned' });
  });

  test('down for one protocol only: the others still go to the backend', async () => {
    await store.addBackend(backend('spare'));
    await store.addBackend(backend('b1', { standby: 'spare' }));
    await store.setPlacement('alice', 'b1', 'assigned');
    const { loc } = wrap(fakeHealth('b1/pop3'));
    expect(ok(await loc.locate('alice', 'imap')).backend.name).toBe('b1');
    expect(ok(await loc.locate('alice', 'pop3')).backend.name).toBe('spare');
  });

  test.each<[string, () => Promise<void>, string[], RegExp]>([
    ['no standby', async () => undefined, ['b1/imap'], /b1 is down for imap \(breaker open\) and has no standby/],
    ['the standby is down too', async () => store.updateBackend('b1', { standby: 'spare' }).then(() => undefined), ['b1/imap', 'spare/imap'], /standby spare is down for imap too/],
    [
      'the standby is draining',
      async () => {
        await store.updateBackend('b1', { standby: 'spare' });
        await store.setBackendState('spare', 'draining');
      },
      ['b1/imap'],
      /standby spare is draining too/,
    ],
    [
      'the standby lacks the protocol',
      async () => {
        await store.removeBackend('spare');
        await store.addBackend(backend('spare', {}, { imap: null }));
        await store.updateBackend('b1', { standby: 'spare' });
      },
      ['b1/imap'],
      /standby spare has no imap port/,
    ],
  ])("%s → 'unavailable' at once, saying why", async (_what, setup, down, reason) => {
    await store.addBackend(backend('spare'));
    await store.addBackend(backend('b1'));
    await store.setPlacement('alice', 'b1', 'assigned');
    await setup();
    const { loc, lines } = wrap(fakeHealth(...down));
    expect(await loc.locate('alice', 'imap')).toEqual({ ok: false, kind: 'unavailable', reason: expect.stringMatching(reason) });
    expect(lines).toEqual([]);
  });

  test('one hop only: a standby’s own standby is not followed', async () => {
    await store.addBackend(backend('c'));
    await store.addBackend(backend('b', { standby: 'c' }));
    await store.addBackend(backend('a', { standby: 'b' }));
    await store.setPlacement('alice', 'a', 'assigned');
    const { loc } = wrap(fakeHealth('a/imap', 'b/imap'));
    expect(await loc.locate('alice', 'imap')).toMatchObject({ ok: false, kind: 'unavailable', reason: expect.stringMatching(/standby b is down/) });
  });

  test('a standby removed between reads: unavailable, not a crash', async () => {
    await store.addBackend(backend('spare'));
    await store.addBackend(backend('b1', { standby: 'spare' }));
    await store.setPlacement('alice', 'b1', 'assigned');
    const racing: Store = Object.create(store);
    racing.getBackend = async (name) => (name === 'spare' ? undefined : store.getBackend(name));
    const loc = createHealthAwareLocator({ inner: createLocator(store), store: racing, health: fakeHealth('b1/imap') });
    expect(await loc.locate('alice', 'imap')).toMatchObject({ ok: false, kind: 'unavailable', reason: expect.stringMatching(/spare no longer exists/) });
  });

  test('a store failure while reading the standby is tempfail', async () => {
    await store.addBackend(backend('spare'));
    await store.addBackend(backend('b1', { standby: 'spare' }));
    await store.setPlacement('alice', 'b1', 'assigned');
    const broken: Store = Object.create(store);
    broken.getBackend = async () => {
      throw new Error('database is locked');
    };
    const loc = createHealthAwareLocator({ inner: createLocator(store), store: broken, health: fakeHealth('b1/imap') });
    expect(await loc.locate('alice', 'imap')).toEqual({ ok: false, kind: 'tempfail', reason: 'store: database is locked' });
  });

  test('new placements skip down and draining backends, and are stored where they landed', async () => {
    for (const n of ['b1', 'b2', 'b3']) await store.addBackend(backend(n));
    const health = fakeHealth('b2/submission');
    await store.setBackendState('b3', 'draining');
    const { loc } = wrap(health);
    const users = Array.from({ length: 200 }, (_, i) => `new${i}@example.org`);
    // Without health the hash would send some of these to b2.
    expect(users.some((u) => rendezvousPick(u, ['b1', 'b2']) === 'b2')).toBe(true);
    for (const u of users) {
      // An IMAP login, though only b2's submission is down: a mailbox is placed for good.
      const r = ok(await loc.locate(u, 'imap'));
      expect(r).toMatchObject({ backend: { name: 'b1' }, source: 'new' });
      expect(await store.getPlacement(u)).toMatchObject({ backend: 'b1', source: 'hashed' });
    }
    // Once b2 is back, hashing over b1 and b2 again for newcomers; placed users stay.
    health.down.clear();
    const later = userWinningOn('b2', ['b1', 'b2'], 'later');
    expect(ok(await loc.locate(later, 'imap')).backend.name).toBe('b2');
    expect(ok(await loc.locate(users[0]!, 'imap')).backend.name).toBe('b1');
  });

  test("every active backend down: a newcomer gets 'unavailable', nothing is stored", async () => {
    await store.addBackend(backend('b1'));
    const { loc } = wrap(fakeHealth(...downEverywhere('b1')));
    expect(await loc.locate('newbie', 'imap')).toEqual({ ok: false, kind: 'unavailable', reason: expect.stringMatching(/no healthy active backend.*1 active, all down/) });
    expect(await store.getPlacement('newbie')).toBeUndefined();
  });

  test('another node placed the user on a backend that is down here: its standby', async () => {
    await store.addBackend(backend('b1'));
    await store.addBackend(backend('b2', { standby: 'b1' }));
    const user = userWinningOn('b2', ['b1', 'b2']);
    // The other node's view: b2 up; it stores the placement first.
    ok(await createLocator(store).locate(user, 'imap'));
    const { loc } = wrap(fakeHealth('b2/imap'));
    expect(ok(await loc.locate(user, 'imap'))).toMatchObject({ backend: { name: 'b1' }, standbyFor: { backend: 'b2', reason: 'down' } });
  });

  test('the directory locator gets it too: a draining backend named by the directory → its standby', async () => {
    await store.addBackend(backend('spare'));
    await store.addBackend(backend('imap2', { state: 'draining', standby: 'spare' }));
    const inner = createDirectoryLocator({
      store,
      fallback: createLocator(store),
      attribute: 'mailHost',
      lookup: async (user) => (user === 'dir-user' ? { mailHost: ['imap2.example.net'] } : undefined),
    });
    const { loc } = wrap(fakeHealth(), inner);
    expect(ok(await loc.locate('dir-user', 'imap'))).toMatchObject({ backend: { name: 'spare' }, source: 'directory', standbyFor: { backend: 'imap2', reason: 'draining' } });
    // Users the directory places nowhere fall back to hashing, which skips the draining backend.
    expect(ok(await loc.locate('nobody-in-dir', 'imap'))).toMatchObject({ backend: { name: 'spare' }, source: 'new' });
  });
});
