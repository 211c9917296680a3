import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The secrets audit of a whole test run (issue 6: "a test greps the logs of
 * a full test run for the test passwords"). When `pnpm test` sets
 * MAILFRONT_TEST_AUDIT_DIR, every password the testkit hands to a server
 * (Dovecot's passwd-file, slapd's entries, mailfront's store in the e2e
 * harness) is appended to `secrets.jsonl` there, and the e2e harness writes
 * mailfront's log into that directory instead of a temp dir that is removed.
 * After jest, scripts/run-tests.mjs looks for every secret, and the SASL
 * encodings a client would send of it, in every log: one found is a failed
 * test. Without the variable (a single jest run) nothing is recorded.
 */
export const AUDIT_DIR_ENV = 'MAILFRONT_TEST_AUDIT_DIR';

/** Shorter secrets would match by chance (a port number, a word of a log line). */
const MIN_SECRET_LENGTH = 6;

function auditDir(): string | undefined {
  const dir = process.env[AUDIT_DIR_ENV];
  return dir && fs.existsSync(dir) ? dir : undefined;
}

/** Records users' passwords (with their names, for the SASL PLAIN encodings); O_APPEND, so jest's workers can share the file. */
export function recordSecrets(users: ReadonlyArray<{ name: string; password: string }>): void {
  const dir = auditDir();
  if (!dir) return;
  const lines = users.filter((u) => u.password.length >= MIN_SECRET_LENGTH).map((u) => `${JSON.stringify({ user: u.name, password: u.password })}\n`);
  if (lines.length) fs.appendFileSync(path.join(dir, 'secrets.jsonl'), lines.join(''), { mode: 0o600 });
}

let logSeq = 0;

/** A fresh file for one mailfront log inside the audit directory, or undefined when there is no audit. */
export function auditLogFile(label: string): string | undefined {
  const dir = auditDir();
  if (!dir) return undefined;
  const safe = label.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60);
  return path.join(dir, `${safe}-${process.pid}-${++logSeq}.log`);
}
