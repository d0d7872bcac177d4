-- A key's running totals move into its window ledger's newest row: every recorded
-- request already wrote a key_events row carrying its counts, and rewriting the wide
-- keys row as well dirtied a second page per request, the costliest one in a group
-- commit (docs/decisions.md, "A key's running totals are its ledger's newest row").
-- Rows written from now on also carry the rejected count and the last use (time and
-- IP), so the newest row holds all seven figures. The keys row keeps the figures as
-- they stood when it was last written (this migration, a copy, an import): they are
-- the totals while the key's newest ledger row predates this migration (its
-- rejected_cum is NULL) or the key has none. Nothing writes them during verification.
ALTER TABLE key_events ADD COLUMN rejected_cum INTEGER;
ALTER TABLE key_events ADD COLUMN used_at INTEGER;
ALTER TABLE key_events ADD COLUMN used_ip TEXT;
