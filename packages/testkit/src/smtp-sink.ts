/**
 * A sink SMTP server for the submission tests: Dovecot's submission service
 * relays to it (`submissionRelay`), and it keeps every message it is given,
 * so a test can compare what a client sent with what arrived.
 *
 * Built on smtp-server. It accepts any sender and recipient without AUTH or
 * TLS (it listens on loopback only), takes XCLIENT from anyone (Dovecot's
 * `submission_relay_trusted = yes` sends the client's address and login with
 * it), and advertises 8BITMIME and SMTPUTF8 so that Dovecot passes such
 * messages on as they are. It offers no CHUNKING: Dovecot turns BDAT into
 * DATA towards a relay without it, which is part of what is tested.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';

export interface SinkMessage {
  /** MAIL FROM address ('' for the null sender) and its parameters (BODY, SMTPUTF8, SIZE…; keys upper-case). */
  mailFrom: { address: string; args: Record<string, string | true> };
  /** RCPT TO addresses in order. */
  rcptTo: string[];
  /** The message as received: the DATA content after dot-unstuffing, without the final `.` line. */
  raw: Buffer;
  session: {
    id: string;
    /** The address the sink believes the client has: the TCP peer, or XCLIENT ADDR when one was given. */
    remoteAddress: string;
    /** The EHLO/HELO name the client used (after XCLIENT, the one XCLIENT gave). */
    heloName: string;
    /** ESMTP, ESMTPS, … as smtp-server would write it in a Received header. */
    transmissionType: string;
    /** XCLIENT attributes the relay sent (upper-case keys), empty without XCLIENT. */
    xclient: Record<string, string>;
    /** The ordinal of this transaction on its connection. */
    transaction: number;
  };
}

export interface SmtpSink {
  port: number;
  /** Every message received so far, in order of arrival. */
  readonly messages: SinkMessage[];
  /** Resolves once at least `n` messages have arrived in total; rejects after timeoutMs (default 10 000). */
  waitForMessages(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    useXClient: true,
    disableReverseLookup: true,
    logger: false,
    banner: 'mailfront testkit sink',
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (e) => callback(e));
      stream.on('end', () => {
        messages.push(snapshot(session, Buffer.concat(chunks)));
        for (const w of [...waiters]) w();
        callback(null, 'Message stored by the sink');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    messages,
    waitForMessages(n, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (messages.length < n) return false;
          clearTimeout(timer);
          waiters.delete(done);
          resolve(messages.slice());
          return true;
        };
        const done = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`smtp sink: ${messages.length} of ${n} messages after ${timeoutMs} ms`));
        }, timeoutMs);
        if (!check()) waiters.add(done);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function snapshot(session: SMTPServerSession, raw: Buffer): SinkMessage {
  const from = session.envelope.mailFrom as SMTPServerAddress | false;
  const xclient: Record<string, string> = {};
  for (const [k, v] of session.xClient ?? new Map()) if (v !== false) xclient[k] = String(v);
  return {
    mailFrom: { address: from ? from.address : '', args: from ? { ...(from.args as Record<string, string | true>) } : {} },
    rcptTo: session.envelope.rcptTo.map((r) => r.address),
    raw,
    session: {
      id: session.id,
      remoteAddress: session.remoteAddress,
      heloName: String(session.hostNameAppearsAs || ''),
      transmissionType: session.transmissionType,
      xclient,
      transaction: session.transaction,
    },
  };
}
