-- `keyctl import` (SPEC §8): a key imported by its sha256 alone has no display
-- prefix. A keyctl older than this one would fail to read such a key, so the schema
-- records this keyctl as the oldest that can use it (migrate.rs).
ALTER TABLE keys ALTER COLUMN key_prefix DROP NOT NULL;
