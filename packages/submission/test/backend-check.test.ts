import { submissionProbe, type SubmissionProbeState } from '@mailfront/submission';
import type { BackendLoginContext, BackendStep } from '@mailfront/proxy-core';
import type { BackendRow } from '@mailfront/store';
import { loginContext, runBackendMachine } from '@mailfront/testkit';

const DOVECOT_EHLO = ['250-localhost', '250-8BITMIME', '250-AUTH PLAIN LOGIN', '250-CHUNKING', '250-SIZE', '250-STARTTLS', '250 PIPELINING'];

function run(tls: BackendRow['tls'], lines: string[]): BackendStep<SubmissionProbeState>[] {
  const ctx = loginContext({ user: '', password: '' }, { tls, ports: { imap: null, pop3: null, submission: 587 } });
  return runBackendMachine(submissionProbe('mf.example.org'), ctx, lines);
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
