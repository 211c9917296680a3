// Runs jest and ends with one plain line, "N passed, N failed", taken from
// jest's own counts (CI reads that line, not jest's summary).
//
// Then the secrets audit of the whole run (issue 6): the testkit records
// every password it hands to Dovecot, slapd and mailfront's store, and the
// e2e harness keeps every mailfront log, in MAILFRONT_TEST_AUDIT_DIR; no log
// may hold a password, nor the base64 a client sends of it (AUTH LOGIN's
// password, AUTH PLAIN's NUL user NUL password). A leak counts as a failed
// test.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'mailfront-jest-'));
const out = join(dir, 'results.json');
const audit = join(dir, 'audit');
spawnSync('mkdir', ['-m', '0700', audit]);
const jest = spawnSync(
  process.execPath,
  ['node_modules/jest/bin/jest.js', '--json', `--outputFile=${out}`, ...process.argv.slice(2)],
  { stdio: 'inherit', env: { ...process.env, MAILFRONT_TEST_AUDIT_DIR: audit } },
);
let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(readFileSync(out, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
} catch {
  failed = Math.max(failed, 1);
}
const leaks = auditSecrets(audit);
if (leaks > 0) failed += 1;
rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(jest.status === 0 && failed === 0 ? 0 : 1);

/** Prints what it checked; returns how many (secret, log) pairs leaked. */
function auditSecrets(auditDir) {
  const secretsFile = join(auditDir, 'secrets.jsonl');
  const logs = readdirSync(auditDir).filter((f) => f.endsWith('.log'));
  if (!existsSync(secretsFile) || logs.length === 0) {
    console.log(`secrets audit: nothing to check (${logs.length} logs${existsSync(secretsFile) ? '' : ', no secrets recorded'})`);
    return 0;
  }
  const needles = new Map();
  for (const line of readFileSync(secretsFile, 'utf8').split('\n')) {
    if (!line) continue;
    const { user, password } = JSON.parse(line);
    const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
    needles.set(password, `the password of ${user}`);
    needles.set(b64(password), `${user}'s password in base64 (AUTH LOGIN)`);
    needles.set(b64(`\0${user}\0${password}`), `${user}'s AUTH PLAIN payload`);
  }
  let bytes = 0;
  let leaks = 0;
  for (const f of logs) {
    const text = readFileSync(join(auditDir, f), 'utf8');
    bytes += text.length;
    for (const [needle, what] of needles) {
      if (text.includes(needle)) {
        leaks++;
        console.log(`secrets audit: ${what} is in mailfront's log ${f}`);
      }
    }
  }
  console.log(`secrets audit: ${needles.size} strings (passwords and their SASL encodings) looked for in ${logs.length} mailfront logs (${(bytes / 1e6).toFixed(1)} MB): ${leaks === 0 ? 'none found' : `${leaks} found`}`);
  return leaks;
}
