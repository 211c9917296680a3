/**
 * 001: backends, users, placements.
 *
 * STRICT tables so a wrong type is an error, not a silent coercion. CHECKs
 * repeat the TypeScript unions: the CLI or a hand edit with the sqlite3 shell
 * cannot store a state the code has no case for.
 */
export const version = 1;
export const name = 'initial';

export const sql = `
CREATE TABLE backends (
  name            TEXT    NOT NULL PRIMARY KEY CHECK (length(name) > 0),
  host            TEXT    NOT NULL CHECK (length(host) > 0),
  imap_port       INTEGER CHECK (imap_port BETWEEN 1 AND 65535),
  pop3_port       INTEGER CHECK (pop3_port BETWEEN 1 AND 65535),
  submission_port INTEGER CHECK (submission_port BETWEEN 1 AND 65535),
  tls             TEXT    NOT NULL CHECK (tls IN ('none', 'starttls', 'implicit')),
  ca_file         TEXT,
  insecure        INTEGER NOT NULL DEFAULT 0 CHECK (insecure IN (0, 1)),
  trusted         INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),
  login           TEXT    NOT NULL CHECK (login IN ('passthrough', 'master')),
  master_user     TEXT,
  master_password TEXT,
  state           TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining')),
  created_at      TEXT    NOT NULL,
  -- A master-login backend without its credentials could never log anyone in.
  CHECK (login = 'passthrough' OR (master_user IS NOT NULL AND master_password IS NOT NULL))
) STRICT;

CREATE TABLE users (
  name          TEXT NOT NULL PRIMARY KEY CHECK (length(name) > 0),
  password_hash TEXT NOT NULL CHECK (length(password_hash) > 0),
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
) STRICT;

-- No foreign key from placements.user to users: users authenticated by a
-- directory (LDAP) have placements but no row in users.
CREATE TABLE placements (
  user       TEXT NOT NULL PRIMARY KEY CHECK (length(user) > 0),
  backend    TEXT NOT NULL REFERENCES backends (name),
  source     TEXT NOT NULL CHECK (source IN ('assigned', 'hashed')),
  updated_at TEXT NOT NULL
) STRICT;

-- removeBackend and countPlacements look placements up by backend.
CREATE INDEX placements_backend ON placements (backend, source);
`;
