import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname as osHostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_CORE_LIMITS } from '@mailfront/proxy-core';
import { DEFAULT_IMAP_LIMITS } from '@mailfront/imap';
import { DEFAULT_POP3_LIMITS } from '@mailfront/pop3';
import { DEFAULT_SUBMISSION_LIMITS } from '@mailfront/submission';
import { ConfigError, DEFAULT_CONFIG, configWarnings, loadConfig, validateConfig, type MailfrontConfig } from '../src/config';
import { openStoreFromConfig } from '../src/open-store';

const ROOT = resolve(__dirname, '../../..');
const EXAMPLE = join(ROOT, 'fixtures/mailfront.example.yaml');
const BASE = '/srv/mailfront';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mailfront-config-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

function v(raw: unknown): MailfrontConfig {
  return validateConfig(raw, { baseDir: BASE });
}

/** The ConfigError that validating `raw` throws; fails the test if none. */
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function keyOf(raw: unknown): string {
  return errorOf(() => v(raw)).key;
}

describe('defaults', () => {
  test('an empty config is the defaults with paths resolved', () => {
    const c = v({});
    expect(c.dataDir).toBe('/srv/mailfront/var');
    expect(c.store).toEqual({ kind: 'sqlite', path: '/srv/mailfront/var/mailfront.db' });
    expect(c.tls).toBeNull();
    expect(c.hostname).toBe(osHostname());
    expect(c.listeners).toEqual([
      { protocol: 'imap', host: '127.0.0.1', port: 1143, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false },
      { protocol: 'imap', host: '127.0.0.1', port: 1993, tls: 'implicit', allowPlaintextAuth: false, proxyProtocol: false },
      { protocol: 'pop3', host: '127.0.0.1', port: 1110, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false },
      { protocol: 'pop3', host: '127.0.0.1', port: 1995, tls: 'implicit', allowPlaintextAuth: false, proxyProtocol: false },
      { protocol: 'submission', host: '127.0.0.1', port: 1587, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false },
      { protocol: 'submission', host: '127.0.0.1', port: 1465, tls: 'implicit', allowPlaintextAuth: false, proxyProtocol: false },
    ]);
    expect(c.auth).toEqual({ source: 'sqlite', failureDelayMs: DEFAULT_CORE_LIMITS.authFailureDelayMs, cacheTtlMs: 60000, cacheMaxEntries: 10000 });
    const { authFailureDelayMs, ...core } = DEFAULT_CORE_LIMITS;
    expect(authFailureDelayMs).toBe(2000);
    expect(c.limits).toEqual(core);
    expect(c.limits).not.toHaveProperty('authFailureDelayMs');
    expect(c.imap).toEqual(DEFAULT_IMAP_LIMITS);
    expect(c.pop3).toEqual(DEFAULT_POP3_LIMITS);
    expect(c.log).toEqual({ level: 'info', format: 'json' });
  });

  test('null and undefined are an empty config', () => {
    expect(v(null)).toEqual(v({}));
    expect(v(undefined)).toEqual(v({}));
  });

  test('DEFAULT_CONFIG keeps dataDir relative and is deep-frozen', () => {
    expect(DEFAULT_CONFIG.dataDir).toBe('./var');
    expect(Object.isFrozen(DEFAULT_CONFIG)).toBe(true);
    expect(Object.isFrozen(DEFAULT_CONFIG.limits)).toBe(true);
    expect(Object.isFrozen(DEFAULT_CONFIG.listeners[0])).toBe(true);
  });
});

describe('merging', () => {
  test('a partial section merges over the defaults', () => {
    const c = v({ limits: { loginTimeoutMs: 5000 }, imap: { maxLiteralBytes: 0 }, log: { format: 'pretty' } });
    expect(c.limits.loginTimeoutMs).toBe(5000);
    expect(c.limits.maxBadCommands).toBe(DEFAULT_CORE_LIMITS.maxBadCommands);
    expect(c.limits.idleTimeoutMs).toBe(DEFAULT_CORE_LIMITS.idleTimeoutMs);
    // An explicit 0 is a real limit, not "use the default".
    expect(c.imap.maxLiteralBytes).toBe(0);
    expect(c.imap.maxLineBytes).toBe(DEFAULT_IMAP_LIMITS.maxLineBytes);
    expect(c.log).toEqual({ level: 'info', format: 'pretty' });
  });

  test('a partial pop3 section merges over the defaults', () => {
    const c = v({ pop3: { maxLineBytes: 255 } });
    expect(c.pop3).toEqual({ ...DEFAULT_POP3_LIMITS, maxLineBytes: 255 });
    expect(DEFAULT_POP3_LIMITS).toEqual({ maxLineBytes: 1024, maxSaslLineBytes: 8192 });
  });

  test('a listeners list replaces the default list; listener fields have defaults', () => {
    const c = v({ listeners: [{ protocol: 'pop3', port: 1110 }] });
    expect(c.listeners).toEqual([{ protocol: 'pop3', host: '127.0.0.1', port: 1110, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false }]);
  });

  test('store.path defaults to <dataDir>/mailfront.db of a configured dataDir', () => {
    expect(v({ dataDir: '/data' }).store.path).toBe('/data/mailfront.db');
    expect(v({ dataDir: '/data', store: { path: 'db/x.db' } }).store.path).toBe('/srv/mailfront/db/x.db');
  });

  test('tls: null and a tls section', () => {
    expect(v({ tls: null }).tls).toBeNull();
    expect(v({ tls: { cert: 'c.pem', key: '/k.pem' } }).tls).toEqual({ cert: '/srv/mailfront/c.pem', key: '/k.pem', minVersion: 'TLSv1.2', sni: [], strictSni: false });
  });

  test('explicit 0 is kept where it means "off"', () => {
    const c = v({ auth: { failureDelayMs: 0, cacheTtlMs: 0, cacheMaxEntries: 0 }, limits: { idleTimeoutMs: 0 } });
    expect(c.auth).toMatchObject({ failureDelayMs: 0, cacheTtlMs: 0, cacheMaxEntries: 0 });
    expect(c.limits.idleTimeoutMs).toBe(0);
  });
});

describe('relative paths', () => {
  test('resolve against baseDir; absolute paths stay', () => {
    const c = v({ dataDir: 'state', tls: { cert: '../tls/c.pem', key: 'k.pem' } });
    expect(c.dataDir).toBe('/srv/mailfront/state');
    expect(c.store.path).toBe('/srv/mailfront/state/mailfront.db');
    expect(c.tls).toMatchObject({ cert: '/srv/tls/c.pem', key: '/srv/mailfront/k.pem' });
    expect(v({ dataDir: '/var/lib/mailfront' }).dataDir).toBe('/var/lib/mailfront');
  });

  test('baseDir must be absolute', () => {
    expect(() => validateConfig({}, { baseDir: 'rel' })).toThrow(ConfigError);
  });
});

describe('errors name the key', () => {
  test.each<[string, unknown, string]>([
    ['unknown top-level key', { listner: [] }, 'listner'],
    ['unknown nested key (typo)', { limits: { loginTimeoutMS: 5 } }, 'limits.loginTimeoutMS'],
    ['unknown listener key', { listeners: [{ protocol: 'imap', port: 1, starttls: true }] }, 'listeners[0].starttls'],
    ['section of the wrong type', { limits: 5 }, 'limits'],
    ['string instead of number', { limits: { loginTimeoutMs: '5000' } }, 'limits.loginTimeoutMs'],
    ['fractional number', { auth: { failureDelayMs: 1.5 } }, 'auth.failureDelayMs'],
    ['negative timeout', { limits: { idleTimeoutMs: -1 } }, 'limits.idleTimeoutMs'],
    ['timeout past setTimeout range', { limits: { backendLoginTimeoutMs: 2 ** 31 } }, 'limits.backendLoginTimeoutMs'],
    ['zero login timeout', { limits: { loginTimeoutMs: 0 } }, 'limits.loginTimeoutMs'],
    ['maxBadCommands below 1', { limits: { maxBadCommands: 0 } }, 'limits.maxBadCommands'],
    ['maxAuthAttempts below 1', { limits: { maxAuthAttempts: 0 } }, 'limits.maxAuthAttempts'],
    ['tiny backend line limit', { limits: { backendMaxLineBytes: 10 } }, 'limits.backendMaxLineBytes'],
    ['negative cache size', { auth: { cacheMaxEntries: -1 } }, 'auth.cacheMaxEntries'],
    ['imap command smaller than a line', { imap: { maxLineBytes: 8192, maxCommandBytes: 4096 } }, 'imap.maxCommandBytes'],
    ['pop3 line shorter than RFC 2449 allows', { pop3: { maxLineBytes: 254 } }, 'pop3.maxLineBytes'],
    ['pop3 SASL line too short', { pop3: { maxSaslLineBytes: 0 } }, 'pop3.maxSaslLineBytes'],
    ['unknown pop3 key', { pop3: { maxCommandBytes: 4096 } }, 'pop3.maxCommandBytes'],
    ['port above 65535', { listeners: [{ protocol: 'imap', port: 1143 }, { protocol: 'imap', port: 70000 }] }, 'listeners[1].port'],
    ['negative port', { listeners: [{ protocol: 'imap', port: -1 }] }, 'listeners[0].port'],
    ['port missing', { listeners: [{ protocol: 'imap' }] }, 'listeners[0].port'],
    ['protocol missing', { listeners: [{ port: 1 }] }, 'listeners[0].protocol'],
    ['unknown protocol', { listeners: [{ protocol: 'imaps', port: 1 }] }, 'listeners[0].protocol'],
    ['unknown listener tls', { listeners: [{ protocol: 'imap', port: 1, tls: 'ssl' }] }, 'listeners[0].tls'],
    ['allowPlaintextAuth as a string', { listeners: [{ protocol: 'imap', port: 1, allowPlaintextAuth: 'yes' }] }, 'listeners[0].allowPlaintextAuth'],
    ['allowPlaintextAuth as a number', { listeners: [{ protocol: 'imap', port: 1, allowPlaintextAuth: 1 }] }, 'listeners[0].allowPlaintextAuth'],
    ['bad listener host', { listeners: [{ protocol: 'imap', port: 1, host: 'a b' }] }, 'listeners[0].host'],
    ['listener not a mapping', { listeners: ['imap:1143'] }, 'listeners[0]'],
    ['listeners not a list', { listeners: { protocol: 'imap' } }, 'listeners'],
    ['empty listeners', { listeners: [] }, 'listeners'],
    ['duplicate host:port', { listeners: [{ protocol: 'imap', port: 1143 }, { protocol: 'pop3', port: 1110 }, { protocol: 'pop3', port: 1143 }] }, 'listeners[2]'],
    ['wildcard clashes with a specific address', { listeners: [{ protocol: 'imap', port: 143, host: '0.0.0.0' }, { protocol: 'imap', port: 143, host: '10.0.0.1' }] }, 'listeners[1]'],
    ['unknown log level', { log: { level: 'verbose' } }, 'log.level'],
    ['unknown log format', { log: { format: 'text' } }, 'log.format'],
    ['unknown store kind', { store: { kind: 'mysql' } }, 'store.kind'],
    ['a postgres key on a sqlite store', { store: { host: 'db.example.org' } }, 'store.host'],
    ['a sqlite key on a postgres store', { store: { kind: 'postgres', path: 'm.db' } }, 'store.path'],
    ['a password in store.url', { store: { kind: 'postgres', url: 'postgres://mf:hunter2@db/mf' } }, 'store.url'],
    ['query parameters in store.url', { store: { kind: 'postgres', url: 'postgres://mf@db/mf?sslmode=require' } }, 'store.url'],
    ['store.url of another scheme', { store: { kind: 'postgres', url: 'mysql://mf@db/mf' } }, 'store.url'],
    ['store.url and store.port both', { store: { kind: 'postgres', url: 'postgres://mf@db/mf', port: 5433 } }, 'store.port'],
    ['bad postgres host', { store: { kind: 'postgres', host: 'db example' } }, 'store.host'],
    ['postgres port 0', { store: { kind: 'postgres', port: 0 } }, 'store.port'],
    ['postgres poolSize 0', { store: { kind: 'postgres', poolSize: 0 } }, 'store.poolSize'],
    ['postgres statementTimeoutMs 0 (no timeout)', { store: { kind: 'postgres', statementTimeoutMs: 0 } }, 'store.statementTimeoutMs'],
    ['postgres connectTimeoutMs as a string', { store: { kind: 'postgres', connectTimeoutMs: '5s' } }, 'store.connectTimeoutMs'],
    ['store.ssl as a word', { store: { kind: 'postgres', ssl: 'require' } }, 'store.ssl'],
    ['unknown store.ssl key', { store: { kind: 'postgres', ssl: { ca: 'ca.pem' } } }, 'store.ssl.ca'],
    ['a password instead of a password file', { store: { kind: 'postgres', password: 'hunter2' } }, 'store.password'],
    ['empty store path', { store: { path: '' } }, 'store.path'],
    ['unknown auth source', { auth: { source: 'kerberos' } }, 'auth.source'],
    ['tls without key', { tls: { cert: 'c.pem' } }, 'tls.key'],
    ['tls of the wrong type', { tls: 'on' }, 'tls'],
    ['dataDir not a string', { dataDir: 5 }, 'dataDir'],
    ['bad hostname', { hostname: 'mail example' }, 'hostname'],
    ['proxyTtl out of range', { limits: { proxyTtl: 0 } }, 'limits.proxyTtl'],
    ['unknown TLS version', { tls: { cert: 'c', key: 'k', minVersion: 'TLSv1.1' } }, 'tls.minVersion'],
    ['sni entry without key', { tls: { cert: 'c', key: 'k', sni: [{ names: ['a.example'], cert: 'a' }] } }, 'tls.sni[0].key'],
    ['sni entry with no names', { tls: { cert: 'c', key: 'k', sni: [{ names: [], cert: 'a', key: 'a' }] } }, 'tls.sni[0].names'],
    ['sni name not a host name', { tls: { cert: 'c', key: 'k', sni: [{ names: ['a b'], cert: 'a', key: 'a' }] } }, 'tls.sni[0].names[0]'],
    ['sni name twice', { tls: { cert: 'c', key: 'k', sni: [{ names: ['a.example'], cert: 'a', key: 'a' }, { names: ['A.example'], cert: 'b', key: 'b' }] } }, 'tls.sni[1].names[0]'],
    ['strictSni not a boolean', { tls: { cert: 'c', key: 'k', strictSni: 'yes' } }, 'tls.strictSni'],
    ['proxyProtocol listener without trusted networks', { listeners: [{ protocol: 'imap', port: 1, proxyProtocol: true }] }, 'listeners[0].proxyProtocol'],
    ['proxyProtocol not a boolean', { listeners: [{ protocol: 'imap', port: 1, proxyProtocol: 'v2' }] }, 'listeners[0].proxyProtocol'],
    ['bad CIDR', { proxyProtocol: { trustedNetworks: ['10.0.0.0/33'] } }, 'proxyProtocol.trustedNetworks[0]'],
    ['not an address', { proxyProtocol: { trustedNetworks: ['10.0.0.0', 'haproxy'] } }, 'proxyProtocol.trustedNetworks[1]'],
    ['trustedNetworks not a list', { proxyProtocol: { trustedNetworks: '10.0.0.0/8' } }, 'proxyProtocol.trustedNetworks'],
    ['zero header timeout', { proxyProtocol: { headerTimeoutMs: 0 } }, 'proxyProtocol.headerTimeoutMs'],
  ])('%s', (_what, raw, key) => {
    const err = errorOf(() => v(raw));
    expect(err.code).toBe('config');
    expect(err.key).toBe(key);
    expect(err.message).toContain(key);
  });

  test('the top level must be a mapping', () => {
    expect(keyOf([1, 2])).toBe('');
    expect(keyOf('dataDir: x')).toBe('');
  });

  test('a typo gets a suggestion', () => {
    expect(errorOf(() => v({ limits: { loginTimeoutMS: 5 } })).message).toContain('did you mean loginTimeoutMs?');
  });

  test('port 0 may repeat; same port on different specific addresses is fine', () => {
    expect(() => v({ listeners: [{ protocol: 'imap', port: 0 }, { protocol: 'imap', port: 0 }] })).not.toThrow();
    expect(() =>
      v({ listeners: [{ protocol: 'imap', port: 143, host: '127.0.0.1' }, { protocol: 'imap', port: 143, host: '::1' }] }),
    ).not.toThrow();
  });

  test('the range is in the message', () => {
    expect(errorOf(() => v({ listeners: [{ protocol: 'imap', port: 70000 }] })).message).toBe(
      'listeners[0].port: must be an integer 0..65535, got 70000',
    );
  });
});

describe('PROXY protocol', () => {
  test('trusted networks: single addresses become /32 and /128; listeners opt in', () => {
    const c = v({
      listeners: [{ protocol: 'imap', port: 143, proxyProtocol: true }, { protocol: 'imap', port: 993, tls: 'implicit' }],
      proxyProtocol: { trustedNetworks: ['10.1.2.3', '2001:db8::/32'] },
    });
    expect(c.proxyProtocol).toEqual({ trustedNetworks: ['10.1.2.3/32', '2001:db8::/32'], headerTimeoutMs: 3000 });
    expect(c.listeners.map((l) => l.proxyProtocol)).toEqual([true, false]);
  });
});

describe('frozen', () => {
  test('the validated config is deep-frozen', () => {
    const c = v({ listeners: [{ protocol: 'imap', port: 1 }] });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.listeners)).toBe(true);
    expect(Object.isFrozen(c.listeners[0])).toBe(true);
    expect(Object.isFrozen(c.limits)).toBe(true);
    expect(Object.isFrozen(c.auth)).toBe(true);
    expect(() => {
      (c.limits as { loginTimeoutMs: number }).loginTimeoutMs = 1;
    }).toThrow(TypeError);
  });

  test('validating does not alter the input or the defaults', () => {
    const raw = { limits: { loginTimeoutMs: 5000 } };
    v(raw);
    expect(raw).toEqual({ limits: { loginTimeoutMs: 5000 } });
    expect(DEFAULT_CONFIG.limits.loginTimeoutMs).toBe(DEFAULT_CORE_LIMITS.loginTimeoutMs);
  });
});

describe('loadConfig', () => {
  function write(name: string, body: string): string {
    const p = join(tmp, name);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, body);
    return p;
  }

  test('no file anywhere: embedded defaults, paths relative to cwd', () => {
    const { config, source } = loadConfig({ env: {}, cwd: tmp });
    expect(source).toBe('embedded defaults');
    expect(config.dataDir).toBe(join(tmp, 'var'));
    expect(config.store.path).toBe(join(tmp, 'var/mailfront.db'));
  });

  test('explicit file beats MAILFRONT_CONFIG beats ./mailfront.yaml', () => {
    const a = write('a/explicit.yaml', 'log: { level: debug }\n');
    const b = write('b/env.yaml', 'log: { level: warn }\n');
    write('mailfront.yaml', 'log: { level: error }\n');
    expect(loadConfig({ file: a, env: { MAILFRONT_CONFIG: b }, cwd: tmp }).config.log.level).toBe('debug');
    expect(loadConfig({ env: { MAILFRONT_CONFIG: b }, cwd: tmp })).toMatchObject({ source: b, config: { log: { level: 'warn' } } });
    expect(loadConfig({ env: {}, cwd: tmp })).toMatchObject({ source: join(tmp, 'mailfront.yaml'), config: { log: { level: 'error' } } });
  });

  test('relative paths in a file resolve against the file directory; --config relative to cwd', () => {
    write('etc/m.yaml', 'dataDir: state\ntls: { cert: c.pem, key: k.pem }\n');
    const { config } = loadConfig({ file: 'etc/m.yaml', env: {}, cwd: tmp });
    expect(config.dataDir).toBe(join(tmp, 'etc/state'));
    expect(config.tls).toMatchObject({ cert: join(tmp, 'etc/c.pem'), key: join(tmp, 'etc/k.pem') });
  });

  test('a missing explicit file is an error, not the defaults', () => {
    const err = errorOf(() => loadConfig({ file: join(tmp, 'nope.yaml'), env: {}, cwd: tmp }));
    expect(err.message).toContain('nope.yaml');
    expect(err.message).toContain('no such file');
    const fromEnv = errorOf(() => loadConfig({ env: { MAILFRONT_CONFIG: join(tmp, 'gone.yaml') }, cwd: tmp }));
    expect(fromEnv.message).toContain('$MAILFRONT_CONFIG');
  });

  test('a YAML syntax error names the line', () => {
    const f = write('bad.yaml', 'log:\n  level: info\n  format: [json\n');
    const err = errorOf(() => loadConfig({ file: f, env: {}, cwd: tmp }));
    expect(err.file).toBe(f);
    expect(err.line).toBeGreaterThanOrEqual(3);
    expect(err.message).toMatch(new RegExp(`^${f}:\\d+: YAML syntax error`));
  });

  test('a key given twice is an error', () => {
    const f = write('dup.yaml', 'log:\n  level: info\n  level: debug\n');
    const err = errorOf(() => loadConfig({ file: f, env: {}, cwd: tmp }));
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/unique/i);
  });

  test('a validation error carries the key and its line in the file', () => {
    const f = write('m.yaml', ['listeners:', '  - protocol: imap', '    port: 1143', '  - protocol: imap', '    port: 99999', ''].join('\n'));
    const err = errorOf(() => loadConfig({ file: f, env: {}, cwd: tmp }));
    expect(err.key).toBe('listeners[1].port');
    expect(err.line).toBe(5);
    expect(err.message).toBe(`${f}:5: listeners[1].port: must be an integer 0..65535, got 99999`);
  });

  test('YAML 1.2: "yes" is a string, so allowPlaintextAuth: yes is refused', () => {
    const f = write('m.yaml', 'listeners:\n  - { protocol: imap, port: 143, allowPlaintextAuth: yes }\n');
    expect(errorOf(() => loadConfig({ file: f, env: {}, cwd: tmp })).key).toBe('listeners[0].allowPlaintextAuth');
  });

  test('an empty file is the defaults', () => {
    const f = write('empty.yaml', '# nothing\n');
    expect(loadConfig({ file: f, env: {}, cwd: tmp }).config.limits).toEqual(v({}).limits);
  });

  test('warnings for listeners that cannot log in or send passwords in clear', () => {
    const f = write('m.yaml', 'listeners:\n  - { protocol: imap, port: 143, tls: none }\n  - { protocol: imap, host: 0.0.0.0, port: 144, allowPlaintextAuth: true }\n');
    const { warnings } = loadConfig({ file: f, env: {}, cwd: tmp });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^listeners\[0\]: .*no login/);
    expect(warnings[1]).toMatch(/^listeners\[1\]: .*clear/);
    expect(loadConfig({ env: {}, cwd: tmp }).warnings).toEqual([]);
  });
});

describe('submission', () => {
  test('defaults: RFC line limits, the extensions every backend has, SIZE without a number', () => {
    expect(v({}).submission).toEqual({ ...DEFAULT_SUBMISSION_LIMITS, extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE'], maxMessageBytes: 0 });
    expect(DEFAULT_SUBMISSION_LIMITS).toEqual({ maxCommandLineBytes: 512, maxAuthLineBytes: 12288 });
  });

  test('a partial section merges; an extensions list replaces the default list', () => {
    const c = v({ submission: { extensions: ['CHUNKING', 'PIPELINING'], maxMessageBytes: 41943040 } });
    expect(c.submission).toEqual({ maxCommandLineBytes: 512, maxAuthLineBytes: 12288, extensions: ['CHUNKING', 'PIPELINING'], maxMessageBytes: 41943040 });
    expect(v({ submission: { extensions: [] } }).submission.extensions).toEqual([]);
  });

  test.each([
    ['an extension mailfront cannot relay', { submission: { extensions: ['PIPELINING', 'XCLIENT'] } }, 'submission.extensions[1]'],
    ['lower case', { submission: { extensions: ['pipelining'] } }, 'submission.extensions[0]'],
    ['not a list', { submission: { extensions: 'PIPELINING' } }, 'submission.extensions'],
    ['twice', { submission: { extensions: ['SIZE', 'SIZE'] } }, 'submission.extensions'],
    ['BINARYMIME without CHUNKING', { submission: { extensions: ['BINARYMIME'] } }, 'submission.extensions'],
    ['a command line under RFC 5321', { submission: { maxCommandLineBytes: 511 } }, 'submission.maxCommandLineBytes'],
    ['an AUTH line shorter than a command line', { submission: { maxCommandLineBytes: 4096, maxAuthLineBytes: 1024 } }, 'submission.maxAuthLineBytes'],
    ['a negative SIZE', { submission: { maxMessageBytes: -1 } }, 'submission.maxMessageBytes'],
    ['an unknown key', { submission: { ehloExtensions: [] } }, 'submission.ehloExtensions'],
  ])('%s is refused, naming the key', (_what, raw, key) => {
    expect(keyOf(raw)).toBe(key);
  });
});

describe('the example and the reference', () => {
  test('fixtures/mailfront.example.yaml validates and spells out the defaults', () => {
    const { config } = loadConfig({ file: EXAMPLE, env: {}, cwd: tmp });
    const defaults = validateConfig({}, { baseDir: join(ROOT, 'fixtures') });
    expect(config).toEqual({ ...defaults, hostname: 'mail.example.org' });
  });

  test('docs/config.md documents every key and embeds the example verbatim', () => {
    const doc = readFileSync(join(ROOT, 'docs/config.md'), 'utf8');
    const keys: string[] = [];
    const walk = (o: object, prefix: string) => {
      for (const [k, val] of Object.entries(o)) {
        keys.push(prefix + k);
        if (val && typeof val === 'object' && !Array.isArray(val)) walk(val, `${prefix}${k}.`);
      }
    };
    walk(DEFAULT_CONFIG, '');
    keys.push('tls.cert', 'tls.key', ...Object.keys(DEFAULT_CONFIG.listeners[0]!).map((k) => `listeners[].${k}`));
    for (const key of keys) expect([key, doc.includes('`' + key + '`')]).toEqual([key, true]);
    expect(doc).toContain(readFileSync(EXAMPLE, 'utf8'));
  });
});

describe('openStoreFromConfig', () => {
  test('opens the sqlite file at store.path', async () => {
    const config = v({ store: { path: join(tmp, 'db/m.db') } });
    const store = await openStoreFromConfig(config);
    try {
      expect(store.kind).toBe('sqlite');
      await store.addUser('a@example.org', '$scrypt$x');
      expect(readFileSync(join(tmp, 'db/m.db')).length).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });
});

describe('store: postgres', () => {
  test('defaults: the local mailfront database as user mailfront, no password file, no TLS, a pool of 4', () => {
    expect(v({ store: { kind: 'postgres' } }).store).toEqual({
      kind: 'postgres',
      host: 'localhost',
      port: 5432,
      database: 'mailfront',
      user: 'mailfront',
      passwordFile: null,
      ssl: false,
      poolSize: 4,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 5000,
    });
  });

  test('a URL is taken apart; relative files resolve against the config directory', () => {
    const c = v({ store: { kind: 'postgres', url: 'postgresql://mf%40a@[2001:db8::5]:6432/mail', passwordFile: 'secrets/pg', ssl: { caFile: 'ca.pem' }, poolSize: 8 } });
    expect(c.store).toEqual({
      kind: 'postgres',
      host: '2001:db8::5',
      port: 6432,
      database: 'mail',
      user: 'mf@a',
      passwordFile: '/srv/mailfront/secrets/pg',
      ssl: { caFile: '/srv/mailfront/ca.pem', insecure: false },
      poolSize: 8,
      connectTimeoutMs: 5000,
      statementTimeoutMs: 5000,
    });
    expect(v({ store: { kind: 'postgres', url: 'postgres://db.example.org' } }).store).toMatchObject({ host: 'db.example.org', port: 5432, database: 'mailfront', user: 'mailfront' });
    expect(v({ store: { kind: 'postgres', host: '/run/postgresql', ssl: true } }).store).toMatchObject({ host: '/run/postgresql', ssl: { caFile: null, insecure: false } });
  });

  test('a password in the URL is refused without being repeated', () => {
    const err = errorOf(() => v({ store: { kind: 'postgres', url: 'postgres://mf:hunter2@db/mf' } }));
    expect(err.message).toMatch(/passwordFile/);
    expect(err.message).not.toContain('hunter2');
  });

  test('warnings: PostgreSQL across the network without TLS, or with TLS unverified', () => {
    const warn = (store: object) => configWarnings(v({ store: { kind: 'postgres', ...store } })).filter((w) => w.startsWith('store'));
    expect(warn({ host: 'db.example.org' })).toEqual([expect.stringMatching(/db\.example\.org without ssl/)]);
    expect(warn({ host: 'db.example.org', ssl: { insecure: true } })).toEqual([expect.stringMatching(/not verified/)]);
    expect(warn({ host: 'db.example.org', ssl: true })).toEqual([]);
    expect(warn({ host: '127.0.0.1' })).toEqual([]);
    expect(warn({ host: '/run/postgresql' })).toEqual([]);
  });

  test('docs/config.md documents every postgres store key', () => {
    const doc = readFileSync(join(ROOT, 'docs/config.md'), 'utf8');
    const keys = ['store.kind', 'store.url', 'store.host', 'store.port', 'store.database', 'store.user', 'store.passwordFile', 'store.ssl', 'store.ssl.caFile', 'store.ssl.insecure', 'store.poolSize', 'store.connectTimeoutMs', 'store.statementTimeoutMs'];
    for (const key of keys) expect([key, doc.includes('`' + key + '`')]).toEqual([key, true]);
  });
});

describe('auth.source and ldap', () => {
  const LDAP = { urls: ['ldap://ldap.example.org/'], baseDn: 'dc=example,dc=org' };

  test('sources: sqlite (default), ldap, backend; ldap is null unless configured', () => {
    expect(v({}).ldap).toBeNull();
    expect(v({ auth: { source: 'backend' } }).auth.source).toBe('backend');
    expect(v({ auth: { source: 'ldap' }, ldap: LDAP }).auth.source).toBe('ldap');
    expect(keyOf({ auth: { source: 'kerberos' } })).toBe('auth.source');
  });

  test('defaults of the ldap section', () => {
    expect(v({ ldap: LDAP }).ldap).toEqual({
      urls: ['ldap://ldap.example.org/'],
      startTls: true,
      caFile: null,
      bindDn: null,
      bindPasswordFile: null,
      baseDn: 'dc=example,dc=org',
      scope: 'sub',
      filter: '(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))',
      dnTemplate: null,
      userAttribute: 'mail',
      placementAttribute: 'mailHost',
      connectTimeoutMs: 3000,
      timeoutMs: 5000,
      poolSize: 4,
      cache: { positiveTtlMs: 300000, negativeTtlMs: 60000 },
    });
  });

  test('files resolve against the config directory; placementAttribute null turns directory placement off', () => {
    const c = v({ ldap: { ...LDAP, caFile: 'ca.pem', bindDn: 'cn=mailfront,dc=example,dc=org', bindPasswordFile: 'ldap.pw', placementAttribute: null } }).ldap!;
    expect(c.caFile).toBe('/srv/mailfront/ca.pem');
    expect(c.bindPasswordFile).toBe('/srv/mailfront/ldap.pw');
    expect(c.placementAttribute).toBeNull();
  });

  test('direct bind: a dnTemplate instead of a filter needs no baseDn', () => {
    const c = v({ ldap: { urls: ['ldaps://ldap.example.org/'], dnTemplate: 'uid=%u,ou=people,dc=example,dc=org', userAttribute: 'uid' } }).ldap!;
    expect(c).toMatchObject({ filter: null, dnTemplate: 'uid=%u,ou=people,dc=example,dc=org', baseDn: null });
  });

  test.each([
    ['auth.source ldap without a directory', { auth: { source: 'ldap' } }, 'ldap'],
    ['no urls', { ldap: { baseDn: 'dc=x' } }, 'ldap.urls'],
    ['an empty url list', { ldap: { ...LDAP, urls: [] } }, 'ldap.urls'],
    ['an http URL', { ldap: { ...LDAP, urls: ['ldap://a/', 'http://b/'] } }, 'ldap.urls[1]'],
    ['an LDAP URL with a DN and filter', { ldap: { ...LDAP, urls: ['ldap://a/dc=x??sub?(uid=*)'] } }, 'ldap.urls[0]'],
    ['a search without baseDn', { ldap: { urls: ['ldap://a/'] } }, 'ldap.baseDn'],
    ['filter and dnTemplate together', { ldap: { ...LDAP, filter: '(uid=%u)', dnTemplate: 'uid=%u,dc=x' } }, 'ldap.filter'],
    ['a filter without %u', { ldap: { ...LDAP, filter: '(uid=alice)' } }, 'ldap.filter'],
    ['a filter with an unknown placeholder', { ldap: { ...LDAP, filter: '(uid=%n)' } }, 'ldap.filter'],
    ['an unbalanced filter', { ldap: { ...LDAP, filter: '(&(uid=%u)' } }, 'ldap.filter'],
    ['a dnTemplate without %u in its first RDN', { ldap: { urls: ['ldap://a/'], dnTemplate: 'ou=people,uid=%u' } }, 'ldap.dnTemplate'],
    ['bindDn without a password file', { ldap: { ...LDAP, bindDn: 'cn=x' } }, 'ldap.bindPasswordFile'],
    ['a password file without bindDn', { ldap: { ...LDAP, bindPasswordFile: 'x.pw' } }, 'ldap.bindDn'],
    ['a bad scope', { ldap: { ...LDAP, scope: 'subtree' } }, 'ldap.scope'],
    ['an attribute name with a space', { ldap: { ...LDAP, userAttribute: 'mail host' } }, 'ldap.userAttribute'],
    ['a placement attribute filter', { ldap: { ...LDAP, placementAttribute: '(mailHost=*)' } }, 'ldap.placementAttribute'],
    ['poolSize 0', { ldap: { ...LDAP, poolSize: 0 } }, 'ldap.poolSize'],
    ['timeoutMs 0', { ldap: { ...LDAP, timeoutMs: 0 } }, 'ldap.timeoutMs'],
    ['a negative cache TTL', { ldap: { ...LDAP, cache: { negativeTtlMs: -1 } } }, 'ldap.cache.negativeTtlMs'],
    ['an unknown cache key', { ldap: { ...LDAP, cache: { ttlMs: 1 } } }, 'ldap.cache.ttlMs'],
    ['a typo', { ldap: { ...LDAP, startTLS: true } }, 'ldap.startTLS'],
  ])('%s is refused, naming the key', (_what, raw, key) => {
    expect(keyOf(raw)).toBe(key);
  });

  test('the refusal says what is wrong with the template', () => {
    expect(errorOf(() => v({ ldap: { ...LDAP, filter: '(uid=%n)' } })).detail).toBe('unknown placeholder %n: only %u (the login name) and %% are known');
  });

  test('warnings: auth.source backend; a directory across the network without StartTLS', () => {
    expect(configWarnings(v({ auth: { source: 'backend' } }))).toContainEqual(expect.stringMatching(/checks no password itself; logins to backends with login mode master are refused/));
    const ldapWarnings = (ldap: object) => configWarnings(v({ ldap: { ...LDAP, ...ldap } })).filter((w) => w.startsWith('ldap'));
    expect(ldapWarnings({ startTls: false })).toEqual(['ldap.urls[0]: ldap://ldap.example.org/ without startTls: passwords cross the network in clear']);
    expect(ldapWarnings({ startTls: false, urls: ['ldaps://ldap.example.org/', 'ldap://127.0.0.1:389/'] })).toEqual([]);
    expect(ldapWarnings({})).toEqual([]);
  });

  test('docs/config.md documents every ldap key', () => {
    const doc = readFileSync(join(ROOT, 'docs/config.md'), 'utf8');
    const c = v({ ldap: LDAP }).ldap!;
    const keys = [...Object.keys(c).map((k) => `ldap.${k}`), 'ldap.cache.positiveTtlMs', 'ldap.cache.negativeTtlMs'];
    for (const key of keys) expect([key, doc.includes('`' + key + '`')]).toEqual([key, true]);
  });
});
