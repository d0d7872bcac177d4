-- keyctl schema version 3: keys of one rotation lineage (one credit pool) share their
-- quota windows and rate limit as they already share credits (SPEC §5): a rotation
-- neither resets nor doubles them.

-- The lineage's running totals: accepted requests, all time (the total quota), and the
-- newest accepted request's time (pool_events.at is kept non-decreasing per pool).
ALTER TABLE credit_pools ADD COLUMN accepted_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credit_pools ADD COLUMN last_event_at INTEGER;

-- Exact rolling windows per lineage at a cost independent of history and of the
-- chain's length, like key_events per key: one row per accepted request, carrying the
-- pool's accepted_total after it. Requests in (S, now] are the total now minus the n
-- just before the first row with at > S: one index seek per window.
CREATE TABLE pool_events (
    pool_id INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (pool_id, at, n)
) STRICT, WITHOUT ROWID;

-- Existing lineages: the sum of their keys' totals (stopping at 2^53 - 1), then their
-- keys' recent accepted requests merged in time order, numbered up to that sum.
UPDATE credit_pools SET
    accepted_total = (
        SELECT CAST(min(total(max(k.requests_total, 0)), 9007199254740991) AS INTEGER)
        FROM keys k WHERE k.pool_id = credit_pools.id),
    last_event_at = (
        SELECT max(e.at) FROM key_events e JOIN keys k ON k.id = e.key_id
        WHERE k.pool_id = credit_pools.id AND e.accepted = 1);

WITH accepted AS (
    SELECT k.pool_id AS pool_id, e.at AS at,
           row_number() OVER (PARTITION BY k.pool_id ORDER BY e.at DESC, e.key_id DESC, e.n DESC)
               AS back
    FROM key_events e JOIN keys k ON k.id = e.key_id
    WHERE e.accepted = 1
)
INSERT OR IGNORE INTO pool_events (pool_id, at, n)
SELECT a.pool_id, a.at, p.accepted_total - a.back + 1
FROM accepted a JOIN credit_pools p ON p.id = a.pool_id;
