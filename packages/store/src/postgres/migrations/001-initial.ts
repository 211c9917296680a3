/**
 * 001: backends, users, placements — the schema of the SQLite store's 001 in
 * PostgreSQL's types, with the same CHECKs (the contract tests hold both to
 * the same behaviour).
 *
 * Names are COLLATE "C": compared and sorted by code point, as SQLite does,
 * whatever locale the database was created with, so `list` prints the same
 * order on either store. "user" is a reserved word in PostgreSQL and quoted.
 */
export const version = 1;
export const name = 'initial';

export const sql = `
CREATE TABLE backends (
  name            TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(name) > 0),
  host            TEXT        NOT NULL CHECK (length(host) > 0),
  imap_port       INTEGER     CHECK (imap_port BETWEEN 1 AND 65535),
  pop3_port       INTEGER     CHECK (pop3_port BETWEEN 1 AND 65535),
  submission_port INTEGER     CHECK (submission_port BETWEEN 1 AND 65535),
  tls             TEXT        NOT NULL CHECK (tls IN ('none', 'starttls', 'implicit')),
  ca_file         TEXT,
  insecure        BOOLEAN     NOT NULL DEFAULT false,
  trusted         BOOLEAN     NOT NULL DEFAULT false,
  login           TEXT        NOT NULL CHECK (login IN ('passthrough', 'master')),
  master_user     TEXT,
  master_password TEXT,
  state           TEXT        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining')),
  created_at      TIMESTAMPTZ NOT NULL,
  -- A master-login backend without its credentials could never log anyone in.
  CHECK (login = 'passthrough' OR (master_user IS NOT NULL AND master_password IS NOT NULL))
);

CREATE TABLE users (
  name          TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(name) > 0),
  password_hash TEXT        NOT NULL CHECK (length(password_hash) > 0),
  created_at    TIMESTAMPTZ NOT NULL,
  updated_at    TIMESTAMPTZ NOT NULL
);

-- No foreign key from placements.user to users: users authenticated by a
-- directory (LDAP) have placements but no row in users.
CREATE TABLE placements (
  "user"     TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (length("user") > 0),
  backend    TEXT COLLATE "C" NOT NULL REFERENCES backends (name),
  source     TEXT        NOT NULL CHECK (source IN ('assigned', 'hashed')),
  updated_at TIMESTAMPTZ NOT NULL
);

-- removeBackend and countPlacements look placements up by backend.
CREATE INDEX placements_backend ON placements (backend, source);
`;
