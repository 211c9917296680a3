/**
 * The admin, metrics and autoconfig sections: defaults, and each wrong
 * setting refused naming its key.
 */
import { join } from 'node:path';
import { configWarnings, ConfigError, validateConfig } from '../src/config';

const BASE = '/etc/mailfront';
const v = (raw: Record<string, unknown>) => validateConfig(raw, { baseDir: BASE });

function keyOf(raw: Record<string, unknown>): string {
  try {
    v(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.key;
    throw e;
  }
  throw new Error('accepted');
}

describe('operations config', () => {
  test('defaults: admin socket in dataDir, no admin HTTP, metrics and autoconfig off', () => {
    const c = v({ dataDir: '/var/lib/mailfront' });
    expect(c.admin).toEqual({ socket: '/var/lib/mailfront/admin.sock', http: null, moveLoginWaitMs: 5000 });
    expect(c.metrics).toEqual({ host: '127.0.0.1', port: null });
    expect(c.autoconfig).toEqual({ host: '127.0.0.1', port: null, tls: false, hostname: null, displayName: null });
    expect(configWarnings(c)).toEqual([]);
  });

  test('the socket follows dataDir, resolves against the file, or is turned off', () => {
    expect(v({ dataDir: 'state' }).admin.socket).toBe(join(BASE, 'state', 'admin.sock'));
    expect(v({ admin: { socket: 'run/mf.sock' } }).admin.socket).toBe(join(BASE, 'run', 'mf.sock'));
    expect(v({ admin: { socket: null } }).admin.socket).toBeNull();
  });

  test('admin.http: loopback with a token file; defaults filled in', () => {
    const c = v({ admin: { http: { port: 8025, tokenFile: 'admin.token' } } });
    expect(c.admin.http).toEqual({ host: '127.0.0.1', port: 8025, tokenFile: join(BASE, 'admin.token'), allowRemote: false });
  });

  test('admin.http on another address only with allowRemote, and then with a warning', () => {
    expect(keyOf({ admin: { http: { host: '0.0.0.0', port: 8025, tokenFile: 't' } } })).toBe('admin.http.host');
    const c = v({ admin: { http: { host: '0.0.0.0', port: 8025, tokenFile: 't', allowRemote: true } } });
    expect(c.admin.http!.host).toBe('0.0.0.0');
    expect(configWarnings(c)).toEqual([expect.stringMatching(/^admin\.http: .*0\.0\.0\.0/)]);
  });

  test('metrics and autoconfig away from loopback or without TLS are warned about', () => {
    expect(configWarnings(v({ metrics: { host: '0.0.0.0', port: 9100 } }))).toEqual([expect.stringMatching(/^metrics: /)]);
    expect(configWarnings(v({ autoconfig: { port: 8080 } }))).toEqual([expect.stringMatching(/^autoconfig\.tls is false/)]);
    expect(configWarnings(v({ autoconfig: { port: 8443, tls: true } }))).toEqual([]);
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['a socket path the kernel cannot bind', { admin: { socket: `/${'x'.repeat(120)}` } }, 'admin.socket'],
    ['a default socket under a too deep dataDir', { dataDir: `/${'d'.repeat(100)}` }, 'admin.socket'],
    ['admin.http without a port', { admin: { http: { tokenFile: 't' } } }, 'admin.http.port'],
    ['admin.http without a token file', { admin: { http: { port: 1 } } }, 'admin.http.tokenFile'],
    ['admin.http.allowRemote: yes', { admin: { http: { port: 1, tokenFile: 't', allowRemote: 'yes' } } }, 'admin.http.allowRemote'],
    ['a negative move wait', { admin: { moveLoginWaitMs: -1 } }, 'admin.moveLoginWaitMs'],
    ['an unknown admin key', { admin: { token: 'x' } }, 'admin.token'],
    ['a metrics port of 70000', { metrics: { port: 70000 } }, 'metrics.port'],
    ['a metrics path', { metrics: { path: '/m' } }, 'metrics.path'],
    ['autoconfig.tls: "on"', { autoconfig: { tls: 'on' } }, 'autoconfig.tls'],
    ['a bad autoconfig hostname', { autoconfig: { hostname: 'mail example' } }, 'autoconfig.hostname'],
    ['an overlong displayName', { autoconfig: { displayName: 'x'.repeat(101) } }, 'autoconfig.displayName'],
    ['a displayName with a newline', { autoconfig: { displayName: 'a\nb' } }, 'autoconfig.displayName'],
  ])('%s is refused, naming the key', (_what, raw, key) => {
    expect(keyOf(raw)).toBe(key);
  });
});
