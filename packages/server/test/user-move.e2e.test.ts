/**
 * `mailfront user move` on a running server, with two real Dovecots that do
 * NOT share storage (moving the data is dsync's job, not mailfront's). What
 * it proves, and all it proves:
 *
 * - a session open on the old backend when the move starts is closed (with
 *   `* BYE` when quiet) and cannot write there after the move;
 * - while the move is under way a new login of the user is refused with a
 *   temporary failure (`NO [UNAVAILABLE]`): the client learns its APPEND was
 *   not done, nothing is lost silently, and it retries;
 * - after the move new logins land on the new backend;
 * - every APPEND that got OK is on the backend it was written to: those
 *   before the move on the old one, those after on the new one; none on both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImapFlow } from 'imapflow';
import { runCliCaptured } from '@mailfront/cli';
import { openSqliteStore, type Store } from '@mailfront/store';
import { makeTempDir, rawConnect, startDovecot, type Dovecot, type RawClient, type TempDir } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

const ALICE = { name: 'alice@example.org', password: 'move-alice-pw' };

let a: Dovecot;
let b: Dovecot;
let mf: MailfrontUnderTest;
let store: Store;
let tmp: TempDir;
/** Lets the test hold the move between "sessions closed" and "placement written". */
interface Gate {
  enter(): void;
  entered: Promise<void>;
  released: Promise<void>;
  open(): void;
}
let gate: Gate | null = null;

beforeAll(async () => {
  [a, b] = await Promise.all([startDovecot({ users: [ALICE] }), startDovecot({ users: [ALICE] })]);
  tmp = await makeTempDir('mailfront-move-');
  // A real SQLite store whose placement write can be held, as a busy database would hold it.
  store = openSqliteStore(path.join(tmp.path, 'mailfront.db'));
  const setPlacement = store.setPlacement.bind(store);
  store.setPlacement = async (...args) => {
    const g = gate;
    if (g) {
      g.enter();
      await g.released;
    }
    return setPlacement(...args);
  };
  mf = await startMailfront({
    store,
    backends: [
      { name: 'A', host: '127.0.0.1', ports: { imap: a.ports.imap, pop3: null, submission: null } },
      { name: 'B', host: '127.0.0.1', ports: { imap: b.ports.imap, pop3: null, submission: null } },
    ],
    users: [{ ...ALICE, backend: 'A' }],
    // A login during the move is answered at once: the test sees the temporary failure without waiting.
    config: { admin: { moveLoginWaitMs: 0 }, penalties: { threshold: 0 } },
  });
}, 60_000);

afterAll(async () => {
  await mf?.stop();
  await store?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await tmp?.cleanup();
});

function holdPlacementWrite(): Gate {
  let enter!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  const released = new Promise<void>((r) => (release = r));
  gate = {
    enter,
    entered,
    released,
    open() {
      gate = null;
      release();
    },
  };
  return gate;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const conf = path.join(tmp.path, 'cli.yaml');
  fs.writeFileSync(conf, `dataDir: ${path.join(mf.dir.path, 'var')}\nstore: { path: ${path.join(tmp.path, 'mailfront.db')} }\n`);
  return runCliCaptured(['--config', conf, ...args], { cwd: tmp.path, stdin: process.stdin });
}

const message = (subject: string) => Buffer.from(`From: alice@example.org\r\nSubject: ${subject}\r\n\r\n${subject}\r\n`);

function viaMailfront(): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: mf.port('imap', 'implicit'),
    secure: true,
    auth: { user: ALICE.name, pass: ALICE.password },
    tls: { ca: mf.certPem, servername: 'localhost' },
    logger: false,
    disableAutoIdle: true,
  });
}

/** The subjects in INBOX, read directly from one Dovecot. */
async function subjectsOn(d: Dovecot): Promise<string[]> {
  const c = new ImapFlow({ host: '127.0.0.1', port: d.ports.imap, secure: false, doSTARTTLS: true, auth: { user: ALICE.name, pass: ALICE.password }, tls: { ca: d.caPem, servername: 'localhost' }, logger: false });
  await c.connect();
  const lock = await c.getMailboxLock('INBOX');
  const out: string[] = [];
  try {
    for await (const m of c.fetch('1:*', { envelope: true })) out.push(m.envelope!.subject!);
  } catch (e) {
    // An empty mailbox has no 1:*.
    if (!/Invalid messageset|no messages/i.test(String((e as Error).message))) throw e;
  } finally {
    lock.release();
  }
  await c.logout();
  return out.sort();
}

async function rawLogin(): Promise<{ c: RawClient; answer: string }> {
  const c = await rawConnect({ port: mf.port('imap', 'implicit'), tls: true, ca: mf.certPem });
  await c.readLine();
  const lines = await c.command(`a1 LOGIN "${ALICE.name}" "${ALICE.password}"`);
  return { c, answer: lines[lines.length - 1]! };
}

test('a move closes the old session, refuses logins meanwhile, and every OK append is on the backend it went to', async () => {
  const okOn: Record<'A' | 'B', string[]> = { A: [], B: [] };

  // Before the move: two appends through mailfront land on A.
  const before = viaMailfront();
  await before.connect();
  for (const s of ['before-1', 'before-2']) {
    await before.append('INBOX', message(s));
    okOn.A.push(s);
  }
  // A second session stays open on A, between commands.
  const open = await rawLogin();
  expect(open.answer).toMatch(/^a1 OK/);
  await before.logout();
  await new Promise((r) => setTimeout(r, 400));

  // The move: hold it after the sessions are closed, before the placement is written.
  const hold = holdPlacementWrite();
  const moving = cli(['user', 'move', ALICE.name, 'B']);
  await hold.entered;

  // The open session was closed politely and can write nothing more to A.
  expect((await open.c.waitForClose()).toString()).toBe('* BYE Disconnected by administrator.\r\n');
  await expect(open.c.command('a2 APPEND INBOX {5+}\r\nhello')).rejects.toThrow();
  // A login during the move: a temporary failure, not a session on A.
  const during = await rawLogin();
  expect(during.answer).toBe('a1 NO [UNAVAILABLE] Temporary failure, please try again later.');
  await during.c.close();
  const duringFlow = viaMailfront();
  await expect(duringFlow.connect()).rejects.toThrow();

  hold.open();
  const r = await moving;
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^user ${ALICE.name} assigned to backend B from A; 1 session closed; logins held \\d+ ms\\n$`));

  // The client retries after the move: its appends land on B.
  const after = viaMailfront();
  await after.connect();
  for (const s of ['during-retried', 'after-1']) {
    await after.append('INBOX', message(s));
    okOn.B.push(s);
  }
  await after.logout();

  expect(await subjectsOn(a)).toEqual(okOn.A.sort());
  expect(await subjectsOn(b)).toEqual(okOn.B.sort());
  expect((await store.getPlacement(ALICE.name))?.backend).toBe('B');
  await mf.waitForLog(/"msg":"admin: user moved"/);
});

test('without a server the CLI changes the store only, and says so', async () => {
  const r = await cli(['user', 'move', ALICE.name, 'A', '--admin-socket', path.join(tmp.path, 'none.sock')]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/no mailfront server is running.*changing the store only/);
  expect(r.stdout).toMatch(/assigned to backend A from B .*no server running/);
  expect((await store.getPlacement(ALICE.name))?.backend).toBe('A');
});

test('moving to a backend that does not exist is refused and changes nothing', async () => {
  const r = await cli(['user', 'move', ALICE.name, 'nowhere']);
  expect(r.code).toBe(1);
  expect((await store.getPlacement(ALICE.name))?.backend).toBe('A');
});
