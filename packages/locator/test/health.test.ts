import { breakerPhase, CLOSED, HealthBook, loginVerdict, onResult, type Breaker, type BreakerChange } from '@mailfront/locator';

const O = { failuresToOpen: 3, openMs: 30_000 };

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('breaker transitions (pure)', () => {
  test('closed counts failed checks in a row; a good check resets them; the 3rd opens', () => {
    let b: Breaker = CLOSED;
    b = onResult(b, 'check', false, 0, O);
    b = onResult(b, 'check', false, 1, O);
    expect(b).toEqual({ at: 'closed', failures: { check: 2, login: 0 } });
    b = onResult(b, 'check', true, 2, O);
    expect(b).toEqual(CLOSED);
    for (const t of [3, 4]) b = onResult(b, 'check', false, t, O);
    b = onResult(b, 'check', false, 5, O);
    expect(b).toEqual({ at: 'open', since: 5 });
    expect(breakerPhase(b, 5, O)).toBe('open');
  });

  test('failed logins open it too, however many greeting checks succeed in between (a backend that greets, then stalls)', () => {
    let b: Breaker = CLOSED;
    for (let t = 0; t < 2; t++) {
      b = onResult(b, 'login', false, t, O);
      b = onResult(b, 'check', true, t, O);
    }
    expect(b).toEqual({ at: 'closed', failures: { check: 0, login: 2 } });
    expect(onResult(b, 'login', false, 9, O)).toEqual({ at: 'open', since: 9 });
  });

  test('a good login resets both counts; checks and logins do not add up', () => {
    let b: Breaker = CLOSED;
    b = onResult(b, 'check', false, 0, O);
    b = onResult(b, 'check', false, 1, O);
    b = onResult(b, 'login', false, 2, O);
    b = onResult(b, 'login', false, 3, O);
    expect(b).toEqual({ at: 'closed', failures: { check: 2, login: 2 } });
    b = onResult(b, 'login', true, 4, O);
    expect(b).toBe(CLOSED);
    expect(onResult(CLOSED, 'login', true, 5, O)).toBe(CLOSED);
  });

  test('failuresToOpen 1 opens on the first failure', () => {
    expect(onResult(CLOSED, 'check', false, 7, { failuresToOpen: 1, openMs: 10 })).toEqual({ at: 'open', since: 7 });
  });

  test('open ignores everything until openMs have passed, then is half-open', () => {
    const open: Breaker = { at: 'open', since: 100 };
    expect(onResult(open, 'check', true, 100 + O.openMs - 1, O)).toBe(open);
    expect(onResult(open, 'check', false, 100 + O.openMs - 1, O)).toBe(open);
    expect(breakerPhase(open, 100 + O.openMs - 1, O)).toBe('open');
    expect(breakerPhase(open, 100 + O.openMs, O)).toBe('half-open');
  });

  test('half-open: the next check decides; logins are not the probe', () => {
    const open: Breaker = { at: 'open', since: 0 };
    const t = O.openMs + 5;
    expect(onResult(open, 'login', true, t, O)).toBe(open);
    expect(onResult(open, 'login', false, t, O)).toBe(open);
    expect(onResult(open, 'check', true, t, O)).toBe(CLOSED);
    const reopened = onResult(open, 'check', false, t, O);
    expect(reopened).toEqual({ at: 'open', since: t });
    // Re-opened: another full openMs before the next probe.
    expect(breakerPhase(reopened, t + O.openMs - 1, O)).toBe('open');
    expect(breakerPhase(reopened, t + O.openMs, O)).toBe('half-open');
  });

  test('openMs 0: half-open at once, so the next check decides', () => {
    const o = { failuresToOpen: 1, openMs: 0 };
    const b = onResult(CLOSED, 'login', false, 50, o);
    expect(breakerPhase(b, 50, o)).toBe('half-open');
    expect(onResult(b, 'check', true, 50, o)).toBe(CLOSED);
  });
});

describe('loginVerdict', () => {
  test.each<[boolean, string | null, string]>([
    [true, null, 'success'],
    [false, 'connect', 'failure'],
    [false, 'timeout', 'failure'],
    [false, 'protocol', 'failure'],
    // A rejected password: the backend is up and answering.
    [false, 'auth-failed', 'success'],
    [false, 'remote', 'irrelevant'],
    [false, 'internal', 'irrelevant'],
    [false, null, 'irrelevant'],
  ])('ok=%s kind=%s → %s', (ok, kind, verdict) => {
    expect(loginVerdict(ok, kind)).toBe(verdict);
  });
});

describe('HealthBook', () => {
  function book(over: Partial<typeof O> = {}) {
    const c = clock();
    const changes: BreakerChange[] = [];
    const h = new HealthBook({ ...O, ...over, now: c.now, wallNow: () => Date.UTC(2025, 0, 1) + c.now(), onChange: (x) => changes.push(x) });
    return { h, c, changes };
  }

  test('unknown backends and protocols are up; per protocol, per backend', () => {
    const { h } = book({ failuresToOpen: 1 });
    expect(h.isUp('b1', 'imap')).toBe(true);
    h.recordCheck('b1', 'imap', false, 'ECONNREFUSED');
    expect(h.isUp('b1', 'imap')).toBe(false);
    expect(h.isUp('b1', 'pop3')).toBe(true);
    expect(h.isUp('b2', 'imap')).toBe(true);
    expect(h.health('b1', ['imap', 'pop3'])).toEqual([
      {
        protocol: 'imap',
        probe: 'down',
        lastCheckAt: expect.stringMatching(/^2025-01-01T/),
        lastError: 'check: ECONNREFUSED',
        breaker: 'open',
        failures: { check: 0, login: 0 },
        openedAt: expect.stringMatching(/^2025-01-01T/),
      },
      { protocol: 'pop3', probe: 'unknown', lastCheckAt: null, lastError: null, breaker: 'closed', failures: { check: 0, login: 0 }, openedAt: null },
    ]);
  });

  test('a full cycle: logins open it, a check in half-open closes it; each change reported once', () => {
    const { h, c, changes } = book();
    h.recordLogin('b1', 'imap', false, 'connect', 'ECONNREFUSED');
    h.recordLogin('b1', 'imap', false, 'timeout');
    expect(h.health('b1', ['imap'])[0]).toMatchObject({ breaker: 'closed', failures: { check: 0, login: 2 }, lastError: 'login: timeout', probe: 'unknown' });
    // Irrelevant outcomes neither count nor reset.
    h.recordLogin('b1', 'imap', false, 'remote');
    h.recordLogin('b1', 'imap', false, 'protocol', 'bad banner');
    expect(h.isUp('b1', 'imap')).toBe(false);
    expect(changes).toEqual([{ backend: 'b1', protocol: 'imap', from: 'closed', to: 'open', source: 'login', detail: 'login: protocol: bad banner' }]);

    // A check that succeeds too early is ignored; so is a later login.
    c.advance(O.openMs - 1);
    h.recordCheck('b1', 'imap', true);
    expect(h.isUp('b1', 'imap')).toBe(false);
    expect(h.health('b1', ['imap'])[0]).toMatchObject({ probe: 'up', breaker: 'open', lastError: null });
    c.advance(1);
    expect(h.health('b1', ['imap'])[0]!.breaker).toBe('half-open');
    h.recordLogin('b1', 'imap', true);
    expect(h.isUp('b1', 'imap')).toBe(false);

    // The probe fails: open again for another openMs.
    h.recordCheck('b1', 'imap', false, 'connect timeout');
    expect(changes.at(-1)).toMatchObject({ from: 'half-open', to: 'open', source: 'check', detail: 'check: connect timeout' });
    c.advance(O.openMs);
    h.recordCheck('b1', 'imap', true);
    expect(h.isUp('b1', 'imap')).toBe(true);
    expect(changes.at(-1)).toMatchObject({ from: 'half-open', to: 'closed', source: 'check', detail: null });
    expect(changes).toHaveLength(3);
    expect(h.health('b1', ['imap'])[0]).toMatchObject({ breaker: 'closed', failures: { check: 0, login: 0 }, openedAt: null });
  });

  test('a rejected password counts as the backend answering', () => {
    const { h } = book();
    h.recordLogin('b1', 'pop3', false, 'timeout');
    h.recordLogin('b1', 'pop3', false, 'timeout');
    h.recordLogin('b1', 'pop3', false, 'auth-failed');
    h.recordLogin('b1', 'pop3', false, 'timeout');
    expect(h.isUp('b1', 'pop3')).toBe(true);
    expect(h.health('b1', ['pop3'])[0]!.failures).toEqual({ check: 0, login: 1 });
  });

  test('retain forgets removed backends; configure changes thresholds, not states', () => {
    const { h } = book({ failuresToOpen: 1 });
    h.recordCheck('gone', 'imap', false);
    h.recordCheck('kept', 'imap', false);
    h.retain(['kept']);
    expect(h.isUp('gone', 'imap')).toBe(true);
    expect(h.isUp('kept', 'imap')).toBe(false);
    h.configure({ failuresToOpen: 5, openMs: 0 });
    // openMs 0 applies at once: the breaker is half-open now.
    expect(h.health('kept', ['imap'])[0]!.breaker).toBe('half-open');
    h.recordCheck('kept', 'imap', true);
    for (let i = 0; i < 4; i++) h.recordCheck('kept', 'imap', false);
    expect(h.isUp('kept', 'imap')).toBe(true);
    expect(() => h.configure({ failuresToOpen: 0, openMs: 1 })).toThrow(RangeError);
  });
});
