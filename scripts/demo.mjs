// The README's first command ends here: a throwaway Dovecot on free loopback
// ports, mailfront's embedded defaults (SQLite in ./var/demo, a self-signed
// certificate made on first start), one backend, one demo user, one message.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const require = createRequire(import.meta.url);
const root = resolve(import.meta.dirname, '..');
const { startDovecot, startSmtpSink } = require(join(root, 'packages/testkit/dist/index.js'));
const { ImapFlow } = require('imapflow');

const USER = 'demo@example.org';
const PASSWORD = 'demo-password';
const dataDir = join(root, 'var', 'demo');
const configFile = join(dataDir, 'mailfront.yaml');
const cli = (...args) =>
  execFileSync(process.execPath, [join(root, 'packages/cli/dist/bin.js'), '--config', configFile, ...args], { stdio: ['pipe', 'pipe', 'inherit'] }).toString();

// Mail submitted through mailfront is relayed by Dovecot to a local sink
// that only prints it: nothing leaves the machine.
const sink = await startSmtpSink();
let seen = 0;
const watchSink = setInterval(() => {
  for (; seen < sink.messages.length; seen++) {
    const m = sink.messages[seen];
    console.log(`\n[demo sink] received a message from ${m.mailFrom.address} to ${m.rcptTo.join(", ")} (${m.raw.length} bytes)`);
  }
}, 500);
const dovecot = await startDovecot({
  users: [{ name: USER, password: PASSWORD }],
  protocols: ['imap', 'pop3', 'submission'],
  submissionRelay: { host: '127.0.0.1', port: sink.port },
});
let server;
const stop = async () => {
  server?.kill('SIGTERM');
  clearInterval(watchSink);
  await dovecot.stop();
  await sink.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

// A welcome message, appended straight to Dovecot.
const direct = new ImapFlow({ host: '127.0.0.1', port: dovecot.ports.imap, secure: false, auth: { user: USER, pass: PASSWORD }, logger: false, tls: { ca: dovecot.caPem } });
await direct.connect();
await direct.append('INBOX', `From: mailfront <demo@example.org>\r\nTo: ${USER}\r\nSubject: Welcome to mailfront\r\n\r\nThis message lives on the Dovecot behind mailfront.\r\n`);
await direct.logout();

mkdirSync(dataDir, { recursive: true });
writeFileSync(
  configFile,
  [
    '# Written by scripts/demo.mjs: the embedded defaults, with the data kept in var/demo.',
    'dataDir: .',
    'hostname: localhost',
    'log: { format: pretty }',
    '',
  ].join('\n'),
);
// The backend's port changes with every demo run: replace it.
if (cli('backend', 'list', '--json').includes('"dovecot"')) cli('backend', 'remove', 'dovecot', '--force');
cli(
  'backend', 'add', 'dovecot', '--host', '127.0.0.1', '--tls', 'starttls', '--ca', dovecot.caFile, '--trusted',
  '--imap-port', String(dovecot.ports.imap), '--pop3-port', String(dovecot.ports.pop3), '--submission-port', String(dovecot.ports.submission),
);
const pwFile = join(dataDir, 'demo-password.txt');
writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
if (!cli('user', 'list', '--json').includes(USER)) cli('user', 'add', USER, '--backend', 'dovecot', '--password-file', pwFile);
else cli('user', 'move', USER, 'dovecot');

server = spawn(process.execPath, [join(root, 'packages/cli/dist/bin.js'), '--config', configFile, 'serve'], { stdio: 'inherit' });
server.on('exit', async (code) => {
  await dovecot.stop();
  process.exit(code ?? 1);
});

const cert = join(dataDir, 'tls', 'selfsigned-cert.pem');
for (let i = 0; i < 100 && !existsSync(cert); i++) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 500));
console.log(`
mailfront is running in front of a throwaway Dovecot (IMAP, POP3 and submission).
Demo user: ${USER}  password: ${PASSWORD}

  # IMAP: list the inbox over implicit TLS (1993), read the welcome message over STARTTLS (1143)
  curl --cacert ${cert} 'imaps://localhost:1993/INBOX' -u '${USER}:${PASSWORD}'
  curl --ssl-reqd --cacert ${cert} 'imap://localhost:1143/INBOX;UID=1' -u '${USER}:${PASSWORD}'
  # POP3: list and read over implicit TLS (1995) or STLS (1110)
  curl --cacert ${cert} 'pop3s://localhost:1995/1' -u '${USER}:${PASSWORD}'
  # Submission: send a message over STARTTLS (1587); the demo sink prints it
  printf 'Subject: hello\r\n\r\nsent through mailfront\r\n' | curl --ssl-reqd --cacert ${cert} 'smtp://localhost:1587' \\
    -u '${USER}:${PASSWORD}' --mail-from '${USER}' --mail-rcpt 'someone@example.net' -T -
  # or talk IMAP yourself
  openssl s_client -quiet -connect 127.0.0.1:1143 -starttls imap -CAfile ${cert}

In another terminal: pnpm mailfront --config ${configFile} user list
Ctrl-C stops mailfront and Dovecot.
`);
