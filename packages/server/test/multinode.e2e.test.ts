/**
 * Scale-out: two mailfront processes sharing one PostgreSQL store, one
 * directory (slapd) and one Dovecot, behind a real HAProxy that speaks PROXY
 * protocol v2 to them. Clients only ever talk to HAProxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { runCli } from '@mailfront/cli';
import { auditLogFile, freePorts, makeTempDir, startDovecot, startPostgres, startSlapd, type Dovecot, type Postgres, type Slapd, type TempDir } from '@mailfront/testkit';

// Five daemons and two node processes: far more than the default per hook.
jest.setTimeout(240_000);

const ROOT = path.resolve(__dirname, '../../..');
const USERS = ['ann', 'bob', 'cat', 'dan'].map((u) => ({ uid: u, password: `${u}-pw`, mailHost: 'dovecot' }));

let dir: TempDir;
let pg: Postgres;
let slapd: Slapd;
let dovecot: Dovecot;
let haproxy: ChildProcess;
let frontPort: number;
const nodes: Array<{ name: string; port: number; proc: ChildProcess; log: string }> = [];

function configFor(name: string, port: number): string {
  return [
    // What a node keeps locally (its certificate if generated, its admin socket) is its own.
    `dataDir: ${dir.path}/${name}`,
    'hostname: localhost',
    'log: { level: info }',
    `store: { kind: postgres, url: '${pg.url}', passwordFile: ${pg.passwordFile} }`,
    'auth: { source: ldap, failureDelayMs: 50 }',
    `ldap: { urls: ['${slapd.url}'], startTls: false, bindDn: '${slapd.serviceDn}', bindPasswordFile: ${slapd.servicePasswordFile}, baseDn: '${slapd.suffix}' }`,
    'listeners:',
    `  - { protocol: imap, host: 127.0.0.1, port: ${port}, tls: none, allowPlaintextAuth: true, proxyProtocol: true }`,
    "proxyProtocol: { trustedNetworks: ['127.0.0.1/32'] }",
    'penalties: { threshold: 0 }',
    '',
  ].join('\n');
}

/** A mailfront node as its own OS process, running the TypeScript sources. */
function startNode(name: string, port: number): Promise<void> {
  const cfg = path.join(dir.path, `${name}.yaml`);
  fs.writeFileSync(cfg, configFor(name, port));
  // Under `pnpm test` the log is kept for the run's secrets audit.
  const log = auditLogFile(`multinode-${name}`) ?? path.join(dir.path, `${name}.log`);
  const out = fs.openSync(log, 'a');
  const proc = spawn(process.execPath, ['-r', path.join(ROOT, 'packages/testkit/bin/ts-register.cjs'), path.join(ROOT, 'packages/cli/src/bin.ts'), '--config', cfg, 'serve', '--grace-ms', '2000'], {
    stdio: ['ignore', out, out],
  });
  nodes.push({ name, port, proc, log });
  // Generous: a node transpiles the workspace's sources on a busy 2-core machine.
  return waitFor(() => fs.readFileSync(log, 'utf8').includes('"msg":"mailfront started"'), `${name} to start`, () => fs.readFileSync(log, 'utf8'), 120_000);
}

async function waitFor(ok: () => boolean | Promise<boolean>, what: string, detail: () => string = () => '', ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = await makeTempDir('mailfront-multinode-');
  [pg, slapd, dovecot] = await Promise.all([
    startPostgres(),
    startSlapd({ users: USERS }),
    startDovecot({ users: USERS.map((u) => ({ name: `${u.uid}@example.org`, password: u.password })) }),
  ]);
  // The fleet's one store gets its backend through the CLI of "any node".
  fs.writeFileSync(path.join(dir.path, 'admin.yaml'), configFor('admin', 0));
  const io = { stdin: process.stdin, stdout: { write: () => undefined }, stderr: { write: (s: string) => process.stderr.write(s) }, env: {}, cwd: dir.path };
  expect(await runCli(['--config', path.join(dir.path, 'admin.yaml'), 'backend', 'add', 'dovecot', '--host', '127.0.0.1', '--imap-port', String(dovecot.ports.imap), '--tls', 'none', '--trusted'], io)).toBe(0);

  const [pa, pb] = await freePorts(2);
  // One after the other: the second reuses what the first transpiled.
  await startNode('node-a', pa!);
  await startNode('node-b', pb!);
  // A port found free may be taken by another suite's daemon before HAProxy
  // binds it; HAProxy then exits, and that daemon answers on "our" port. So
  // the front counts as up only when HAProxy still runs and a mailfront
  // greeting comes through it; otherwise it starts again on another port.
  for (let attempt = 1; ; attempt++) {
    [frontPort] = (await freePorts(1)) as [number];
    haproxy = startHaproxy(pa!, pb!);
    if (await frontUp(haproxy)) break;
    haproxy.kill('SIGKILL');
    if (attempt === 3) throw new Error(`haproxy did not come up on a free port in 3 attempts:\n${haproxyErr}`);
  }
});

let haproxyErr = '';

function startHaproxy(pa: number, pb: number): ChildProcess {
  const hcfg = path.join(dir.path, 'haproxy.cfg');
  fs.writeFileSync(
    hcfg,
    [
      'global',
      '  maxconn 1000',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      // Long enough for IMAP IDLE (clients re-IDLE within 29 minutes).
      '  timeout client 31m',
      '  timeout server 31m',
      '  retries 2',
      '  option redispatch',
      'frontend imap',
      `  bind 127.0.0.1:${frontPort}`,
      '  default_backend mailfront',
      'backend mailfront',
      '  balance roundrobin',
      `  server node-a 127.0.0.1:${pa} send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 1`,
      `  server node-b 127.0.0.1:${pb} send-proxy-v2 check check-send-proxy inter 300ms fall 1 rise 1`,
      '',
    ].join('\n'),
  );
  const p = spawn('haproxy', ['-f', hcfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr!.on('data', (d: Buffer) => (haproxyErr = (haproxyErr + d.toString()).slice(-4000)));
  return p;
}

/** HAProxy runs and mailfront greets through it (within 30 s); false as soon as HAProxy exits. */
async function frontUp(p: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (p.exitCode !== null || p.signalCode !== null) return false;
    if ((await greetsThroughFront()) && p.exitCode === null) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Whether a connection to the front gets mailfront's IMAP greeting. */
function greetsThroughFront(): Promise<boolean> {
  return new Promise<boolean>((r) => {
    const s = net.connect(frontPort, '127.0.0.1');
    let buf = '';
    const done = (ok: boolean): void => {
      s.destroy();
      r(ok);
    };
    s.setTimeout(2_000, () => done(false));
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(/^\* OK .*mailfront ready\./.test(buf));
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

afterAll(async () => {
  haproxy?.kill('SIGKILL');
  for (const n of nodes) n.proc.kill('SIGKILL');
  await Promise.all([dovecot?.stop(), slapd?.stop(), pg?.stop()]);
  await dir?.cleanup();
});

/** Log in through HAProxy; the local port the client used, and the tagged answer. */
function loginThroughFront(user: { uid: string; password: string }): Promise<{ port: number; answer: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(frontPort, '127.0.0.1');
    let buf = '';
    let sent = false;
    s.on('data', (d) => {
      buf += d.toString();
      if (!sent && buf.includes('\r\n')) {
        sent = true;
        if (!buf.startsWith('* OK')) return reject(new Error(`greeting: ${buf}`));
        s.write(`a LOGIN ${user.uid} ${user.password}\r\nb LOGOUT\r\n`);
      }
      const m = /^a (OK|NO|BAD).*$/m.exec(buf);
      if (m && /^b OK/m.test(buf)) {
        resolve({ port: s.localPort!, answer: m[0].trim() });
        s.destroy();
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed: ${JSON.stringify(buf)}`)));
  });
}

const count = (file: string, re: RegExp) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => re.test(l)).length;

test('logins through HAProxy are spread over both nodes; Dovecot sees the client itself', async () => {
  for (let i = 0; i < 8; i++) {
    const u = USERS[i % USERS.length]!;
    const r = await loginThroughFront(u);
    expect(r.answer).toMatch(/^a OK/);
    // The client's own port crossed HAProxy (PROXY v2) and mailfront (ID) to Dovecot.
    await dovecot.waitForLog(new RegExp(`Login: user=<${u.uid}@example.org>.*rip=127\\.0\\.0\\.1, rport=${r.port},`));
  }
  await waitFor(() => nodes.every((n) => count(n.log, /"msg":"login"/) >= 2), 'both nodes to have served logins', () => nodes.map((n) => `${n.name}: ${count(n.log, /"msg":"login"/)}\n${fs.readFileSync(n.log, 'utf8').slice(-3000)}`).join('\n'));
  // Both nodes found the backend named by the directory's mailHost in the one store.
  for (const n of nodes) expect(count(n.log, /"msg":"login"/)).toBe(count(n.log, /"backend":"dovecot".*"msg":"login"/));
});

test('stopping one node mid-run: new connections succeed through the other', async () => {
  const [a] = nodes;
  a!.proc.kill('SIGTERM');
  await new Promise<void>((r) => a!.proc.once('exit', () => r()));
  for (let i = 0; i < 6; i++) {
    const r = await loginThroughFront(USERS[i % USERS.length]!);
    expect(r.answer).toMatch(/^a OK/);
  }
  expect(fs.readFileSync(a!.log, 'utf8')).toContain('"msg":"mailfront stopped"');
});
