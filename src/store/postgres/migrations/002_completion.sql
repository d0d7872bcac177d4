-- Completion's range scans (`keyctl show te<Tab>`, src/store/postgres/queries.rs
-- `values_starting`) compare in byte order whatever the database's collation, so
-- that `name COLLATE "C" >= $1 AND name COLLATE "C" < $2` is exactly the names that
-- start with the typed text; these indexes make that a range of an index. A keyctl
-- that predates them runs unchanged on a store that has them.
CREATE INDEX keys_name_bytes ON keys (name COLLATE "C");
CREATE INDEX keys_id_bytes ON keys (id COLLATE "C");
