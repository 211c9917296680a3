import * as net from 'node:net';
import * as tls from 'node:tls';
import { generateSelfSigned } from '@mailfront/server';
import { BufferedPlaintextError, freePort, freePorts, makeTempDir, rawConnect, runPython } from '@mailfront/testkit';
import * as fs from 'node:fs';

/** A server that runs `script` on each connection; resolves with its port and a closer. */
async function server(script: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    script(s);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

/** Writes `data` one piece at a time with a pause between, so every piece arrives as its own chunk. */
async function dribble(s: net.Socket, pieces: Buffer[]): Promise<void> {
  for (const p of pieces) {
    s.write(p);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const LITERAL = 'line1\r\nl\u00fc2\r\n'; // 13 octets: ü is two
const TRANSCRIPT = Buffer.from(
  `* OK ready\r\n* 1 FETCH (UID 7 BODY[] {13}\r\n${LITERAL} FLAGS (\\Seen))\r\n* 2 EXISTS\nA1 OK done\r\n`,
  'utf8',
);

describe('rawConnect', () => {
  test('lines, an IMAP literal and a bare LF survive being split at every byte offset', async () => {
    for (let cut = 1; cut < TRANSCRIPT.length; cut++) {
      const srv = await server((s) => void dribble(s, [TRANSCRIPT.subarray(0, cut), TRANSCRIPT.subarray(cut)]));
      const c = await rawConnect({ port: srv.port });
      expect(await c.readLine()).toBe('* OK ready');
      expect(await c.readUntilTagged('A1')).toEqual([
        `* 1 FETCH (UID 7 BODY[] {13}\r\n${LITERAL} FLAGS (\\Seen))`,
        '* 2 EXISTS',
        'A1 OK done',
      ]);
      expect(c.pending().length).toBe(0);
      await c.close();
      await srv.close();
    }
  });

  test('one byte per chunk: nothing is dropped', async () => {
    const bytes = [...TRANSCRIPT].map((b) => Buffer.from([b]));
    const srv = await server((s) => void dribble(s, bytes));
    const c = await rawConnect({ port: srv.port });
    expect(await c.readLine()).toBe('* OK ready');
    const lines = await c.readUntilTagged('A1');
    expect(lines.join('\r\n') + '\r\n').toBe(TRANSCRIPT.toString('utf8').slice('* OK ready\r\n'.length).replace('EXISTS\n', 'EXISTS\r\n'));
    await c.close();
    await srv.close();
  });

  test('readBytes takes exact counts, binary intact; command() tags and writes CRLF', async () => {
    const binary = Buffer.from([0, 1, 2, 0x0d, 0x0a, 0xff, 0x0a, 0x80]);
    const srv = await server((s) => {
      s.once('data', (d) => {
        expect(d.toString()).toBe('t1 NOOP\r\n');
        s.write(Buffer.concat([Buffer.from('* DATA\r\n'), binary, Buffer.from('t1 OK\r\n')]));
      });
    });
    const c = await rawConnect({ port: srv.port });
    await c.write('t1 NOOP\r\n');
    expect(await c.readLine()).toBe('* DATA');
    expect((await c.readBytes(binary.length)).equals(binary)).toBe(true);
    expect(await c.readLine()).toBe('t1 OK');
    await c.close();
    await srv.close();
  });

  test('a read times out with what was unread; a closed peer is reported', async () => {
    const srv = await server((s) => s.write('partial line without end'));
    const c = await rawConnect({ port: srv.port });
    await expect(c.readLine(100)).rejects.toThrow(/timed out after 100 ms; unread "partial line without end"/);
    await srv.close();
    expect((await c.waitForClose(2_000)).toString()).toBe('partial line without end');
    await expect(c.readLine(100)).rejects.toThrow(/closed by peer/);
    await c.close();
  });

  test('startTls upgrades after the OK, and refuses bytes that followed the OK in plaintext', async () => {
    const pair = generateSelfSigned({ hostnames: ['localhost'] });
    const starttls = (inject: string) => (s: net.Socket) => {
      s.write('* OK hi\r\n');
      s.once('data', () => {
        s.write(`a OK begin TLS\r\n${inject}`);
        const secure = new tls.TLSSocket(s, { isServer: true, cert: pair.cert, key: pair.key });
        secure.on('error', () => undefined);
        secure.on('data', () => secure.write('b OK over tls\r\n'));
      });
    };
    const good = await server(starttls(''));
    const c = await rawConnect({ port: good.port });
    await c.readLine();
    expect(await c.command('a STARTTLS')).toEqual(['a OK begin TLS']);
    await c.startTls(pair.cert);
    expect(c.socket).toBeInstanceOf(tls.TLSSocket);
    expect(await c.command('b NOOP')).toEqual(['b OK over tls']);
    await c.close();
    await good.close();

    const evil = await server(starttls('* OK injected\r\n'));
    const d = await rawConnect({ port: evil.port });
    await d.readLine();
    await d.command('a STARTTLS');
    // Let the injected line arrive (it was written right behind the OK).
    await new Promise((r) => setTimeout(r, 50));
    const err = await d.startTls(pair.cert).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BufferedPlaintextError);
    expect((err as BufferedPlaintextError).bytes.toString()).toBe('* OK injected\r\n');
    await d.close();
    await evil.close();
  });

  test('an implicit TLS connection checks the certificate', async () => {
    const pair = generateSelfSigned({ hostnames: ['localhost'] });
    const srv = tls.createServer({ cert: pair.cert, key: pair.key }, (s) => s.end('+OK tls\r\n'));
    srv.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const c = await rawConnect({ port, tls: true, ca: pair.cert });
    expect(await c.readLine()).toBe('+OK tls');
    await c.close();
    await expect(rawConnect({ port, tls: true })).rejects.toThrow(/self-signed certificate/);
    await expect(rawConnect({ port, tls: true, ca: pair.cert, servername: 'other.example' })).rejects.toThrow(
      /does not match|altnames/i,
    );
    await new Promise<void>((r) => srv.close(() => r()));
  });
});

describe('helpers', () => {
  test('freePort and freePorts give bindable, distinct ports', async () => {
    const one = await freePort();
    const many = await freePorts(5);
    expect(new Set(many).size).toBe(5);
    for (const port of [one, ...many]) {
      const s = net.createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', resolve);
      });
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  test('makeTempDir creates a private directory that cleanup removes', async () => {
    const dir = await makeTempDir('mailfront-testkit-');
    expect(fs.statSync(dir.path).mode & 0o777).toBe(0o700);
    fs.writeFileSync(`${dir.path}/f`, 'x');
    await dir.cleanup();
    await dir.cleanup();
    expect(fs.existsSync(dir.path)).toBe(false);
  });

  test('runPython passes args and stdin, reports the exit code, and kills on timeout', async () => {
    const ok = await runPython('import sys; print(sys.argv[1:], sys.stdin.read()); sys.exit(3)', ['a', 'b c'], {
      input: 'in',
    });
    expect(ok).toEqual({ code: 3, stdout: "['a', 'b c'] in\n", stderr: '', timedOut: false });
    const slow = await runPython('import time; time.sleep(30)', [], { timeoutMs: 200 });
    expect(slow.timedOut).toBe(true);
    expect(slow.code).toBeNull();
  });
});
