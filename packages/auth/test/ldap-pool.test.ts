import { InvalidCredentialsError } from 'ldapts';
import { AuthError, LdapPool, parseLdapUrl, type LdapConnection } from '@mailfront/auth';

/** A stand-in connection: only what the pool looks at. */
function fakeConnection(id: number): LdapConnection & { id: number; destroyed: boolean; alive: boolean } {
  const c = {
    id,
    destroyed: false,
    alive: true,
    client: {} as LdapConnection['client'],
    url: 'ldap://fake/',
    open: () => c.alive && !c.destroyed,
    destroy: () => void (c.destroyed = true),
  };
  return c;
}

function pool(size: number, waitTimeoutMs = 1_000) {
  const made: Array<ReturnType<typeof fakeConnection>> = [];
  const p = new LdapPool({
    name: 'test',
    size,
    waitTimeoutMs,
    open: async () => {
      const c = fakeConnection(made.length + 1);
      made.push(c);
      return c;
    },
    reusable: (c) => c.open(),
  });
  return { p, made };
}

const ids = (c: LdapConnection) => Promise.resolve((c as unknown as { id: number }).id);

describe('LdapPool', () => {
  test('a connection is reused while it stays open', async () => {
    const { p, made } = pool(2);
    expect([await p.use(ids), await p.use(ids), await p.use(ids)]).toEqual([1, 1, 1]);
    expect(p.opened).toBe(1);
    made[0]!.alive = false; // the server closed it while idle
    expect(await p.use(ids)).toBe(2);
    expect(made[0]!.destroyed).toBe(true);
  });

  test('an LDAP result keeps the connection; any other error drops it', async () => {
    const { p, made } = pool(1);
    await expect(p.use(() => Promise.reject(new InvalidCredentialsError()))).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(made[0]!.destroyed).toBe(false);
    expect(p.idleCount).toBe(1);
    // A reused connection failing at the socket level: one more try on a fresh one.
    let calls = 0;
    const r = await p.use(async (c) => {
      calls++;
      if (calls === 1) throw new Error('Connection closed before message response was received');
      return ids(c);
    });
    expect([r, calls]).toEqual([2, 2]);
    expect(made[0]!.destroyed).toBe(true);
  });

  test('a timeout is not retried (it would double the wait), and the connection is dropped', async () => {
    const { p, made } = pool(1);
    await p.use(ids);
    let calls = 0;
    await expect(
      p.use(async () => {
        calls++;
        throw new Error('SearchRequest: Operation timed out');
      }),
    ).rejects.toThrow('timed out');
    expect(calls).toBe(1);
    expect(made[0]!.destroyed).toBe(true);
    expect(p.idleCount).toBe(0);
  });

  test('a fresh connection failing is not retried', async () => {
    const { p } = pool(1);
    let calls = 0;
    await expect(
      p.use(async () => {
        calls++;
        throw new Error('ECONNRESET');
      }),
    ).rejects.toThrow('ECONNRESET');
    expect(calls).toBe(1);
  });

  test('at most `size` connections; callers wait in order for a free one', async () => {
    const { p } = pool(2);
    const order: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const busy = [p.use(() => gate), p.use(() => gate)];
    const waiting = [1, 2, 3].map((n) => p.use(async () => void order.push(n)));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    release();
    await Promise.all([...busy, ...waiting]);
    expect(order).toEqual([1, 2, 3]);
    expect(p.opened).toBe(2);
  });

  test('a caller that waits too long gets directory-unavailable, and the slot is not lost', async () => {
    const { p } = pool(1, 50);
    let release!: () => void;
    const busy = p.use(() => new Promise<void>((r) => (release = r)));
    const err = await p.use(ids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('directory-unavailable');
    expect((err as Error).message).toBe('all 1 test connections stayed busy for 50 ms');
    release();
    await busy;
    expect(await p.use(ids)).toBe(1);
  });

  test('an open that fails frees its slot', async () => {
    let fail = true;
    const p = new LdapPool({
      name: 'test',
      size: 1,
      waitTimeoutMs: 50,
      open: async () => {
        if (fail) throw new AuthError('directory-unavailable', 'no directory server reachable');
        return fakeConnection(7);
      },
      reusable: (c) => c.open(),
    });
    await expect(p.use(ids)).rejects.toThrow('no directory server reachable');
    fail = false;
    expect(await p.use(ids)).toBe(7);
  });

  test('close() drops idle connections, and busy ones when they come back', async () => {
    const { p, made } = pool(2);
    let release!: () => void;
    const busy = p.use(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setImmediate(r));
    expect(await p.use(ids)).toBe(2); // now idle
    p.close();
    expect(made.map((c) => c.destroyed)).toEqual([false, true]);
    release();
    await busy;
    expect(made.map((c) => c.destroyed)).toEqual([true, true]);
    await expect(p.use(ids)).rejects.toThrow('the test pool is closed');
  });
});

describe('parseLdapUrl', () => {
  test.each([
    ['ldap://ldap.example.org', { host: 'ldap.example.org', port: 389, implicitTls: false }],
    ['ldaps://ldap.example.org/', { host: 'ldap.example.org', port: 636, implicitTls: true }],
    ['ldap://[::1]:3389/', { host: '::1', port: 3389, implicitTls: false }],
  ])('%s', (url, parts) => {
    expect(parseLdapUrl(url)).toEqual({ url, ...parts });
  });

  test.each(['http://x/', 'ldap://x/dc=example,dc=org', 'ldap://x/??sub', 'ldap://user:pw@x/', 'ldap:///', 'not a url'])('%s is refused', (url) => {
    expect(() => parseLdapUrl(url)).toThrow(AuthError);
  });
});
