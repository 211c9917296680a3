/**
 * One closed set of failure kinds. The kind, never the message text, decides
 * whether a login is retried, how loudly it is logged and what the client is
 * told (see `clientAnswerFor`).
 */
export type FailureKind =
  /** TCP or TLS connection to the backend could not be made */
  | 'connect'
  /** the backend did not answer in time */
  | 'timeout'
  /** the backend refused for its own reasons (BYE, [UNAVAILABLE], master login refused) */
  | 'remote'
  /** the backend spoke outside the protocol, or did something unsafe (bytes after STARTTLS, no STARTTLS, PREAUTH) */
  | 'protocol'
  /** the user's credentials were rejected (by us or by the backend) */
  | 'auth-failed'
  /** we could not decide about the credentials now (store or directory down) */
  | 'auth-tempfail'
  /** no backend can take this user now */
  | 'no-backend'
  /** the client's address or the user name is refused for a while after repeated failures */
  | 'penalised'
  /** a bug of ours */
  | 'internal';

export class ProxyFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    /** detail for the log; never shown to the client */
    readonly detail: string,
    options?: { cause?: unknown },
    /** A more precise answer the client may get than 'temporary' (see FailureHint). */
    readonly hint?: FailureHint,
  ) {
    super(`${kind}: ${detail}`, options);
    this.name = 'ProxyFailure';
  }
}

export function failure(kind: FailureKind, detail: string, cause?: unknown, hint?: FailureHint): ProxyFailure {
  return new ProxyFailure(kind, detail, cause === undefined ? undefined : { cause }, hint);
}

/**
 * What a temporary failure is, when the protocol has a word for it and the
 * client can act on it: 'in-use' — the mailbox is held by another session
 * (POP3 [IN-USE], RFC 2449 §8; IMAP [INUSE], RFC 5530). Only given after the
 * user's own credentials were accepted, so it tells nobody anything new.
 */
export type FailureHint = 'in-use';

/** What the client is told: only whether retrying later may help. */
export type ClientAnswer = 'auth-failed' | 'temporary';

export function clientAnswerFor(kind: FailureKind): ClientAnswer {
  return kind === 'auth-failed' ? 'auth-failed' : 'temporary';
}

/** Log level for a failed login by kind: ours and the backends' trouble is loud, users' typos are not. */
export function logLevelFor(kind: FailureKind): 'info' | 'warn' | 'error' {
  switch (kind) {
    case 'auth-failed':
      return 'info';
    case 'connect':
    case 'timeout':
    case 'remote':
    case 'auth-tempfail':
    case 'no-backend':
    case 'penalised':
      return 'warn';
    case 'protocol':
    case 'internal':
      return 'error';
  }
}
