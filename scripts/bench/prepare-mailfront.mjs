/**
 * Fills mailfront's store through its CLI (the same runCli that bin.js runs,
 * called in-process: 200 `user add` as 200 processes would take a minute of
 * Node start-ups). argv: a JSON file {config, dir, dovecotPort, users:[{name,password}]}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { runCli } = require('../../packages/cli/dist/index.js');
const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

async function cli(...args) {
  let out = '';
  const sink = { write: (s) => void (out += s) };
  const code = await runCli(['--config', job.config, ...args], {
    stdin: Readable.from([]),
    stdout: sink,
    stderr: sink,
    env: process.env,
    cwd: job.dir,
  });
  if (code !== 0) throw new Error(`mailfront ${args.join(' ')} exited ${code}: ${out.trim()}`);
}

await cli('cert', 'generate', '--hostname', 'localhost', '--hostname', '127.0.0.1', '--out', path.join(job.dir, 'tls'));
await cli('backend', 'add', 'dovecot', '--host', '127.0.0.1', '--imap-port', String(job.dovecotPort), '--tls', 'none', '--trusted');
const pwFile = path.join(job.dir, 'password');
for (const u of job.users) {
  fs.writeFileSync(pwFile, `${u.password}\n`, { mode: 0o600 });
  await cli('user', 'add', u.name, '--backend', 'dovecot', '--password-file', pwFile);
}
fs.rmSync(pwFile);
