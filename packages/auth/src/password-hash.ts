import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { AuthError } from './errors';

/**
 * scrypt cost. N = 2^ln; memory ≈ 128·N·r bytes per hash.
 *
 * ln=14, r=12, p=1 uses 24 MiB and costs ≈ 45–48 ms on the reference host
 * (AMD EPYC, Node 20), inside the 30–60 ms budget for a login. The ln=15, r=8
 * of common guides costs ≈ 157 ms there, not the 2× of ln=14, r=8 (≈ 31 ms):
 * most likely 32 MiB no longer fits the cache. Raising r rather than p buys
 * memory hardness, which is what slows GPU guessing; p only buys time.
 *
 * Encoded hashes carry their parameters, so raising these later leaves old
 * hashes valid.
 */
export interface ScryptParams {
  /** log2 of N, the CPU/memory cost */
  ln: number;
  /** block size */
  r: number;
  /** parallelism */
  p: number;
}

export const SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ ln: 14, r: 12, p: 1 });

const SALT_BYTES = 16;
const HASH_BYTES = 32;

/**
 * Bounds for hashes read from the store. The store is ours, but a tampered
 * or mistyped row must not make every login allocate gigabytes.
 */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

/** What Node's scrypt allocates (OpenSSL: 128·r·(N+2) bytes for V, 128·r·p for B). */
function scryptMemory(N: number, r: number, p: number): number {
  return 128 * r * (N + 2) + 128 * r * p;
}

function scryptAsync(password: string, salt: Buffer, keylen: number, { ln, r, p }: ScryptParams): Promise<Buffer> {
  const N = 2 ** ln;
  // Node refuses anything above maxmem (default 32 MiB); allow what these parameters need.
  const maxmem = scryptMemory(N, r, p) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    // Async: runs on the libuv pool, so one login's hash does not stall every other session.
    scrypt(password, salt, keylen, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Unpadded standard base64, as in the PHC string format. */
function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

function decodeB64(what: string, s: string): Buffer {
  const buf = Buffer.from(s, 'base64');
  // Buffer.from ignores junk; re-encoding catches it and non-canonical forms.
  if (b64(buf) !== s) throw new AuthError('malformed-hash', `${what} is not canonical base64`);
  return buf;
}

export interface ParsedPasswordHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

const ENCODED = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** Parse `$scrypt$ln=14,r=12,p=1$<salt>$<hash>`. Throws AuthError 'malformed-hash'. */
export function parsePasswordHash(encoded: string): ParsedPasswordHash {
  const m = typeof encoded === 'string' ? ENCODED.exec(encoded) : null;
  // The message never quotes the input: it is a secret-derived value.
  if (!m) throw new AuthError('malformed-hash', 'password hash is not in $scrypt$ln=…,r=…,p=…$salt$hash form');
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const problem = checkParams(params);
  if (problem) throw new AuthError('malformed-hash', problem);
  const salt = decodeB64('salt', m[4]!);
  const hash = decodeB64('hash', m[5]!);
  if (salt.length < 8 || salt.length > 64) throw new AuthError('malformed-hash', 'salt must be 8–64 bytes');
  if (hash.length < 16 || hash.length > 64) throw new AuthError('malformed-hash', 'hash must be 16–64 bytes');
  return { params, salt, hash };
}

function checkParams({ ln, r, p }: ScryptParams): string | undefined {
  const ok =
    [ln, r, p].every(Number.isInteger) &&
    ln >= 1 && ln <= MAX_LN && r >= 1 && r <= MAX_R && p >= 1 && p <= MAX_P &&
    scryptMemory(2 ** ln, r, p) <= MAX_SCRYPT_MEMORY;
  return ok ? undefined : `scrypt parameters ln=${ln},r=${r},p=${p} are outside the accepted bounds`;
}

/** Hash a password with a fresh random salt. */
export async function hashPassword(password: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
  // Never write a hash that verifyPassword would refuse to read back.
  const problem = checkParams(params);
  if (problem) throw new AuthError('invalid-option', problem);
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password, salt, HASH_BYTES, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`;
}

/**
 * Check a password against an encoded hash, in time that does not depend on
 * where the two differ. Rejects with AuthError 'malformed-hash' for an
 * unparseable encoding (a broken store row, not a wrong password).
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const { params, salt, hash } = parsePasswordHash(encoded);
  const derived = await scryptAsync(password, salt, hash.length, params);
  return timingSafeEqual(derived, hash);
}

let dummy: Promise<string> | undefined;

/**
 * A hash of a random password nobody knows, with the current parameters.
 * Verifying a password for an unknown user against it costs the same as for
 * a real user, so response time does not reveal which names exist.
 * Computed once, on first use.
 */
export function dummyHash(): Promise<string> {
  if (!dummy) {
    dummy = hashPassword(randomBytes(32).toString('base64'));
    dummy.catch(() => (dummy = undefined)); // let a later call retry
  }
  return dummy;
}
