import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { rawConnect, runPython, startDovecot, type Dovecot, type RawClient } from '@mailfront/testkit';

const execFileAsync = promisify(execFile);

const alice = { name: 'alice', password: 'alice-secret' };
const bob = { name: 'bob', password: 'b0b pass!' };
const master = { name: 'mfmaster', password: 'master-secret' };

/** PIDs of processes whose command line names `configFile` (the master's does). */
async function pgrep(configFile: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync('pgrep', ['-f', configFile]);
    return stdout.trim();
  } catch (err) {
    if ((err as { code?: number }).code === 1) return ''; // pgrep: nothing matched
    throw err;
  }
}

function imapflow(d: Dovecot, user: { name: string; password: string }, secure: boolean): ImapFlow {
  return new ImapFlow({
    host: d.host,
    port: secure ? d.ports.imaps : d.ports.imap,
    secure,
    doSTARTTLS: secure ? undefined : true,
    tls: { ca: d.caPem, servername: 'localhost' },
    auth: { user: user.name, pass: user.password },
    logger: false,
  });
}

/** A message with CRLF endings, 8-bit UTF-8 and a long line: FETCH must give back these exact bytes. */
function message(subject: string): Buffer {
  return Buffer.from(
    [
      'From: Alice <alice@example.org>',
      'To: Bob <bob@example.org>',
      `Subject: ${subject}`,
      'Message-ID: <' + subject.replace(/\W/g, '') + '@testkit>',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Grüße aus Zürich — ✓',
      'x'.repeat(900),
      '.leading dot',
      '',
    ].join('\r\n'),
    'utf8',
  );
}

async function appendAndFetch(client: ImapFlow, raw: Buffer): Promise<Buffer> {
  const appended = await client.append('INBOX', raw, ['\\Seen']);
  if (!appended || appended.uid === undefined) throw new Error('APPEND gave no UID (UIDPLUS expected)');
  const lock = await client.getMailboxLock('INBOX');
  try {
    const msg = await client.fetchOne(String(appended.uid), { source: true }, { uid: true });
    if (!msg || !msg.source) throw new Error('FETCH returned no source');
    return msg.source;
  } finally {
    lock.release();
  }
}

/** A minimal SMTP sink standing in for the relay that Dovecot's submission service forwards to. */
async function smtpSink(): Promise<{ port: number; messages: string[]; close: () => Promise<void> }> {
  const messages: string[] = [];
  const server = net.createServer((socket) => {
    let buffer = '';
    let data: string[] | undefined;
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let i = buffer.indexOf('\r\n'); i !== -1; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (data) {
          if (line === '.') {
            messages.push(data.join('\r\n'));
            data = undefined;
            socket.write('250 2.0.0 queued\r\n');
          } else data.push(line.startsWith('..') ? line.slice(1) : line);
        } else if (/^(EHLO|HELO)/i.test(line)) socket.write('250-sink\r\n250-8BITMIME\r\n250 PIPELINING\r\n');
        else if (/^DATA/i.test(line)) {
          data = [];
          socket.write('354 go ahead\r\n');
        } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
        else socket.write('250 2.0.0 ok\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Dovecot keeps relay connections open; do not wait for them.
        setImmediate(() => server.emit('close'));
      }),
  };
}

describe('startDovecot', () => {
  let dovecot: Dovecot;
  let sink: Awaited<ReturnType<typeof smtpSink>>;
  let startMs = 0;

  beforeAll(async () => {
    sink = await smtpSink();
    const t0 = Date.now();
    dovecot = await startDovecot({
      users: [alice, bob],
      masterUser: master,
      protocols: ['imap', 'pop3', 'submission'],
      submissionRelay: { host: '127.0.0.1', port: sink.port },
    });
    startMs = Date.now() - t0;
  });

  afterAll(async () => {
    const configFile = dovecot?.configFile;
    await dovecot?.stop();
    await sink?.close();
    if (configFile) expect(await pgrep(configFile)).toBe('');
  });

  test('starts quickly with six listeners on loopback and a CA', async () => {
    // eslint-disable-next-line no-console
    console.log(`startDovecot: ${startMs} ms (listeners greeting after ${dovecot.lastStartMs} ms)`);
    expect(dovecot.lastStartMs).toBeLessThan(5_000);
    const ports = Object.values(dovecot.ports);
    expect(ports).toHaveLength(6);
    expect(new Set(ports).size).toBe(6);
    expect(fs.readFileSync(dovecot.caFile, 'utf8')).toBe(dovecot.caPem);
    expect(dovecot.caPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const conf = fs.readFileSync(dovecot.configFile, 'utf8');
    expect(conf).not.toMatch(/!include|\/etc\/dovecot/);
    expect(conf).toContain(`base_dir = ${dovecot.baseDir}/run`);
    expect(await pgrep(dovecot.configFile)).toBe(String(dovecot.pid));
  });

  test('every listener greets in its protocol, TLS ones with the test CA', async () => {
    const cases: Array<[number | undefined, boolean, RegExp]> = [
      [dovecot.ports.pop3, false, /^\+OK/],
      [dovecot.ports.pop3s, true, /^\+OK/],
      [dovecot.ports.submission, false, /^220 localhost /],
      [dovecot.ports.submissions, true, /^220 localhost /],
      [dovecot.ports.imaps, true, /^\* OK /],
    ];
    for (const [port, tls, greeting] of cases) {
      const c = await rawConnect({ port: port!, tls, ca: dovecot.caPem });
      expect(await c.readLine()).toMatch(greeting);
      await c.close();
    }
    // Without the CA the certificate is refused.
    await expect(rawConnect({ port: dovecot.ports.imaps, tls: true })).rejects.toThrow(/certificate/i);
  });

  test('imapflow over STARTTLS: login, APPEND, FETCH gives the same bytes', async () => {
    const client = imapflow(dovecot, alice, false);
    await client.connect();
    try {
      expect(client.secureConnection).toBe(true);
      const raw = message('over starttls');
      expect((await appendAndFetch(client, raw)).equals(raw)).toBe(true);
    } finally {
      await client.logout();
    }
    const line = await dovecot.waitForLog(new RegExp(`Login: user=<alice>.*lport=${dovecot.ports.imap}, .*TLS`));
    expect(line).toContain('method=PLAIN');
  });

  test('imapflow over implicit TLS: login, APPEND, FETCH gives the same bytes', async () => {
    const client = imapflow(dovecot, bob, true);
    await client.connect();
    try {
      const raw = message('over implicit tls');
      expect((await appendAndFetch(client, raw)).equals(raw)).toBe(true);
    } finally {
      await client.logout();
    }
    await dovecot.waitForLog(new RegExp(`Login: user=<bob>.*lport=${dovecot.ports.imaps}, `));
  });

  describe('raw IMAP', () => {
    let c: RawClient;
    beforeEach(async () => {
      c = await rawConnect({ port: dovecot.ports.imap });
      expect(await c.readLine()).toMatch(/^\* OK \[CAPABILITY .*AUTH=PLAIN.*\] /);
    });
    afterEach(async () => {
      await c.close();
    });

    test('master login: AUTHENTICATE PLAIN with authzid=user, authcid=master opens the user', async () => {
      const sasl = Buffer.from(`bob\0${master.name}\0${master.password}`).toString('base64');
      const reply = await c.command(`a1 AUTHENTICATE PLAIN ${sasl}`);
      expect(reply.at(-1)).toMatch(/^a1 OK /);
      // The session is bob's: APPEND here, and bob sees it with his own password.
      const raw = message('via master');
      await c.write(`a2 APPEND INBOX {${raw.length}}\r\n`);
      expect(await c.readLine()).toMatch(/^\+ /);
      await c.write(Buffer.concat([raw, Buffer.from('\r\n')]));
      expect((await c.readUntilTagged('a2')).at(-1)).toMatch(/^a2 OK \[APPENDUID \d+ \d+\]/);
      await dovecot.waitForLog(/Master user logging in as bob/);

      const client = imapflow(dovecot, bob, true);
      await client.connect();
      try {
        const lock = await client.getMailboxLock('INBOX');
        try {
          const found = await client.search({ header: { 'message-id': '<viamaster@testkit>' } }, { uid: true });
          expect(found).toHaveLength(1);
        } finally {
          lock.release();
        }
      } finally {
        await client.logout();
      }
    });

    test('master login with LOGIN user*master', async () => {
      expect((await c.command(`a1 LOGIN alice*${master.name} ${master.password}`)).at(-1)).toMatch(/^a1 OK /);
    });

    test('a wrong password gets NO, quickly', async () => {
      const t0 = Date.now();
      const reply = await c.command('a1 LOGIN alice wrong-password');
      expect(reply.at(-1)).toBe('a1 NO [AUTHENTICATIONFAILED] Authentication failed.');
      expect(Date.now() - t0).toBeLessThan(1_500);
      // A wrong master password does not open the user either.
      const sasl = Buffer.from(`alice\0${master.name}\0nope`).toString('base64');
      expect((await c.command(`a2 AUTHENTICATE PLAIN ${sasl}`)).at(-1)).toMatch(/^a2 NO /);
    });

    test('ID x-originating-ip/-port from a trusted network shows as rip/rport in the login line', async () => {
      const id = await c.command(
        'a1 ID ("name" "testkit" "x-originating-ip" "203.0.113.7" "x-originating-port" "4242" "x-connected-ip" "127.0.0.1" "x-connected-port" "993")',
      );
      expect(id.at(-1)).toMatch(/^a1 OK/);
      expect((await c.command('a2 LOGIN alice alice-secret')).at(-1)).toMatch(/^a2 OK /);
      const line = await dovecot.waitForLog(/Login: user=<alice>.*rip=203\.0\.113\.7/);
      // eslint-disable-next-line no-console
      console.log(`forwarded login: ${line}`);
      expect(line).toMatch(/imap-login: Info: Login: user=<alice>, method=PLAIN, rip=203\.0\.113\.7, rport=4242, lip=127\.0\.0\.1, lport=993, mpid=\d+, /);
    });

    test('STARTTLS by hand, then LOGIN over TLS', async () => {
      expect((await c.command('a1 STARTTLS')).at(-1)).toMatch(/^a1 OK /);
      await c.startTls(dovecot.caPem);
      const caps = await c.command('a2 CAPABILITY');
      expect(caps[0]).toMatch(/^\* CAPABILITY /);
      expect(caps[0]).not.toContain('STARTTLS');
      expect((await c.command('a3 LOGIN alice alice-secret')).at(-1)).toMatch(/^a3 OK /);
    });
  });

  test('Python poplib over POP3S and smtplib over submission STARTTLS, as independent clients', async () => {
    const pop = await runPython(
      `
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[2]), context=ctx, timeout=10)
p.user('alice'); p.pass_('alice-secret')
count, size = p.stat()
print('count', count)
p.quit()
`,
      [dovecot.caFile, String(dovecot.ports.pop3s)],
    );
    expect(pop.stderr).toBe('');
    expect(pop.code).toBe(0);
    expect(Number(/count (\d+)/.exec(pop.stdout)?.[1])).toBeGreaterThanOrEqual(1);

    const smtp = await runPython(
      `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), timeout=10)
s.starttls(context=ctx)
s.login('bob', 'b0b pass!')
s.sendmail('bob@example.org', ['carol@example.net'], b'Subject: via submission\\r\\n\\r\\nhello relay\\r\\n')
s.quit()
print('sent')
`,
      [dovecot.caFile, String(dovecot.ports.submission)],
    );
    expect(smtp.stderr).toBe('');
    expect(smtp.stdout.trim()).toBe('sent');
    expect(sink.messages.some((m) => m.includes('hello relay'))).toBe(true);
  });

  test('waitForLog rejects after its timeout, showing the log tail', async () => {
    await expect(dovecot.waitForLog(/no such line ever/, 100)).rejects.toThrow(/no line matching .* after 100 ms/);
  });

  test('stop() then start() on the same ports, mail kept; kill() then start() too', async () => {
    const ports = { ...dovecot.ports };
    await dovecot.stop();
    expect(dovecot.pid).toBeUndefined();
    expect(await pgrep(dovecot.configFile)).toBe('');
    await expect(rawConnect({ port: ports.imap, connectTimeoutMs: 1_000 })).rejects.toThrow(/ECONNREFUSED/);
    await dovecot.stop(); // idempotent

    await dovecot.start();
    expect(dovecot.ports).toEqual(ports);
    const client = imapflow(dovecot, alice, true);
    await client.connect();
    try {
      const status = await client.status('INBOX', { messages: true });
      expect(status && status.messages).toBeGreaterThanOrEqual(1);
    } finally {
      await client.logout();
    }

    // An open session dies with the master.
    const open = await rawConnect({ port: ports.imap });
    await open.readLine();
    expect((await open.command('a1 LOGIN bob "b0b pass!"')).at(-1)).toMatch(/^a1 OK /);
    await dovecot.kill();
    await dovecot.kill(); // idempotent
    expect(await pgrep(dovecot.configFile)).toBe('');
    await open.waitForClose(2_000);
    await dovecot.start();
    const again = await rawConnect({ port: ports.imaps, tls: true, ca: dovecot.caPem });
    expect(await again.readLine()).toMatch(/^\* OK /);
    await again.close();
  });
});

describe('startDovecot, a second instance at the same time', () => {
  test('runs beside others; ID from an untrusted network is ignored', async () => {
    const [a, b] = await Promise.all([
      startDovecot({ users: [alice], trustedNetworks: '192.0.2.0/24' }),
      startDovecot({ users: [alice], protocols: ['pop3'] }),
    ]);
    try {
      expect(a.baseDir).not.toBe(b.baseDir);
      expect(b.ports.pop3).toBeGreaterThan(0);
      expect(a.ports.pop3).toBeUndefined();
      const c = await rawConnect({ port: a.ports.imap });
      await c.readLine();
      await c.command('a1 ID ("x-originating-ip" "203.0.113.7" "x-originating-port" "4242")');
      expect((await c.command('a2 LOGIN alice alice-secret')).at(-1)).toMatch(/^a2 OK /);
      await c.close();
      const line = await a.waitForLog(/Login: user=<alice>/);
      expect(line).toContain('rip=127.0.0.1');
      expect(line).not.toContain('203.0.113.7');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(await pgrep(a.configFile)).toBe('');
    expect(await pgrep(b.configFile)).toBe('');
  });

  test('a failed start says why: stderr, log tail and doveconf', async () => {
    const err = await startDovecot({ users: [alice], extraConfig: 'no_such_setting = 1' }).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(err.message).toMatch(/^Dovecot did not start: /);
    expect(err.message).toContain('Unknown setting: no_such_setting');
    expect(err.message).toMatch(/--- dovecot -c .* -n ---/);
  });

  test('bad users are refused before anything starts', async () => {
    await expect(startDovecot({ users: [{ name: 'a:b', password: 'x' }] })).rejects.toThrow(TypeError);
    await expect(startDovecot({ users: [{ name: 'a', password: 'x:y' }] })).rejects.toThrow(TypeError);
  });
});
