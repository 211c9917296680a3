import * as net from 'node:net';

/**
 * A scriptable IMAP backend for misbehaviour a real server does not produce
 * (injection after STARTTLS, PREAUTH, stalls, garbage). It records every line
 * it receives, so tests can prove that no credentials reached it.
 */
export interface FakeBackend {
  port: number;
  /** Every line received, across connections. */
  received: string[];
  connections: number;
  close(): Promise<void>;
}

export type FakeScript = {
  /** Sent on connect ('' sends nothing). */
  greeting: string;
  /** Answer to one received line: a string to write as is, or null for silence. */
  onLine?: (line: string, sock: net.Socket) => string | null;
};

export async function startFakeBackend(script: FakeScript): Promise<FakeBackend> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    if (script.greeting) sock.write(script.greeting);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        received.push(line);
        const answer = script.onLine?.(line, sock) ?? null;
        if (answer !== null) sock.write(answer);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
