import {
  failure,
  loginToBackend,
  BackendLoginError,
  type BackendLoginContext,
  type BackendProtocol,
  type BackendStep,
} from '@mailfront/proxy-core';
import { parseEhloKeywords, unsupportedBy, type ExtensionPolicy } from './capabilities';

/**
 * The start-up check of `submission.extensions`: greet every submission
 * backend (through STARTTLS where configured), read its EHLO reply and report
 * what we advertise that it does not list, and a trusted backend that does not
 * offer us XCLIENT. No credentials are sent, so this sees the list before
 * AUTH; the check at each login (backend-login.ts) sees the one after AUTH,
 * which is what clients use, and stays the one that refuses sessions. This
 * one tells the admin at start, before the first user finds out.
 */
type BackendRow = BackendLoginContext['backend'];

export type SubmissionProbeState = { at: 'banner'; lines: string[] } | { at: 'ehlo'; lines: string[] } | { at: 'starttls'; lines: string[] };

export function submissionProbe(hostname: string): BackendProtocol<SubmissionProbeState> {
  return {
    initial: () => ({ at: 'banner', lines: [] }),
    onLine(s, line, ctx): BackendStep<SubmissionProbeState> {
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) return { fail: failure('protocol', 'not an SMTP reply line') };
      const lines = [...s.lines, line];
      if (m[2] === '-') return { next: { ...s, lines } };
      const code = Number(m[1]);
      const ehlo = { next: { at: 'ehlo' as const, lines: [] }, send: `EHLO ${hostname}\r\n`, sent: 'ehlo' };
      switch (s.at) {
        case 'banner':
          return code === 220 ? ehlo : { fail: failure('remote', `greeting ${code}`) };
        case 'starttls':
          return code === 220 ? { ...ehlo, startTls: true } : { fail: failure('protocol', `STARTTLS refused: ${code}`) };
        case 'ehlo': {
          if (code !== 250) return { fail: failure('protocol', `EHLO refused: ${code}`) };
          const texts = lines.map((l) => l.slice(4));
          if (ctx.backend.tls === 'starttls' && !ctx.tls) {
            if (!parseEhloKeywords(texts).has('STARTTLS')) return { fail: failure('protocol', 'backend does not offer STARTTLS') };
            return { next: { at: 'starttls', lines: [] }, send: 'STARTTLS\r\n', sent: 'starttls' };
          }
          return { done: true, reply: texts };
        }
      }
    },
  };
}

export interface BackendCheck {
  backend: string;
  /** What we advertise that the backend's EHLO does not list ('XCLIENT ADDR' for a trusted backend that does not offer it). */
  missing: string[];
  /** Why the backend could not be asked at all (down, TLS, not SMTP); null when it answered. */
  error: string | null;
}

export interface CheckOptions {
  hostname: string;
  policy: ExtensionPolicy;
  connectTimeoutMs: number;
  timeoutMs: number;
  maxLineBytes: number;
  signal?: AbortSignal;
}

/** Check every active backend with a submission port, all at once. */
export function checkSubmissionBackends(backends: readonly BackendRow[], opts: CheckOptions): Promise<BackendCheck[]> {
  const probe = submissionProbe(opts.hostname);
  const targets = backends.filter((b) => b.state === 'active' && b.ports.submission !== null);
  return Promise.all(
    targets.map(async (b): Promise<BackendCheck> => {
      const ctx: BackendLoginContext = { user: '', password: '', backend: b, forward: null, tls: false, clientContext: {} };
      try {
        const r = await loginToBackend(probe, ctx, {
          host: b.host,
          port: b.ports.submission!,
          connectTimeoutMs: opts.connectTimeoutMs,
          loginTimeoutMs: opts.timeoutMs,
          maxLineBytes: opts.maxLineBytes,
          signal: opts.signal,
        });
        r.socket.end('QUIT\r\n');
        r.socket.resume();
        setTimeout(() => r.socket.destroy(), 1_000).unref();
        const kw = parseEhloKeywords(r.reply);
        const missing = unsupportedBy(kw, opts.policy);
        if (b.trusted && !kw.get('XCLIENT')?.some((a) => a.toUpperCase() === 'ADDR')) missing.push('XCLIENT ADDR');
        return { backend: b.name, missing, error: null };
      } catch (e) {
        const detail = e instanceof BackendLoginError ? `${e.failure.kind}: ${e.failure.detail}` : String(e);
        return { backend: b.name, missing: [], error: detail };
      }
    }),
  );
}
