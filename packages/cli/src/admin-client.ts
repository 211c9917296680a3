import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { MoveResult, SessionView } from '@mailfront/server';
import type { CliContext } from './context';
import { CommandFailed, UsageError } from './io';

/**
 * The CLI's side of the running server's admin API (server/src/admin-api.ts):
 * the unix socket named by admin.socket (or --admin-socket), else admin.http
 * with its bearer token.
 */

export type AdminEndpoint = { kind: 'socket'; path: string } | { kind: 'http'; host: string; port: number; token: string };

/** A move, a drain wait: the server may take a while, but not for ever. */
const REQUEST_TIMEOUT_MS = 60_000;

/** No server answers where the config says: the message says where we looked. */
export class NoServerError extends CommandFailed {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(message);
    this.name = 'NoServerError';
  }
}

/** The server answered with an error status. */
export class AdminApiError extends CommandFailed {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AdminApiError';
  }
}

/** `--admin-socket PATH` on a command that talks to the running server. */
export function withAdminOption(cmd: Command): Command {
  return cmd.option('--admin-socket <path>', 'the running server\'s admin socket (default: admin.socket from the config, <dataDir>/admin.sock)');
}

/** Where the running server's admin API is, or null when the config has none and no --admin-socket was given. */
export function adminEndpoint(ctx: CliContext, adminSocket: string | undefined): AdminEndpoint | null {
  if (adminSocket !== undefined) return { kind: 'socket', path: resolve(ctx.io.cwd, adminSocket) };
  const admin = ctx.config.admin;
  if (admin.socket !== null) return { kind: 'socket', path: admin.socket };
  if (admin.http !== null) {
    let token: string;
    try {
      token = (readFileSync(admin.http.tokenFile, 'utf8').split(/\r?\n/, 1)[0] ?? '').trim();
    } catch (e) {
      throw new UsageError(`admin.http.tokenFile: cannot read ${admin.http.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (token === '') throw new UsageError(`admin.http.tokenFile: ${admin.http.tokenFile} is empty`);
    const host = admin.http.host === '0.0.0.0' ? '127.0.0.1' : admin.http.host === '::' ? '::1' : admin.http.host;
    return { kind: 'http', host, port: admin.http.port, token };
  }
  return null;
}

function describe(ep: AdminEndpoint): string {
  return ep.kind === 'socket' ? ep.path : `http://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`;
}

export class AdminClient {
  constructor(readonly endpoint: AdminEndpoint) {}

  /** The admin client for this command, or a CommandFailed saying that the config has no admin API. */
  static for(ctx: CliContext, adminSocket: string | undefined): AdminClient {
    const ep = adminEndpoint(ctx, adminSocket);
    if (ep === null) throw new CommandFailed('the configuration has no admin API (admin.socket and admin.http are both null): give --admin-socket');
    return new AdminClient(ep);
  }

  request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const ep = this.endpoint;
    const where = describe(ep);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (ep.kind === 'http') headers.authorization = `Bearer ${ep.token}`;
    const target = ep.kind === 'socket' ? { socketPath: ep.path } : { host: ep.host, port: ep.port };
    return new Promise<T>((resolvePromise, reject) => {
      const req = http.request({ ...target, method, path, headers, timeout: REQUEST_TIMEOUT_MS, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new CommandFailed(`${where} answered ${res.statusCode} with something that is not JSON: is that a mailfront admin API?`));
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolvePromise(parsed as T);
          const message = (parsed as { error?: unknown })?.error;
          reject(new AdminApiError(status, typeof message === 'string' ? message : `the server answered ${status}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${where} within ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(connectError(e, ep, where)));
      req.end(payload);
    });
  }

  health(): Promise<{ status: string; pid: number; sessions: number }> {
    return this.request('GET', '/health');
  }

  async sessions(filter: { user?: string; backend?: string } = {}): Promise<SessionView[]> {
    const q = new URLSearchParams();
    if (filter.user !== undefined) q.set('user', filter.user);
    if (filter.backend !== undefined) q.set('backend', filter.backend);
    const qs = q.toString();
    return (await this.request<{ sessions: SessionView[] }>('GET', `/sessions${qs ? `?${qs}` : ''}`)).sessions;
  }

  kick(selector: { user: string } | { backend: string } | { session: string }, spreadSeconds = 0): Promise<{ kicked: number; spreadSeconds: number; sessions: SessionView[] }> {
    return this.request('POST', '/kick', { ...selector, spreadSeconds });
  }

  moveUser(user: string, backend: string): Promise<MoveResult & { notes: string[] }> {
    return this.request('POST', `/users/${encodeURIComponent(user)}/move`, { backend });
  }

  backendStatus(): Promise<unknown> {
    return this.request('GET', '/backends/status');
  }
}

function connectError(e: NodeJS.ErrnoException, ep: AdminEndpoint, where: string): Error {
  switch (e.code) {
    case 'ENOENT':
      return new NoServerError(where, `no mailfront server is running: there is no admin socket at ${where} (start one with mailfront serve, or give --admin-socket)`);
    case 'ECONNREFUSED':
      return new NoServerError(
        where,
        ep.kind === 'socket'
          ? `no mailfront server is running: nothing answers on ${where} (a socket left by a server that stopped)`
          : `no mailfront server is running: nothing answers on ${where}`,
      );
    case 'EACCES':
      return new CommandFailed(`permission denied on ${where}: run this as the user that runs mailfront serve (the socket is mode 0600)`);
    default:
      return new CommandFailed(`cannot reach the server at ${where}: ${e.message}`);
  }
}
