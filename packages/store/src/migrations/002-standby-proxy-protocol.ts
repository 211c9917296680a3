/**
 * 002: a backend's standby, and whether it is sent a PROXY header.
 *
 * standby names the backend that takes this one's logins while it is down or
 * draining (it must reach the same mailboxes: a replica, or shared storage).
 * The foreign key's ON DELETE SET NULL means removing a backend clears it as
 * every other backend's standby, in the same statement; the CHECK keeps a
 * backend from standing in for itself.
 *
 * SQLite allows ADD COLUMN with REFERENCES only when the default is NULL,
 * which it is; existing rows get no standby and proxy_protocol 0.
 */
export const version = 2;
export const name = 'standby-proxy-protocol';

export const sql = `
ALTER TABLE backends ADD COLUMN standby TEXT REFERENCES backends (name) ON DELETE SET NULL
  CHECK (standby IS NULL OR standby <> name);
ALTER TABLE backends ADD COLUMN proxy_protocol INTEGER NOT NULL DEFAULT 0 CHECK (proxy_protocol IN (0, 1));

-- ON DELETE SET NULL looks up the rows naming the deleted backend.
CREATE INDEX backends_standby ON backends (standby);
`;
