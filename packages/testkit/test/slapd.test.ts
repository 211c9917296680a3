import * as fs from 'node:fs';
import * as net from 'node:net';
import { startSlapd, SlapdStartError, type Slapd } from '@mailfront/testkit';

function alive(pid: number): boolean {
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('startSlapd', () => {
  let slapd: Slapd | undefined;
  afterEach(async () => {
    await slapd?.stop();
    slapd = undefined;
  });

  test('pidfile, stop by it, start again on the same port with the same data', async () => {
    slapd = await startSlapd({ users: [{ uid: 'alice', password: 'pw' }] });
    const pid = slapd.pid!;
    expect(Number(fs.readFileSync(`${slapd.baseDir}/slapd.pid`, 'utf8').trim())).toBe(pid);
    expect(fs.readFileSync(slapd.configFile, 'utf8')).toContain('include /etc/ldap/schema/misc.schema');
    await slapd.stop();
    expect(alive(pid)).toBe(false);
    expect(slapd.pid).toBeUndefined();
    expect(await refused(slapd.port)).toBe(true);
    await slapd.start();
    expect(slapd.pid).not.toBe(pid);
    expect(await refused(slapd.port)).toBe(false);
    // The entries survived: the service account can still bind (it is in the data, not the config).
    await slapd.modify(`dn: ${slapd.userDn('alice')}\nchangetype: modify\nreplace: mailHost\nmailHost: imap2\n`);
    expect(await slapd.binds(slapd.rootDn)).toBeGreaterThanOrEqual(1);
  });

  test('kill() and a second stop() are harmless', async () => {
    slapd = await startSlapd({ users: [] });
    const pid = slapd.pid!;
    await slapd.kill();
    expect(alive(pid)).toBe(false);
    await slapd.stop();
  });

  test('a start that fails says why, with the log and slaptest', async () => {
    const err = await startSlapd({ users: [], extraConfig: 'index noSuchAttribute eq' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlapdStartError);
    expect((err as Error).message).toMatch(/slapd did not start/);
    expect((err as Error).message).toMatch(/noSuchAttribute/);
  });
});
