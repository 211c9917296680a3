import { StoreError } from '../types';

/**
 * PostgreSQL errors → StoreError, by SQLSTATE class (PostgreSQL manual,
 * Appendix A). 'unavailable' is what the auth core and the locator turn into
 * a temporary failure: it must cover every "the database cannot answer right
 * now" and nothing that a retry would not fix.
 */
const UNAVAILABLE_CLASSES = [
  '08', // connection exception
  '28', // invalid authorization (wrong password file, role gone): the operator's to fix, not the client's fault
  '3D', // the database does not exist (yet)
  '40', // serialization failure, deadlock: retry
  '53', // insufficient resources (too many connections, disk full, out of memory)
  '57', // operator intervention: query canceled (statement_timeout), admin/crash shutdown, cannot connect now
  '58', // system error (I/O)
  'XX', // internal error, data corrupted
];
/** 55P03 lock_not_available (lock_timeout), 55006 object in use. */
const UNAVAILABLE_CODES = new Set(['55P03', '55006']);

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Errors from the driver itself rather than the server: the connection could
 * not be made, broke, or timed out. pg gives these no code, only a message.
 */
const DRIVER_UNAVAILABLE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|not queryable|Cannot use a pool after calling end|Client was closed|read ECONNRESET|socket hang up|The server does not support SSL/i;

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

/** Whether the error says the database could not be reached or could not answer now. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreError) return err.code === 'unavailable';
  const state = sqlState(err);
  if (state !== undefined) return UNAVAILABLE_CLASSES.includes(state.slice(0, 2)) || UNAVAILABLE_CODES.has(state);
  const e = err as { code?: unknown; message?: unknown } | null;
  // Socket and DNS errors (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENOTFOUND, EAI_AGAIN, …) and fs errors reading the password file.
  if (typeof e?.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return true;
  return typeof e?.message === 'string' && DRIVER_UNAVAILABLE.test(e.message);
}

/**
 * A StoreError for `err`, or `err` itself when it is neither a database nor a
 * connection error (a bug: let it surface as it is). Constraint violations
 * that an operation expects ('exists', 'not-found') are mapped by the
 * operation, which knows what the constraint means; the rest land here.
 */
export function translate(err: unknown, context: string): unknown {
  if (err instanceof StoreError) return err;
  const message = (err as { message?: unknown } | null)?.message;
  const text = `${context}: ${typeof message === 'string' ? message : String(err)}`;
  if (isUnavailable(err)) return withCause(new StoreError('unavailable', text), err);
  const state = sqlState(err);
  if (state === '23505') return withCause(new StoreError('exists', text), err);
  if (state === '23503') return withCause(new StoreError('not-found', text), err);
  // Integrity constraints (CHECK, NOT NULL) and data exceptions (a NUL in a string, a number out of range).
  if (state !== undefined && (state.startsWith('23') || state.startsWith('22'))) return withCause(new StoreError('invalid', text), err);
  return err;
}

function withCause(e: StoreError, cause: unknown): StoreError {
  e.cause = cause;
  return e;
}
