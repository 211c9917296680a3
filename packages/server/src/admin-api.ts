import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { canonicalUserName } from '@mailfront/auth';
import type { Logger, SessionInfo, SessionRegistry } from '@mailfront/proxy-core';
import type { Store } from '@mailfront/store';
import type { AdminConfig } from './config';
import { ConfigError } from './config';
import { selectSessions, type KickSelector, type Kicker } from './kick';
import { MoveError, type UserMoves } from './user-moves';

/**
 * The admin API: a small JSON API over HTTP for the CLI (sessions, kick,
 * user move, backend drain --wait, backend status), on a unix socket whose
 * mode is the access control, and optionally on a loopback TCP port where
 * every request carries a bearer token. Routes (docs/operations.md):
 *
 *   GET  /health
 *   GET  /sessions?user=&backend=
 *   POST /kick              {user|backend|session, spreadSeconds?}
 *   GET  /backends/status
 *   POST /users/:user/move  {backend}
 */

export interface AdminTarget {
  registry: SessionRegistry;
  kicker: Kicker;
  moves: UserMoves;
  store: Store;
  log: Logger;
  /** Whether users must exist in the store (auth.source sqlite) to be moved. */
  usersInStore: () => boolean;
  /** A note for every move, e.g. that the directory's placement attribute wins over the store. */
  moveNotes: () => string[];
  listeners: ReadonlyArray<{ protocol: string; host: string; port: number; tls: string }>;
  /** The health engineer's view of the backends, when the server has one. */
  backendStatus?: () => unknown;
}

export interface AdminApi {
  /** The socket path served, or null. */
  socket: string | null;
  /** The TCP address served, or null. */
  http: { host: string; port: number } | null;
  close(): Promise<void>;
}

/** A JSON body larger than this is refused: every request here is a few dozen bytes. */
const MAX_BODY_BYTES = 64 * 1024;
/** `--spread` beyond a day is a typo, and setTimeout would misbehave past 24.8 days anyway. */
const MAX_SPREAD_SECONDS = 86_400;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A session as the API shows it. */
export interface SessionView {
  id: string;
  protocol: string;
  phase: string;
  user: string | null;
  client: string;
  backend: string | null;
  tls: boolean;
  since: string;
  bytesFromClient: number;
  bytesFromBackend: number;
}

function view(s: SessionInfo): SessionView {
  return {
    id: s.id,
    protocol: s.protocol,
    phase: s.phase,
    user: s.user,
    client: s.client,
    backend: s.backend,
    tls: s.tls,
    since: s.since.toISOString(),
    bytesFromClient: s.bytesFromClient,
    bytesFromBackend: s.bytesFromBackend,
  };
}

function userName(raw: string): string {
  try {
    return canonicalUserName(raw);
  } catch (e) {
    throw new HttpError(400, e instanceof Error ? e.message : String(e));
  }
}

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        return reject(new HttpError(400, 'the body is not JSON'));
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return reject(new HttpError(400, 'the body must be a JSON object'));
      resolve(v as Record<string, unknown>);
    });
  });
}

function onlyKeys(body: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(body)) if (!known.includes(k)) throw new HttpError(400, `unknown field ${k}; known: ${known.join(', ')}`);
}

function stringField(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new HttpError(400, `${key} must be a non-empty string`);
  return v;
}

function kickSelector(body: Record<string, unknown>): KickSelector {
  const user = stringField(body, 'user');
  const backend = stringField(body, 'backend');
  const session = stringField(body, 'session');
  const given = [user, backend, session].filter((x) => x !== undefined).length;
  if (given !== 1) throw new HttpError(400, 'give exactly one of user, backend, session');
  if (user !== undefined) return { user: userName(user) };
  if (backend !== undefined) return { backend };
  return { session: session! };
}

async function route(t: AdminTarget, req: http.IncomingMessage): Promise<{ status: number; body: unknown }> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const method = req.method ?? 'GET';
  const allow = (m: string) => {
    if (method !== m) throw new HttpError(405, `${url.pathname} takes ${m}`);
  };
  const p = url.pathname;

  if (p === '/health') {
    allow('GET');
    return {
      status: 200,
      body: { status: 'ok', pid: process.pid, uptimeSeconds: Math.round(process.uptime()), sessions: t.registry.size, listeners: t.listeners },
    };
  }

  if (p === '/sessions') {
    allow('GET');
    const user = url.searchParams.get('user');
    const backend = url.searchParams.get('backend');
    const canonical = user ? userName(user) : null;
    const sessions = t.registry
      .list()
      .filter((s) => (canonical === null || s.user === canonical) && (!backend || s.backend === backend))
      .sort((a, b) => a.since.getTime() - b.since.getTime())
      .map(view);
    return { status: 200, body: { sessions } };
  }

  if (p === '/kick') {
    allow('POST');
    const body = await readJson(req);
    onlyKeys(body, ['user', 'backend', 'session', 'spreadSeconds']);
    const sel = kickSelector(body);
    const spread = body.spreadSeconds ?? 0;
    if (typeof spread !== 'number' || !Number.isInteger(spread) || spread < 0 || spread > MAX_SPREAD_SECONDS) {
      throw new HttpError(400, `spreadSeconds must be a whole number 0..${MAX_SPREAD_SECONDS}`);
    }
    const sessions = selectSessions(t.registry, sel);
    if ('session' in sel && sessions.length === 0) throw new HttpError(404, `no session ${sel.session}`);
    const kicked = t.kicker.kick(sessions, spread * 1000);
    t.log.info({ ...sel, kicked, spreadSeconds: spread }, 'admin: kick');
    return { status: 200, body: { kicked, spreadSeconds: spread, sessions: sessions.map(view) } };
  }

  if (p === '/backends/status') {
    allow('GET');
    if (!t.backendStatus) throw new HttpError(501, 'this server keeps no backend health (no backendStatus)');
    return { status: 200, body: await t.backendStatus() };
  }

  const move = /^\/users\/([^/]+)\/move$/.exec(p);
  if (move) {
    allow('POST');
    const body = await readJson(req);
    onlyKeys(body, ['backend']);
    const backend = stringField(body, 'backend');
    if (backend === undefined) throw new HttpError(400, 'backend is required');
    let raw: string;
    try {
      raw = decodeURIComponent(move[1]!);
    } catch {
      throw new HttpError(400, 'the user name in the path is not valid percent-encoding');
    }
    const user = userName(raw);
    if (t.usersInStore() && !(await t.store.getUser(user))) throw new HttpError(404, `user ${user} does not exist`);
    try {
      const r = await t.moves.move(user, backend);
      t.log.info({ user, from: r.from, to: r.to, kicked: r.kicked, held_ms: r.heldMs, unchanged: r.unchanged }, 'admin: user moved');
      return { status: 200, body: { ...r, notes: t.moveNotes() } };
    } catch (e) {
      if (e instanceof MoveError) {
        t.log.warn({ user, to: backend, err: e.message }, 'admin: user move refused');
        throw new HttpError(e.code === 'not-found' ? 404 : e.code === 'busy' ? 409 : 503, e.message);
      }
      throw e;
    }
  }

  throw new HttpError(404, `no route ${method} ${p}`);
}

function handler(t: AdminTarget, token: Buffer | null): http.RequestListener {
  return (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(text);
    };
    if (token !== null && !authorized(req, token)) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(401, { error: 'a valid bearer token is required' });
    }
    route(t, req).then(
      (r) => send(r.status, r.body),
      (e: unknown) => {
        if (e instanceof HttpError) return send(e.status, { error: e.message });
        t.log.error({ err: e instanceof Error ? e.stack : String(e), path: req.url }, 'admin API request failed');
        send(500, { error: e instanceof Error ? e.message : String(e) });
      },
    );
  };
}

/** Compared as SHA-256 digests, in constant time, so the token's length and prefix leak nothing. */
function authorized(req: http.IncomingMessage, token: Buffer): boolean {
  const m = /^Bearer ([^\s]+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const digest = (b: Buffer | string) => createHash('sha256').update(b).digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}

function readToken(file: string): Buffer {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('admin.http.tokenFile', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const token = (text.split(/\r?\n/, 1)[0] ?? '').trim();
  if (token === '') throw new ConfigError('admin.http.tokenFile', `${file} is empty: its first line must be the token`);
  return Buffer.from(token, 'utf8');
}

/**
 * Replace a socket file that no server answers on (left by a crash); refuse
 * one that a running server answers on, and anything that is not a socket.
 */
async function clearStaleSocket(file: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new ConfigError('admin.socket', `${file} exists and is not a socket; remove it or choose another admin.socket`);
  const answered = await new Promise<boolean>((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (answered) throw new ConfigError('admin.socket', `${file}: another mailfront server is running with this admin socket`);
  fs.rmSync(file, { force: true });
}

function listen(server: http.Server, arg: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(arg, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // A CLI polling with keep-alive must not hold shutdown up.
    server.closeAllConnections();
  });
}

export async function startAdminApi(config: AdminConfig, target: AdminTarget): Promise<AdminApi> {
  const servers: http.Server[] = [];
  let socket: string | null = null;
  let socketInode = -1;
  let httpAddress: { host: string; port: number } | null = null;
  try {
    if (config.socket !== null) {
      const file = config.socket;
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      await clearStaleSocket(file);
      // Bound under a temporary name, made 0600, then renamed into place:
      // nobody can connect through the final name before the mode is set.
      const tmp = `${file}.${process.pid}.tmp`;
      fs.rmSync(tmp, { force: true });
      const server = http.createServer(handler(target, null));
      await listen(server, { path: tmp });
      servers.push(server);
      fs.chmodSync(tmp, 0o600);
      fs.renameSync(tmp, file);
      socket = file;
      socketInode = fs.lstatSync(file).ino;
    }
    if (config.http !== null) {
      const token = readToken(config.http.tokenFile);
      const server = http.createServer(handler(target, token));
      await listen(server, { host: config.http.host, port: config.http.port });
      servers.push(server);
      const a = server.address() as net.AddressInfo;
      httpAddress = { host: a.address, port: a.port };
    }
  } catch (e) {
    await Promise.all(servers.map(closeServer));
    throw e;
  }
  if (socket) target.log.info({ socket }, 'admin API listening');
  if (httpAddress) target.log.info({ host: httpAddress.host, port: httpAddress.port }, 'admin API listening');
  return {
    socket,
    http: httpAddress,
    async close() {
      await Promise.all(servers.map(closeServer));
      // Only our own socket: another server may have taken the name meanwhile.
      if (socket) {
        try {
          if (fs.lstatSync(socket).ino === socketInode) fs.rmSync(socket, { force: true });
        } catch {
          // gone already
        }
      }
    },
  };
}
