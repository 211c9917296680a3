import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createDirectoryLocator, createLocator, resolveDirectoryPlacement, type DirectoryLookup, type LocateResult } from '@mailfront/locator';
import { openSqliteStore, type BackendRow, type NewBackend, type Store } from '@mailfront/store';
import { newBackend } from '@mailfront/testkit';

let dir: string;
let store: Store;

function backend(name: string, host: string, over: Partial<NewBackend> = {}): NewBackend {
  return newBackend({ name, host, ports: { imap: 143, pop3: 110, submission: null }, ...over });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-dirloc-'));
  store = openSqliteStore(path.join(dir, 'state.db'));
  await store.addBackend(backend('imap1', 'imap1.example.net'));
  await store.addBackend(backend('imap2', 'imap2.example.net', { state: 'draining' }));
  await store.addBackend(backend('twin-a', 'shared.example.net'));
  await store.addBackend(backend('twin-b', 'shared.example.net'));
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function ok(r: LocateResult): Extract<LocateResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected a backend, got ${r.kind}: ${r.reason}`);
  return r;
}

/** A directory in a map, counting lookups. */
function fakeDirectory(entries: Record<string, Record<string, string[]>>) {
  const calls: string[] = [];
  let down = false;
  const lookup: DirectoryLookup = async (user) => {
    calls.push(user);
    if (down) throw new Error('no directory server reachable');
    return entries[user];
  };
  return { lookup, calls, setDown: (d: boolean) => (down = d) };
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('resolveDirectoryPlacement', () => {
  let backends: BackendRow[];
  beforeEach(async () => {
    backends = await store.listBackends();
  });

  test.each([
    [[], 'none'],
    [[' '], 'none'],
    [['imap1'], 'imap1'],
    [['IMAP1'], 'imap1'],
    [['imap1.example.net'], 'imap1'],
    [['IMAP1.Example.NET.'], 'imap1'],
    [['imap1', 'imap1'], 'imap1'],
  ])('%j → %s', (values, expected) => {
    const r = resolveDirectoryPlacement(values, backends);
    expect(r.kind === 'backend' ? r.backend.name : r.kind).toBe(expected);
  });

  test.each([
    [['imap1', 'imap2'], 'has several values (imap1, imap2)'],
    [['shared.example.net'], 'shared.example.net is the host of several backends (twin-a, twin-b); name the backend instead'],
    [['mail9.example.net'], 'mail9.example.net names no backend (neither a backend name nor a backend host)'],
  ])('%j is refused: %s', (values, reason) => {
    expect(resolveDirectoryPlacement(values, backends)).toEqual({ kind: 'invalid', reason });
  });
});

describe('directory locator', () => {
  test('the attributes that came with the login decide, with no lookup', async () => {
    const d = fakeDirectory({});
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup });
    const r = ok(await loc.locate('alice', 'imap', { attributes: { mail: ['alice@example.org'], mailHost: ['imap1.example.net'] } }));
    expect(r).toMatchObject({ source: 'directory', port: 143 });
    expect(r.backend.name).toBe('imap1');
    expect(loc.lookups).toBe(0);
    // Nothing was stored as a placement: the directory stays the source of truth.
    expect(await store.getPlacement('alice')).toBeUndefined();
  });

  test('an attribute name in another case is found', async () => {
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: fakeDirectory({}).lookup });
    expect(ok(await loc.locate('alice', 'imap', { attributes: { mailhost: ['imap1'] } })).backend.name).toBe('imap1');
  });

  test('a draining backend named by the directory still gets its users', async () => {
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: fakeDirectory({}).lookup });
    expect(ok(await loc.locate('bob', 'imap', { attributes: { mailHost: ['imap2'] } })).backend.name).toBe('imap2');
  });

  test('no value: the fallback places the user (stored, then hashed over active backends)', async () => {
    await store.setPlacement('carol', 'twin-b', 'assigned');
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: fakeDirectory({}).lookup });
    expect(ok(await loc.locate('carol', 'imap', { attributes: { mailHost: [] } }))).toMatchObject({ source: 'assigned', backend: { name: 'twin-b' } });
    const hashed = ok(await loc.locate('dave', 'imap', { attributes: { mailHost: [] } }));
    expect(hashed.source).toBe('new');
    expect(['imap1', 'twin-a', 'twin-b']).toContain(hashed.backend.name);
  });

  test('a value naming no backend fails the login (no-backend) rather than guess', async () => {
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: fakeDirectory({}).lookup });
    expect(await loc.locate('erin', 'imap', { attributes: { mailHost: ['gone.example.net'] } })).toEqual({
      ok: false,
      kind: 'no-backend',
      reason: 'mailHost of erin gone.example.net names no backend (neither a backend name nor a backend host)',
    });
    expect(await store.getPlacement('erin')).toBeUndefined();
  });

  test('the named backend lacks the protocol: no-backend', async () => {
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: fakeDirectory({}).lookup });
    expect(await loc.locate('alice', 'submission', { attributes: { mailHost: ['imap1'] } })).toMatchObject({ ok: false, kind: 'no-backend' });
  });

  test('without attributes from the login: one lookup, then the positive cache until its TTL', async () => {
    const c = clock();
    const d = fakeDirectory({ alice: { mailHost: ['imap1'] } });
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup, positiveTtlMs: 1_000, now: c.now });
    expect(ok(await loc.locate('alice', 'imap')).backend.name).toBe('imap1');
    expect(ok(await loc.locate('alice', 'pop3')).backend.name).toBe('imap1');
    expect(d.calls).toEqual(['alice']);
    c.advance(1_000);
    await loc.locate('alice', 'imap');
    expect(d.calls).toEqual(['alice', 'alice']);
  });

  test('"no value" and "no entry" are cached for the negative TTL', async () => {
    const c = clock();
    const d = fakeDirectory({ frank: { mailHost: [] } });
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup, negativeTtlMs: 500, now: c.now });
    for (const u of ['frank', 'ghost', 'frank', 'ghost']) ok(await loc.locate(u, 'imap'));
    expect(d.calls).toEqual(['frank', 'ghost']);
    c.advance(500);
    await loc.locate('frank', 'imap');
    expect(d.calls).toEqual(['frank', 'ghost', 'frank']);
  });

  test('values from a login refresh the cache', async () => {
    const d = fakeDirectory({ alice: { mailHost: ['imap1'] } });
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup });
    await loc.locate('alice', 'imap', { attributes: { mailHost: ['twin-a'] } });
    expect(ok(await loc.locate('alice', 'imap')).backend.name).toBe('twin-a');
    expect(d.calls).toEqual([]);
  });

  test('TTL 0 caches nothing', async () => {
    const d = fakeDirectory({ alice: { mailHost: ['imap1'] } });
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup, positiveTtlMs: 0, negativeTtlMs: 0 });
    await loc.locate('alice', 'imap');
    await loc.locate('alice', 'imap');
    expect(d.calls).toHaveLength(2);
  });

  test('directory down: tempfail, never the fallback placement', async () => {
    const d = fakeDirectory({});
    d.setDown(true);
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup });
    expect(await loc.locate('henry', 'imap')).toEqual({ ok: false, kind: 'tempfail', reason: 'directory: no directory server reachable' });
    expect(await store.getPlacement('henry')).toBeUndefined();
    // Failures are not cached: the next login asks again.
    d.setDown(false);
    ok(await loc.locate('henry', 'imap'));
    expect(d.calls).toEqual(['henry', 'henry']);
  });

  test('least recently used entries go first beyond maxEntries', async () => {
    const d = fakeDirectory({ a: { mailHost: ['imap1'] }, b: { mailHost: ['imap1'] }, c: { mailHost: ['imap1'] } });
    const loc = createDirectoryLocator({ store, fallback: createLocator(store), attribute: 'mailHost', lookup: d.lookup, maxEntries: 2 });
    for (const u of ['a', 'b', 'a', 'c', 'a', 'b']) await loc.locate(u, 'imap');
    // b was evicted by c (a was used more recently), so b is looked up twice.
    expect(d.calls).toEqual(['a', 'b', 'c', 'b']);
  });
});
