import { AuthError, SuccessCache } from '@mailfront/auth';

function clock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('SuccessCache', () => {
  test('hits only for the same user and password', () => {
    const c = new SuccessCache({ now: clock().now });
    expect(c.lookup('alice', 'pw')).toBeUndefined();
    c.remember('alice', 'pw', c.epoch());
    expect(c.lookup('alice', 'pw')).toBe('alice');
    expect(c.lookup('alice', 'pw2')).toBeUndefined();
    expect(c.lookup('alice', 'PW')).toBeUndefined();
    expect(c.lookup('bob', 'pw')).toBeUndefined();
    // The separator keeps ("alic", "epw") from colliding with ("alice", "pw").
    expect(c.lookup('alic', 'epw')).toBeUndefined();
  });

  test('keys are HMAC-SHA256 digests under a per-instance key, holding neither password nor user', () => {
    const password = 'a-rather-distinctive-password';
    const a = new SuccessCache();
    const b = new SuccessCache();
    a.remember('alice', password, a.epoch());
    a.remember('alice', 'other', a.epoch());
    b.remember('alice', password, b.epoch());
    const keys = a.keys();
    expect(keys).toHaveLength(2);
    for (const k of keys) {
      expect(k).toMatch(/^[0-9a-f]{64}$/); // 32 bytes
      expect(k).not.toContain(Buffer.from(password).toString('hex'));
      expect(k).not.toContain(Buffer.from('alice').toString('hex'));
    }
    expect(keys[0]).not.toBe(keys[1]);
    // A different process key, a different digest: nothing to precompute.
    expect(b.keys()[0]).not.toBe(a.keys()[0]);
  });

  test('entries expire after ttlMs, and hits do not extend them', () => {
    const t = clock();
    const c = new SuccessCache({ ttlMs: 1000, now: t.now });
    c.remember('alice', 'pw', c.epoch());
    t.advance(600);
    expect(c.lookup('alice', 'pw')).toBe('alice');
    t.advance(399);
    expect(c.lookup('alice', 'pw')).toBe('alice');
    t.advance(1);
    expect(c.lookup('alice', 'pw')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  test('evicts the least recently used beyond maxEntries', () => {
    const c = new SuccessCache({ maxEntries: 2, now: clock().now });
    c.remember('a', 'pw', c.epoch());
    c.remember('b', 'pw', c.epoch());
    expect(c.lookup('a', 'pw')).toBe('a'); // now b is the oldest
    c.remember('c', 'pw', c.epoch());
    expect(c.size).toBe(2);
    expect(c.lookup('b', 'pw')).toBeUndefined();
    expect(c.lookup('a', 'pw')).toBe('a');
    expect(c.lookup('c', 'pw')).toBe('c');
    // The evicted user's index entry went too: invalidating b touches nothing.
    c.invalidateUser('b');
    expect(c.size).toBe(2);
  });

  test('invalidateUser drops all of that user’s entries and no one else’s', () => {
    const c = new SuccessCache({ now: clock().now });
    c.remember('alice', 'old', c.epoch());
    c.remember('alice', 'new', c.epoch());
    c.remember('bob', 'pw', c.epoch());
    c.invalidateUser('alice');
    expect(c.lookup('alice', 'old')).toBeUndefined();
    expect(c.lookup('alice', 'new')).toBeUndefined();
    expect(c.lookup('bob', 'pw')).toBe('bob');
    expect(c.size).toBe(1);
  });

  test('a verification that started before an invalidation is not cached', () => {
    const c = new SuccessCache({ now: clock().now });
    const epoch = c.epoch();
    c.invalidateUser('alice'); // e.g. `user passwd` while the old hash was being checked
    c.remember('alice', 'old', epoch);
    expect(c.lookup('alice', 'old')).toBeUndefined();
    c.remember('alice', 'new', c.epoch());
    expect(c.lookup('alice', 'new')).toBe('alice');
  });

  test('ttlMs 0 or maxEntries 0 caches nothing', () => {
    for (const opts of [{ ttlMs: 0 }, { maxEntries: 0 }]) {
      const c = new SuccessCache(opts);
      c.remember('alice', 'pw', c.epoch());
      expect(c.lookup('alice', 'pw')).toBeUndefined();
      expect(c.size).toBe(0);
    }
  });

  test.each([{ ttlMs: -1 }, { ttlMs: 1.5 }, { maxEntries: Number.NaN }, { maxEntries: Infinity }])(
    "rejects %p with 'invalid-option'",
    (opts) => {
      expect(() => new SuccessCache(opts)).toThrow(AuthError);
      expect(() => new SuccessCache(opts)).toThrow(expect.objectContaining({ code: 'invalid-option' }));
    },
  );
});
