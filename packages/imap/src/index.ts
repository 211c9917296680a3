import type { ProtocolDescriptor } from '@mailfront/proxy-core';
import { imapBackend, type ImapBackendState } from './backend-login';
import { ImapClientSession } from './client-session';
import { DEFAULT_IMAP_LIMITS, type ImapLimits } from './limits';

export { DEFAULT_IMAP_LIMITS, type ImapLimits } from './limits';
export { ImapParser, type ImapCommand, type ImapArg, type ParseResult } from './parser';
export * as imapSession from './session';
export { imapBackend, type ImapBackendState } from './backend-login';
export { preLoginCapabilities } from './capabilities';
export { replies as imapReplies } from './replies';

/** The IMAP protocol descriptor: what the core needs to serve IMAP. */
export function imapProtocol(limits: Partial<ImapLimits> = {}): ProtocolDescriptor<ImapBackendState> {
  const l: ImapLimits = Object.freeze({ ...DEFAULT_IMAP_LIMITS, ...limits });
  return {
    name: 'imap',
    alpn: ['imap'],
    createSession: (env) => new ImapClientSession(env, l),
    backend: imapBackend,
  };
}
