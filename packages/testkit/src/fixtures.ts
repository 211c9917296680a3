import type { BackendLoginContext, BackendProtocol, BackendStep } from '@mailfront/proxy-core';
import type { BackendRow, NewBackend } from '@mailfront/store';

/** What addBackend takes, with harmless defaults: plaintext, untrusted, passthrough, no ports (state, standby, PROXY header left to addBackend). */
export function newBackend(over: Partial<NewBackend> = {}): NewBackend {
  return {
    name: 'b1',
    host: '127.0.0.1',
    ports: { imap: null, pop3: null, submission: null },
    tls: 'none',
    caFile: null,
    insecure: false,
    trusted: false,
    login: 'passthrough',
    masterUser: null,
    masterPassword: null,
    ...over,
  };
}

/** A backend row with the defaults of newBackend(): active, no standby, no PROXY header. */
export function backendRow(over: Partial<BackendRow> = {}): BackendRow {
  return { ...newBackend(), state: 'active', standby: null, proxyProtocol: false, createdAt: '', ...over };
}

/** A backend login context for alice/secret on `backendRow(backend)`. */
export function loginContext(over: Partial<BackendLoginContext> = {}, backend: Partial<BackendRow> = {}): BackendLoginContext {
  return { user: 'alice', password: 'secret', backend: backendRow(backend), forward: null, tls: false, clientContext: {}, ...over };
}

/**
 * Feed backend lines to a login machine as the driver would, one at a time,
 * until it is done or fails; every step is returned. A `startTls` step marks
 * the context as TLS, as the driver does once the handshake is over.
 */
export function runBackendMachine<S extends { at: string }>(proto: BackendProtocol<S>, ctx: BackendLoginContext, lines: string[]): BackendStep<S>[] {
  let s = proto.initial(ctx);
  const steps: BackendStep<S>[] = [];
  for (const l of lines) {
    const st = proto.onLine(s, l, ctx);
    steps.push(st);
    if (!('next' in st)) break;
    s = st.next;
    if (st.startTls) ctx.tls = true;
  }
  return steps;
}
