-- Credit refill (SPEC §8). A refill belongs to the balance it refills: the credit
-- pool, which a rotated pair shares, so the pair refills once. refill_amount/interval/
-- mode are all NULL (no refill) or all set; refilled_at is the last refill boundary
-- applied (unix milliseconds), from which every reader computes the balance as of now.
ALTER TABLE credit_pools ADD COLUMN refill_amount BIGINT;
ALTER TABLE credit_pools ADD COLUMN refill_interval TEXT CHECK (refill_interval IN ('day', 'month'));
ALTER TABLE credit_pools ADD COLUMN refill_mode TEXT CHECK (refill_mode IN ('add', 'set'));
ALTER TABLE credit_pools ADD COLUMN refilled_at BIGINT;
