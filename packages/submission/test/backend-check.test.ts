import { submissionProbe, type SubmissionProbeState } from '@mailfront/submission';
import type { BackendLoginContext, BackendStep } from '@mailfront/proxy-core';
import type { BackendRow } from '@mailfront/store';

const row = (tls: BackendRow['tls']): BackendRow => ({
  name: 'b',
  host: '127.0.0.1',
  ports: { imap: null, pop3: null, submission: 587 },
  tls,
  caFile: null,
  insecure: false,
  trusted: false,
  login: 'passthrough',
  masterUser: null,
  masterPassword: null,
  state: 'active',
  createdAt: '',
});
const DOVECOT_EHLO = ['250-localhost', '250-8BITMIME', '250-AUTH PLAIN LOGIN', '250-CHUNKING', '250-SIZE', '250-STARTTLS', '250 PIPELINING'];

function run(tls: BackendRow['tls'], lines: string[]): BackendStep<SubmissionProbeState>[] {
  const ctx: BackendLoginContext = { user: '', password: '', backend: row(tls), forward: null, tls: false, clientContext: {} };
  const p = submissionProbe('mf.example.org');
  let s = p.initial(ctx);
  const out: BackendStep<SubmissionProbeState>[] = [];
  for (const l of lines) {
    const st = p.onLine(s, l, ctx);
    out.push(st);
    if (!('next' in st)) break;
    s = st.next;
    if (st.startTls) ctx.tls = true;
  }
  return out;
}

describe('start-up probe of a submission backend', () => {
  test('greets, reads the EHLO reply, sends no credentials', () => {
    const steps = run('none', ['220 localhost Dovecot (Debian) ready.', ...DOVECOT_EHLO]);
    expect(steps[0]).toMatchObject({ send: 'EHLO mf.example.org\r\n' });
    expect(steps[steps.length - 1]).toEqual({ done: true, reply: DOVECOT_EHLO.map((l) => l.slice(4)) });
    // The only thing sent: no credentials, no AUTH.
    expect(steps.map((s) => ('send' in s ? s.send : '')).join('')).toBe('EHLO mf.example.org\r\n');
  });

  test('STARTTLS where configured, and only the EHLO inside TLS is reported', () => {
    const inside = DOVECOT_EHLO.filter((l) => !l.includes('STARTTLS'));
    const steps = run('starttls', ['220 hi', ...DOVECOT_EHLO, '220 2.0.0 go', ...inside]);
    expect(steps.find((s) => 'startTls' in s)).toMatchObject({ send: 'EHLO mf.example.org\r\n', startTls: true });
    expect(steps[steps.length - 1]).toEqual({ done: true, reply: inside.map((l) => l.slice(4)) });
    expect(run('starttls', ['220 hi', '250 localhost'])[1]).toMatchObject({ fail: { kind: 'protocol' } });
  });

  test('a refused greeting or garbage fails', () => {
    expect(run('none', ['554 go away'])[0]).toMatchObject({ fail: { kind: 'remote' } });
    expect(run('none', ['* OK IMAP'])[0]).toMatchObject({ fail: { kind: 'protocol' } });
  });
});
