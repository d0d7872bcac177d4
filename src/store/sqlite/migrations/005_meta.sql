-- keyctl schema: key metadata (SPEC §8 "Key metadata"). One json object of strings
-- per key (keys sorted, as keyctl writes it), NULL for none: a key without metadata
-- stores and reads nothing more. Read by the key lookup verification already makes.
ALTER TABLE keys ADD COLUMN meta TEXT;
