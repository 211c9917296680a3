import type { ProtocolDescriptor } from '@mailfront/proxy-core';
import { submissionBackend, type SubmissionBackendState } from './backend-login';
import { DEFAULT_EXTENSIONS, RELAYABLE_EXTENSIONS, type RelayableExtension } from './capabilities';
import { SubmissionClientSession } from './client-session';
import { DEFAULT_SUBMISSION_LIMITS, type SubmissionLimits } from './limits';

export { DEFAULT_SUBMISSION_LIMITS, type SubmissionLimits } from './limits';
export { SmtpParser, type SmtpParseResult, type InvalidReason, type ParseMode } from './parser';
export * as submissionSession from './session';
export { SubmissionClientSession } from './client-session';
export { submissionBackend, xclientCommand, xtext, isEhloName, type SubmissionBackendState, type SubmissionBackendOptions } from './backend-login';
export {
  DEFAULT_EXTENSIONS,
  RELAYABLE_EXTENSIONS,
  ehloKeywords,
  parseEhloKeywords,
  unsupportedBy,
  type ExtensionPolicy,
  type RelayableExtension,
} from './capabilities';
export { replies as submissionReplies } from './replies';
export { checkSubmissionBackends, submissionProbe, type BackendCheck, type CheckOptions, type SubmissionProbeState } from './backend-check';

export interface SubmissionOptions extends Partial<SubmissionLimits> {
  /** Our name: in the 220 greeting, the EHLO reply and our EHLO to backends. */
  hostname: string;
  /** What the EHLO reply offers on the backends' behalf (see capabilities.ts). Default DEFAULT_EXTENSIONS. */
  extensions?: readonly RelayableExtension[];
  /** The SIZE to advertise, in bytes; 0 = SIZE without a number. Default 0. */
  maxMessageBytes?: number;
}

/** The SMTP submission descriptor (RFC 6409): what the core needs to serve it. */
export function submissionProtocol(opts: SubmissionOptions): ProtocolDescriptor<SubmissionBackendState> {
  const { hostname, extensions = DEFAULT_EXTENSIONS, maxMessageBytes = 0, ...limitOverrides } = opts;
  for (const e of extensions) {
    if (!(RELAYABLE_EXTENSIONS as readonly string[]).includes(e)) throw new TypeError(`submission: ${String(e)} cannot be advertised`);
  }
  if (!/^[\x21-\x7e]+$/.test(hostname)) throw new TypeError('submission: hostname must be printable ASCII without spaces');
  const limits: SubmissionLimits = Object.freeze({ ...DEFAULT_SUBMISSION_LIMITS, ...definedOnly(limitOverrides) });
  const policy = Object.freeze({ extensions: Object.freeze([...new Set(extensions)]), maxMessageBytes });
  const cfg = Object.freeze({ hostname, policy });
  return {
    name: 'submission',
    alpn: ['smtp'],
    createSession: (env) => new SubmissionClientSession(env, cfg, limits),
    backend: submissionBackend({ hostname, policy }),
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
