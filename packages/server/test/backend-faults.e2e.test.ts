/**
 * Backend faults end to end: real Dovecots killed, restarted and drained
 * under a running mailfront; fakes for what Dovecot does not do (accept and
 * never greet; greet and then stall). Health checks run every 200 ms here, so
 * every state is polled for with a deadline rather than slept for.
 *
 * The two Dovecots have the same users with the same passwords: in
 * production a standby reaches the same mailboxes (a replica, or shared
 * storage); here it only has to accept the same logins.
 */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BreakerPhase } from '@mailfront/locator';
import { validateConfig } from '@mailfront/server';
import type { Protocol } from '@mailfront/store';
import { rawConnect, startDovecot, type Dovecot, type RawClient } from '@mailfront/testkit';
import { startFakeBackend, type FakeBackend } from './fake-backend';
import { startMailfront, type MailfrontUnderTest } from './harness';

const ALICE = { name: 'alice@example.org', password: 'alice-pw' }; // placed on a
const BOB = { name: 'bob@example.org', password: 'bob-pw' }; // placed on b
const CAROL = { name: 'carol@example.org', password: 'carol-pw' }; // placed on b
const ERIN = { name: 'erin@example.org', password: 'erin-pw' }; // placed on the silent backend
const FRANK = { name: 'frank@example.org', password: 'frank-pw' }; // never placed: a newcomer
const USERS = [ALICE, BOB, CAROL, ERIN, FRANK];

/** Deliberately long, so that an answer in a fraction of them cannot have waited for them. */
const LONG_TIMEOUT_MS = 20_000;
const HEALTH = { intervalMs: 200, timeoutMs: 500, failuresToOpen: 2, openMs: 1_000 };
const ALL: Protocol[] = ['imap', 'pop3', 'submission'];

/** What the tests measured, printed once at the end (for the record, not asserted beyond the bounds). */
const measured: Record<string, number> = {};

let dA: Dovecot;
let dB: Dovecot;
let silent: FakeBackend;
let mf: MailfrontUnderTest;

async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function breaker(m: MailfrontUnderTest, backend: string, protocol: Protocol): BreakerPhase | undefined {
  return m.server.backendStatus().find((b) => b.name === backend)?.protocols.find((p) => p.protocol === protocol)?.breaker;
}

/** Resolves once every listed breaker of `backend` is in `phase`; the time it took, in ms. */
async function breakersAre(m: MailfrontUnderTest, backend: string, phase: BreakerPhase, protocols: Protocol[] = ALL): Promise<number> {
  const t0 = performance.now();
  await waitFor(`${backend} ${protocols.join('+')} breakers ${phase}`, () => protocols.every((p) => breaker(m, backend, p) === phase));
  return Math.round(performance.now() - t0);
}

/** Backend a up and its breakers closed, whatever the previous test left. */
async function aHealthy(): Promise<void> {
  if (dA.pid === undefined) await dA.start();
  await mf.store.setBackendState('a', 'active');
  await mf.store.updateBackend('a', { standby: null });
  // Half-open counts as not yet back: wait for the probe to close it.
  await breakersAre(mf, 'a', 'closed');
}

function logLines(m: MailfrontUnderTest): Array<Record<string, unknown>> {
  return m
    .readLog()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function waitForLogRecord(m: MailfrontUnderTest, pred: (r: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  return waitFor(what, () => logLines(m).find(pred), 5_000);
}

async function imap(m: MailfrontUnderTest): Promise<RawClient> {
  const c = await rawConnect({ port: m.port('imap', 'none') });
  expect(await c.readLine()).toMatch(/^\* OK /);
  return c;
}

/** LOGIN on a fresh connection: the client, the tagged answer, and how long the answer took. */
async function imapLogin(m: MailfrontUnderTest, u: { name: string; password: string }): Promise<{ c: RawClient; answer: string; ms: number }> {
  const c = await imap(m);
  const t0 = performance.now();
  const lines = await c.command(`a1 LOGIN "${u.name}" "${u.password}"`, LONG_TIMEOUT_MS + 5_000);
  return { c, answer: lines[lines.length - 1]!, ms: Math.round(performance.now() - t0) };
}

/** The backend the registry says this user's live session went to. */
function sessionBackend(m: MailfrontUnderTest, user: string): string | null | undefined {
  return m.server.registry.list().find((s) => s.user === user && s.phase === 'relay')?.backend;
}

const TEMPFAIL = {
  imap: 'a1 NO [UNAVAILABLE] Temporary failure, please try again later.',
  pop3: '-ERR [SYS/TEMP] Temporary failure, please try again later.',
  submission: '454 4.7.0 Temporary authentication failure',
};

async function pop3Login(m: MailfrontUnderTest, u: { name: string; password: string }): Promise<{ c: RawClient; answer: string; ms: number }> {
  const c = await rawConnect({ port: m.port('pop3', 'none') });
  expect(await c.readLine()).toMatch(/^\+OK/);
  await c.write(`USER ${u.name}\r\n`);
  expect(await c.readLine()).toMatch(/^\+OK/);
  const t0 = performance.now();
  await c.write(`PASS ${u.password}\r\n`);
  const answer = await c.readLine(LONG_TIMEOUT_MS + 5_000);
  return { c, answer, ms: Math.round(performance.now() - t0) };
}

async function smtpReply(c: RawClient, timeoutMs?: number): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const l = await c.readLine(timeoutMs);
    lines.push(l);
    if (!/^\d{3}-/.test(l)) return lines;
  }
}

async function submissionLogin(m: MailfrontUnderTest, u: { name: string; password: string }): Promise<{ c: RawClient; answer: string; ms: number }> {
  const c = await rawConnect({ port: m.port('submission', 'none') });
  expect((await smtpReply(c))[0]).toMatch(/^220 /);
  await c.write('EHLO client.example.net\r\n');
  await smtpReply(c);
  const t0 = performance.now();
  await c.write(`AUTH PLAIN ${Buffer.from(`\0${u.name}\0${u.password}`).toString('base64')}\r\n`);
  const answer = (await smtpReply(c, LONG_TIMEOUT_MS + 5_000)).join('\n');
  return { c, answer, ms: Math.round(performance.now() - t0) };
}

const PLAIN_LISTENERS = [
  { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true },
  { protocol: 'pop3', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true },
  { protocol: 'submission', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true },
];

afterAll(() => {
  if (Object.keys(measured).length) process.stdout.write(`backend faults measured (ms): ${JSON.stringify(measured)}\n`);
});

describe('two Dovecots and a silent backend behind one mailfront', () => {
  beforeAll(async () => {
    [dA, dB] = await Promise.all([
      startDovecot({ users: USERS, protocols: ['imap', 'pop3', 'submission'] }),
      startDovecot({ users: USERS, protocols: ['imap', 'pop3', 'submission'] }),
    ]);
    // Accepts, never says a word: a hung server, where each login would wait out its timeouts.
    silent = await startFakeBackend({ greeting: '' });
    const ports = (d: Dovecot) => ({ imap: d.ports.imap, pop3: d.ports.pop3!, submission: d.ports.submission! });
    mf = await startMailfront({
      backends: [
        { name: 'a', host: '127.0.0.1', ports: ports(dA) },
        { name: 'b', host: '127.0.0.1', ports: ports(dB) },
        { name: 'silent', host: '127.0.0.1', ports: { imap: silent.port, pop3: null, submission: null } },
      ],
      users: [
        { ...ALICE, backend: 'a' },
        { ...BOB, backend: 'b' },
        { ...CAROL, backend: 'b' },
        { ...ERIN, backend: 'silent' },
        FRANK,
      ],
      config: {
        listeners: PLAIN_LISTENERS,
        limits: { backendConnectTimeoutMs: LONG_TIMEOUT_MS, backendLoginTimeoutMs: LONG_TIMEOUT_MS },
        health: HEALTH,
        auth: { failureDelayMs: 0 },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await mf?.stop();
    await Promise.all([dA?.stop(), dB?.stop(), silent?.close()]);
  });

  test('backend killed mid-session: its client is disconnected cleanly; sessions and logins on the other backend go on', async () => {
    await aHealthy();
    const alice = await imapLogin(mf, ALICE);
    expect(alice.answer).toMatch(/^a1 OK /);
    expect((await alice.c.command('a2 SELECT INBOX')).at(-1)).toMatch(/^a2 OK /);
    const bob = await imapLogin(mf, BOB);
    expect(bob.answer).toMatch(/^a1 OK /);
    expect(sessionBackend(mf, ALICE.name)).toBe('a');
    expect(sessionBackend(mf, BOB.name)).toBe('b');

    await dA.kill();
    // The backend's end reaches the client as a close, with nothing half-written after it.
    const rest = await alice.c.waitForClose(5_000);
    expect(rest.toString('latin1')).not.toMatch(/[^\r\n]$/);
    await waitForLogRecord(mf, (r) => r.msg === 'session ended' && r.backend === 'a', "alice's session ended");
    expect(sessionBackend(mf, ALICE.name)).toBeUndefined();

    // Bob's session on b never noticed.
    expect(await bob.c.command('a3 NOOP')).toEqual([expect.stringMatching(/^a3 OK NOOP completed/)]);
    expect((await bob.c.command('a4 SELECT INBOX')).at(-1)).toMatch(/^a4 OK /);
    // New logins to b work, on every protocol.
    const carol = await imapLogin(mf, CAROL);
    expect(carol.answer).toMatch(/^a1 OK /);
    const carolPop = await pop3Login(mf, CAROL);
    expect(carolPop.answer).toMatch(/^\+OK/);
    for (const c of [bob.c, carol.c, carolPop.c]) await c.close();
  });

  test('backend down: the checks open its breakers, and logins get a temporary failure at once, without a connect (IMAP, POP3, submission)', async () => {
    await aHealthy();
    const t0 = performance.now();
    await dA.kill();
    await breakersAre(mf, 'a', 'open');
    measured.killToBreakerOpen = Math.round(performance.now() - t0);
    const status = mf.server.backendStatus().find((b) => b.name === 'a')!;
    expect(status.protocols.map((p) => [p.protocol, p.probe, p.breaker])).toEqual(ALL.map((p) => [p, 'down', 'open']));
    expect(status.protocols[0]!.lastError).toMatch(/^check: (connect|greeting): ECONNREFUSED/);

    const answers = { imap: await imapLogin(mf, ALICE), pop3: await pop3Login(mf, ALICE), submission: await submissionLogin(mf, ALICE) };
    for (const p of ALL) {
      expect([p, answers[p].answer]).toEqual([p, TEMPFAIL[p]]);
      // Generous upper bound: far below the 20 s timeouts, which were never started.
      expect([p, answers[p].ms < LONG_TIMEOUT_MS / 10]).toEqual([p, true]);
      await answers[p].c.close();
    }
    measured.breakerOpenTempfailImap = answers.imap.ms;
    const failed = await waitForLogRecord(mf, (r) => r.msg === 'login failed' && r.proto === 'imap' && /breaker open/.test(String(r.reason)), 'login failed: breaker open');
    // No backend connection was even started: the login machine never left its initial state.
    expect(failed).toMatchObject({ kind: 'no-backend', state: 'none/none', reason: expect.stringMatching(/backend a is down for imap \(breaker open\) and has no standby/) });
    await waitForLogRecord(mf, (r) => r.msg === 'backend down: breaker open for 1000 ms, no new logins go there' && r.backend === 'a' && r.source === 'check', 'breaker open logged');
  });

  test('restart: after dovecot.start() the health check closes the breakers and logins go there again', async () => {
    if (dA.pid !== undefined) {
      await dA.kill();
      await breakersAre(mf, 'a', 'open');
    }
    const t0 = performance.now();
    await dA.start();
    const backAfter = await breakersAre(mf, 'a', 'closed');
    measured.restartToBreakerClosed = backAfter;
    measured.restartCalledToBreakerClosed = Math.round(performance.now() - t0);
    // At most openMs (if it had just re-opened) plus a round or two of checks.
    expect(backAfter).toBeLessThan(HEALTH.openMs + 10 * HEALTH.intervalMs + 5 * HEALTH.timeoutMs);
    const alice = await imapLogin(mf, ALICE);
    expect(alice.answer).toMatch(/^a1 OK /);
    expect(sessionBackend(mf, ALICE.name)).toBe('a');
    await alice.c.close();
    await waitForLogRecord(mf, (r) => r.msg === 'backend up: breaker closed, logins go there again' && r.backend === 'a' && r.from === 'half-open', 'breaker closed logged');
  });

  test('standby: the users of a down backend go to its standby while it is down, and back once it is up', async () => {
    await aHealthy();
    await mf.store.updateBackend('a', { standby: 'b' });
    await dA.kill();
    await breakersAre(mf, 'a', 'open');

    const alice = await imapLogin(mf, ALICE);
    expect(alice.answer).toMatch(/^a1 OK /);
    expect(sessionBackend(mf, ALICE.name)).toBe('b');
    const routed = await waitForLogRecord(mf, (r) => r.msg === 'login goes to the standby' && r.user === ALICE.name, 'standby log line');
    expect(routed).toMatchObject({ protocol: 'imap', backend: 'b', standbyFor: 'a', why: 'down' });
    const pop = await pop3Login(mf, ALICE);
    expect(pop.answer).toMatch(/^\+OK/);
    // The placement is untouched: alice's home is still a.
    expect(await mf.store.getPlacement(ALICE.name)).toMatchObject({ backend: 'a', source: 'assigned' });
    for (const c of [alice.c, pop.c]) await c.close();

    await dA.start();
    await breakersAre(mf, 'a', 'closed');
    const back = await imapLogin(mf, ALICE);
    expect(back.answer).toMatch(/^a1 OK /);
    expect(sessionBackend(mf, ALICE.name)).toBe('a');
    await back.c.close();
    await mf.store.updateBackend('a', { standby: null });
  });

  test('a backend that never greets: its breaker opens and logins are answered long before the configured timeouts', async () => {
    await breakersAre(mf, 'silent', 'open', ['imap']);
    const st = mf.server.backendStatus().find((b) => b.name === 'silent')!.protocols[0]!;
    expect(st).toMatchObject({ probe: 'down', lastError: expect.stringMatching(/no answer within 500 ms/) });
    // The first login also pays for the password hash; the second is answered from the auth cache.
    const warm = await imapLogin(mf, ERIN);
    expect(warm.answer).toBe(TEMPFAIL.imap);
    await warm.c.close();
    const erin = await imapLogin(mf, ERIN);
    expect(erin.answer).toBe(TEMPFAIL.imap);
    measured.silentBackendTempfail = erin.ms;
    // The connect and login timeouts are 20 s each; the answer came in a small fraction of one.
    expect(erin.ms).toBeLessThan(LONG_TIMEOUT_MS / 10);
    await erin.c.close();
  });

  test('drain: no new logins to the backend (standby, else a temporary failure), no new placements; an existing session keeps working', async () => {
    await aHealthy();
    // The silent backend is down too: b is the only place for a newcomer.
    await breakersAre(mf, 'silent', 'open', ['imap']);
    const existing = await imapLogin(mf, ALICE);
    expect(existing.answer).toMatch(/^a1 OK /);
    expect((await existing.c.command('a2 SELECT INBOX')).at(-1)).toMatch(/^a2 OK /);

    await mf.store.setBackendState('a', 'draining');
    // Read at each login: the drain applies to the very next one.
    const refused = await imapLogin(mf, ALICE);
    expect(refused.answer).toBe(TEMPFAIL.imap);
    expect(refused.ms).toBeLessThan(LONG_TIMEOUT_MS / 10);
    await refused.c.close();
    await waitForLogRecord(mf, (r) => r.msg === 'login failed' && /backend a is draining and has no standby/.test(String(r.reason)), 'drain refusal logged');

    await mf.store.updateBackend('a', { standby: 'b' });
    const toStandby = await imapLogin(mf, ALICE);
    expect(toStandby.answer).toMatch(/^a1 OK /);
    expect(mf.server.registry.list().filter((s) => s.user === ALICE.name && s.phase === 'relay').map((s) => s.backend).sort()).toEqual(['a', 'b']);
    await waitForLogRecord(mf, (r) => r.msg === 'login goes to the standby' && r.why === 'draining', 'standby for draining logged');

    // A newcomer is placed on b, never on the draining a.
    const frank = await imapLogin(mf, FRANK);
    expect(frank.answer).toMatch(/^a1 OK /);
    expect(await mf.store.getPlacement(FRANK.name)).toMatchObject({ backend: 'b', source: 'hashed' });

    // The session that was there before the drain goes on.
    expect(await existing.c.command('a3 NOOP')).toEqual([expect.stringMatching(/^a3 OK NOOP completed/)]);
    expect((await existing.c.command('a4 STATUS INBOX (MESSAGES)')).at(-1)).toMatch(/^a4 OK /);
    // What `mailfront backend status` shows right after the drain, not one health round later.
    expect((await mf.server.backendStatusNow()).find((b) => b.name === 'a')).toMatchObject({ state: 'draining', standby: 'b' });
    for (const c of [existing.c, toStandby.c, frank.c]) await c.close();

    await mf.store.setBackendState('a', 'active');
    await mf.store.updateBackend('a', { standby: null });
    const again = await imapLogin(mf, ALICE);
    expect(again.answer).toMatch(/^a1 OK /);
    expect(sessionBackend(mf, ALICE.name)).toBe('a');
    await again.c.close();
  });

  test('backendStatus counts live sessions per backend', async () => {
    await aHealthy();
    const sessions = await Promise.all([imapLogin(mf, ALICE), imapLogin(mf, BOB), imapLogin(mf, CAROL)]);
    for (const s of sessions) expect(s.answer).toMatch(/^a1 OK /);
    const count = (name: string) => mf.server.backendStatus().find((b) => b.name === name)!.sessions;
    // Sessions of earlier tests may take a moment to end.
    await waitFor('1 session on a, 2 on b', () => count('a') === 1 && count('b') === 2 && count('silent') === 0).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(mf.server.registry.list().map((x) => [x.user, x.backend, x.phase]))}`);
    });
    for (const s of sessions) await s.c.close();
    await waitFor('sessions gone', () => count('a') === 0 && count('b') === 0);
  });
});

describe('a backend that greets and then stalls', () => {
  const LOGIN_TIMEOUT_MS = 800;
  const GINA = { name: 'gina@example.org', password: 'gina-pw' };
  let stall: FakeBackend;
  let m: MailfrontUnderTest;

  beforeAll(async () => {
    // Greets like Dovecot, then answers nothing: CAPABILITY, ID and LOGIN all hang.
    stall = await startFakeBackend({ greeting: '* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n' });
    m = await startMailfront({
      backends: [{ name: 'stall', host: '127.0.0.1', ports: { imap: stall.port, pop3: null, submission: null } }],
      users: [{ ...GINA, backend: 'stall' }],
      config: {
        listeners: [PLAIN_LISTENERS[0]],
        limits: { backendConnectTimeoutMs: LONG_TIMEOUT_MS, backendLoginTimeoutMs: LOGIN_TIMEOUT_MS },
        // A long openMs: the breaker stays open for the rest of the test, whatever the (passing) greeting checks say.
        health: { ...HEALTH, failuresToOpen: 2, openMs: 60_000 },
        auth: { failureDelayMs: 0 },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await m?.stop();
    await stall?.close();
  });

  test('each login times out within the configured time; after failuresToOpen of them the breaker opens and the next is refused at once', async () => {
    // The greeting checks pass: the backend looks up from outside.
    await waitFor('a passing check', () => m.server.backendStatus()[0]?.protocols[0]?.probe === 'up');
    const timings: number[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await imapLogin(m, GINA);
      expect(r.answer).toBe(TEMPFAIL.imap);
      timings.push(r.ms);
      await r.c.close();
    }
    for (const ms of timings) {
      // It waited for the login timeout (less a timer's slack), and not much longer.
      expect(ms).toBeGreaterThanOrEqual(LOGIN_TIMEOUT_MS - 50);
      expect(ms).toBeLessThan(LOGIN_TIMEOUT_MS + 4_000);
    }
    measured.stalledLoginTimeout = Math.max(...timings);
    // The log is written asynchronously: wait for both lines.
    const timedOut = await waitFor('two login timeouts logged', () => {
      const lines = logLines(m).filter((r) => r.msg === 'login failed' && r.kind === 'timeout');
      return lines.length === 2 && lines;
    });
    expect(timedOut[0]!.reason).toMatch(/no login reply within 800 ms/);

    // Opened by the logins, though every greeting check passed.
    expect(breaker(m, 'stall', 'imap')).toBe('open');
    await waitForLogRecord(m, (r) => String(r.msg).startsWith('backend down') && r.source === 'login', 'breaker opened by logins');
    const third = await imapLogin(m, GINA);
    expect(third.answer).toBe(TEMPFAIL.imap);
    expect(third.ms).toBeLessThan(LOGIN_TIMEOUT_MS / 2);
    measured.stalledBreakerOpenTempfail = third.ms;
    await third.c.close();
  });

  test('SIGHUP: a changed health section applies without a restart; the open breaker then closes on a passing check', async () => {
    expect(breaker(m, 'stall', 'imap')).toBe('open');
    const config = (health: Record<string, number>) =>
      validateConfig(
        {
          dataDir: path.join(m.dir.path, 'var'),
          hostname: 'localhost',
          listeners: [PLAIN_LISTENERS[0]],
          limits: { backendConnectTimeoutMs: LONG_TIMEOUT_MS, backendLoginTimeoutMs: LOGIN_TIMEOUT_MS },
          auth: { failureDelayMs: 0 },
          log: { level: 'debug' },
          health,
        },
        { baseDir: m.dir.path },
      );
    // openMs 0: half-open at once, so the next greeting check (which passes) decides.
    const r = m.server.reload(config({ ...HEALTH, failuresToOpen: 2, openMs: 0 }));
    expect(r.applied).toContain('health');
    await breakersAre(m, 'stall', 'closed', ['imap']);
    // An unchanged section is not reported as applied.
    expect(m.server.reload(config({ ...HEALTH, failuresToOpen: 2, openMs: 0 })).applied).not.toContain('health');
  });
});
