/**
 * The move lock without sockets: a real SessionRegistry with stand-in
 * sessions, a real (in-memory) store and a locator that reads it.
 */
import { SessionRegistry, type LoginEvent, type SessionInfo } from '@mailfront/proxy-core';
import { createLocator, type Locator } from '@mailfront/locator';
import { openSqliteStore, type Store } from '@mailfront/store';
import { newBackend } from '@mailfront/testkit';
import { Kicker } from '../src/kick';
import { MoveError, UserMoves } from '../src/user-moves';

const USER = 'alice@example.org';
let store: Store;
let registry: SessionRegistry;
let kicked: string[];

function backend(name: string) {
  return newBackend({ name, host: '127.0.0.1', ports: { imap: 143, pop3: null, submission: null } });
}

/** A live session of `user`; kicking it removes it from the registry (a tick later, as a relay does). */
function session(id: string, user: string | null, opts: { sticky?: boolean } = {}): void {
  const info: SessionInfo = {
    id,
    protocol: 'imap',
    client: '127.0.0.1:1',
    phase: 'relay',
    tls: true,
    user,
    backend: 'a',
    since: new Date(),
    bytesFromClient: 0,
    bytesFromBackend: 0,
  };
  registry.add(id, {
    info: () => info,
    quietForMs: () => 1_000,
    close: () => {
      kicked.push(id);
      if (!opts.sticky) void Promise.resolve().then(() => registry.remove(id));
    },
  });
}

function moves(o: { loginWaitMs?: number; drainTimeoutMs?: number; leaseMs?: number } = {}): UserMoves {
  return new UserMoves({
    registry,
    store,
    kicker: new Kicker(registry),
    loginWaitMs: () => o.loginWaitMs ?? 5_000,
    leaseMs: () => o.leaseMs ?? 60_000,
    drainTimeoutMs: () => o.drainTimeoutMs ?? 60_000,
    pollMs: 5,
  });
}

const loginEnd = (backendName: string | null): LoginEvent => ({
  protocol: 'imap',
  user: USER,
  failure: null,
  backend: backendName,
  durationMs: 1,
  abandoned: false,
});

/** A store whose setPlacement waits until the test lets it go on. */
function gateSetPlacement(): { entered: Promise<void>; open: () => void } {
  const real = store.setPlacement.bind(store);
  let open!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const enteredP = new Promise<void>((r) => (entered = r));
  store.setPlacement = async (...args) => {
    entered();
    await gate;
    return real(...args);
  };
  return { entered: enteredP, open };
}

beforeEach(async () => {
  store = openSqliteStore(':memory:');
  registry = new SessionRegistry();
  kicked = [];
  await store.addBackend(backend('a'));
  await store.addBackend(backend('b'));
  await store.addUser(USER, '$scrypt$x');
  await store.setPlacement(USER, 'a', 'assigned');
});

afterEach(async () => {
  await store.close();
});

test("a move closes the user's sessions, not others', and then changes the placement", async () => {
  session('s1', USER);
  session('s2', USER);
  session('other', 'bob@example.org');
  const r = await moves().move(USER, 'b');
  expect(r).toMatchObject({ user: USER, from: 'a', to: 'b', kicked: 2, unchanged: false });
  expect(kicked.sort()).toEqual(['s1', 's2']);
  expect(registry.list().map((s) => s.id)).toEqual(['other']);
  expect(await store.getPlacement(USER)).toMatchObject({ backend: 'b', source: 'assigned' });
});

test('a login during the move waits for it and goes to the new backend', async () => {
  const m = moves();
  const locator = m.wrap(createLocator(store));
  const gate = gateSetPlacement();
  const moving = m.move(USER, 'b');
  await gate.entered;
  expect(m.isMoving(USER)).toBe(true);
  let located: Awaited<ReturnType<Locator['locate']>> | undefined;
  const login = locator.locate(USER, 'imap').then((r) => (located = r));
  // Still held: the locator has not answered while the placement is being written.
  await new Promise((r) => setImmediate(r));
  expect(located).toBeUndefined();
  gate.open();
  await moving;
  await login;
  expect(located).toMatchObject({ ok: true, backend: { name: 'b' } });
});

test('with moveLoginWaitMs 0 a login during the move gets a temporary failure, and one after it the new backend', async () => {
  await store.addUser('bob@example.org', '$scrypt$x');
  await store.setPlacement('bob@example.org', 'a', 'assigned');
  const m = moves({ loginWaitMs: 0 });
  const locator = m.wrap(createLocator(store));
  const gate = gateSetPlacement();
  const moving = m.move(USER, 'b');
  await gate.entered;
  expect(await locator.locate(USER, 'imap')).toEqual({ ok: false, kind: 'tempfail', reason: `${USER} is being moved to another backend` });
  // Other users are not held.
  expect(await locator.locate('bob@example.org', 'imap')).toMatchObject({ ok: true, backend: { name: 'a' } });
  gate.open();
  await moving;
  expect(await locator.locate(USER, 'imap')).toMatchObject({ ok: true, backend: { name: 'b' } });
});

test('a login located before the lock holds the move until it ends; a successful one is closed too', async () => {
  const m = moves();
  const locator = m.wrap(createLocator(store));
  // Located on a, its backend login still under way.
  expect(await locator.locate(USER, 'imap')).toMatchObject({ ok: true, backend: { name: 'a' } });
  let done = false;
  const moving = m.move(USER, 'b').then((r) => {
    done = true;
    return r;
  });
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
  expect(done).toBe(false);
  expect((await store.getPlacement(USER))!.backend).toBe('a');
  // The login succeeds: the driver reports it and the session is in the registry in the same tick.
  session('late', USER);
  m.onLogin(loginEnd('a'));
  const r = await moving;
  expect(kicked).toEqual(['late']);
  expect(r).toMatchObject({ from: 'a', to: 'b', kicked: 1 });
  expect((await store.getPlacement(USER))!.backend).toBe('b');
});

test('a login whose locator failed holds nothing', async () => {
  const m = moves();
  const failing: Locator = { locate: async () => ({ ok: false, kind: 'no-backend', reason: 'none' }) };
  expect((await m.wrap(failing).locate(USER, 'imap')).ok).toBe(false);
  await expect(m.move(USER, 'b')).resolves.toMatchObject({ kicked: 0, to: 'b' });
});

test('a located login whose end is never reported is waited for only leaseMs', async () => {
  const m = moves({ leaseMs: 30 });
  await m.wrap(createLocator(store)).locate(USER, 'imap');
  await expect(m.move(USER, 'b')).resolves.toMatchObject({ to: 'b' });
});

test('sessions that do not go away: the move gives up, changes nothing and lets logins through again', async () => {
  session('stuck', USER, { sticky: true });
  const m = moves({ drainTimeoutMs: 50 });
  const err = await m.move(USER, 'b').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MoveError);
  expect((err as MoveError).code).toBe('timeout');
  expect(kicked).toEqual(['stuck']);
  expect((await store.getPlacement(USER))!.backend).toBe('a');
  expect(m.isMoving(USER)).toBe(false);
});

test('a second move of the same user while one runs is refused; an unknown backend too', async () => {
  const m = moves();
  const gate = gateSetPlacement();
  const first = m.move(USER, 'b');
  await gate.entered;
  await expect(m.move(USER, 'a')).rejects.toMatchObject({ code: 'busy' });
  gate.open();
  await first;
  await expect(m.move(USER, 'nope')).rejects.toMatchObject({ code: 'not-found' });
});

test('moving to the backend the user is assigned to already closes nothing', async () => {
  session('s1', USER);
  await expect(moves().move(USER, 'a')).resolves.toMatchObject({ unchanged: true, kicked: 0 });
  expect(kicked).toEqual([]);
});
