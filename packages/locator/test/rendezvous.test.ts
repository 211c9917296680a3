import { rendezvousPick, rendezvousScore } from '@mailfront/locator';
import { pickHighest } from '../src/rendezvous';

const users = (n: number, prefix = 'user') => Array.from({ length: n }, (_, i) => `${prefix}${i}@example.org`);

function tally(picks: (string | undefined)[]): Map<string | undefined, number> {
  const m = new Map<string | undefined, number>();
  for (const p of picks) m.set(p, (m.get(p) ?? 0) + 1);
  return m;
}

describe('rendezvousScore', () => {
  test('is the first 8 bytes of SHA-256(backend NUL user), pinned so it never drifts between versions', () => {
    // Values computed independently: sha256("b1\0alice")[0..8] as a big-endian u64.
    expect(rendezvousScore('alice', 'b1')).toBe(11036408689872176519n);
    expect(rendezvousScore('bob@example.org', 'imap-2.example.net')).toBe(18177904317193148221n);
  });

  test('separates user and backend', () => {
    expect(rendezvousScore('c', 'ab')).not.toBe(rendezvousScore('bc', 'a'));
  });
});

describe('rendezvousPick', () => {
  const four = ['b1', 'b2', 'b3', 'b4'];

  test('none to pick from → undefined; one → that one', () => {
    expect(rendezvousPick('alice', [])).toBeUndefined();
    expect(rendezvousPick('alice', ['only'])).toBe('only');
  });

  test('depends only on the user and the set, not on the order of candidates', () => {
    const reversed = [...four].reverse();
    const rotated = [...four.slice(2), ...four.slice(0, 2)];
    for (const u of users(1000)) {
      const pick = rendezvousPick(u, four);
      expect(rendezvousPick(u, reversed)).toBe(pick);
      expect(rendezvousPick(u, rotated)).toBe(pick);
    }
  });

  test('spreads 10 000 users over 4 backends within ±10 %', () => {
    const counts = tally(users(10_000).map((u) => rendezvousPick(u, four)));
    expect([...counts.keys()].sort()).toEqual(four);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThanOrEqual(2250);
      expect(n).toBeLessThanOrEqual(2750);
    }
  });

  test('a 5th backend takes about 1/5 of the users, all from the others, and moves no one else', () => {
    const all = users(10_000);
    const five = [...four, 'b5'];
    let moved = 0;
    for (const u of all) {
      const before = rendezvousPick(u, four);
      const after = rendezvousPick(u, five);
      if (after !== before) {
        moved++;
        expect(after).toBe('b5'); // a user only ever moves to the newcomer
      }
    }
    expect(moved / all.length).toBeGreaterThan(0.18);
    expect(moved / all.length).toBeLessThan(0.22);
  });

  test('removing a backend moves only its own users', () => {
    for (const u of users(2000)) {
      const before = rendezvousPick(u, four)!;
      const after = rendezvousPick(
        u,
        four.filter((b) => b !== 'b3'),
      );
      if (before !== 'b3') expect(after).toBe(before);
      else expect(after).not.toBe('b3');
    }
  });
});

describe('pickHighest', () => {
  test('breaks ties by name, whatever the order', () => {
    const flat = () => 7n;
    expect(pickHighest(['m', 'c', 'x'], flat)).toBe('c');
    expect(pickHighest(['x', 'm', 'c'], flat)).toBe('c');
    const scores: Record<string, bigint> = { a: 1n, b: 9n, c: 9n };
    expect(pickHighest(['c', 'a', 'b'], (n) => scores[n]!)).toBe('b');
  });

  test('handles the full 64-bit range', () => {
    const scores: Record<string, bigint> = { zero: 0n, max: 2n ** 64n - 1n };
    expect(pickHighest(['zero', 'max'], (n) => scores[n]!)).toBe('max');
    expect(pickHighest(['zero'], (n) => scores[n]!)).toBe('zero');
  });
});
