import { AuthError, dummyHash, hashPassword, parsePasswordHash, SCRYPT_PARAMS, verifyPassword } from '@mailfront/auth';

async function rejection(p: Promise<unknown>): Promise<AuthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  return err as AuthError;
}

describe('hashPassword / verifyPassword', () => {
  const password = 'Tr0ub4dour&3-correct-horse';

  test('encodes its parameters, salt and hash, and never the password', async () => {
    const encoded = await hashPassword(password);
    expect(encoded).toMatch(
      new RegExp(`^\\$scrypt\\$ln=${SCRYPT_PARAMS.ln},r=${SCRYPT_PARAMS.r},p=${SCRYPT_PARAMS.p}\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`),
    );
    for (const form of [password, Buffer.from(password).toString('base64').replace(/=+$/, ''), Buffer.from(password).toString('hex')]) {
      expect(encoded).not.toContain(form);
    }
    expect(encoded.toLowerCase()).not.toContain('correct-horse');
  });

  test('verifies the right password and only it', async () => {
    const encoded = await hashPassword(password);
    expect(await verifyPassword(password, encoded)).toBe(true);
    expect(await verifyPassword(password + ' ', encoded)).toBe(false);
    expect(await verifyPassword(password.toUpperCase(), encoded)).toBe(false);
    expect(await verifyPassword('', encoded)).toBe(false);
  });

  test('salts every hash', async () => {
    const [a, b] = await Promise.all([hashPassword(password), hashPassword(password)]);
    expect(a).not.toBe(b);
    expect(parsePasswordHash(a).salt.equals(parsePasswordHash(b).salt)).toBe(false);
  });

  test('reads the parameters from the encoding, not from the current defaults', async () => {
    const weaker = await hashPassword(password, { ln: 10, r: 8, p: 1 });
    expect(weaker.startsWith('$scrypt$ln=10,r=8,p=1$')).toBe(true);
    expect(await verifyPassword(password, weaker)).toBe(true);
    expect(await verifyPassword('nope', weaker)).toBe(false);
  });

  test('matches the RFC 7914 §12 test vector (N = 2^ln)', async () => {
    const salt = Buffer.from('SodiumChloride').toString('base64').replace(/=+$/, '');
    const hash = Buffer.from(
      '7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887',
      'hex',
    )
      .toString('base64')
      .replace(/=+$/, '');
    const encoded = `$scrypt$ln=14,r=8,p=1$${salt}$${hash}`;
    expect(await verifyPassword('pleaseletmein', encoded)).toBe(true);
    expect(await verifyPassword('pleaseletmeIn', encoded)).toBe(false);
  });

  test.each([
    ['empty', ''],
    ['another scheme', '$2b$12$abcdefghijklmnopqrstuuK9QWbkGk1qlzY1m0yTPZL1bUbRq7Mu'],
    ['missing hash', '$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0'],
    ['unknown parameter order', '$scrypt$r=8,ln=14,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
    ['ln too large', '$scrypt$ln=40,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
    ['ln zero', '$scrypt$ln=0,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
    ['memory too large', '$scrypt$ln=20,r=32,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
    ['padded base64', '$scrypt$ln=14,r=8,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
    ['non-canonical base64', '$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2h'],
    ['salt too short', '$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
    ['hash too short', '$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA'],
    ['trailing newline', '$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\n'],
  ])("rejects a malformed encoding (%s) with 'malformed-hash'", async (_what, encoded) => {
    expect((await rejection(verifyPassword('x', encoded))).code).toBe('malformed-hash');
  });

  test('the well-formed base of the malformed cases does parse', () => {
    // Guards the table above: each case must fail for its stated reason only.
    expect(parsePasswordHash('$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g').params).toEqual({
      ln: 14,
      r: 8,
      p: 1,
    });
  });

  test("refuses to write parameters it would not read back ('invalid-option')", async () => {
    expect((await rejection(hashPassword('x', { ln: 30, r: 8, p: 1 }))).code).toBe('invalid-option');
    expect((await rejection(hashPassword('x', { ln: 14, r: 8, p: 1.5 }))).code).toBe('invalid-option');
  });
});

describe('dummyHash', () => {
  test('is computed once, with the current parameters, and matches no likely password', async () => {
    const [a, b] = await Promise.all([dummyHash(), dummyHash()]);
    expect(a).toBe(b);
    expect(await dummyHash()).toBe(a);
    expect(parsePasswordHash(a).params).toEqual(SCRYPT_PARAMS);
    for (const guess of ['', 'password', 'dummy']) expect(await verifyPassword(guess, a)).toBe(false);
  });
});
