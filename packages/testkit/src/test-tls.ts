import type { PemPair } from '@mailfront/server';

/** One CA and certificate per CA name and test process: RSA key generation costs 50–500 ms each. */
const made = new Map<string, Promise<{ ca: PemPair; leaf: PemPair }>>();

/** A CA named `caName` and a certificate it signed for localhost and 127.0.0.1; a failure is not cached. */
export function testTls(caName: string): Promise<{ ca: PemPair; leaf: PemPair }> {
  let pair = made.get(caName);
  if (pair === undefined) {
    pair = (async () => {
      // Loaded on first use, so that suites using only ports or the raw client do not load the server package.
      const { generateCa, issueCertificate } = await import('@mailfront/server');
      const ca = generateCa({ commonName: caName });
      return { ca, leaf: issueCertificate(ca, { hostnames: ['localhost', '127.0.0.1'] }) };
    })();
    made.set(caName, pair);
    pair.catch(() => made.delete(caName));
  }
  return pair;
}
