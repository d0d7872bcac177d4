//! An edit of a key's credit refill or credit limit, above the backends: the pool's
//! balance is brought up to now under the old settings and stored with the new
//! refill, which counts from the current boundary, so no change reaches back over a
//! boundary already passed.

use chrono::{DateTime, Utc};

use crate::core::model::{KeyRecord, KeySettings};
use crate::core::refill::{self, Balance};
use crate::store::{Result, Txn};

/// True when going from `old` to `new` changes how the pool's credits refill.
pub fn changes_refill(old: &KeySettings, new: &KeySettings) -> bool {
    old.refill != new.refill || (old.refill.is_some() && old.credit_limit != new.credit_limit)
}

/// Rewrites the refill and balance of `key`'s pool (`key` still holding the old
/// settings, read in `tx`) for the settings `new`, and leaves `key` with the balance
/// written. The pool's row is read afresh and locked first: on PostgreSQL another key
/// of a rotated pair may have been charged since `key` was read.
pub fn rewrite_pool(
    tx: &mut dyn Txn,
    key: &mut KeyRecord,
    new: &KeySettings,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(stored) = tx.credit_balance_for_update(&key.id)? else {
        return Ok(());
    };
    key.credits_used = stored.used;
    key.refilled_at = stored.refilled_at;
    refill::catch_up(key, now);
    // A clock behind the boundary already applied keeps it, so none is applied twice.
    let refilled_at = new.refill.map(|r| {
        let at = refill::boundary_at(r.interval, now);
        key.refilled_at.map_or(at, |old| old.max(at))
    });
    let balance = Balance {
        used: key.credits_used,
        refilled_at,
    };
    tx.set_refill(&key.id, new.refill.as_ref(), balance)?;
    key.refilled_at = refilled_at;
    Ok(())
}
