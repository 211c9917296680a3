import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing: each backend scores each user,
 * the highest score wins. Every node with the same backend set picks the same
 * backend without talking to the others, and adding a backend takes away
 * only the users it now outscores (≈ 1/n of them), leaving the rest where
 * they were.
 *
 * The score is the first 8 bytes of SHA-256(backend NUL user), big-endian:
 * defined by the bytes alone, so it is the same on every process, platform
 * and Node version. Placements are stored anyway; the score only decides
 * where a user with no placement goes.
 */
export function rendezvousScore(user: string, backend: string): bigint {
  // NUL cannot occur in a canonical user name, so the pair is unambiguous.
  return createHash('sha256').update(backend).update('\0').update(user).digest().readBigUInt64BE(0);
}

/** The candidate with the highest score for `user`; undefined if there are none. */
export function rendezvousPick(user: string, candidates: readonly string[]): string | undefined {
  return pickHighest(candidates, (backend) => rendezvousScore(user, backend));
}

/**
 * The candidate with the highest score; a tie (1 in 2^64 per pair) goes to
 * the name that sorts first by code unit, so the result never depends on the
 * order of `candidates`. Exported for tests of that rule.
 */
export function pickHighest(candidates: readonly string[], score: (name: string) => bigint): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const name of candidates) {
    const s = score(name);
    if (s > bestScore || (s === bestScore && best !== undefined && name < best)) {
      best = name;
      bestScore = s;
    }
  }
  return best;
}
