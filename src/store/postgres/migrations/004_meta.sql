-- Key metadata (SPEC §8 "Key metadata"): one json object of strings per key (keys
-- sorted, as keyctl writes it), NULL for none. Plain text, not jsonb: keyctl hands it
-- back as stored and never queries inside it.
ALTER TABLE keys ADD COLUMN meta TEXT;
