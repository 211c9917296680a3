import type { ProtocolDescriptor } from '@mailfront/proxy-core';
import { pop3Backend, type Pop3BackendState } from './backend-login';
import { Pop3ClientSession } from './client-session';
import { DEFAULT_POP3_LIMITS, type Pop3Limits } from './limits';

export { DEFAULT_POP3_LIMITS, type Pop3Limits } from './limits';
export { Pop3Parser, type Pop3Command, type ParseResult } from './parser';
export * as pop3Session from './session';
export { Pop3ClientSession } from './client-session';
export { pop3Backend, type Pop3BackendState } from './backend-login';
export { preLoginCapabilities } from './capabilities';
export { replies as pop3Replies } from './replies';

/** The POP3 protocol descriptor: what the core needs to serve POP3 (RFC 1939, RFC 2449, RFC 2595, RFC 5034). */
export function pop3Protocol(limits: Partial<Pop3Limits> = {}): ProtocolDescriptor<Pop3BackendState> {
  const l: Pop3Limits = Object.freeze({ ...DEFAULT_POP3_LIMITS, ...limits });
  return {
    name: 'pop3',
    // RFC 7301 / IANA: "pop3" is the ALPN id for POP3 over TLS (RFC 8314 port 995 and after STLS).
    alpn: ['pop3'],
    createSession: (env) => new Pop3ClientSession(env, l),
    backend: pop3Backend,
  };
}
