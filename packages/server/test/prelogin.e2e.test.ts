/**
 * The pre-login limits and TLS policy of a listener, seen from a client.
 * No backend is needed: nothing here gets past authentication.
 */
import * as tls from 'node:tls';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rawConnect, type RawClient } from '@mailfront/testkit';
import { startMailfront, type MailfrontUnderTest } from './harness';

let mf: MailfrontUnderTest;

beforeAll(async () => {
  mf = await startMailfront({
    backends: [],
    users: [{ name: 'ann@example.org', password: 'ann-pw' }],
    config: {
      // Long enough for two scrypt checks on a busy 2-core machine, short enough to wait for.
      limits: { loginTimeoutMs: 2000, maxBadCommands: 3, maxAuthAttempts: 2 },
      auth: { failureDelayMs: 50 },
      listeners: [
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'starttls' },
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'implicit' },
        { protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuth: true },
      ],
    },
  });
});
afterAll(() => mf?.stop());

async function connect(kind: 'starttls' | 'implicit' | 'none' = 'starttls'): Promise<RawClient> {
  const c = await rawConnect({ port: mf.port('imap', kind), tls: kind === 'implicit', ca: mf.certPem, servername: 'localhost' });
  await c.readLine();
  return c;
}

test('too many bad commands: BYE and close', async () => {
  const c = await connect();
  expect(await c.command('a1 SELECT INBOX')).toEqual(['a1 BAD Command unknown or not allowed before login.']);
  expect(await c.command('a2 FOO')).toEqual(['a2 BAD Command unknown or not allowed before login.']);
  await c.write('a3 BAR\r\n');
  expect(await c.readLine()).toBe('a3 BAD Command unknown or not allowed before login.');
  expect(await c.readLine()).toBe('* BYE Too many invalid commands.');
  await c.waitForClose();
});

test('a client that never logs in is closed at the login timeout with BYE', async () => {
  const c = await connect();
  const t0 = Date.now();
  expect(await c.readLine(5_000)).toBe('* BYE Disconnected for inactivity.');
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1_800);
  await c.waitForClose();
});

test('a slowloris client sending a byte at a time is closed at the login timeout too', async () => {
  const c = await connect();
  const drip = setInterval(() => void c.write('a').catch(() => undefined), 50);
  try {
    expect(await c.readLine(5_000)).toBe('* BYE Disconnected for inactivity.');
  } finally {
    clearInterval(drip);
  }
});

test('too many failed logins on one connection: the last NO, then close', async () => {
  const c = await connect('implicit');
  expect(await c.command('a1 LOGIN ann@example.org wrong')).toEqual(['a1 NO [AUTHENTICATIONFAILED] Authentication failed.']);
  await c.write('a2 LOGIN ann@example.org wrong-again\r\n');
  expect(await c.readLine()).toBe('a2 NO [AUTHENTICATIONFAILED] Authentication failed.');
  expect(await c.readLine()).toBe('* BYE Too many invalid commands.');
  await c.waitForClose();
});

test('a LITERAL+ literal of 10^20 bytes: BYE, close, nothing swallowed', async () => {
  const c = await connect('implicit');
  await c.write('a1 LOGIN {100000000000000000000+}\r\n');
  expect(await c.readLine()).toBe('* BYE Literal too large.');
  await c.waitForClose();
});

test('a synchronising literal that is too large: tagged BAD, no continuation, session goes on', async () => {
  const c = await connect('implicit');
  expect(await c.command('a1 LOGIN {100000000}')).toEqual(['a1 BAD Literal too large.']);
  expect(await c.command('a2 NOOP')).toEqual(['a2 OK NOOP completed.']);
  await c.close();
});

test('a 70 KiB line: BYE and close', async () => {
  const c = await connect();
  await c.write(`a1 LOGIN ${'x'.repeat(70 * 1024)} y\r\n`);
  expect(await c.readLine()).toBe('* BYE Input line too long.');
  await c.waitForClose();
});

test('NUL in a quoted LOGIN argument: BAD', async () => {
  const c = await connect('implicit');
  expect(await c.command('a1 LOGIN "ann\0@example.org" "x"')).toEqual(['a1 BAD NUL is not allowed in a command.']);
  await c.close();
});

test('STARTTLS twice is refused; STARTTLS on an implicit-TLS port is refused', async () => {
  const c = await connect();
  expect(await c.command('a1 STARTTLS')).toEqual(['a1 OK Begin TLS negotiation now.']);
  await c.startTls({ ca: mf.certPem, servername: 'localhost' });
  expect(await c.command('a2 STARTTLS')).toEqual(['a2 BAD TLS is already active.']);
  await c.close();
  const t = await connect('implicit');
  expect(await t.command('b1 STARTTLS')).toEqual(['b1 BAD TLS is already active.']);
  await t.close();
});

test('a plaintext listener with allowPlaintextAuth offers AUTH=PLAIN and no STARTTLS', async () => {
  const c = await rawConnect({ port: mf.port('imap', 'none') });
  const greeting = await c.readLine();
  expect(greeting).toContain('AUTH=PLAIN');
  expect(greeting).not.toContain('STARTTLS');
  expect(greeting).not.toContain('LOGINDISABLED');
  expect(await c.command('a1 LOGIN ann@example.org wrong')).toEqual(['a1 NO [AUTHENTICATIONFAILED] Authentication failed.']);
  await c.close();
});

describe('strict ALPN (ALPACA)', () => {
  const handshake = (alpn: string[] | undefined) =>
    new Promise<string>((resolve) => {
      const s = tls.connect(
        { host: '127.0.0.1', port: mf.port('imap', 'implicit'), ca: mf.certPem, servername: 'localhost', ...(alpn ? { ALPNProtocols: alpn } : {}) },
        () => {
          resolve(`ok:${s.alpnProtocol || 'none'}`);
          s.destroy();
        },
      );
      s.on('error', (e) => resolve(`error:${e.message}`));
    });

  test('no ALPN is fine; "imap" is selected; only "http/1.1" is refused with no_application_protocol', async () => {
    expect(await handshake(undefined)).toBe('ok:none');
    expect(await handshake(['h2', 'imap'])).toBe('ok:imap');
    expect(await handshake(['http/1.1'])).toMatch(/^error:.*no.application.protocol/i);
  });

  test('clients that leave right after (or during) the handshake hold no connection', async () => {
    for (const alpn of [undefined, ['imap'], ['http/1.1']]) await handshake(alpn);
    let open = -1;
    for (let i = 0; i < 100 && open !== 0; i++) {
      open = await mf.server.openConnections();
      if (open !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(open).toBe(0);
  });

  test('openssl s_client with -alpn http/1.1 is refused on the STARTTLS port too', async () => {
    const run = promisify(execFile);
    const r = await run(
      'sh',
      ['-c', `printf 'a STARTTLS\\r\\n' | timeout 5 openssl s_client -connect 127.0.0.1:${mf.port('imap', 'starttls')} -starttls imap -alpn http/1.1 2>&1 || true`],
    );
    expect(r.stdout).toMatch(/no application protocol|alert number 120/i);
  });
});
