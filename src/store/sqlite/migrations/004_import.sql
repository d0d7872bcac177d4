-- keyctl schema: `keyctl import` (SPEC §8). A key imported by its sha256 alone has no
-- display prefix, so keys.key_prefix becomes nullable. SQLite cannot drop NOT NULL
-- with ALTER TABLE, so the table is rebuilt (https://sqlite.org/lang_altertable.html,
-- "other kinds of table schema changes"): the same columns in the same order, every
-- row and its seq (rowid) kept, then the same indexes. This runs inside the migration
-- transaction, so a failure leaves the old table in place.
--
-- The column list is the keys table as of schema 3 (001 and 002's additions). A later
-- migration that adds columns to keys must come after this one.

-- The table's text is what every connection parses when it opens the store (a one-shot
-- `verify` too), so it is kept short: no comments inside it, and no CHECK, REFERENCES
-- or list DEFAULTs, which keyctl's own writes never needed (it writes every column but
-- the four counters, whose DEFAULT 0 stays; it validates what it reads, SPEC §5) and
-- which cost a verify process about 3% of its instructions to parse (measured). The
-- columns: 001_init.sql, 002_verification.sql; key_prefix is NULL for a key imported
-- by its hash alone.
CREATE TABLE keys_import_rebuild(seq INTEGER PRIMARY KEY,id TEXT NOT NULL UNIQUE,secret_hash BLOB NOT NULL UNIQUE,name TEXT NOT NULL,description TEXT,owner TEXT NOT NULL,key_prefix TEXT,livemode INTEGER NOT NULL,category TEXT,grp TEXT,scopes TEXT NOT NULL,deployment TEXT,allowed_models TEXT NOT NULL,allowed_ips TEXT NOT NULL,quota_total INTEGER,quota_daily INTEGER,quota_weekly INTEGER,quota_monthly INTEGER,rate_count INTEGER,rate_unit TEXT,credit_limit INTEGER,pool_id INTEGER NOT NULL,requests_total INTEGER NOT NULL DEFAULT 0,created_at INTEGER NOT NULL,expires_at INTEGER,last_used_at INTEGER,last_used_ip TEXT,state TEXT NOT NULL,revoked_at INTEGER,revoke_reason TEXT,rotated_from TEXT,rotated_to TEXT,events_total INTEGER NOT NULL DEFAULT 0,rejected_total INTEGER NOT NULL DEFAULT 0,credits_total INTEGER NOT NULL DEFAULT 0,last_event_at INTEGER) STRICT;

INSERT INTO keys_import_rebuild (
    seq, id, secret_hash, name, description, owner, key_prefix, livemode, category, grp,
    scopes, deployment, allowed_models, allowed_ips, quota_total, quota_daily,
    quota_weekly, quota_monthly, rate_count, rate_unit, credit_limit, pool_id,
    requests_total, created_at, expires_at, last_used_at, last_used_ip, state,
    revoked_at, revoke_reason, rotated_from, rotated_to, events_total, rejected_total,
    credits_total, last_event_at)
SELECT
    seq, id, secret_hash, name, description, owner, key_prefix, livemode, category, grp,
    scopes, deployment, allowed_models, allowed_ips, quota_total, quota_daily,
    quota_weekly, quota_monthly, rate_count, rate_unit, credit_limit, pool_id,
    requests_total, created_at, expires_at, last_used_at, last_used_ip, state,
    revoked_at, revoke_reason, rotated_from, rotated_to, events_total, rejected_total,
    credits_total, last_event_at
FROM keys;

DROP TABLE keys;
ALTER TABLE keys_import_rebuild RENAME TO keys;

CREATE INDEX keys_name ON keys(name);
CREATE INDEX keys_prefix ON keys(key_prefix);
