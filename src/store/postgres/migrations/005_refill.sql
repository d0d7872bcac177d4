-- Credit refill (SPEC §8). A refill belongs to the balance it refills: the credit
-- pool, which a rotated pair shares, so the pair refills once. refill: NULL (none) or
-- `N/day|month add|set` as keyctl writes it (another value reads as none);
-- refilled_at: the last refill boundary applied (unix milliseconds), from which every
-- reader computes the balance as of now.
ALTER TABLE credit_pools ADD COLUMN refill TEXT;
ALTER TABLE credit_pools ADD COLUMN refilled_at BIGINT;
