// The module object itself, not an import-* copy, so jest.spyOn can wrap scrypt.
import crypto = require('node:crypto');
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canonicalUserName, createStoreAuthenticator, dummyHash, hashPassword, SCRYPT_PARAMS } from '@mailfront/auth';
import type { AuthRequest, AuthResult, StoreAuthenticator } from '@mailfront/auth';
import { openSqliteStore } from '@mailfront/store';
import type { Store } from '@mailfront/store';

const PASSWORD = 'correct horse battery staple';

let dir: string;
let store: Store;

beforeAll(async () => {
  // Warm the dummy hash once so scrypt call counts below are per login.
  await dummyHash();
});

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailfront-auth-'));
  store = openSqliteStore(path.join(dir, 'state.db'));
  await store.addUser('alice', await hashPassword(PASSWORD));
});

afterEach(async () => {
  jest.restoreAllMocks();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function req(user: string, password: string, authzid?: string): AuthRequest {
  return { user, password, authzid, protocol: 'imap', client: { address: '192.0.2.7', port: 50123 }, sessionId: 's1' };
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** Counts scrypt runs and records their cost parameters. */
function spyScrypt(): jest.SpyInstance {
  return jest.spyOn(crypto, 'scrypt');
}

function scryptCostOf(spy: jest.SpyInstance, call: number): { N: number; r: number; p: number } {
  const { N, r, p } = spy.mock.calls[call]![3] as crypto.ScryptOptions;
  return { N: N!, r: r!, p: p! };
}

describe('canonicalUserName', () => {
  test('trims and lower-cases', () => {
    expect(canonicalUserName('  Alice@Example.ORG ')).toBe('alice@example.org');
    expect(canonicalUserName('ÉLODIE')).toBe('élodie');
  });

  test.each([
    ['empty', ''],
    ['blank', '   '],
    ['NUL', 'ali\0ce'],
    ['CR LF', 'alice\r\n'],
    ['tab', 'al\tice'],
    ['DEL', 'alice\u007f'],
    ['C1 control', 'alice\u0085'],
    ['256 bytes', 'a'.repeat(256)],
    ['256 bytes of 2-byte letters', 'é'.repeat(128)],
  ])("rejects %s with 'invalid-user-name'", (_what, name) => {
    expect(() => canonicalUserName(name)).toThrow(expect.objectContaining({ code: 'invalid-user-name' }));
  });

  test('accepts exactly 255 bytes', () => {
    expect(canonicalUserName('a'.repeat(255))).toHaveLength(255);
  });
});

describe('createStoreAuthenticator', () => {
  let auth: StoreAuthenticator;
  beforeEach(() => {
    auth = createStoreAuthenticator(store, {});
  });

  test('accepts the right password under any spelling of the name', async () => {
    expect(await auth.authenticate(req('alice', PASSWORD))).toEqual({ ok: true, user: 'alice', cached: false });
    const other = createStoreAuthenticator(store, { cacheTtlMs: 0 });
    expect(await other.authenticate(req(' ALICE ', PASSWORD))).toEqual({ ok: true, user: 'alice', cached: false });
  });

  test('wrong password and unknown user look the same apart from the log reason', async () => {
    const wrong = await auth.authenticate(req('alice', 'wrong'));
    const unknown = await auth.authenticate(req('mallory', PASSWORD));
    expect(wrong).toEqual({ ok: false, kind: 'auth-failed', reason: 'password mismatch' });
    expect(unknown).toEqual({ ok: false, kind: 'auth-failed', reason: 'unknown user' });
    const strip = ({ reason: _reason, ...rest }: Extract<AuthResult, { ok: false }>) => rest;
    expect(strip(unknown as Extract<AuthResult, { ok: false }>)).toEqual(strip(wrong as Extract<AuthResult, { ok: false }>));
  });

  test('an unknown user costs the same scrypt run as a real one', async () => {
    const spy = spyScrypt();
    await auth.authenticate(req('alice', 'wrong'));
    expect(spy).toHaveBeenCalledTimes(1);
    await auth.authenticate(req('mallory', 'wrong'));
    expect(spy).toHaveBeenCalledTimes(2);
    expect(scryptCostOf(spy, 1)).toEqual(scryptCostOf(spy, 0));
    expect(scryptCostOf(spy, 0)).toEqual({ N: 2 ** SCRYPT_PARAMS.ln, r: SCRYPT_PARAMS.r, p: SCRYPT_PARAMS.p });
  });

  test('a cached success skips scrypt; a wrong password for a cached user does not', async () => {
    await auth.authenticate(req('alice', PASSWORD));
    const spy = spyScrypt();
    expect(await auth.authenticate(req('Alice', PASSWORD))).toEqual({ ok: true, user: 'alice', cached: true });
    expect(spy).not.toHaveBeenCalled();
    expect(await auth.authenticate(req('alice', 'wrong'))).toMatchObject({ ok: false, kind: 'auth-failed' });
    expect(spy).toHaveBeenCalledTimes(1);
  });

  test('failures are not cached', async () => {
    await auth.authenticate(req('alice', 'wrong'));
    const spy = spyScrypt();
    expect(await auth.authenticate(req('alice', 'wrong'))).toMatchObject({ ok: false, reason: 'password mismatch' });
    expect(spy).toHaveBeenCalledTimes(1);
  });

  test('authzid: none or the same user is fine, anyone else is refused', async () => {
    const nocache = createStoreAuthenticator(store, { cacheTtlMs: 0 });
    expect(await nocache.authenticate(req('alice', PASSWORD, ''))).toMatchObject({ ok: true });
    expect(await nocache.authenticate(req('alice', PASSWORD, ' Alice'))).toMatchObject({ ok: true });
    await store.addUser('bob', await hashPassword('bobs'));
    for (const authzid of ['bob', 'admin', 'ali\0ce']) {
      expect(await nocache.authenticate(req('alice', PASSWORD, authzid))).toEqual({
        ok: false,
        kind: 'auth-failed',
        reason: 'authzid not allowed',
      });
    }
    // Also when alice's success is cached.
    await auth.authenticate(req('alice', PASSWORD));
    expect(await auth.authenticate(req('alice', PASSWORD, 'bob'))).toMatchObject({ ok: false, reason: 'authzid not allowed' });
  });

  test("an impossible user name is 'auth-failed' without touching the store", async () => {
    const getUser = jest.spyOn(store, 'getUser');
    for (const name of ['', '  ', 'alice\0', 'a'.repeat(300)]) {
      expect(await auth.authenticate(req(name, PASSWORD))).toMatchObject({ ok: false, kind: 'auth-failed' });
    }
    expect(getUser).not.toHaveBeenCalled();
  });

  test("a store that fails gives 'auth-tempfail'", async () => {
    await store.close();
    const result = await auth.authenticate(req('alice', PASSWORD));
    expect(result).toMatchObject({ ok: false, kind: 'auth-tempfail' });
    expect((result as { reason: string }).reason).toMatch(/store/);
  });

  test("a malformed stored hash gives 'auth-tempfail', not a password mismatch", async () => {
    await store.setUserPassword('alice', '{PLAIN}secret');
    expect(await auth.authenticate(req('alice', 'secret'))).toMatchObject({
      ok: false,
      kind: 'auth-tempfail',
      reason: expect.stringMatching(/malformed/),
    });
  });

  test('a password changed in-process stops working at once after invalidateUser', async () => {
    await auth.authenticate(req('alice', PASSWORD));
    await store.setUserPassword('alice', await hashPassword('new password'));
    auth.invalidateUser(' ALICE ');
    expect(await auth.authenticate(req('alice', PASSWORD))).toMatchObject({ ok: false, reason: 'password mismatch' });
    expect(await auth.authenticate(req('alice', 'new password'))).toEqual({ ok: true, user: 'alice', cached: false });
  });

  test('a password changed elsewhere stops working once the TTL has passed', async () => {
    const t = clock();
    const a = createStoreAuthenticator(store, { cacheTtlMs: 60_000, now: t.now });
    await a.authenticate(req('alice', PASSWORD));
    await store.setUserPassword('alice', await hashPassword('new password')); // another process: no invalidate
    t.advance(59_999);
    expect(await a.authenticate(req('alice', PASSWORD))).toMatchObject({ ok: true, cached: true });
    t.advance(1);
    expect(await a.authenticate(req('alice', PASSWORD))).toMatchObject({ ok: false, reason: 'password mismatch' });
  });

  test('a removed user is refused at once after invalidateUser', async () => {
    await auth.authenticate(req('alice', PASSWORD));
    await store.removeUser('alice');
    auth.invalidateUser('alice');
    expect(await auth.authenticate(req('alice', PASSWORD))).toMatchObject({ ok: false, reason: 'unknown user' });
  });

  test('a check in flight when the user is invalidated is not cached', async () => {
    const pending = auth.authenticate(req('alice', PASSWORD)); // has read the epoch, awaits the store and scrypt
    auth.invalidateUser('alice');
    expect(await pending).toEqual({ ok: true, user: 'alice', cached: false });
    expect(await auth.authenticate(req('alice', PASSWORD))).toMatchObject({ ok: true, cached: false });
  });

  test('cacheMaxEntries bounds the cache', async () => {
    const a = createStoreAuthenticator(store, { cacheMaxEntries: 1 });
    await store.addUser('bob', await hashPassword('bobs'));
    await a.authenticate(req('alice', PASSWORD));
    await a.authenticate(req('bob', 'bobs'));
    expect(await a.authenticate(req('bob', 'bobs'))).toMatchObject({ cached: true });
    expect(await a.authenticate(req('alice', PASSWORD))).toMatchObject({ cached: false });
  });
});
