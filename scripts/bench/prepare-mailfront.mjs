/**
 * Fills mailfront's store through its CLI (the same runCli that bin.js runs,
 * called in-process: a Node start-up per command would take longer than the
 * work): `cert generate`, `backend add dovecot` with the ports given, and the
 * users with `user import` (scrypt hashes, four at a time on the thread pool).
 * argv: a JSON file {config, dir, ports: {imap, pop3?, submission?}, users:[{name,password}]}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { runCliCaptured } = require('../../packages/cli/dist/index.js');
const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

async function cli(...args) {
  const r = await runCliCaptured(['--config', job.config, ...args], { cwd: job.dir, env: process.env });
  if (r.code !== 0) throw new Error(`mailfront ${args.join(' ')} exited ${r.code}: ${(r.stdout + r.stderr).trim()}`);
  return r.stdout;
}

const { ports } = job;
await cli('cert', 'generate', '--hostname', 'localhost', '--hostname', '127.0.0.1', '--out', path.join(job.dir, 'tls'));
await cli(
  'backend',
  'add',
  'dovecot',
  '--host',
  '127.0.0.1',
  '--imap-port',
  String(ports.imap),
  ...(ports.pop3 ? ['--pop3-port', String(ports.pop3)] : []),
  ...(ports.submission ? ['--submission-port', String(ports.submission)] : []),
  '--tls',
  'none',
  '--trusted',
);
// Names and passwords of the bench are [A-Za-z0-9@.-]: no CSV quoting needed.
const csv = path.join(job.dir, 'users.csv');
fs.writeFileSync(csv, `user,password,backend\n${job.users.map((u) => `${u.name},${u.password},dovecot`).join('\n')}\n`, { mode: 0o600 });
await cli('user', 'import', csv);
fs.rmSync(csv);
