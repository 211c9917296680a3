/**
 * Wait `ms` milliseconds before telling a client its login failed (0 = no
 * wait). It slows password guessing on one connection and, being applied the
 * same way to every failure, keeps the reply time from telling an unknown
 * user from a wrong password.
 *
 * The authenticators do not call this. The session driver in proxy-core does,
 * once, for every 'auth-failed' outcome whatever produced it: our own hash
 * check, a directory, or a backend rejecting passthrough credentials. Applying
 * it there, and only there, is what makes it uniform.
 */
export function failureDelay(ms: number): Promise<void> {
  if (!Number.isFinite(ms) || ms < 0) return Promise.reject(new RangeError(`failure delay must be a finite number >= 0, got ${ms}`));
  if (ms === 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
