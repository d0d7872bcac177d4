//! Adding keys and claiming names, the one way for every command and every backend:
//! create, `create --batch`, rotate and edit all check the name-holder rule and the
//! `max-keys` limit here, inside the write transaction that then inserts or updates
//! the key, so no other writer can take the name or the last free slot in between
//! (what the lock covers is documented on [`Txn::name_holder`] and
//! [`Txn::count_limited`]).

use chrono::{DateTime, Utc};

use crate::core::settings::Settings;
use crate::error::{Error, Result};
use crate::store::Txn;

/// Refuses `name` when a key other than `for_key` holds it now (active or disabled,
/// unexpired, not superseded). `hint` ends the message: what the user can do instead,
/// which differs by command. Call it in an `Admin` or `Bulk` transaction, before the
/// write that takes the name.
pub fn claim_name<T: Txn + ?Sized>(
    tx: &T,
    name: &str,
    for_key: Option<&str>,
    now: DateTime<Utc>,
    hint: &str,
) -> Result<()> {
    match tx.name_holder(name, now)? {
        Some(holder) if Some(holder.as_str()) != for_key => Err(Error::conflict(format!(
            "a key named '{name}' already exists ({holder}): {hint}"
        ))),
        _ => Ok(()),
    }
}

/// The `max-keys` limit as one transaction sees it: counted once, then kept up to date
/// by [`KeyLimit::take`] as keys are added, so a batch counts the store once.
#[derive(Debug)]
pub struct KeyLimit {
    /// (keys that count now, the limit); None: no limit is set.
    used_of: Option<(u64, u64)>,
}

impl KeyLimit {
    /// Counts the keys `max-keys` limits (only when a limit is set). Call it in the
    /// `Admin` or `Bulk` transaction that then inserts the keys.
    pub fn read<T: Txn + ?Sized>(
        tx: &T,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<KeyLimit> {
        let used_of = match settings.max_keys {
            Some(max) => Some((tx.count_limited(now)?, max)),
            None => None,
        };
        Ok(KeyLimit { used_of })
    }

    /// Takes one slot for a key about to be inserted, or refuses when none is left.
    pub fn take(&mut self) -> Result<()> {
        if let Some((used, max)) = &mut self.used_of {
            if *used >= *max {
                return Err(Error::conflict(format!(
                    "key limit reached ({used}/{max}): revoke or delete an unused key first"
                )));
            }
            *used += 1;
        }
        Ok(())
    }
}

/// Refuses a new key when its name is held or the key limit is reached (create).
pub fn check_can_add<T: Txn + ?Sized>(
    tx: &T,
    settings: &Settings,
    name: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    claim_name(
        tx,
        name,
        None,
        now,
        "choose another name, or rotate or revoke that key",
    )?;
    KeyLimit::read(tx, settings, now)?.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_the_keys_a_batch_adds() {
        let mut limit = KeyLimit {
            used_of: Some((1, 3)),
        };
        assert!(limit.take().is_ok());
        assert!(limit.take().is_ok());
        let refused = limit.take().unwrap_err();
        assert_eq!(
            refused.message,
            "key limit reached (3/3): revoke or delete an unused key first"
        );
        assert!(limit.take().is_err(), "a refusal takes no slot");
    }

    #[test]
    fn without_a_limit_every_key_fits() {
        let mut limit = KeyLimit { used_of: None };
        for _ in 0..3 {
            assert!(limit.take().is_ok());
        }
    }
}
