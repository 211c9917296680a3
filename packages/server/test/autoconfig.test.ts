/**
 * Autoconfiguration documents and SRV records from a set of listeners,
 * without sockets; the HTTP side is in autoconfig.e2e.test.ts.
 */
import {
  autodiscoverAddress,
  autodiscoverResponse,
  domainOf,
  escapeXml,
  mozillaConfig,
  offeredServices,
  srvRecords,
  type ProviderInfo,
} from '../src/autoconfig';

const LISTENERS = [
  { protocol: 'imap', port: 143, tls: 'starttls' },
  { protocol: 'imap', port: 993, tls: 'implicit' },
  { protocol: 'pop3', port: 110, tls: 'none' },
  { protocol: 'submission', port: 587, tls: 'starttls' },
  { protocol: 'submission', port: 465, tls: 'implicit' },
  { protocol: 'imap', port: 0, tls: 'implicit' },
];
const provider: ProviderInfo = { hostname: 'mail.example.org', displayName: 'Example <Mail> & Co', services: offeredServices(LISTENERS) };

test('offered: TLS listeners with a port, implicit TLS first; plaintext and port 0 never', () => {
  expect(offeredServices(LISTENERS)).toEqual([
    { protocol: 'imap', port: 993, tls: 'implicit' },
    { protocol: 'submission', port: 465, tls: 'implicit' },
    { protocol: 'imap', port: 143, tls: 'starttls' },
    { protocol: 'submission', port: 587, tls: 'starttls' },
  ]);
});

test('RFC 6186 SRV records: implicit TLS preferred, services not offered marked unavailable', () => {
  expect(srvRecords('example.org', 'mail.example.org', provider.services)).toEqual([
    '_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mail.example.org.',
    '_imap._tcp.example.org. 3600 IN SRV 10 1 143 mail.example.org.',
    '_pop3s._tcp.example.org. 3600 IN SRV 0 0 0 .',
    '_pop3._tcp.example.org. 3600 IN SRV 0 0 0 .',
    '_submissions._tcp.example.org. 3600 IN SRV 0 1 465 mail.example.org.',
    '_submission._tcp.example.org. 3600 IN SRV 10 1 587 mail.example.org.',
  ]);
});

test('Thunderbird: servers, ports and socket types of the listeners; user name left to the client', () => {
  const xml = mozillaConfig(provider, 'example.org');
  expect(xml).toContain('<emailProvider id="example.org">');
  expect(xml).toContain('<displayName>Example &lt;Mail&gt; &amp; Co</displayName>');
  const servers = [...xml.matchAll(/<(incoming|outgoing)Server type="(\w+)">\s*<hostname>([^<]*)<\/hostname>\s*<port>(\d+)<\/port>\s*<socketType>(\w+)<\/socketType>/g)].map(
    (m) => `${m[2]} ${m[3]}:${m[4]} ${m[5]}`,
  );
  expect(servers).toEqual(['imap mail.example.org:993 SSL', 'imap mail.example.org:143 STARTTLS', 'smtp mail.example.org:465 SSL', 'smtp mail.example.org:587 STARTTLS']);
  expect(xml.match(/<username>%EMAILADDRESS%<\/username>/g)).toHaveLength(4);
});

test('only a plausible domain from the request is used, never markup', () => {
  expect(domainOf('alice@Example.ORG')).toBe('example.org');
  expect(domainOf('x@"><script>')).toBeNull();
  expect(domainOf('x@a.b"c')).toBeNull();
  expect(domainOf('no-at-sign')).toBeNull();
  expect(mozillaConfig(provider, domainOf('x@"><evil/>'))).toContain('<emailProvider id="mail.example.org">');
});

test('Autodiscover: the address is taken from the request only if it looks like one, and escaped', () => {
  const req = (a: string) => `<?xml version="1.0"?><Autodiscover><Request><EMailAddress>${a}</EMailAddress></Request></Autodiscover>`;
  expect(autodiscoverAddress(req('alice@example.org'))).toBe('alice@example.org');
  expect(autodiscoverAddress(req("o'neil&amp;co@example.org"))).toBe("o'neil&co@example.org");
  expect(autodiscoverAddress(req('a&lt;b&gt;@example.org'))).toBeNull();
  expect(autodiscoverAddress(req('bad address@example.org'))).toBeNull();
  expect(autodiscoverAddress('<Autodiscover/>')).toBeNull();
  const xml = autodiscoverResponse(provider, "o'neil&co@example.org");
  expect(xml).toContain('<LoginName>o&apos;neil&amp;co@example.org</LoginName>');
  const protocols = [...xml.matchAll(/<Type>(\w+)<\/Type>\s*<Server>([^<]*)<\/Server>\s*<Port>(\d+)<\/Port>[\s\S]*?<Encryption>(\w+)<\/Encryption>/g)].map(
    (m) => `${m[1]} ${m[2]}:${m[3]} ${m[4]}`,
  );
  expect(protocols).toEqual(['IMAP mail.example.org:993 SSL', 'SMTP mail.example.org:465 SSL', 'IMAP mail.example.org:143 TLS', 'SMTP mail.example.org:587 TLS']);
  expect(autodiscoverResponse(provider, null)).not.toContain('<LoginName>');
});

test('escapeXml: markup characters escaped, characters XML cannot carry dropped', () => {
  expect(escapeXml(`<a href="x">'&'</a>\u0000\u0007`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
});
