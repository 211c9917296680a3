import { createBackendAuthenticator, type AuthRequest } from '@mailfront/auth';

function req(user: string, password: string, authzid?: string): AuthRequest {
  return { user, password, authzid, protocol: 'imap', client: { address: '192.0.2.7', port: 50123 }, sessionId: 's1' };
}

describe('auth source backend', () => {
  const auth = createBackendAuthenticator();

  test('any well-formed name and password passes, marked unverified and uncached', async () => {
    expect(await auth.authenticate(req(' Alice@Example.org', 'whatever'))).toEqual({ ok: true, user: 'alice@example.org', cached: false, verified: false });
    // Nothing is remembered: the same call gives the same uncached answer.
    expect(await auth.authenticate(req('alice@example.org', 'whatever'))).toMatchObject({ cached: false, verified: false });
  });

  test.each([
    ['', 'pw', 'invalid user name: user name is empty'],
    ['a\u0000b', 'pw', 'invalid user name: user name contains control characters'],
    ['a\r\nb', 'pw', 'invalid user name: user name contains control characters'],
    ['alice', '', 'empty password'],
  ])('%j / %j is refused: %s', async (user, password, reason) => {
    expect(await auth.authenticate(req(user, password))).toEqual({ ok: false, kind: 'auth-failed', reason });
  });

  test('an authzid other than the user cannot be passed on to the backend', async () => {
    expect(await auth.authenticate(req('alice', 'pw', 'bob'))).toEqual({ ok: false, kind: 'auth-failed', reason: 'authzid not allowed' });
    expect(await auth.authenticate(req('alice', 'pw', 'Alice'))).toMatchObject({ ok: true });
  });
});
