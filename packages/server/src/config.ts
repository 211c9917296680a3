import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { DEFAULT_CORE_LIMITS, type CoreLimits } from '@mailfront/proxy-core';
import { DEFAULT_IMAP_LIMITS, type ImapLimits } from '@mailfront/imap';
import { checkTemplate, parseLdapUrl } from '@mailfront/auth';
import { DEFAULT_POP3_LIMITS, type Pop3Limits } from '@mailfront/pop3';
import { POSTGRES_STORE_DEFAULTS } from '@mailfront/store';
import { DEFAULT_EXTENSIONS, DEFAULT_SUBMISSION_LIMITS, RELAYABLE_EXTENSIONS, type RelayableExtension, type SubmissionLimits } from '@mailfront/submission';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';

/**
 * The mailfront configuration: one YAML file, validated once at start-up and
 * frozen. Every key, default and unit is documented in docs/config.md; keep
 * the two in step.
 */

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'json' | 'pretty';
export type ListenerProtocol = 'imap' | 'pop3' | 'submission';
export type ListenerTlsMode = 'starttls' | 'implicit' | 'none';

export interface ListenerConfig {
  protocol: ListenerProtocol;
  /** Address to bind. Default 127.0.0.1. */
  host: string;
  /** 0..65535; 0 = any free port (tests). */
  port: number;
  tls: ListenerTlsMode;
  /** Default false: credentials are accepted only after TLS. */
  allowPlaintextAuth: boolean;
  /** Default false. Expect HAProxy's PROXY protocol (v1/v2) from `proxyProtocol.trustedNetworks`. */
  proxyProtocol: boolean;
}

export interface PenaltiesConfig {
  /** Failed logins (per client address block, and per user name) before refusals start. 0 = no penalties. */
  threshold: number;
  /** First refusal period; doubles with every further failure. */
  baseMs: number;
  /** Longest refusal period. */
  maxMs: number;
  /** A key without failures for this long is forgotten. */
  forgetAfterMs: number;
  /** Keys tracked at most (least recently failed go first). */
  maxEntries: number;
  /** CIDRs never penalised, e.g. a webmail host. */
  trustedNetworks: string[];
}

export interface TlsConfig {
  /** The default certificate (chain) and key, PEM. */
  cert: string;
  key: string;
  /** Oldest TLS version accepted from clients. Default TLSv1.2. */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Certificates per server name (SNI): exact names or `*.domain` (one label). */
  sni: Array<{ names: string[]; cert: string; key: string }>;
  /** true: a client asking for a name no certificate covers is refused. Default false. */
  strictSni: boolean;
}

export interface ProxyProtocolConfig {
  /** CIDRs of the balancers allowed to send a PROXY header. Default: none. */
  trustedNetworks: string[];
  /** A trusted peer must send its header within this time. Default 3000 ms. */
  headerTimeoutMs: number;
}

/** Active backend checks and the circuit breakers they feed (docs/config.md, `health`). */
export interface HealthConfig {
  /** How often each backend's ports are checked (connect, TLS if implicit, greeting). */
  intervalMs: number;
  /** A check that takes longer has failed. */
  timeoutMs: number;
  /** Failed checks or logins in a row that open a backend's breaker for that protocol. */
  failuresToOpen: number;
  /** How long an open breaker keeps logins away before the next check may close it. */
  openMs: number;
}

export type AuthSource = 'sqlite' | 'ldap' | 'backend';
export type LdapScope = 'base' | 'one' | 'sub';

/** The directory: auth source `ldap`, and placement from a directory attribute. See docs/config.md. */
export interface LdapConfig {
  /** Tried in order for each new connection. */
  urls: string[];
  /** ldap:// URLs: StartTLS before anything else, or fail. Default true. */
  startTls: boolean;
  /** PEM CA bundle for the directory's certificate; null = Node's default CAs. */
  caFile: string | null;
  /** Service DN for searches; null = anonymous searches. */
  bindDn: string | null;
  /** File whose first line is the service DN's password; required with bindDn. */
  bindPasswordFile: string | null;
  /** Search base; required unless dnTemplate is set. */
  baseDn: string | null;
  scope: LdapScope;
  /** Search filter with %u; null when dnTemplate is used instead. */
  filter: string | null;
  /** Direct bind: the user's DN with %u; null = search with filter. */
  dnTemplate: string | null;
  /** Attribute whose (lower-cased) value is the canonical user name. Default mail. */
  userAttribute: string;
  /** Attribute naming the user's backend (name or host); null = placement from the store only. Default mailHost. */
  placementAttribute: string | null;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** Connections per pool (searches; user binds). */
  poolSize: number;
  /** Placement lookups: how long a value (positive) or its absence (negative) is remembered; 0 = not at all. */
  cache: { positiveTtlMs: number; negativeTtlMs: number };
}

/** The core limits minus authFailureDelayMs, which lives in auth.failureDelayMs. */
export type LimitsConfig = Omit<CoreLimits, 'authFailureDelayMs'>;

/**
 * Where backends, users and placements live: a SQLite file for one node, or
 * one PostgreSQL database shared by every node of a fleet.
 */
export type StoreConfig =
  | { kind: 'sqlite'; path: string }
  | {
      kind: 'postgres';
      /** From store.url or store.host/port/database/user. host may be a unix socket directory. */
      host: string;
      port: number;
      database: string;
      user: string;
      /** Absolute; null = no password (trust, peer, ~/.pgpass). Never a password in the YAML. */
      passwordFile: string | null;
      /** false: plaintext. Otherwise TLS, verified against caFile (null = system CAs) unless insecure. */
      ssl: false | { caFile: string | null; insecure: boolean };
      poolSize: number;
      connectTimeoutMs: number;
      statementTimeoutMs: number;
    };

/** The submission listener: parser limits and what its EHLO reply offers on the backends' behalf. */
export interface SubmissionConfig extends SubmissionLimits {
  /** Advertised before AUTH; every backend must offer them after AUTH (checked at each login). */
  extensions: RelayableExtension[];
  /** SIZE to advertise, in bytes: the backends' limit. 0 = SIZE without a number. */
  maxMessageBytes: number;
}

/** The admin API the CLI talks to (sessions, kick, user move). See docs/operations.md. */
export interface AdminConfig {
  /** Unix socket (mode 0600) for the admin API; null = none. Default <dataDir>/admin.sock. */
  socket: string | null;
  /** The admin API over HTTP with a bearer token; null = none. */
  http: AdminHttpConfig | null;
  /** A login of a user whose move is under way waits this long for it, then gets a temporary failure; 0 = at once. */
  moveLoginWaitMs: number;
}

export interface AdminHttpConfig {
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  /** File whose first line is the bearer token. */
  tokenFile: string;
  /** A host that is not loopback is refused unless this is true. */
  allowRemote: boolean;
}

/** Prometheus metrics over HTTP; port null = off. */
export interface MetricsConfig {
  host: string;
  port: number | null;
}

/** Thunderbird autoconfig and Outlook Autodiscover over HTTP(S); port null = off. */
export interface AutoconfigConfig {
  host: string;
  port: number | null;
  /** true: HTTPS with the client-facing certificate (tls.cert/key or the self-signed one). */
  tls: boolean;
  /** The mail server's public name handed to clients; null = `hostname`. */
  hostname: string | null;
  /** The provider's name shown by clients; null = the host name. */
  displayName: string | null;
}

export interface MailfrontConfig {
  /** Absolute after loading. */
  dataDir: string;
  store: StoreConfig;
  /** PEM files; null → a self-signed certificate is generated in <dataDir>/tls on first start. */
  tls: TlsConfig | null;
  /** The name in the self-signed certificate, and the SMTP greeting and EHLO name. */
  hostname: string;
  listeners: ListenerConfig[];
  auth: { source: AuthSource; failureDelayMs: number; cacheTtlMs: number; cacheMaxEntries: number };
  /** null: no directory. Required when auth.source is ldap. */
  ldap: LdapConfig | null;
  limits: LimitsConfig;
  imap: ImapLimits;
  pop3: Pop3Limits;
  submission: SubmissionConfig;
  log: { level: LogLevel; format: LogFormat };
  proxyProtocol: ProxyProtocolConfig;
  penalties: PenaltiesConfig;
  health: HealthConfig;
  admin: AdminConfig;
  metrics: MetricsConfig;
  autoconfig: AutoconfigConfig;
}

export interface LoadedConfig {
  config: MailfrontConfig;
  /** The file read, or 'embedded defaults'. */
  source: string;
  /**
   * Settings that are valid but probably not meant (a listener that can never
   * accept a login, passwords in clear over the network). Print them at start.
   */
  warnings: readonly string[];
}

export const EMBEDDED_DEFAULTS_SOURCE = 'embedded defaults';
/** Looked for in the working directory when neither --config nor MAILFRONT_CONFIG is given. */
export const DEFAULT_CONFIG_FILE = 'mailfront.yaml';
export const CONFIG_ENV_VAR = 'MAILFRONT_CONFIG';

const DEFAULT_DATA_DIR = './var';
const DEFAULT_DB_FILE = 'mailfront.db';
const DEFAULT_ADMIN_SOCKET = 'admin.sock';

// setTimeout treats any delay above 2^31-1 ms (24.8 days) as 1 ms: a huge
// timeout would silently become an immediate one.
const MAX_TIMER_MS = 2_147_483_647;
// Byte limits above this are certainly a typo (one pre-login command of a GiB).
const MAX_BYTES = 1 << 30;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

function defaultLimits(): LimitsConfig {
  const { authFailureDelayMs: _ignored, ...rest } = DEFAULT_CORE_LIMITS;
  return { ...rest };
}

function defaultListeners(): ListenerConfig[] {
  return [
    { protocol: 'imap', host: '127.0.0.1', port: 1143, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false },
    { protocol: 'imap', host: '127.0.0.1', port: 1993, tls: 'implicit', allowPlaintextAuth: false, proxyProtocol: false },
    { protocol: 'pop3', host: '127.0.0.1', port: 1110, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false },
    { protocol: 'pop3', host: '127.0.0.1', port: 1995, tls: 'implicit', allowPlaintextAuth: false, proxyProtocol: false },
    { protocol: 'submission', host: '127.0.0.1', port: 1587, tls: 'starttls', allowPlaintextAuth: false, proxyProtocol: false },
    { protocol: 'submission', host: '127.0.0.1', port: 1465, tls: 'implicit', allowPlaintextAuth: false, proxyProtocol: false },
  ];
}

/**
 * The built-in defaults. dataDir and store.path are relative here; loading
 * resolves them against the config file's directory (or the working
 * directory when there is no file).
 */
export const DEFAULT_CONFIG: MailfrontConfig = deepFreeze({
  dataDir: DEFAULT_DATA_DIR,
  store: { kind: 'sqlite', path: join(DEFAULT_DATA_DIR, DEFAULT_DB_FILE) },
  tls: null,
  hostname: osHostname(),
  listeners: defaultListeners(),
  auth: {
    source: 'sqlite',
    failureDelayMs: DEFAULT_CORE_LIMITS.authFailureDelayMs,
    cacheTtlMs: 60_000,
    cacheMaxEntries: 10_000,
  },
  ldap: null,
  limits: defaultLimits(),
  imap: { ...DEFAULT_IMAP_LIMITS },
  pop3: { ...DEFAULT_POP3_LIMITS },
  submission: { ...DEFAULT_SUBMISSION_LIMITS, extensions: [...DEFAULT_EXTENSIONS], maxMessageBytes: 0 },
  log: { level: 'info', format: 'json' },
  proxyProtocol: { trustedNetworks: [], headerTimeoutMs: 3_000 },
  penalties: { threshold: 5, baseMs: 10_000, maxMs: 900_000, forgetAfterMs: 900_000, maxEntries: 100_000, trustedNetworks: [] },
  health: { intervalMs: 10_000, timeoutMs: 3_000, failuresToOpen: 3, openMs: 30_000 },
  admin: { socket: join(DEFAULT_DATA_DIR, DEFAULT_ADMIN_SOCKET), http: null, moveLoginWaitMs: 5_000 },
  metrics: { host: '127.0.0.1', port: null },
  autoconfig: { host: '127.0.0.1', port: null, tls: false, hostname: null, displayName: null },
} satisfies MailfrontConfig);

type KeyPath = ReadonlyArray<string | number>;

function formatKey(path: KeyPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/**
 * A configuration the server must not start with. `key` names the offending
 * setting (`listeners[1].port`; '' for the document as a whole), so the admin
 * knows what to fix without reading a stack.
 */
export class ConfigError extends Error {
  readonly code = 'config' as const;
  readonly key: string;
  /** The key as a path, for locating it in the YAML document. */
  readonly path: ReadonlyArray<string | number>;
  /** The file the error was found in, when there is one. */
  readonly file: string | undefined;
  /** 1-based line in `file`, when known. */
  readonly line: number | undefined;
  /** The problem without file and key: "must be an integer 0..65535, got 70000". */
  readonly detail: string;

  constructor(path: KeyPath | string, detail: string, where: { file?: string; line?: number } = {}) {
    const key = typeof path === 'string' ? path : formatKey(path);
    const location = where.file ? `${where.file}${where.line ? `:${where.line}` : ''}: ` : '';
    super(`${location}${key ? `${key}: ` : ''}${detail}`);
    this.name = 'ConfigError';
    this.key = key;
    this.path = typeof path === 'string' ? (path ? [path] : []) : [...path];
    this.file = where.file;
    this.line = where.line;
    this.detail = detail;
  }
}

// ---------------------------------------------------------------------------
// Validation helpers. Each takes the key path so that every error names it.

type Raw = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return String(v);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function suggest(key: string, known: readonly string[]): string {
  const lower = key.toLowerCase();
  const best = known
    .map((k) => ({ k, d: k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase()) }))
    .sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean ${best.k}?)` : '';
}

/** A mapping with only the given keys; null or absent is an empty mapping. */
function section(v: unknown, path: KeyPath, known: readonly string[]): Raw {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(path, `must be a mapping, got ${describe(v)}`);
  const raw = v as Raw;
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) {
      throw new ConfigError([...path, k], `unknown key${suggest(k, known)}; known keys here: ${known.join(', ')}`);
    }
  }
  return raw;
}

function integer(v: unknown, path: KeyPath, min: number, max: number, unit = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max >= Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}..${max}`;
    throw new ConfigError(path, `must be an integer ${range}${unit}, got ${describe(v)}`);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, path: KeyPath, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) {
    throw new ConfigError(path, `must be one of ${values.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

function boolean(v: unknown, path: KeyPath): boolean {
  // YAML 1.2: yes/no/on/off are strings, not booleans. Refuse them rather than guess.
  if (typeof v !== 'boolean') throw new ConfigError(path, `must be true or false, got ${describe(v)}`);
  return v;
}

// C0, DEL: a path or name with these is a paste accident.
const CONTROL = /[\u0000-\u001f\u007f]/;

function text(v: unknown, path: KeyPath): string {
  if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(path, `must be a non-empty string, got ${describe(v)}`);
  if (CONTROL.test(v)) throw new ConfigError(path, 'must not contain control characters');
  return v;
}

function filePath(v: unknown, path: KeyPath, baseDir: string): string {
  return resolve(baseDir, text(v, path));
}

const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function host(v: unknown, path: KeyPath): string {
  const s = text(v, path);
  if (isIP(s) === 0 && !HOST_NAME.test(s)) {
    throw new ConfigError(path, `must be an IP address or host name, got ${describe(s)}`);
  }
  return s;
}

// ---------------------------------------------------------------------------

const TOP_KEYS = ['dataDir', 'store', 'tls', 'hostname', 'listeners', 'auth', 'ldap', 'limits', 'imap', 'pop3', 'submission', 'log', 'proxyProtocol', 'penalties', 'admin', 'metrics', 'autoconfig', 'health'] as const;
const PROTOCOLS: readonly ListenerProtocol[] = ['imap', 'pop3', 'submission'];
const LISTENER_TLS: readonly ListenerTlsMode[] = ['starttls', 'implicit', 'none'];
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** [min, max, unit] of each limit. 0 is a real value only where min allows it. */
const LIMIT_RANGES: { readonly [K in keyof LimitsConfig]: readonly [number, number, string] } = {
  // 0 would close every connection at once; there is no "no limit" here on purpose.
  loginTimeoutMs: [1, MAX_TIMER_MS, ' ms'],
  maxBadCommands: [1, Number.MAX_SAFE_INTEGER, ''],
  maxAuthAttempts: [1, Number.MAX_SAFE_INTEGER, ''],
  backendConnectTimeoutMs: [1, MAX_TIMER_MS, ' ms'],
  backendLoginTimeoutMs: [1, MAX_TIMER_MS, ' ms'],
  // RFC 5321 §4.5.3.1.5: a reply line may be 512 octets; no backend speaks in less.
  backendMaxLineBytes: [512, MAX_BYTES, ' bytes'],
  // 0 disables the relay's idle timeout.
  idleTimeoutMs: [0, MAX_TIMER_MS, ' ms'],
  // A hop count, like an IP TTL.
  proxyTtl: [1, 255, ''],
  maxConnections: [1, 10_000_000, ''],
  maxConnectionsPerAddress: [1, 10_000_000, ''],
  // 0: close every session at once on shutdown.
  shutdownGraceMs: [0, MAX_TIMER_MS, ' ms'],
};

const IMAP_RANGES: { readonly [K in keyof ImapLimits]: readonly [number, number, string] } = {
  // A LOGIN with a 255-byte user name and a long password must fit.
  maxLineBytes: [512, MAX_BYTES, ' bytes'],
  // 0 is a real limit: no literals before login.
  maxLiteralBytes: [0, MAX_BYTES, ' bytes'],
  maxCommandBytes: [512, MAX_BYTES, ' bytes'],
};

const POP3_RANGES: { readonly [K in keyof Pop3Limits]: readonly [number, number, string] } = {
  // RFC 2449 §4: every server takes a 255-octet command line; less would refuse conforming clients.
  maxLineBytes: [255, MAX_BYTES, ' bytes'],
  // A SASL PLAIN response of a short name and password must fit.
  maxSaslLineBytes: [255, MAX_BYTES, ' bytes'],
};

const HEALTH_RANGES: { readonly [K in keyof HealthConfig]: readonly [number, number, string] } = {
  // Faster than every 100 ms a round of checks would hardly end before the next began.
  intervalMs: [100, MAX_TIMER_MS, ' ms'],
  timeoutMs: [1, MAX_TIMER_MS, ' ms'],
  failuresToOpen: [1, 1_000, ''],
  // 0: the next check after opening decides at once.
  openMs: [0, MAX_TIMER_MS, ' ms'],
};

const SUBMISSION_RANGES: { readonly [K in keyof SubmissionLimits | 'maxMessageBytes']: readonly [number, number, string] } = {
  // RFC 5321 §4.5.3.1.4: every server takes a 512-octet command line.
  maxCommandLineBytes: [512, MAX_BYTES, ' bytes'],
  // An AUTH PLAIN of a realistic name and password must fit; RFC 4954 §4 suggests 12288.
  maxAuthLineBytes: [512, MAX_BYTES, ' bytes'],
  // 0: SIZE without a number (RFC 1870 §4: no fixed limit declared).
  maxMessageBytes: [0, Number.MAX_SAFE_INTEGER, ' bytes'],
};

function submissionSection(raw: unknown): SubmissionConfig {
  const path = ['submission'];
  const r = section(raw, path, [...Object.keys(SUBMISSION_RANGES), 'extensions']);
  const { extensions: rawExtensions, ...rest } = r;
  const d = DEFAULT_CONFIG.submission;
  const n = numbers(rest, path, { maxCommandLineBytes: d.maxCommandLineBytes, maxAuthLineBytes: d.maxAuthLineBytes, maxMessageBytes: d.maxMessageBytes }, SUBMISSION_RANGES);
  let extensions = [...d.extensions];
  if (rawExtensions !== undefined && rawExtensions !== null) {
    const key = [...path, 'extensions'];
    if (!Array.isArray(rawExtensions)) throw new ConfigError(key, `must be a list of extension names, got ${describe(rawExtensions)}`);
    extensions = rawExtensions.map((e, i) => oneOf(e, [...key, i], RELAYABLE_EXTENSIONS));
    const dup = extensions.find((e, i) => extensions.indexOf(e) !== i);
    if (dup) throw new ConfigError(key, `lists ${dup} twice`);
    // RFC 3030 §3: BINARYMIME is only usable with BDAT.
    if (extensions.includes('BINARYMIME') && !extensions.includes('CHUNKING')) throw new ConfigError(key, 'BINARYMIME needs CHUNKING');
  }
  if (n.maxAuthLineBytes < n.maxCommandLineBytes) {
    throw new ConfigError([...path, 'maxAuthLineBytes'], `must be at least submission.maxCommandLineBytes (${n.maxCommandLineBytes}), got ${n.maxAuthLineBytes}`);
  }
  return { ...n, extensions };
}

function numbers<T extends object>(raw: unknown, path: KeyPath, defaults: T, ranges: { readonly [K in keyof T]: readonly [number, number, string] }): T {
  const keys = Object.keys(ranges) as Array<keyof T & string>;
  const r = section(raw, path, keys);
  const out = { ...defaults };
  for (const k of keys) {
    if (r[k] === undefined) continue;
    const [min, max, unit] = ranges[k];
    (out as Record<string, number>)[k] = integer(r[k], [...path, k], min, max, unit);
  }
  return out;
}

const LISTENER_KEYS = ['protocol', 'host', 'port', 'tls', 'allowPlaintextAuth', 'proxyProtocol'] as const;

function listener(v: unknown, path: KeyPath): ListenerConfig {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ConfigError(path, `must be a mapping with protocol and port, got ${describe(v)}`);
  }
  const r = section(v, path, LISTENER_KEYS);
  if (r.protocol === undefined) throw new ConfigError([...path, 'protocol'], `is required (one of ${PROTOCOLS.join(', ')})`);
  if (r.port === undefined) throw new ConfigError([...path, 'port'], 'is required (0..65535; 0 = any free port)');
  return {
    protocol: oneOf(r.protocol, [...path, 'protocol'], PROTOCOLS),
    host: r.host === undefined ? '127.0.0.1' : host(r.host, [...path, 'host']),
    port: integer(r.port, [...path, 'port'], 0, 65535),
    tls: r.tls === undefined ? 'starttls' : oneOf(r.tls, [...path, 'tls'], LISTENER_TLS),
    allowPlaintextAuth: r.allowPlaintextAuth === undefined ? false : boolean(r.allowPlaintextAuth, [...path, 'allowPlaintextAuth']),
    proxyProtocol: r.proxyProtocol === undefined ? false : boolean(r.proxyProtocol, [...path, 'proxyProtocol']),
  };
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a single address. */
function cidr(v: unknown, path: KeyPath): string {
  const t = text(v, path);
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(t);
  const family = m ? isIP(m[1]!) : 0;
  const bits = m?.[2] === undefined ? (family === 4 ? 32 : 128) : Number(m[2]);
  if (!m || family === 0 || bits > (family === 4 ? 32 : 128)) {
    throw new ConfigError(path, `must be an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32, got ${describe(v)}`);
  }
  return `${m[1]}/${bits}`;
}

function cidrList(v: unknown, path: KeyPath): string[] {
  const nets = v ?? [];
  if (!Array.isArray(nets)) throw new ConfigError(path, `must be a list of CIDRs, got ${describe(nets)}`);
  return nets.map((n, i) => cidr(n, [...path, i]));
}

function penalties(v: unknown, path: KeyPath): PenaltiesConfig {
  const r = section(v, path, ['threshold', 'baseMs', 'maxMs', 'forgetAfterMs', 'maxEntries', 'trustedNetworks']);
  const d = DEFAULT_CONFIG.penalties;
  const num = (k: 'threshold' | 'baseMs' | 'maxMs' | 'forgetAfterMs' | 'maxEntries', min: number, max: number, unit = '') =>
    r[k] === undefined ? d[k] : integer(r[k], [...path, k], min, max, unit);
  const out: PenaltiesConfig = {
    threshold: num('threshold', 0, 1_000_000),
    baseMs: num('baseMs', 1, MAX_TIMER_MS, ' ms'),
    maxMs: num('maxMs', 1, MAX_TIMER_MS, ' ms'),
    forgetAfterMs: num('forgetAfterMs', 1, MAX_TIMER_MS, ' ms'),
    maxEntries: num('maxEntries', 1, 100_000_000),
    trustedNetworks: cidrList(r.trustedNetworks, [...path, 'trustedNetworks']),
  };
  if (out.maxMs < out.baseMs) throw new ConfigError([...path, 'maxMs'], `must be at least penalties.baseMs (${out.baseMs}), got ${out.maxMs}`);
  return out;
}

function proxyProtocol(v: unknown, path: KeyPath): ProxyProtocolConfig {
  const r = section(v, path, ['trustedNetworks', 'headerTimeoutMs']);
  return {
    trustedNetworks: cidrList(r.trustedNetworks, [...path, 'trustedNetworks']),
    headerTimeoutMs: r.headerTimeoutMs === undefined ? 3_000 : integer(r.headerTimeoutMs, [...path, 'headerTimeoutMs'], 1, MAX_TIMER_MS, ' ms'),
  };
}

/** Whether two listeners would fight over one socket address. */
function clash(a: ListenerConfig, b: ListenerConfig): boolean {
  if (a.port === 0 || b.port === 0 || a.port !== b.port) return false;
  if (a.host === b.host) return true;
  // '::' takes the port on IPv4 too (dual stack); '0.0.0.0' on every IPv4 address.
  if (a.host === '::' || b.host === '::') return true;
  const v4 = (h: string) => isIP(h) === 4;
  return (a.host === '0.0.0.0' && v4(b.host)) || (b.host === '0.0.0.0' && v4(a.host));
}

function listeners(v: unknown, path: KeyPath): ListenerConfig[] {
  if (v === undefined || v === null) return defaultListeners();
  if (!Array.isArray(v)) throw new ConfigError(path, `must be a list of listeners, got ${describe(v)}`);
  if (v.length === 0) throw new ConfigError(path, 'must have at least one listener');
  const out = v.map((l, i) => listener(l, [...path, i]));
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < i; j++) {
      if (clash(out[i]!, out[j]!)) {
        throw new ConfigError(
          [...path, i],
          `${out[i]!.host}:${out[i]!.port} is already taken by ${formatKey([...path, j])} (${out[j]!.host}:${out[j]!.port})`,
        );
      }
    }
  }
  return out;
}

const SQLITE_STORE_KEYS = ['kind', 'path'] as const;
const POSTGRES_STORE_KEYS = ['kind', 'url', 'host', 'port', 'database', 'user', 'passwordFile', 'ssl', 'poolSize', 'connectTimeoutMs', 'statementTimeoutMs'] as const;

/** postgres://user@host:port/database → its parts. Never echoes the value: it might hold a password. */
function postgresUrl(v: unknown, path: KeyPath): { host: string; port: number; database: string; user: string } {
  const s = text(v, path);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(path, 'must be a URL like postgres://mailfront@db.example.org:5432/mailfront');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new ConfigError(path, `must start with postgres:// or postgresql://, not ${u.protocol}//`);
  if (u.password !== '') throw new ConfigError(path, 'must not contain a password: put it in a file and name the file in store.passwordFile');
  if (u.search !== '' || u.hash !== '') throw new ConfigError(path, 'must not have query parameters: use store.ssl, store.poolSize and the other store keys');
  if (u.hostname === '') throw new ConfigError(path, 'has no host');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database.includes('/')) throw new ConfigError(path, 'must name one database after the host: postgres://user@host/database');
  const d = POSTGRES_STORE_DEFAULTS;
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port === '' ? d.port : Number(u.port),
    database: database === '' ? d.database : text(database, path),
    user: u.username === '' ? d.user : text(decodeURIComponent(u.username), path),
  };
}

/** store: a SQLite file (the default), or PostgreSQL shared by many nodes. */
function storeConfig(v: unknown, dataDir: string, base: string): StoreConfig {
  const rawKind = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw).kind : undefined;
  const kind = rawKind === undefined ? 'sqlite' : oneOf(rawKind, ['store', 'kind'], ['sqlite', 'postgres'] as const);
  if (kind === 'sqlite') {
    const s = section(v, ['store'], SQLITE_STORE_KEYS);
    const path =
      s.path === undefined
        ? join(dataDir, DEFAULT_DB_FILE)
        : s.path === ':memory:'
          ? ':memory:' // better-sqlite3's private in-memory database: for tests; lost on exit
          : filePath(s.path, ['store', 'path'], base);
    return { kind, path };
  }

  const s = section(v, ['store'], POSTGRES_STORE_KEYS);
  const d = POSTGRES_STORE_DEFAULTS;
  let target: { host: string; port: number; database: string; user: string };
  if (s.url !== undefined) {
    for (const k of ['host', 'port', 'database', 'user'] as const) {
      if (s[k] !== undefined) throw new ConfigError(['store', k], 'give either store.url or store.host/port/database/user, not both');
    }
    target = postgresUrl(s.url, ['store', 'url']);
  } else {
    const h = s.host === undefined ? d.host : text(s.host, ['store', 'host']);
    target = {
      // An absolute path is the directory of PostgreSQL's unix socket.
      host: isAbsolute(h) ? h : host(h, ['store', 'host']),
      port: s.port === undefined ? d.port : integer(s.port, ['store', 'port'], 1, 65535),
      database: s.database === undefined ? d.database : text(s.database, ['store', 'database']),
      user: s.user === undefined ? d.user : text(s.user, ['store', 'user']),
    };
  }

  let ssl: Extract<StoreConfig, { kind: 'postgres' }>['ssl'] = false;
  if (s.ssl === true) ssl = { caFile: null, insecure: false };
  else if (s.ssl !== undefined && s.ssl !== null && s.ssl !== false) {
    if (typeof s.ssl !== 'object' || Array.isArray(s.ssl)) {
      throw new ConfigError(['store', 'ssl'], `must be true, false or a mapping with caFile and insecure, got ${describe(s.ssl)}`);
    }
    const t = section(s.ssl, ['store', 'ssl'], ['caFile', 'insecure']);
    ssl = {
      caFile: t.caFile === undefined ? null : filePath(t.caFile, ['store', 'ssl', 'caFile'], base),
      insecure: t.insecure === undefined ? false : boolean(t.insecure, ['store', 'ssl', 'insecure']),
    };
  }

  return {
    kind,
    ...target,
    passwordFile: s.passwordFile === undefined || s.passwordFile === null ? null : filePath(s.passwordFile, ['store', 'passwordFile'], base),
    ssl,
    // A node needs few connections (a login holds one for a millisecond or two); many nodes multiply them.
    poolSize: s.poolSize === undefined ? d.poolSize : integer(s.poolSize, ['store', 'poolSize'], 1, 1000),
    connectTimeoutMs: s.connectTimeoutMs === undefined ? d.connectTimeoutMs : integer(s.connectTimeoutMs, ['store', 'connectTimeoutMs'], 1, MAX_TIMER_MS, ' ms'),
    // 0 would mean "no timeout" to PostgreSQL: a stuck lock could hang every login.
    statementTimeoutMs:
      s.statementTimeoutMs === undefined ? d.statementTimeoutMs : integer(s.statementTimeoutMs, ['store', 'statementTimeoutMs'], 1, MAX_TIMER_MS, ' ms'),
  };
}

/** Matches inetOrgPerson users by uid or mail; used when neither filter nor dnTemplate is set. */
export const DEFAULT_LDAP_FILTER = '(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))';

/** The ldap section's defaults; urls and (for a search) baseDn have none. */
export const LDAP_DEFAULTS = deepFreeze({
  startTls: true,
  scope: 'sub' as LdapScope,
  userAttribute: 'mail',
  placementAttribute: 'mailHost',
  connectTimeoutMs: 3_000,
  timeoutMs: 5_000,
  poolSize: 4,
  cache: { positiveTtlMs: 300_000, negativeTtlMs: 60_000 },
});

const LDAP_KEYS = [
  'urls',
  'startTls',
  'caFile',
  'bindDn',
  'bindPasswordFile',
  'baseDn',
  'scope',
  'filter',
  'dnTemplate',
  'userAttribute',
  'placementAttribute',
  'connectTimeoutMs',
  'timeoutMs',
  'poolSize',
  'cache',
] as const;

// RFC 4512 §1.4: descr = keystring (a letter, then letters, digits, hyphens).
const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;

function attributeName(v: unknown, path: KeyPath): string {
  const s = text(v, path);
  if (!ATTRIBUTE_NAME.test(s)) throw new ConfigError(path, `must be an LDAP attribute name (a letter, then letters, digits, -), got ${describe(s)}`);
  return s;
}

function ldapSection(v: unknown, base: string): LdapConfig | null {
  if (v === undefined || v === null) return null;
  const r = section(v, ['ldap'], LDAP_KEYS);
  const d = LDAP_DEFAULTS;
  const key = (k: string): KeyPath => ['ldap', k];

  if (r.urls === undefined) throw new ConfigError(key('urls'), 'is required: a list of ldap:// or ldaps:// URLs, tried in order');
  if (!Array.isArray(r.urls) || r.urls.length === 0) throw new ConfigError(key('urls'), `must be a non-empty list of URLs, got ${describe(r.urls)}`);
  const urls = r.urls.map((u, i) => {
    const path: KeyPath = ['ldap', 'urls', i];
    const s = text(u, path);
    try {
      parseLdapUrl(s);
    } catch (err) {
      throw new ConfigError(path, (err as Error).message);
    }
    return s;
  });

  const optionalText = (k: string) => (r[k] === undefined || r[k] === null ? null : text(r[k], key(k)));
  const bindDn = optionalText('bindDn');
  const bindPasswordFile = r.bindPasswordFile === undefined || r.bindPasswordFile === null ? null : filePath(r.bindPasswordFile, key('bindPasswordFile'), base);
  if (bindDn !== null && bindPasswordFile === null) throw new ConfigError(key('bindPasswordFile'), 'is required with bindDn (a file whose first line is the password)');
  if (bindDn === null && bindPasswordFile !== null) throw new ConfigError(key('bindDn'), 'is required with bindPasswordFile');

  const dnTemplate = optionalText('dnTemplate');
  let filter = optionalText('filter');
  if (dnTemplate !== null && filter !== null) {
    throw new ConfigError(key('filter'), 'and dnTemplate exclude each other: search with a filter, or bind directly to a DN made from the template');
  }
  if (dnTemplate === null) filter ??= DEFAULT_LDAP_FILTER;
  const template = filter !== null ? { k: 'filter', kind: 'filter' as const, t: filter } : { k: 'dnTemplate', kind: 'dn' as const, t: dnTemplate! };
  const problem = checkTemplate(template.kind, template.t);
  if (problem) throw new ConfigError(key(template.k), problem);

  const baseDn = optionalText('baseDn');
  if (filter !== null && baseDn === null) throw new ConfigError(key('baseDn'), 'is required to search for users (or set dnTemplate to bind directly)');

  const c = section(r.cache, ['ldap', 'cache'], ['positiveTtlMs', 'negativeTtlMs']);
  const ttl = (k: 'positiveTtlMs' | 'negativeTtlMs') => (c[k] === undefined ? d.cache[k] : integer(c[k], ['ldap', 'cache', k], 0, MAX_TIMER_MS, ' ms'));

  return {
    urls,
    startTls: r.startTls === undefined ? d.startTls : boolean(r.startTls, key('startTls')),
    caFile: r.caFile === undefined || r.caFile === null ? null : filePath(r.caFile, key('caFile'), base),
    bindDn,
    bindPasswordFile,
    baseDn,
    scope: r.scope === undefined ? d.scope : oneOf(r.scope, key('scope'), ['base', 'one', 'sub'] as const),
    filter,
    dnTemplate,
    userAttribute: r.userAttribute === undefined ? d.userAttribute : attributeName(r.userAttribute, key('userAttribute')),
    placementAttribute:
      r.placementAttribute === undefined
        ? d.placementAttribute
        : r.placementAttribute === null
          ? null
          : attributeName(r.placementAttribute, key('placementAttribute')),
    connectTimeoutMs: r.connectTimeoutMs === undefined ? d.connectTimeoutMs : integer(r.connectTimeoutMs, key('connectTimeoutMs'), 1, MAX_TIMER_MS, ' ms'),
    timeoutMs: r.timeoutMs === undefined ? d.timeoutMs : integer(r.timeoutMs, key('timeoutMs'), 1, MAX_TIMER_MS, ' ms'),
    // Each login holds a connection for one round trip or two: a few serve many logins a second.
    poolSize: r.poolSize === undefined ? d.poolSize : integer(r.poolSize, key('poolSize'), 1, 64),
    cache: { positiveTtlMs: ttl('positiveTtlMs'), negativeTtlMs: ttl('negativeTtlMs') },
  };
}

/**
 * Check a parsed configuration and fill in defaults. Partial sections merge
 * over the defaults; a `listeners` list replaces the default list. Relative
 * paths are resolved against `baseDir`. Unknown keys are errors: a typo must
 * not fall back to a default silently. Throws ConfigError naming the key.
 * The result is deep-frozen.
 */
export function validateConfig(raw: unknown, opts: { baseDir: string }): MailfrontConfig {
  if (!isAbsolute(opts.baseDir)) throw new ConfigError('', `baseDir must be absolute, got ${describe(opts.baseDir)}`);
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError('', `the configuration must be a mapping of keys, got ${describe(raw)}`);
  }
  const r = section(raw, [], TOP_KEYS);
  const base = opts.baseDir;
  const d = DEFAULT_CONFIG;

  const dataDir = filePath(r.dataDir ?? d.dataDir, ['dataDir'], base);

  const store = storeConfig(r.store, dataDir, base);

  let tls: MailfrontConfig['tls'] = null;
  if (r.tls !== undefined && r.tls !== null) {
    const t = section(r.tls, ['tls'], ['cert', 'key', 'minVersion', 'sni', 'strictSni']);
    if (t.cert === undefined) throw new ConfigError(['tls', 'cert'], 'is required when tls is set (or set tls: null for a self-signed certificate)');
    if (t.key === undefined) throw new ConfigError(['tls', 'key'], 'is required when tls is set (or set tls: null for a self-signed certificate)');
    const sniRaw = t.sni ?? [];
    if (!Array.isArray(sniRaw)) throw new ConfigError(['tls', 'sni'], `must be a list of { names, cert, key }, got ${describe(sniRaw)}`);
    const seen = new Map<string, number>();
    const sni = sniRaw.map((e, i) => {
      const at = ['tls', 'sni', i];
      const x = section(e, at, ['names', 'cert', 'key']);
      for (const k of ['names', 'cert', 'key'] as const) if (x[k] === undefined) throw new ConfigError([...at, k], 'is required');
      if (!Array.isArray(x.names) || x.names.length === 0) throw new ConfigError([...at, 'names'], `must be a non-empty list of server names, got ${describe(x.names)}`);
      const names = x.names.map((n, j) => {
        const name = text(n, [...at, 'names', j]).toLowerCase();
        if (!/^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(name)) {
          throw new ConfigError([...at, 'names', j], `must be a host name or *.domain, got ${describe(n)}`);
        }
        const before = seen.get(name);
        if (before !== undefined) throw new ConfigError([...at, 'names', j], `${name} is already in tls.sni[${before}]`);
        seen.set(name, i);
        return name;
      });
      return { names, cert: filePath(x.cert, [...at, 'cert'], base), key: filePath(x.key, [...at, 'key'], base) };
    });
    tls = {
      cert: filePath(t.cert, ['tls', 'cert'], base),
      key: filePath(t.key, ['tls', 'key'], base),
      minVersion: t.minVersion === undefined ? 'TLSv1.2' : oneOf(t.minVersion, ['tls', 'minVersion'], ['TLSv1.2', 'TLSv1.3'] as const),
      sni,
      strictSni: t.strictSni === undefined ? false : boolean(t.strictSni, ['tls', 'strictSni']),
    };
  }

  const hostname = r.hostname === undefined ? d.hostname : host(r.hostname, ['hostname']);

  const a = section(r.auth, ['auth'], ['source', 'failureDelayMs', 'cacheTtlMs', 'cacheMaxEntries']);
  const auth: MailfrontConfig['auth'] = {
    source: a.source === undefined ? 'sqlite' : oneOf(a.source, ['auth', 'source'], ['sqlite', 'ldap', 'backend'] as const),
    failureDelayMs: a.failureDelayMs === undefined ? d.auth.failureDelayMs : integer(a.failureDelayMs, ['auth', 'failureDelayMs'], 0, MAX_TIMER_MS, ' ms'),
    cacheTtlMs: a.cacheTtlMs === undefined ? d.auth.cacheTtlMs : integer(a.cacheTtlMs, ['auth', 'cacheTtlMs'], 0, MAX_TIMER_MS, ' ms'),
    cacheMaxEntries:
      a.cacheMaxEntries === undefined ? d.auth.cacheMaxEntries : integer(a.cacheMaxEntries, ['auth', 'cacheMaxEntries'], 0, Number.MAX_SAFE_INTEGER),
  };

  const ldap = ldapSection(r.ldap, base);
  if (auth.source === 'ldap' && ldap === null) throw new ConfigError(['ldap'], 'is required when auth.source is ldap');

  const limits = numbers(r.limits, ['limits'], { ...d.limits }, LIMIT_RANGES);
  const imap = numbers(r.imap, ['imap'], { ...d.imap }, IMAP_RANGES);
  const submission = submissionSection(r.submission);
  if (imap.maxCommandBytes < imap.maxLineBytes) {
    throw new ConfigError(['imap', 'maxCommandBytes'], `must be at least imap.maxLineBytes (${imap.maxLineBytes}), got ${imap.maxCommandBytes}`);
  }
  const pop3 = numbers(r.pop3, ['pop3'], { ...d.pop3 }, POP3_RANGES);

  const l = section(r.log, ['log'], ['level', 'format']);
  const log: MailfrontConfig['log'] = {
    level: l.level === undefined ? d.log.level : oneOf(l.level, ['log', 'level'], LOG_LEVELS),
    format: l.format === undefined ? d.log.format : oneOf(l.format, ['log', 'format'], LOG_FORMATS),
  };

  const listenerList = listeners(r.listeners, ['listeners']);
  const pp = proxyProtocol(r.proxyProtocol, ['proxyProtocol']);
  const ppAt = listenerList.findIndex((x) => x.proxyProtocol);
  if (ppAt >= 0 && pp.trustedNetworks.length === 0) {
    throw new ConfigError(['listeners', ppAt, 'proxyProtocol'], 'needs proxyProtocol.trustedNetworks: the balancers allowed to send a PROXY header');
  }

  return deepFreeze({
    dataDir,
    store,
    tls,
    hostname,
    listeners: listenerList,
    auth,
    ldap,
    limits,
    imap,
    pop3,
    submission,
    log,
    proxyProtocol: pp,
    penalties: penalties(r.penalties, ['penalties']),
    health: numbers(r.health, ['health'], { ...d.health }, HEALTH_RANGES),
    admin: adminSection(r.admin, dataDir, base),
    metrics: metricsSection(r.metrics),
    autoconfig: autoconfigSection(r.autoconfig),
  });
}

// ---------------------------------------------------------------------------
// Operations: admin API, metrics, client autoconfiguration

// sun_path is 108 bytes on Linux, NUL included: a longer path cannot be bound.
const MAX_UNIX_SOCKET_BYTES = 107;

function adminSection(v: unknown, dataDir: string, base: string): AdminConfig {
  const r = section(v, ['admin'], ['socket', 'http', 'moveLoginWaitMs']);
  const d = DEFAULT_CONFIG.admin;
  let socket: string | null = join(dataDir, DEFAULT_ADMIN_SOCKET);
  if (r.socket === null) socket = null;
  else if (r.socket !== undefined) socket = filePath(r.socket, ['admin', 'socket'], base);
  if (socket !== null && Buffer.byteLength(socket) > MAX_UNIX_SOCKET_BYTES) {
    throw new ConfigError(['admin', 'socket'], `${socket} is longer than ${MAX_UNIX_SOCKET_BYTES} bytes, which a unix socket cannot be: set a shorter admin.socket (or null)`);
  }
  let http: AdminHttpConfig | null = null;
  if (r.http !== undefined && r.http !== null) {
    const h = section(r.http, ['admin', 'http'], ['host', 'port', 'tokenFile', 'allowRemote']);
    const key = (k: string): KeyPath => ['admin', 'http', k];
    if (h.port === undefined) throw new ConfigError(key('port'), 'is required with admin.http (0..65535)');
    if (h.tokenFile === undefined) throw new ConfigError(key('tokenFile'), 'is required with admin.http: a file whose first line is the bearer token');
    http = {
      host: h.host === undefined ? '127.0.0.1' : host(h.host, key('host')),
      port: integer(h.port, key('port'), 0, 65535),
      tokenFile: filePath(h.tokenFile, key('tokenFile'), base),
      allowRemote: h.allowRemote === undefined ? false : boolean(h.allowRemote, key('allowRemote')),
    };
    // Anyone who can reach the port can try the token: loopback only unless the admin says otherwise.
    if (!isLoopback(http.host) && !http.allowRemote) {
      throw new ConfigError(key('host'), `${http.host} is not a loopback address: the admin API can end sessions and move users; set admin.http.allowRemote: true to serve it there anyway`);
    }
  }
  return {
    socket,
    http,
    moveLoginWaitMs: r.moveLoginWaitMs === undefined ? d.moveLoginWaitMs : integer(r.moveLoginWaitMs, ['admin', 'moveLoginWaitMs'], 0, MAX_TIMER_MS, ' ms'),
  };
}

function optionalPort(v: unknown, path: KeyPath): number | null {
  return v === undefined || v === null ? null : integer(v, path, 0, 65535);
}

function metricsSection(v: unknown): MetricsConfig {
  const r = section(v, ['metrics'], ['host', 'port']);
  return {
    host: r.host === undefined ? DEFAULT_CONFIG.metrics.host : host(r.host, ['metrics', 'host']),
    port: optionalPort(r.port, ['metrics', 'port']),
  };
}

function autoconfigSection(v: unknown): AutoconfigConfig {
  const r = section(v, ['autoconfig'], ['host', 'port', 'tls', 'hostname', 'displayName']);
  const key = (k: string): KeyPath => ['autoconfig', k];
  let displayName: string | null = null;
  if (r.displayName !== undefined && r.displayName !== null) {
    displayName = text(r.displayName, key('displayName'));
    // Clients show it in one line of a dialog.
    if (displayName.length > 100) throw new ConfigError(key('displayName'), `must be at most 100 characters, got ${displayName.length}`);
  }
  return {
    host: r.host === undefined ? DEFAULT_CONFIG.autoconfig.host : host(r.host, key('host')),
    port: optionalPort(r.port, key('port')),
    tls: r.tls === undefined ? false : boolean(r.tls, key('tls')),
    hostname: r.hostname === undefined || r.hostname === null ? null : host(r.hostname, key('hostname')),
    displayName,
  };
}

function isLoopback(h: string): boolean {
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/** Valid settings that are probably mistakes. */
export function configWarnings(config: MailfrontConfig): string[] {
  const out: string[] = [];
  config.listeners.forEach((l, i) => {
    const key = `listeners[${i}]`;
    if (l.tls === 'none' && !l.allowPlaintextAuth) {
      out.push(`${key}: tls is none and allowPlaintextAuth is false: no login can ever succeed on ${l.host}:${l.port}`);
    } else if (l.allowPlaintextAuth && !isLoopback(l.host)) {
      out.push(`${key}: allowPlaintextAuth on ${l.host}:${l.port}: passwords may cross the network in clear`);
    }
  });
  if (config.store.kind === 'postgres' && config.store.ssl === false && !isLoopback(config.store.host) && !isAbsolute(config.store.host)) {
    out.push(`store: PostgreSQL on ${config.store.host} without ssl: password hashes and the store's password cross the network in clear`);
  } else if (config.store.kind === 'postgres' && config.store.ssl !== false && config.store.ssl.insecure) {
    out.push("store.ssl.insecure: the PostgreSQL server's certificate is not verified");
  }
  if (config.admin.http && !isLoopback(config.admin.http.host)) {
    out.push(`admin.http: the admin API is served on ${config.admin.http.host}, not loopback: anyone who reaches it may try the token`);
  }
  if (config.metrics.port !== null && !isLoopback(config.metrics.host)) {
    out.push(`metrics: served on ${config.metrics.host}, not loopback: anyone who reaches it can read the counters`);
  }
  if (config.autoconfig.port !== null && !config.autoconfig.tls) {
    out.push('autoconfig.tls is false: clients fetch their settings over plain HTTP (fine behind a TLS-terminating web server)');
  }
  if (config.auth.failureDelayMs === 0) out.push('auth.failureDelayMs is 0: password guessing is not slowed down');
  if (config.auth.source === 'backend') {
    out.push('auth.source is backend: mailfront checks no password itself; logins to backends with login mode master are refused');
  }
  if (config.ldap && !config.ldap.startTls) {
    config.ldap.urls.forEach((u, i) => {
      const host = u.replace(/^ldap:\/\/\[?([^\]/:]*).*$/i, '$1');
      if (/^ldap:/i.test(u) && !isLoopback(host)) out.push(`ldap.urls[${i}]: ${u} without startTls: passwords cross the network in clear`);
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Loading

function parseYaml(textIn: string, file: string): { value: unknown; doc: Document; lines: LineCounter } {
  const lines = new LineCounter();
  // uniqueKeys: a key given twice is an error, not "the last one wins".
  const doc = parseDocument(textIn, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    // The first line of yaml's message is the useful part; the rest is a source excerpt.
    const msg = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError('', `YAML syntax error: ${msg}`, { file, line });
  }
  let value: unknown;
  try {
    // maxAliasCount bounds "billion laughs" expansion of a hostile file.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError('', `YAML error: ${(err as Error).message}`, { file });
  }
  return { value, doc, lines };
}

/** The line of the deepest node of `path` that exists in the document. */
function lineOf(doc: Document, lines: LineCounter, path: ReadonlyArray<string | number>): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const prefix = path.slice(0, n);
    const parent = n > 1 ? doc.getIn(prefix.slice(0, -1), true) : doc.contents;
    // Prefer the key's own position in a mapping (the value may be on another line, or absent).
    const last = prefix[prefix.length - 1];
    if (parent && isNode(parent) && 'items' in parent) {
      for (const item of (parent as { items: unknown[] }).items) {
        const pair = item as { key?: unknown };
        if (pair && typeof pair === 'object' && 'key' in pair && isNode(pair.key) && (pair.key as { toJSON(): unknown }).toJSON() === last) {
          const range = (pair.key as { range?: [number, number, number] }).range;
          if (range) return lines.linePos(range[0]).line;
        }
      }
    }
    const node = doc.getIn(prefix, true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/**
 * Find, read and validate the configuration:
 * `file` (--config) → $MAILFRONT_CONFIG → ./mailfront.yaml in `cwd` → the
 * embedded defaults. Relative paths inside a file are resolved against the
 * file's directory; the defaults' against `cwd`. Throws ConfigError.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): LoadedConfig {
  const cwd = resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;
  let file: string | undefined;
  let explicit = true;
  if (opts.file !== undefined && opts.file !== '') file = resolve(cwd, opts.file);
  else if (env[CONFIG_ENV_VAR]) file = resolve(cwd, env[CONFIG_ENV_VAR]!);
  else {
    explicit = false;
    const candidate = join(cwd, DEFAULT_CONFIG_FILE);
    if (existsSync(candidate)) file = candidate;
  }

  if (file === undefined) {
    const config = validateConfig({}, { baseDir: cwd });
    return { config, source: EMBEDDED_DEFAULTS_SOURCE, warnings: configWarnings(config) };
  }

  let body: string;
  try {
    body = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    const from = opts.file ? '--config' : explicit ? `$${CONFIG_ENV_VAR}` : 'working directory';
    throw new ConfigError('', `cannot read config file (from ${from}): ${why}`, { file });
  }

  const { value, doc, lines } = parseYaml(body, file);
  let config: MailfrontConfig;
  try {
    config = validateConfig(value, { baseDir: dirname(file) });
  } catch (err) {
    if (err instanceof ConfigError && err.file === undefined) {
      throw new ConfigError(err.path.length ? err.path : err.key, err.detail, { file, line: lineOf(doc, lines, err.path) });
    }
    throw err;
  }
  return { config, source: file, warnings: configWarnings(config) };
}
