import * as http from 'node:http';
import * as net from 'node:net';
import { upgradeServerSocket, type ClientTlsProvider, type Logger } from '@mailfront/proxy-core';

/**
 * Client autoconfiguration: what a mail client needs to set an account up
 * (servers, ports, TLS), from the listeners mailfront really has.
 *
 * - Thunderbird's autoconfig (config-v1.1.xml), GET with ?emailaddress=.
 * - Outlook's Autodiscover "POX" (plain old XML), POST with the address in the body.
 * - RFC 6186 SRV records, printed by `mailfront autoconfig dns DOMAIN`.
 *
 * Implicit TLS is offered before STARTTLS (RFC 8314 §5.1), and a listener
 * without TLS is never offered: a client set up automatically must not be
 * sent to a port where its password crosses the network in clear. Whatever
 * the request carried reaches the answer only escaped (and the address
 * only when it looks like one); the user name is `%EMAILADDRESS%` for
 * Thunderbird, which fills it in itself.
 */

export type MailProtocol = 'imap' | 'pop3' | 'submission';

export interface MailService {
  protocol: MailProtocol;
  port: number;
  tls: 'implicit' | 'starttls';
}

/** The services to hand out: TLS listeners with a known port, implicit TLS first, each port once. */
export function offeredServices(listeners: ReadonlyArray<{ protocol: string; port: number; tls: string }>): MailService[] {
  const out: MailService[] = [];
  for (const tls of ['implicit', 'starttls'] as const) {
    for (const l of listeners) {
      if (l.tls !== tls || l.port === 0) continue;
      if (l.protocol !== 'imap' && l.protocol !== 'pop3' && l.protocol !== 'submission') continue;
      if (out.some((s) => s.protocol === l.protocol && s.port === l.port)) continue;
      out.push({ protocol: l.protocol, port: l.port, tls });
    }
  }
  return out;
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Text or attribute content. C0 controls other than tab and line ends are not allowed in XML 1.0 at all: dropped. */
export function escapeXml(s: string): string {
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

const DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** The domain of an e-mail address, lower-cased, if it is a plausible DNS name; else null. */
export function domainOf(address: string | null | undefined): string | null {
  if (!address) return null;
  const at = address.lastIndexOf('@');
  if (at < 1) return null;
  const d = address.slice(at + 1).trim().toLowerCase().replace(/\.$/, '');
  return DOMAIN.test(d) ? d : null;
}

/** An address as a client sent it, when it looks like one (RFC 5321 §4.5.3.1.3: at most 254 octets in a path). */
export function plausibleAddress(address: string | null | undefined): string | null {
  if (!address) return null;
  const a = address.trim();
  if (a.length > 254 || /[\s\u0000-\u001f\u007f<>]/.test(a)) return null;
  return domainOf(a) !== null ? a : null;
}

export interface ProviderInfo {
  /** The mail server's public name. */
  hostname: string;
  displayName: string;
  services: readonly MailService[];
}

/** Thunderbird autoconfig, config-v1.1.xml. */
export function mozillaConfig(p: ProviderInfo, domain: string | null): string {
  const id = domain ?? p.hostname;
  const server = (s: MailService) => {
    const tag = s.protocol === 'submission' ? 'outgoingServer' : 'incomingServer';
    const type = s.protocol === 'submission' ? 'smtp' : s.protocol;
    return [
      `    <${tag} type="${type}">`,
      `      <hostname>${escapeXml(p.hostname)}</hostname>`,
      `      <port>${s.port}</port>`,
      `      <socketType>${s.tls === 'implicit' ? 'SSL' : 'STARTTLS'}</socketType>`,
      `      <authentication>password-cleartext</authentication>`,
      `      <username>%EMAILADDRESS%</username>`,
      `    </${tag}>`,
    ].join('\n');
  };
  // Thunderbird expects the incoming servers before the outgoing ones.
  const ordered = [...p.services.filter((s) => s.protocol !== 'submission'), ...p.services.filter((s) => s.protocol === 'submission')];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<clientConfig version="1.1">',
    `  <emailProvider id="${escapeXml(id)}">`,
    `    <domain>${escapeXml(id)}</domain>`,
    `    <displayName>${escapeXml(p.displayName)}</displayName>`,
    `    <displayShortName>${escapeXml(p.displayName)}</displayShortName>`,
    ...ordered.map(server),
    '  </emailProvider>',
    '</clientConfig>',
    '',
  ].join('\n');
}

/** The address in an Autodiscover POX request, if any. */
export function autodiscoverAddress(body: string): string | null {
  const m = /<EMailAddress>([^<]*)<\/EMailAddress>/i.exec(body);
  if (!m) return null;
  const text = m[1]!.replace(/&(amp|lt|gt|quot|apos);/g, (_x, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[e]!);
  return plausibleAddress(text);
}

/** Outlook Autodiscover, the POX response schema (2006a). */
export function autodiscoverResponse(p: ProviderInfo, address: string | null): string {
  const type = (s: MailService) => (s.protocol === 'submission' ? 'SMTP' : s.protocol.toUpperCase());
  const protocol = (s: MailService) =>
    [
      '      <Protocol>',
      `        <Type>${type(s)}</Type>`,
      `        <Server>${escapeXml(p.hostname)}</Server>`,
      `        <Port>${s.port}</Port>`,
      '        <DomainRequired>off</DomainRequired>',
      ...(address !== null ? [`        <LoginName>${escapeXml(address)}</LoginName>`] : []),
      '        <SPA>off</SPA>',
      '        <SSL>on</SSL>',
      // SSL: TLS from the first byte; TLS: STARTTLS.
      `        <Encryption>${s.tls === 'implicit' ? 'SSL' : 'TLS'}</Encryption>`,
      '        <AuthRequired>on</AuthRequired>',
      ...(s.protocol === 'submission' ? ['        <UsePOPAuth>off</UsePOPAuth>', '        <SMTPLast>off</SMTPLast>'] : []),
      '      </Protocol>',
    ].join('\n');
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">',
    '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">',
    '    <User>',
    `      <DisplayName>${escapeXml(p.displayName)}</DisplayName>`,
    '    </User>',
    '    <Account>',
    '      <AccountType>email</AccountType>',
    '      <Action>settings</Action>',
    ...p.services.map(protocol),
    '    </Account>',
    '  </Response>',
    '</Autodiscover>',
    '',
  ].join('\n');
}

/** RFC 6186 §3 service names (RFC 8314 §5.1 adds _submissions). */
const SRV_NAMES: ReadonlyArray<{ name: string; protocol: MailProtocol; tls: MailService['tls'] }> = [
  { name: '_imaps', protocol: 'imap', tls: 'implicit' },
  { name: '_imap', protocol: 'imap', tls: 'starttls' },
  { name: '_pop3s', protocol: 'pop3', tls: 'implicit' },
  { name: '_pop3', protocol: 'pop3', tls: 'starttls' },
  { name: '_submissions', protocol: 'submission', tls: 'implicit' },
  { name: '_submission', protocol: 'submission', tls: 'starttls' },
];

/**
 * One SRV record per service and port. Implicit TLS gets priority 0 and
 * STARTTLS 10: a client that looks both up (RFC 6186 §3.4) prefers
 * implicit TLS, as RFC 8314 §5.1 asks. A service mailfront does not offer
 * gets the "decidedly not available" record (target ".", RFC 6186 §4), so
 * clients do not guess a port.
 */
export function srvRecords(domain: string, hostname: string, services: readonly MailService[], ttlSeconds = 3600): string[] {
  const fqdn = (n: string) => (n.endsWith('.') ? n : `${n}.`);
  const out: string[] = [];
  for (const srv of SRV_NAMES) {
    const owner = `${srv.name}._tcp.${fqdn(domain)}`;
    const matching = services.filter((s) => s.protocol === srv.protocol && s.tls === srv.tls);
    if (matching.length === 0) out.push(`${owner} ${ttlSeconds} IN SRV 0 0 0 .`);
    for (const s of matching) out.push(`${owner} ${ttlSeconds} IN SRV ${s.tls === 'implicit' ? 0 : 10} 1 ${s.port} ${fqdn(hostname)}`);
  }
  return out;
}

export interface AutoconfigServer {
  address: { host: string; port: number };
  tls: boolean;
  close(): Promise<void>;
}

/** Request bodies are a few hundred bytes; anything much larger is not Autodiscover. */
const MAX_BODY_BYTES = 16 * 1024;

export async function startAutoconfigServer(opts: {
  host: string;
  port: number;
  /** The provider as of now: listeners are known once bound. */
  provider: () => ProviderInfo;
  /** HTTPS with the mail listeners' certificates (read at each connection, so a reload applies). */
  tls: (() => ClientTlsProvider) | null;
  log: Logger;
}): Promise<AutoconfigServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://autoconfig');
    const path = url.pathname.toLowerCase();
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') =>
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : body);
    if (path === '/.well-known/autoconfig/mail/config-v1.1.xml' || path === '/mail/config-v1.1.xml') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'GET only\n');
      return reply(200, mozillaConfig(opts.provider(), domainOf(url.searchParams.get('emailaddress'))), 'application/xml; charset=utf-8');
    }
    if (path === '/autodiscover/autodiscover.xml') {
      if (req.method !== 'POST') return reply(405, 'POST an Autodiscover request\n');
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      req.on('end', () => {
        if (size > MAX_BODY_BYTES) return reply(413, 'request too large\n');
        const address = autodiscoverAddress(Buffer.concat(chunks).toString('utf8'));
        reply(200, autodiscoverResponse(opts.provider(), address), 'text/xml; charset=utf-8');
      });
      return;
    }
    reply(404, 'not found\n');
  });

  // With TLS: accept on a plain server and hand each socket to HTTP once the
  // handshake is done, with the certificate of the moment (as the mail listeners do).
  const raws = new Set<net.Socket>();
  const front = opts.tls
    ? net.createServer((raw) => {
        raws.add(raw);
        raw.once('close', () => raws.delete(raw));
        const secure = upgradeServerSocket(raw, opts.tls!(), ['http/1.1']);
        secure.on('error', () => secure.destroy());
        secure.once('secure', () => server.emit('connection', secure));
      })
    : server;
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ host: opts.host, port: opts.port }, () => {
      front.removeListener('error', reject);
      resolve();
    });
  });
  const a = front.address() as net.AddressInfo;
  opts.log.info({ host: a.address, port: a.port, tls: opts.tls !== null }, 'autoconfig listening');
  return {
    address: { host: a.address, port: a.port },
    tls: opts.tls !== null,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        for (const r of raws) r.destroy();
        if (front !== server) server.close();
        front.close(() => resolve());
      }),
  };
}
