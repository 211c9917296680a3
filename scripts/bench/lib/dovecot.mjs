/**
 * The testkit's Dovecot with imap, pop3 and submission relaying to a sink,
 * as the bench and the load script run it, stopped at cleanup; with the
 * readings both take of it: CPU of all its processes (live and reaped) and
 * PSS.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './processes.mjs';
import { pssKiB, sessionMembers, treeCpuMs } from './proc.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);

export async function startBenchDovecot({ users, sinkPort, extraConfig, startTimeoutMs }) {
  const testkit = require(path.join(ROOT, 'packages/testkit/dist/index.js'));
  const dovecot = await testkit.startDovecot({
    users,
    protocols: ['imap', 'pop3', 'submission'],
    submissionRelay: { host: '127.0.0.1', port: sinkPort },
    extraConfig,
    startTimeoutMs,
  });
  onCleanup(() => dovecot.stop());
  const master = dovecot.pid;
  const members = () => sessionMembers(master);
  return {
    dovecot,
    master,
    members,
    /** All of Dovecot's CPU: live processes plus those the master reaped. */
    cpuMs: () => treeCpuMs(master, members()),
    pssKiB: () => members().reduce((a, p) => a + pssKiB(p), 0),
  };
}
