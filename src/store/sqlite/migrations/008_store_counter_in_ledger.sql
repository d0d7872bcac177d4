-- The store-wide counter moves into the ledger's last row: every accepted request
-- already wrote a ledger row, and the separate counter row cost a second page in each
-- commit (docs/decisions.md, "The store-wide counter is the ledger's last row"). The
-- last row (greatest at, n) carries the credits charged store-wide; with no request
-- yet, a row at 0 with n 0 carries them. PostgreSQL keeps its counter row, which a
-- transaction locks.
ALTER TABLE store_events ADD COLUMN credits INTEGER NOT NULL DEFAULT 0;
INSERT INTO store_events(at,n,credits) SELECT coalesce(last_event_at,0),accepted_total,credits_used FROM store_usage WHERE id=1 ON CONFLICT(at,n) DO UPDATE SET credits=excluded.credits;
DROP TABLE store_usage;
