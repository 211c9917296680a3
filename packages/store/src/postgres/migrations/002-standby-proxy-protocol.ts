/**
 * 002: a backend's standby, and whether it is sent a PROXY header — the
 * SQLite store's 002 in PostgreSQL's types, with the same constraints:
 * ON DELETE SET NULL clears a removed backend as every other's standby, and
 * a backend cannot stand in for itself.
 */
export const version = 2;
export const name = 'standby-proxy-protocol';

export const sql = `
ALTER TABLE backends
  ADD COLUMN standby TEXT COLLATE "C" REFERENCES backends (name) ON DELETE SET NULL,
  ADD COLUMN proxy_protocol BOOLEAN NOT NULL DEFAULT false,
  ADD CONSTRAINT backends_standby_not_self CHECK (standby IS NULL OR standby <> name);

-- ON DELETE SET NULL looks up the rows naming the deleted backend.
CREATE INDEX backends_standby ON backends (standby);
`;
