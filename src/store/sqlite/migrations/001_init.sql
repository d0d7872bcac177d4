-- keyctl schema version 1. Never edit a released migration: add a new file.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One credit balance per lineage of keys: a rotated key shares its predecessor's pool.
CREATE TABLE credit_pools (
    id           INTEGER PRIMARY KEY,
    credits_used INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE keys (
    seq            INTEGER PRIMARY KEY,          -- creation order
    id             TEXT NOT NULL UNIQUE,
    secret_hash    BLOB NOT NULL UNIQUE,         -- sha256 of the secret; the secret is never stored
    name           TEXT NOT NULL,
    description    TEXT,
    owner          TEXT NOT NULL,
    key_prefix     TEXT NOT NULL,
    livemode       INTEGER NOT NULL,
    category       TEXT,
    grp            TEXT,
    scopes         TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    deployment     TEXT,
    allowed_models TEXT NOT NULL DEFAULT '[]',
    allowed_ips    TEXT NOT NULL DEFAULT '[]',
    quota_total    INTEGER,
    quota_daily    INTEGER,
    quota_weekly   INTEGER,
    quota_monthly  INTEGER,
    rate_count     INTEGER,
    rate_unit      TEXT CHECK (rate_unit IN ('s', 'm')),
    credit_limit   INTEGER,
    pool_id        INTEGER NOT NULL REFERENCES credit_pools(id),
    requests_total INTEGER NOT NULL DEFAULT 0,   -- accepted requests, all time (quota total)
    created_at     INTEGER NOT NULL,             -- unix milliseconds, UTC
    expires_at     INTEGER,
    last_used_at   INTEGER,
    last_used_ip   TEXT,
    state          TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
    revoked_at     INTEGER,
    revoke_reason  TEXT,
    rotated_from   TEXT,
    rotated_to     TEXT
) STRICT;

CREATE INDEX keys_name ON keys(name);
CREATE INDEX keys_prefix ON keys(key_prefix);

-- Request log: one row per recorded verification, accepted or rejected.
CREATE TABLE requests (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,                -- unix milliseconds, UTC
    key_id      TEXT,                            -- NULL when the presented key matched nothing
    key_name    TEXT,
    endpoint    TEXT,
    http_status INTEGER NOT NULL,
    code        TEXT NOT NULL,
    ip          TEXT,
    duration_ms INTEGER,
    credits     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX requests_key_at ON requests(key_id, at);
CREATE INDEX requests_at ON requests(at);

-- Append-only, hash-chained audit trail.
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    key_id    TEXT,
    details   TEXT NOT NULL,                     -- JSON object
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
) STRICT;

CREATE INDEX audit_key ON audit_events(key_id, seq);
