import { imapProtocol } from '@mailfront/imap';
import { pop3Protocol } from '@mailfront/pop3';
import {
  BackendLoginError,
  loginToBackend,
  type BackendLoginContext,
  type BackendProtocol,
  type BackendStep,
} from '@mailfront/proxy-core';
import { PROTOCOLS, type BackendRow, type Protocol } from '@mailfront/store';
import { checkSubmissionBackends, submissionProtocol } from '@mailfront/submission';
import type { MailfrontConfig } from './config';

/**
 * `mailfront doctor`: what a login would meet at each backend, step by step,
 * through the protocols' own backend login machines (the code real logins
 * run), one connection per backend and protocol:
 *
 *   connect → tls (handshake, certificate checked as configured) →
 *   capabilities (greeting, CAPABILITY / CAPA / EHLO: what the machine
 *   needs before it would send credentials) → [extensions, submission] →
 *   login (only with a test account)
 *
 * Without a test account the machine is stopped at the step that would send
 * credentials, so nothing reaches the backend's authentication at all.
 */

export type DoctorCheckName = 'connect' | 'tls' | 'capabilities' | 'extensions' | 'login';

export interface DoctorCheck {
  backend: string;
  protocol: Protocol;
  check: DoctorCheckName;
  /** ok, failed, or skipped (not reached, or not asked for). */
  status: 'ok' | 'fail' | 'skip';
  detail: string;
}

export interface DoctorOptions {
  /** A test account to log in with on each backend; without it the login check is skipped. */
  user?: string;
  password?: string;
  signal?: AbortSignal;
}

/** The machine's step that sends the user's credentials (LOGIN, AUTHENTICATE, USER/PASS, AUTH). */
const CREDENTIALS = /(^|\+)(login|user|pass|auth)$/;

function machineFor(protocol: Protocol, config: MailfrontConfig): BackendProtocol<{ at: string }> {
  switch (protocol) {
    case 'imap':
      return imapProtocol(config.imap).backend as BackendProtocol<{ at: string }>;
    case 'pop3':
      return pop3Protocol(config.pop3).backend as BackendProtocol<{ at: string }>;
    case 'submission':
      return submissionProtocol({ hostname: config.hostname, ...config.submission }).backend as BackendProtocol<{ at: string }>;
  }
}

interface Seen {
  firstLine: string | null;
  /** A line arrived over TLS: the handshake (and the certificate check) passed. */
  tls: boolean;
  /** The machine got as far as sending credentials. */
  credentials: boolean;
}

/** The machine as it is, watched; with `stopBeforeCredentials`, it ends where it would send them. */
function watched(inner: BackendProtocol<{ at: string }>, seen: Seen, stopBeforeCredentials: boolean): BackendProtocol<{ at: string }> {
  return {
    initial: (ctx) => inner.initial(ctx),
    ...(inner.literalLength ? { literalLength: (line: string) => inner.literalLength!(line) } : {}),
    onLine(s, line, ctx): BackendStep<{ at: string }> {
      seen.firstLine ??= line;
      if (ctx.tls) seen.tls = true;
      const step = inner.onLine(s, line, ctx);
      if ('next' in step && step.send !== undefined && step.sent !== undefined && CREDENTIALS.test(step.sent)) {
        seen.credentials = true;
        if (stopBeforeCredentials) return { done: true, reply: [] };
      }
      return step;
    },
  };
}

function clip(s: string, n = 100): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

async function checkOne(b: BackendRow, protocol: Protocol, port: number, config: MailfrontConfig, opts: DoctorOptions): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = [];
  const add = (check: DoctorCheckName, status: DoctorCheck['status'], detail: string) => out.push({ backend: b.name, protocol, check, status, detail });
  const login = opts.user !== undefined;
  const seen: Seen = { firstLine: null, tls: false, credentials: false };
  const ctx: BackendLoginContext = { user: opts.user ?? '', password: opts.password ?? '', backend: b, forward: null, tls: false, clientContext: {} };
  const l = config.limits;
  let error: BackendLoginError | Error | null = null;
  let state = '';
  try {
    const r = await loginToBackend(watched(machineFor(protocol, config), seen, !login), ctx, {
      host: b.host,
      port,
      connectTimeoutMs: l.backendConnectTimeoutMs,
      loginTimeoutMs: l.backendLoginTimeoutMs,
      maxLineBytes: l.backendMaxLineBytes,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    state = r.state;
    r.socket.destroy();
  } catch (e) {
    error = e instanceof Error ? e : new Error(String(e));
    if (e instanceof BackendLoginError) state = e.state;
  }
  const why = error instanceof BackendLoginError ? `${error.failure.kind}: ${error.failure.detail} (state ${state})` : (error?.message ?? '');
  const connectFailed = error !== null && (!(error instanceof BackendLoginError) || error.failure.kind === 'connect') && seen.firstLine === null;

  // Each check passes, fails (the first one that did not pass), or was not reached.
  let failed = false;
  const step = (check: DoctorCheckName, passed: boolean, okDetail: string) => {
    if (failed) return add(check, 'skip', 'not reached');
    if (passed) return add(check, 'ok', okDetail);
    failed = true;
    add(check, 'fail', why || 'failed');
  };

  step('connect', !connectFailed, `${b.host}:${port}`);
  if (b.tls === 'none') {
    if (!failed) add('tls', 'skip', 'none: the backend is reached in plaintext');
    else add('tls', 'skip', 'not reached');
  } else {
    step('tls', seen.tls, `${b.tls}, certificate ${b.insecure ? 'NOT verified (insecure)' : `verified${b.caFile ? ` against ${b.caFile}` : ' against the system CAs'}`}`);
  }
  step('capabilities', seen.credentials, seen.firstLine ? clip(seen.firstLine) : 'read');

  if (protocol === 'submission') {
    if (failed) add('extensions', 'skip', 'not reached');
    else {
      const [r] = await checkSubmissionBackends([{ ...b, state: 'active' }], {
        hostname: config.hostname,
        policy: { extensions: config.submission.extensions, maxMessageBytes: config.submission.maxMessageBytes },
        connectTimeoutMs: l.backendConnectTimeoutMs,
        timeoutMs: l.backendLoginTimeoutMs,
        maxLineBytes: l.backendMaxLineBytes,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (r?.error) {
        failed = true;
        add('extensions', 'fail', r.error);
      } else if (r && r.missing.length) {
        failed = true;
        add('extensions', 'fail', `lacks ${r.missing.join(', ')} (submission.extensions promises them to clients)`);
      } else add('extensions', 'ok', `offers ${config.submission.extensions.join(' ')}`);
    }
  }

  if (!login) add('login', 'skip', failed ? 'not reached' : 'no test account (--user)');
  else {
    const as = b.login === 'master' ? `${opts.user} (master login as ${b.masterUser})` : opts.user!;
    step('login', error === null, `${as} logged in (${state})`);
  }
  return out;
}

/** Every check for every backend (or the ones named) and each protocol it has a port for. */
export async function runDoctor(config: MailfrontConfig, backends: readonly BackendRow[], opts: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const jobs = backends.flatMap((b) =>
    PROTOCOLS.filter((p) => b.ports[p] !== null).map((p) => checkOne(b, p, b.ports[p]!, config, opts)),
  );
  return (await Promise.all(jobs)).flat();
}
