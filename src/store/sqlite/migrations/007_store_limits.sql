-- keyctl store-wide limits (SPEC §8: `config set rate-limit`, `credit-limit`): one
-- counter row for the whole store and a ledger of accepted requests for its rate
-- window, kept only while a store-wide limit is set (`config set` recomputes them
-- when one is set). A keyctl that predates them never reads or writes them.

-- The store's counter: credits charged by every key (all time) and accepted requests
-- (numbering the ledger; `last_event_at` keeps the ledger's times non-decreasing).
-- One row, id 1, made by `config set`. The ledger: an exact rolling window at a cost
-- independent of history, like pool_events: one row per accepted request carrying the
-- counter's accepted_total after it; rows older than the longest rate window (a
-- minute) are pruned as requests come. Both texts are short because every process
-- that opens the store parses them (docs/decisions.md, "What issue 17 costs").
CREATE TABLE store_usage(id INTEGER PRIMARY KEY,credits_used INTEGER NOT NULL DEFAULT 0,accepted_total INTEGER NOT NULL DEFAULT 0,last_event_at INTEGER) STRICT;
CREATE TABLE store_events(at INTEGER NOT NULL,n INTEGER NOT NULL,PRIMARY KEY(at,n)) STRICT,WITHOUT ROWID;
