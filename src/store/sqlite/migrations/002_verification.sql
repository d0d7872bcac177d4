-- keyctl schema version 2: verification, exact rolling windows, usage, IP blocking.

-- Every recorded verification writes the log; each index on it is one more page per
-- commit. `logs KEYREF` walks the log newest first instead (it stops after --limit
-- matches), and history checks use the key's counters.
DROP INDEX IF EXISTS requests_key_at;

-- Running totals per key (they survive request-log pruning).
ALTER TABLE keys ADD COLUMN events_total INTEGER NOT NULL DEFAULT 0;   -- recorded requests
ALTER TABLE keys ADD COLUMN rejected_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN credits_total INTEGER NOT NULL DEFAULT 0;  -- this key's own spend
ALTER TABLE keys ADD COLUMN last_event_at INTEGER;                     -- newest key_events.at

-- Exact rolling windows at a cost independent of history: one row per recorded request
-- of a known key, carrying the key's running totals after it. Requests in (S, now] are
-- today's totals minus the totals just before the first row with at > S: one index
-- seek per window. `at` is kept non-decreasing per key, so (at, n) orders rows.
-- Rows older than the longest window (30 days) are pruned.
CREATE TABLE key_events (
    key_id       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    n            INTEGER NOT NULL,   -- the key's events_total after this request
    accepted_cum INTEGER NOT NULL,   -- the key's requests_total after this request
    credits_cum  INTEGER NOT NULL,   -- the key's credits_total after this request
    accepted     INTEGER NOT NULL,   -- 1 when this request was accepted
    cost         INTEGER NOT NULL,   -- credits charged by this request
    PRIMARY KEY (key_id, at, n)
) STRICT, WITHOUT ROWID;

-- Per-day figures for `usage` and `show` (key_id '' for presented keys that matched
-- nothing). Days are UTC days since the Unix epoch.
CREATE TABLE usage_days (
    key_id   TEXT NOT NULL,
    day      INTEGER NOT NULL,
    accepted INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    credits  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
) STRICT, WITHOUT ROWID;

CREATE INDEX usage_days_day ON usage_days(day);

-- Invalid attempts per IP (for failed-auth-limit) and the IPs blocked because of them.
CREATE TABLE auth_failures (
    ip TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;

CREATE INDEX auth_failures_ip_at ON auth_failures(ip, at);
CREATE INDEX auth_failures_at ON auth_failures(at);

CREATE TABLE ip_blocks (
    ip    TEXT PRIMARY KEY,
    until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
