/** `config check` and the admin, metrics and autoconfig sections. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliCaptured } from '../src/capture';

let tmp: string;
beforeEach(() => (tmp = mkdtempSync(join(tmpdir(), 'mailfront-check-'))));
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

async function check(yaml: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const conf = join(tmp, 'mailfront.yaml');
  writeFileSync(conf, yaml);
  return runCliCaptured(['--config', conf, 'config', 'check'], { cwd: tmp });
}

test('the defaults: the admin socket in dataDir, metrics and autoconfig off', async () => {
  const r = await check('dataDir: data\n');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`admin:      socket ${join(tmp, 'data', 'admin.sock')}, logins wait 5000 ms during a user move\n`);
  expect(r.stdout).toContain('metrics:    off\n');
  expect(r.stdout).toContain('autoconfig: off\n');
});

test('the admin token file must be readable and not empty; one others can read is warned about', async () => {
  const http = 'admin: { http: { port: 8025, tokenFile: admin.token } }\n';
  const missing = await check(http);
  expect(missing).toMatchObject({ code: 2, stderr: `mailfront: admin.http.tokenFile: cannot read ${join(tmp, 'admin.token')}: ENOENT\n` });
  writeFileSync(join(tmp, 'admin.token'), '\n');
  expect((await check(http)).stderr).toMatch(/admin\.http\.tokenFile: .* is empty/);
  writeFileSync(join(tmp, 'admin.token'), 'check-secret-token\n');
  chmodSync(join(tmp, 'admin.token'), 0o644);
  const loose = await check(http + 'metrics: { port: 9100 }\nautoconfig: { port: 8443, tls: true, hostname: mail.example.org }\n');
  expect(loose.code).toBe(0);
  expect(loose.stdout).toContain(`http 127.0.0.1:8025 (token from ${join(tmp, 'admin.token')})`);
  expect(loose.stdout).toContain('metrics:    http://127.0.0.1:9100/metrics\n');
  expect(loose.stdout).toContain('autoconfig: https://127.0.0.1:8443 for mail.example.org\n');
  expect(loose.stdout).toMatch(/warning: admin\.http\.tokenFile: .* readable by others/);
  expect(loose.stdout + loose.stderr).not.toContain('check-secret-token');
});

test('a non-loopback admin host without allowRemote is a configuration error naming the key', async () => {
  const r = await check('admin: { http: { host: 0.0.0.0, port: 8025, tokenFile: t } }\n');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/mailfront\.yaml:1: admin\.http\.host: 0\.0\.0\.0 is not a loopback address/);
});
