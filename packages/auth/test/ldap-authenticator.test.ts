/**
 * The LDAP authenticator against a real slapd (started by the testkit on
 * loopback, StartTLS and ldaps with a test CA).
 */
import { createLdapAuthenticator, LdapDirectory, type AuthRequest, type AuthResult, type LdapDirectoryOptions } from '@mailfront/auth';
import { freePort, startSlapd, type Slapd } from '@mailfront/testkit';

const FILTER = '(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))';

let slapd: Slapd;
const open: LdapDirectory[] = [];

beforeAll(async () => {
  slapd = await startSlapd({
    tls: true,
    users: [
      { uid: 'alice', password: 'alice-pw', mail: 'Alice@Example.org', mailHost: 'dovecot' },
      { uid: 'bob', password: 'bob-pw', mail: ['bob@example.org', 'robert@example.org'] },
      { uid: 'carol', password: 'carol-pw', mail: 'shared@example.org' },
      { uid: 'dave', password: 'dave-pw', mail: 'shared@example.org' },
      { uid: 'nomail', password: 'nomail-pw', mail: [] },
      { uid: 'élodie', password: 'élodie-pw', mail: 'elodie@example.org' },
      { uid: 'a,b', password: 'comma-pw', mail: 'comma@example.org' },
      { uid: 'nopass', password: '', mail: 'nopass@example.org' },
    ],
  });
});

afterAll(async () => {
  for (const d of open) d.close();
  await slapd?.stop();
});

function directory(over: Partial<LdapDirectoryOptions> = {}): LdapDirectory {
  const d = new LdapDirectory({
    urls: [slapd.url],
    startTls: true,
    ca: slapd.caPem,
    bindDn: slapd.serviceDn,
    bindPassword: slapd.servicePassword,
    baseDn: slapd.suffix,
    filter: FILTER,
    userAttribute: 'mail',
    attributes: ['mailHost'],
    connectTimeoutMs: 2_000,
    timeoutMs: 2_000,
    poolSize: 2,
    ...over,
  });
  open.push(d);
  return d;
}

function req(user: string, password: string, authzid?: string): AuthRequest {
  return { user, password, authzid, protocol: 'imap', client: { address: '192.0.2.7', port: 50123 }, sessionId: 's1' };
}

function failed(r: AuthResult): Extract<AuthResult, { ok: false }> {
  if (r.ok) throw new Error(`expected a failure, got a login as ${r.user}`);
  return r;
}

describe('search, then bind', () => {
  test('a login by uid or by mail gives the same canonical name: the mail value, lower-cased', async () => {
    const auth = createLdapAuthenticator(directory());
    const byUid = await auth.authenticate(req('alice', 'alice-pw'));
    const byMail = await auth.authenticate(req(' ALICE@example.org', 'alice-pw'));
    expect(byUid).toEqual({ ok: true, user: 'alice@example.org', cached: false, attributes: { mail: ['Alice@Example.org'], mailHost: ['dovecot'] } });
    expect(byMail).toMatchObject({ ok: true, user: 'alice@example.org', cached: false });
  });

  test('several values of the user attribute: the smallest, whatever the login spelling', async () => {
    const auth = createLdapAuthenticator(directory());
    expect(await auth.authenticate(req('robert@example.org', 'bob-pw'))).toMatchObject({ ok: true, user: 'bob@example.org', attributes: { mailHost: [] } });
    expect(await auth.authenticate(req('bob', 'bob-pw'))).toMatchObject({ ok: true, user: 'bob@example.org' });
  });

  test('a non-ASCII uid is found (UTF-8 in the filter)', async () => {
    const auth = createLdapAuthenticator(directory());
    expect(await auth.authenticate(req('Élodie', 'élodie-pw'))).toMatchObject({ ok: true, user: 'elodie@example.org' });
  });

  test('wrong password: auth-failed after one bind as the entry; not cached', async () => {
    const auth = createLdapAuthenticator(directory());
    const dn = slapd.userDn('alice');
    const before = await slapd.binds(dn);
    for (let i = 0; i < 2; i++) {
      expect(failed(await auth.authenticate(req('alice', 'wrong')))).toEqual({
        ok: false,
        kind: 'auth-failed',
        reason: `password mismatch (bind as ${dn}: LDAP result 49)`,
      });
    }
    expect((await slapd.binds(dn)) - before).toBe(2);
  });

  test('unknown user: auth-failed without any bind', async () => {
    const auth = createLdapAuthenticator(directory());
    const before = await slapd.binds();
    expect(failed(await auth.authenticate(req('nobody@example.org', 'x')))).toEqual({ ok: false, kind: 'auth-failed', reason: 'unknown user' });
    const after = await slapd.binds();
    // The service bind of the new pool's connection is the only one.
    expect(after - before).toBe(1);
  });

  test('two entries match: auth-failed "ambiguous", and no bind to either', async () => {
    const auth = createLdapAuthenticator(directory());
    const before = [await slapd.binds(slapd.userDn('carol')), await slapd.binds(slapd.userDn('dave'))];
    expect(failed(await auth.authenticate(req('shared@example.org', 'carol-pw')))).toEqual({ ok: false, kind: 'auth-failed', reason: 'ambiguous: 2 entries match' });
    expect([await slapd.binds(slapd.userDn('carol')), await slapd.binds(slapd.userDn('dave'))]).toEqual(before);
  });

  test.each([
    // Unescaped, each would match alice (or everyone) and alice's password would then log in.
    ['alic*'],
    ['*'],
    ['*)(uid=*'],
    ['alice)(uid=*'],
    ['*)(|(uid=alice'],
    ['a\\00b'],
    ['alice\\29'],
  ])('LDAP injection %j matches nobody', async (name) => {
    const auth = createLdapAuthenticator(directory());
    expect(failed(await auth.authenticate(req(name, 'alice-pw')))).toEqual({ ok: false, kind: 'auth-failed', reason: 'unknown user' });
  });

  test('a NUL in the name is refused before the directory is asked', async () => {
    const d = directory();
    const auth = createLdapAuthenticator(d);
    expect(failed(await auth.authenticate(req('alice\u0000b', 'alice-pw'))).reason).toBe('invalid user name: user name contains control characters');
    expect(d.connectionsOpened).toEqual({ search: 0, bind: 0 });
  });

  test('an empty password is refused before any bind (it would be an unauthenticated bind)', async () => {
    const d = directory();
    const auth = createLdapAuthenticator(d);
    expect(failed(await auth.authenticate(req('alice', '')))).toEqual({ ok: false, kind: 'auth-failed', reason: 'empty password' });
    expect(await d.verify('alice', '')).toEqual({ result: 'refused', reason: 'empty password' });
    expect(d.connectionsOpened).toEqual({ search: 0, bind: 0 });
  });

  test('an entry without a password cannot log in', async () => {
    const auth = createLdapAuthenticator(directory());
    expect(failed(await auth.authenticate(req('nopass', 'anything'))).kind).toBe('auth-failed');
  });

  test('an entry without the user attribute is the directory’s fault: tempfail, not a wrong password', async () => {
    const auth = createLdapAuthenticator(directory());
    expect(failed(await auth.authenticate(req('nomail', 'nomail-pw')))).toEqual({
      ok: false,
      kind: 'auth-tempfail',
      reason: `directory entry ${slapd.userDn('nomail')} unusable: entry has no mail`,
    });
  });

  test('authzid other than the user is refused', async () => {
    const auth = createLdapAuthenticator(directory());
    expect(failed(await auth.authenticate(req('alice', 'alice-pw', 'bob'))).reason).toBe('authzid not allowed');
    expect(await auth.authenticate(req('alice', 'alice-pw', 'ALICE'))).toMatchObject({ ok: true });
  });
});

describe('success cache', () => {
  test('a repeat login inside the TTL makes no directory round trip', async () => {
    const auth = createLdapAuthenticator(directory(), { cacheTtlMs: 60_000 });
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true, cached: false });
    const binds = await slapd.binds();
    const searches = await slapd.searches();
    expect(await auth.authenticate(req('Alice', 'alice-pw'))).toEqual({ ok: true, user: 'alice@example.org', cached: true });
    expect(await slapd.binds()).toBe(binds);
    expect(await slapd.searches()).toBe(searches);
  });

  test('a different password misses the cache', async () => {
    const auth = createLdapAuthenticator(directory());
    await auth.authenticate(req('alice', 'alice-pw'));
    expect(failed(await auth.authenticate(req('alice', 'other'))).kind).toBe('auth-failed');
  });

  test('after the TTL the directory is asked again', async () => {
    let t = 0;
    const auth = createLdapAuthenticator(directory(), { cacheTtlMs: 1_000, now: () => t });
    await auth.authenticate(req('alice', 'alice-pw'));
    t += 1_000;
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true, cached: false });
  });
});

describe('connections', () => {
  test('logins reuse one search and one bind connection', async () => {
    const d = directory();
    const auth = createLdapAuthenticator(d, { cacheTtlMs: 0 });
    for (let i = 0; i < 5; i++) expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true });
    expect(d.connectionsOpened).toEqual({ search: 1, bind: 1 });
  });

  test('the service binds once per connection, not once per login', async () => {
    const d = directory();
    const auth = createLdapAuthenticator(d, { cacheTtlMs: 0 });
    const before = await slapd.binds(slapd.serviceDn);
    for (let i = 0; i < 4; i++) await auth.authenticate(req('bob', 'bob-pw'));
    expect((await slapd.binds(slapd.serviceDn)) - before).toBe(1);
  });

  test('ldaps:// with the test CA', async () => {
    const auth = createLdapAuthenticator(directory({ urls: [slapd.tlsUrl!], startTls: false }));
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true, user: 'alice@example.org' });
  });

  test('StartTLS is really used: a certificate from another CA fails the connection, as tempfail', async () => {
    const { generateCa } = await import('@mailfront/server');
    const auth = createLdapAuthenticator(directory({ ca: generateCa().cert }));
    const r = failed(await auth.authenticate(req('alice', 'alice-pw')));
    expect(r.kind).toBe('auth-tempfail');
    expect(r.reason).toMatch(/StartTLS failed: .*(certificate|self.signed|issuer)/i);
  });

  test('URLs are tried in order: a dead first server is skipped', async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}/`;
    const d = directory({ urls: [dead, slapd.url] });
    expect(await createLdapAuthenticator(d).authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true });
  });

  test('a refused service bind is a temporary failure, never "wrong password"', async () => {
    const auth = createLdapAuthenticator(directory({ bindPassword: 'not-the-service-password' }));
    const r = failed(await auth.authenticate(req('alice', 'alice-pw')));
    expect(r.kind).toBe('auth-tempfail');
    expect(r.reason).toContain(`service bind as ${slapd.serviceDn}`);
  });

  test('a search the ACL hides the base from (anonymous here) is tempfail naming the result, not "unknown user"', async () => {
    const auth = createLdapAuthenticator(directory({ bindDn: undefined, bindPassword: undefined }));
    expect(failed(await auth.authenticate(req('alice', 'alice-pw')))).toEqual({
      ok: false,
      kind: 'auth-tempfail',
      reason: 'directory unavailable: search: LDAP result 32 (NoSuchObject)',
    });
  });
});

describe('direct bind (dnTemplate)', () => {
  const direct = () => directory({ filter: undefined, baseDn: undefined, dnTemplate: `uid=%u,ou=people,${slapd.suffix}`, userAttribute: 'uid' });

  test('binds to the DN made from the template and reads the entry as the user', async () => {
    const auth = createLdapAuthenticator(direct());
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toEqual({
      ok: true,
      user: 'alice',
      cached: false,
      attributes: { uid: ['alice'], mailHost: ['dovecot'] },
    });
  });

  test('RFC 4514: a uid with a comma is one RDN value', async () => {
    const auth = createLdapAuthenticator(direct());
    expect(await auth.authenticate(req('a,b', 'comma-pw'))).toMatchObject({ ok: true, user: 'a,b' });
    expect(failed(await auth.authenticate(req('a', 'comma-pw'))).kind).toBe('auth-failed');
  });

  test('a wrong password and an unknown DN are both auth-failed', async () => {
    const auth = createLdapAuthenticator(direct());
    expect(failed(await auth.authenticate(req('alice', 'nope'))).kind).toBe('auth-failed');
    expect(failed(await auth.authenticate(req('zed', 'nope'))).kind).toBe('auth-failed');
    expect(failed(await auth.authenticate(req('alice,ou=people', 'alice-pw'))).kind).toBe('auth-failed');
  });
});

describe('directory down or slow', () => {
  test('stopped: tempfail, even for a wrong password; back by itself after a restart', async () => {
    const d = directory();
    const auth = createLdapAuthenticator(d);
    expect(await auth.authenticate(req('bob', 'bob-pw'))).toMatchObject({ ok: true });
    await slapd.stop();
    try {
      for (const [user, pw] of [
        ['alice', 'alice-pw'],
        ['alice', 'wrong'],
        ['nobody', 'x'],
      ] as const) {
        const r = failed(await auth.authenticate(req(user, pw)));
        expect(r.kind).toBe('auth-tempfail');
        expect(r.reason).toMatch(/ECONNREFUSED/);
      }
      // The cached success still works while the directory is away.
      expect(await auth.authenticate(req('bob', 'bob-pw'))).toMatchObject({ ok: true, cached: true });
    } finally {
      await slapd.start();
    }
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true, cached: false });
    expect(failed(await auth.authenticate(req('alice', 'wrong'))).kind).toBe('auth-failed');
  });

  test('hung (SIGSTOP): the operation times out as tempfail; fine again once it answers', async () => {
    const d = directory({ timeoutMs: 300, connectTimeoutMs: 300 });
    const auth = createLdapAuthenticator(d, { cacheTtlMs: 0 });
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true });
    slapd.pause();
    try {
      const r = failed(await auth.authenticate(req('alice', 'alice-pw')));
      expect(r.kind).toBe('auth-tempfail');
      expect(r.reason).toMatch(/timed out|longer than/);
    } finally {
      slapd.resume();
    }
    expect(await auth.authenticate(req('alice', 'alice-pw'))).toMatchObject({ ok: true });
  });
});
