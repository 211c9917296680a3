/**
 * `mailfront user import FILE.csv`: good lines become users with hashed
 * passwords (and assignments); bad lines are reported by number, never with
 * their password; progress only on a terminal; a summary always.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyPassword } from '@mailfront/auth';
import { openSqliteStore } from '@mailfront/store';
import { runCliCaptured } from '../src/capture';

let tmp: string;
let conf: string;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mailfront-import-'));
  conf = join(tmp, 'mailfront.yaml');
  writeFileSync(conf, 'dataDir: data\n');
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

async function run(args: string[], stderrTty = false): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCliCaptured(['--config', conf, ...args], { cwd: tmp, stderrIsTTY: stderrTty });
}

function csv(body: string): string {
  const p = join(tmp, 'users.csv');
  writeFileSync(p, body);
  chmodSync(p, 0o600);
  return p;
}

const PASSWORDS = ['imp-pw-one', 'imp, "quoted" pw', 'imp-pw-three', 'imp-pw-dup', 'imp-pw-bad-backend', 'imp-pw-existing'];

test('good lines are imported; each bad line is named by number and without its password', async () => {
  expect((await run(['backend', 'add', 'be1', '--host', '10.0.0.1'])).code).toBe(0);
  const pwf = join(tmp, 'pw');
  writeFileSync(pwf, 'imp-pw-existing-first\n');
  expect((await run(['user', 'add', 'old@example.org', '--password-file', pwf])).code).toBe(0);
  const file = csv(
    [
      'user,password,backend',
      'one@example.org,imp-pw-one,be1',
      '"Two@Example.org","imp, ""quoted"" pw"',
      '',
      'three@example.org,imp-pw-three,',
      'one@example.org,imp-pw-dup',
      'four@example.org,imp-pw-bad-backend,nope',
      'five@example.org,',
      'old@example.org,imp-pw-existing',
      'just-one-column',
      'bad\u0001name@example.org,x',
      '',
    ].join('\r\n'),
  );
  const r = await run(['user', 'import', file]);
  const all = r.stdout + r.stderr;
  for (const pw of PASSWORDS) expect([pw, all.includes(pw)]).toEqual([pw, false]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe(`imported 3 users from ${file}; 6 lines refused\n`);
  const notes = r.stderr.split('\n').filter((l) => l.startsWith(`mailfront: ${file}:`));
  expect(notes).toEqual([
    `mailfront: ${file}:6: one@example.org: the user is on an earlier line too`,
    `mailfront: ${file}:7: four@example.org: backend nope does not exist`,
    `mailfront: ${file}:8: five@example.org: empty password`,
    `mailfront: ${file}:9: old@example.org: the user exists (change a password with mailfront user passwd)`,
    `mailfront: ${file}:10: expected 2 or 3 columns (user,password[,backend]), got 1`,
    expect.stringMatching(new RegExp(`^mailfront: ${file}:11: `)),
  ]);
  const store = openSqliteStore(join(tmp, 'data', 'mailfront.db'));
  try {
    expect(await verifyPassword('imp-pw-one', (await store.getUser('one@example.org'))!.passwordHash)).toBe(true);
    expect(await verifyPassword('imp, "quoted" pw', (await store.getUser('two@example.org'))!.passwordHash)).toBe(true);
    expect(await store.getPlacement('one@example.org')).toMatchObject({ backend: 'be1', source: 'assigned' });
    expect(await store.getPlacement('three@example.org')).toBeUndefined();
    expect(await store.getUser('four@example.org')).toBeUndefined();
    expect(await verifyPassword('imp-pw-existing-first', (await store.getUser('old@example.org'))!.passwordHash)).toBe(true);
  } finally {
    await store.close();
  }
});

test('progress on a terminal only; --json for scripts; a clean file exits 0', async () => {
  const file = csv('a@example.org,imp-pw-one\nb@example.org,imp-pw-three\n');
  const tty = await run(['user', 'import', file, '--json'], true);
  expect(tty.code).toBe(0);
  expect(JSON.parse(tty.stdout)).toEqual({ imported: 2, refused: [] });
  expect(tty.stderr).toContain('\rmailfront: importing 2/2');
  const again = csv('c@example.org,imp-pw-one\n');
  const piped = await run(['user', 'import', again]);
  expect(piped).toEqual({ code: 0, stdout: `imported 1 user from ${again}\n`, stderr: '' });
});

test('an unterminated quote stops the import before anything is added, naming the line', async () => {
  const file = csv('a@example.org,imp-pw-one\nb@example.org,"imp-pw-three\n');
  const r = await run(['user', 'import', file]);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(`mailfront: ${file}:2: a quoted field is not closed; nothing imported\n`);
  expect(r.stderr).not.toContain('imp-pw');
});

test('a file others can read is warned about', async () => {
  const file = csv('a@example.org,imp-pw-one\n');
  chmodSync(file, 0o644);
  const r = await run(['user', 'import', file]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/readable by others.*chmod 600/);
});
