import { BlockList } from 'node:net';
import { addressBlock, PenaltyBox } from '@mailfront/proxy-core';

function box(over: Partial<ConstructorParameters<typeof PenaltyBox>[0]> = {}) {
  let t = 1_000_000;
  const b = new PenaltyBox({ threshold: 3, baseMs: 1_000, maxMs: 8_000, forgetAfterMs: 60_000, maxEntries: 100, now: () => t, ...over });
  return { b, advance: (ms: number) => (t += ms) };
}

test('refusals start at the threshold and double up to the maximum', () => {
  const { b } = box();
  const keys = b.keysFor('192.0.2.1', 'Alice@Example.org');
  expect(keys).toEqual(['ip:192.0.2.1', 'user:alice@example.org']);
  b.recordFailure(keys);
  b.recordFailure(keys);
  expect(b.refusedFor(keys)).toBe(0);
  const periods: number[] = [];
  for (let i = 0; i < 6; i++) {
    b.recordFailure(keys);
    periods.push(b.refusedFor(keys));
  }
  expect(periods).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
});

test('a refusal ends when its period is over; old failures are forgotten', () => {
  const { b, advance } = box();
  const k = b.keysFor('192.0.2.1');
  for (let i = 0; i < 3; i++) b.recordFailure(k);
  expect(b.refusedFor(k)).toBe(1_000);
  advance(1_000);
  expect(b.refusedFor(k)).toBe(0);
  advance(60_001);
  b.recordFailure(k); // counts from zero again
  expect(b.refusedFor(k)).toBe(0);
});

test('the user key holds across addresses; a success clears only the address', () => {
  const { b } = box();
  for (let i = 0; i < 3; i++) b.recordFailure(b.keysFor(`198.51.100.${i}`, 'bob'));
  expect(b.refusedFor(b.keysFor('203.0.113.1', 'bob'))).toBeGreaterThan(0);
  expect(b.refusedFor(b.keysFor('203.0.113.1', 'carol'))).toBe(0);
  const k = b.keysFor('192.0.2.9', 'dave');
  for (let i = 0; i < 3; i++) b.recordFailure(k);
  b.recordSuccess(k);
  expect(b.refusedFor(['ip:192.0.2.9'])).toBe(0);
  expect(b.refusedFor(['user:dave'])).toBeGreaterThan(0);
});

test('IPv6 clients are counted per /64', () => {
  expect(addressBlock('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
  expect(addressBlock('2001:db8:1:2::ffff')).toBe('2001:db8:1:2::/64');
  expect(addressBlock('::1')).toBe('0:0:0:0::/64');
  const { b } = box();
  for (let i = 1; i <= 3; i++) b.recordFailure(b.keysFor(`2001:db8:1:2::${i}`));
  expect(b.refusedFor(b.keysFor('2001:db8:1:2:ffff:ffff:ffff:ffff'))).toBeGreaterThan(0);
  expect(b.refusedFor(b.keysFor('2001:db8:1:3::1'))).toBe(0);
});

test('trusted networks are never penalised', () => {
  const trusted = new BlockList();
  trusted.addSubnet('10.0.0.0', 8, 'ipv4');
  const { b } = box({ trusted });
  expect(b.keysFor('10.1.2.3', 'eve')).toEqual([]);
  expect(b.keysFor('11.1.2.3', 'eve')).toHaveLength(2);
});

test('memory is bounded: a botnet of distinct addresses keeps at most maxEntries keys', () => {
  const { b } = box({ maxEntries: 1_000 });
  for (let i = 0; i < 50_000; i++) b.recordFailure([`ip:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`]);
  expect(b.size).toBe(1_000);
  // The most recent ones are the ones kept.
  for (let i = 0; i < 2; i++) b.recordFailure(['ip:10.0.195.79']);
  expect(b.size).toBe(1_000);
});

test('threshold 0 turns penalties off', () => {
  const { b } = box({ threshold: 0 });
  const k = b.keysFor('192.0.2.1', 'x');
  for (let i = 0; i < 10; i++) b.recordFailure(k);
  expect(b.refusedFor(k)).toBe(0);
  expect(b.size).toBe(0);
});
