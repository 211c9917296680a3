/**
 * Two mailfront nodes, each with its own store connection pool and locator,
 * sharing one PostgreSQL: they must agree on every user's backend, however
 * their first logins interleave.
 */
import { createLocator, rendezvousPick } from '@mailfront/locator';
import type { LocateResult, Locator } from '@mailfront/locator';
import { openPostgresStore } from '@mailfront/store';
import type { NewBackend, Store } from '@mailfront/store';
import { newBackend, startPostgres, type Postgres } from '@mailfront/testkit';

let pg: Postgres;
const opened: Store[] = [];

beforeAll(async () => {
  pg = await startPostgres();
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

afterAll(async () => {
  await pg?.stop();
});

async function twoNodes(): Promise<[Store, Store]> {
  const { url } = await pg.createDatabase();
  const a = await openPostgresStore({ url, passwordFile: pg.passwordFile });
  opened.push(a);
  const b = await openPostgresStore({ url, passwordFile: pg.passwordFile });
  opened.push(b);
  return [a, b];
}

function backend(name: string): NewBackend {
  return newBackend({ name, host: `${name}.example.net`, ports: { imap: 143, pop3: 110, submission: 587 }, tls: 'starttls' });
}

function name(r: LocateResult): string {
  if (!r.ok) throw new Error(`expected a backend, got ${r.kind}: ${r.reason}`);
  return r.backend.name;
}

const BACKENDS = ['b1', 'b2', 'b3', 'b4'];
const USERS = Array.from({ length: 400 }, (_, i) => `user${i}@example.org`);

/**
 * Every user's first login on both nodes at once, all users concurrently
 * (each node's pool has 4 connections); returns [node a's answer, node b's]
 * per user.
 */
async function placeEverywhere(la: Locator, lb: Locator): Promise<Array<[string, string]>> {
  const started = Date.now();
  const answers = await Promise.all(
    USERS.map(async (u, i): Promise<[string, string]> => {
      // Either node may start first.
      if (i % 2 === 0) {
        const [x, y] = await Promise.all([la.locate(u, 'imap'), lb.locate(u, 'imap')]);
        return [name(x), name(y)];
      }
      const [y, x] = await Promise.all([lb.locate(u, 'imap'), la.locate(u, 'imap')]);
      return [name(x), name(y)];
    }),
  );
  const ms = Date.now() - started;
  // Reported, not asserted.
  process.stdout.write(`two nodes placed ${USERS.length} users (${2 * USERS.length} first logins) in ${ms} ms: ${Math.round((1000 * USERS.length) / Math.max(ms, 1))} users/s\n`);
  return answers;
}

describe('two nodes on one PostgreSQL', () => {
  test('placing many users concurrently, they agree on every placement, and it is the rendezvous choice', async () => {
    const [a, b] = await twoNodes();
    for (const n of BACKENDS) await a.addBackend(backend(n));
    const [la, lb] = [createLocator(a), createLocator(b)];
    const answers = await placeEverywhere(la, lb);
    for (let i = 0; i < USERS.length; i++) {
      const u = USERS[i]!;
      const [x, y] = answers[i]!;
      expect([u, x]).toEqual([u, y]);
      expect([u, x]).toEqual([u, rendezvousPick(u, BACKENDS)]);
      expect((await b.getPlacement(u))?.backend).toBe(x);
    }
    const counts = await Promise.all(BACKENDS.map((n) => a.countPlacements(n)));
    expect(counts.reduce((sum, c) => sum + c.hashed + c.assigned, 0)).toBe(USERS.length);
    // Every backend got some: the hash spreads users.
    for (const c of counts) expect(c.hashed).toBeGreaterThan(USERS.length / 8);
  });

  test('even when one node sees another backend set, both follow the row that was stored first', async () => {
    const [a, b] = await twoNodes();
    for (const n of BACKENDS) await a.addBackend(backend(n));
    // Node b's view lacks b1 (an admin's change half-way through), so for
    // about a quarter of the users it chooses differently from node a.
    const stale: Store = Object.create(b);
    stale.listBackends = async () => (await b.listBackends()).filter((x) => x.name !== 'b1');
    const [la, lb] = [createLocator(a), createLocator(stale)];
    const answers = await placeEverywhere(la, lb);
    let disputed = 0;
    for (let i = 0; i < USERS.length; i++) {
      const u = USERS[i]!;
      const [x, y] = answers[i]!;
      if (rendezvousPick(u, BACKENDS) === 'b1') disputed++;
      const stored = (await a.getPlacement(u))?.backend;
      expect([u, x, y]).toEqual([u, stored, stored]);
    }
    expect(disputed).toBeGreaterThan(0);
  });
});
