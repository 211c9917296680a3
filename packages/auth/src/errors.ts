/**
 * Errors thrown by the auth core's helpers. Authentication itself never
 * throws: `authenticate` answers with an AuthResult.
 */
export type AuthErrorCode =
  /** an encoded password hash that is not `$scrypt$ln=…,r=…,p=…$salt$hash` within our bounds */
  | 'malformed-hash'
  /** a user name that cannot be canonicalised (empty, too long, control characters) */
  | 'invalid-user-name'
  /** an option outside its documented range, caught at construction */
  | 'invalid-option'
  /** no directory server could be reached, or it did not answer in time */
  | 'directory-unavailable';

export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}
