import type { AuthRequest, AuthResult, Authenticator } from './types';
import { loginUser } from './user-name';

/**
 * Auth source `backend`: mailfront checks no password. It accepts any
 * well-formed name with a non-empty password, routes by name, and the
 * backend's answer to the passthrough login stands (its NO is the client's
 * authentication failure, with the usual failure delay).
 *
 * The result says `verified: false`, and the session driver then refuses a
 * backend whose login mode is `master`: there mailfront would log in with
 * its own master credentials and nobody would ever check the user's
 * password. Nothing is cached: there is no verdict of ours to remember.
 */
export function createBackendAuthenticator(): Authenticator {
  return {
    authenticate(req: AuthRequest): Promise<AuthResult> {
      // A passthrough login carries no authzid: acting as someone else cannot be passed on.
      const who = loginUser(req);
      if (!who.ok) return Promise.resolve(who);
      const user = who.user;
      if (req.password === '') return Promise.resolve({ ok: false, kind: 'auth-failed', reason: 'empty password' });
      return Promise.resolve({ ok: true, user, cached: false, verified: false });
    },
  };
}
