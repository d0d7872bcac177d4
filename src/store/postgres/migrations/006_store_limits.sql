-- Store-wide limits (SPEC §8: `config set rate-limit`, `credit-limit`): one counter
-- row for the whole store (locked FOR UPDATE by a recording verification while a
-- store-wide limit is set) and a ledger of accepted requests for its rate window,
-- kept only while a store-wide limit is set. A keyctl that predates them runs
-- unchanged on a store that has them (it just does not enforce them).
CREATE TABLE store_usage (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    credits_used   BIGINT NOT NULL DEFAULT 0,
    accepted_total BIGINT NOT NULL DEFAULT 0,
    last_event_at  BIGINT
);

CREATE TABLE store_events (
    at BIGINT NOT NULL,
    n  BIGINT NOT NULL,
    PRIMARY KEY (at, n)
);
