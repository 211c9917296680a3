import type { BackendRow, Protocol } from '@mailfront/store';
import type { ClientAnswer, FailureHint, FailureKind, ProxyFailure } from './errors';

/**
 * The contract between the protocol-neutral core and one protocol package
 * (imap, pop3, submission). A protocol supplies a descriptor: its client-side
 * pre-login session and its backend login machine. The core owns every socket,
 * timer and TLS handshake; the protocol only turns input into steps.
 */

// ---------------------------------------------------------------------------
// Client side: pre-login session

/** What the session knows about its connection; updated by the driver. */
export interface SessionEnv {
  readonly sessionId: string;
  /** TLS is active on the client connection now (implicit TLS, or after STARTTLS). */
  readonly tls: boolean;
  /** STARTTLS may be offered now (a STARTTLS listener whose connection is not yet TLS). */
  readonly starttlsAvailable: boolean;
  /** Credentials may be sent now: TLS is active, or the listener allows plaintext auth. */
  readonly authAllowed: boolean;
}

export interface Credentials {
  /** The login name as the client sent it. */
  user: string;
  /** Held in memory for the login only; never logged. */
  password: string;
  /** SASL authorization identity ('' = none). */
  authzid: string;
  /** For the log: how the client logged in (LOGIN, PLAIN, USER, …). */
  mechanism: string;
}

export type ClientStep =
  /** Write to the client. `error` marks a rejected command: too many close the connection. */
  | { do: 'send'; text: string; error?: true }
  /** Upgrade the connection to TLS now (after every earlier send), then call `tlsStarted()`. */
  | { do: 'starttls' }
  /**
   * Authenticate, locate and log in to the backend; then call `loginDone()`.
   * Client input is paused meanwhile. `context` carries what the backend login
   * needs to know of the client session (e.g. SMTP's EHLO name); it is passed
   * on as BackendLoginContext.clientContext.
   */
  | { do: 'login'; credentials: Credentials; context?: Readonly<Record<string, string>> }
  /** Login is complete and replied to: hand the connection to the byte relay. */
  | { do: 'relay' }
  /** Close after every earlier send. */
  | { do: 'close'; reason: string };

export type LoginOutcome =
  | { ok: true; /** the backend's final reply lines, as received (without line ends) */ backendReply: string[] }
  | { ok: false; answer: ClientAnswer; kind: FailureKind; hint?: FailureHint };

/** Why the core ends a session on its own; `overloaded`: refused at connect (connection limits). */
export type ByeReason = 'timeout' | 'shutdown' | 'too-many-errors' | 'internal' | 'kicked' | 'overloaded';

/** A protocol's goodbye for each ByeReason (each protocol's replies.ts); a reason left out is a type error. */
export type ByeReplies = Readonly<Record<ByeReason, string>>;

/**
 * One client connection's pre-login session. Implementations keep parsing
 * (parser.ts) apart from decisions (session.ts: pure transitions); this object
 * is the glue the driver talks to.
 */
export interface ClientSession {
  /** Bytes from the client. Parsing happens in `next()`. */
  feed(chunk: Buffer): void;
  /** The next step, or null when more input is needed. The first call yields the greeting. */
  next(): ClientStep | null;
  /** Answer to a `login` step. */
  loginDone(outcome: LoginOutcome): void;
  /** TLS is up: forget every buffered plaintext byte and parse afresh (RFC 3207 §4.2, RFC 2595 §3.1). */
  tlsStarted(): void;
  /** Bytes received but not consumed (pipelined after the login command), for the backend. */
  takeUnconsumed(): Buffer;
  /** The text to send when the core ends the session on its own. */
  bye(reason: ByeReason): string;
}

// ---------------------------------------------------------------------------
// Backend side: login machine

/** The client's connection as forwarded to a trusted backend. */
export interface ForwardInfo {
  clientAddress: string;
  clientPort: number;
  localAddress: string;
  localPort: number;
  sessionId: string;
  /** Hop limit against proxy loops (Dovecot's x-proxy-ttl). */
  ttl: number;
}

export interface BackendLoginContext {
  /** Canonical user name, as the backend should know it. */
  user: string;
  /** The user's password (passthrough login); never logged. */
  password: string;
  backend: BackendRow;
  /** Set only when the backend is trusted with the client's address. */
  forward: ForwardInfo | null;
  /** Whether the connection to the backend is TLS now (implicit, or after STARTTLS). */
  tls: boolean;
  /** What the client session passed with its login step (protocol-specific, e.g. `helo`). */
  clientContext: Readonly<Record<string, string>>;
}

export type BackendStep<S> =
  | { next: S; send?: string; /** what `send` is, for the log: capability, starttls, id, login */ sent?: string; startTls?: true }
  | { done: true; reply: string[] }
  | { fail: ProxyFailure };

export interface BackendProtocol<S extends { at: string }> {
  initial(ctx: BackendLoginContext): S;
  /** One line from the backend, without its line end. */
  onLine(state: S, line: string, ctx: BackendLoginContext): BackendStep<S>;
  /** Bytes of literal data announced at the end of a line (IMAP `{n}`; `{0}` is 0), null if none. */
  literalLength?(line: string): number | null;
}

// ---------------------------------------------------------------------------

export interface ProtocolDescriptor<S extends { at: string } = { at: string }> {
  readonly name: Protocol;
  /** ALPN identifiers this protocol accepts (RFC 7301; IANA: imap, pop3, smtp). */
  readonly alpn: readonly string[];
  createSession(env: SessionEnv): ClientSession;
  readonly backend: BackendProtocol<S>;
}
