import type { BackendRow, PlacementRow, UserRow } from '@mailfront/store';

/** Left-aligned columns separated by two spaces; the header row first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** A backend as the CLI shows it: everything but the master password, which never leaves the store. */
export interface BackendView {
  name: string;
  host: string;
  ports: BackendRow['ports'];
  tls: BackendRow['tls'];
  caFile: string | null;
  insecure: boolean;
  trusted: boolean;
  login: BackendRow['login'];
  masterUser: string | null;
  state: BackendRow['state'];
  standby: string | null;
  proxyProtocol: boolean;
  createdAt: string;
  users?: { assigned: number; hashed: number };
}

export function backendView(b: BackendRow, users?: { assigned: number; hashed: number }): BackendView {
  // Listed field by field rather than by removing masterPassword, so that a
  // secret added to BackendRow later is not printed by default.
  const view: BackendView = {
    name: b.name,
    host: b.host,
    ports: { imap: b.ports.imap, pop3: b.ports.pop3, submission: b.ports.submission },
    tls: b.tls,
    caFile: b.caFile,
    insecure: b.insecure,
    trusted: b.trusted,
    login: b.login,
    masterUser: b.masterUser,
    state: b.state,
    standby: b.standby,
    proxyProtocol: b.proxyProtocol,
    createdAt: b.createdAt,
  };
  if (users) view.users = users;
  return view;
}

export function portOrDash(p: number | null): string {
  return p === null ? '-' : String(p);
}

/** A user as the CLI shows it: never the password hash. */
export interface UserView {
  name: string;
  createdAt: string;
  updatedAt: string;
  placement: { backend: string; source: PlacementRow['source']; updatedAt: string } | null;
}

export function userView(u: UserRow, p: PlacementRow | undefined): UserView {
  return {
    name: u.name,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
    placement: p ? { backend: p.backend, source: p.source, updatedAt: p.updatedAt } : null,
  };
}
