//! Which key a name means when several keys have shared it (rotations, expiry):
//! the rule `keyref` resolution and KEYREF completion both follow.

use chrono::{DateTime, Utc};

use super::model::KeyRecord;

/// Which of the keys that share one name the name means: the one that holds it now;
/// when none does (the newest was revoked or has expired), keys that are one rotation
/// chain mean its newest; otherwise all of them (ambiguous).
pub fn meant_by_name(named: Vec<KeyRecord>, now: DateTime<Utc>) -> Vec<KeyRecord> {
    if named.len() < 2 {
        return named;
    }
    let holders: Vec<KeyRecord> = named
        .iter()
        .filter(|k| k.holds_name(now))
        .cloned()
        .collect();
    if holders.len() == 1 {
        return holders;
    }
    if holders.is_empty() {
        if let Some(newest) = chain_head(&named) {
            return vec![newest];
        }
    }
    named
}

/// The newest key when `keys` are one rotation chain (each older key's successor is
/// among them and following successors from any key reaches the same newest one).
fn chain_head(keys: &[KeyRecord]) -> Option<KeyRecord> {
    let by_id = |id: &str| keys.iter().find(|k| k.id == id);
    let heads: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| k.rotated_to.as_deref().and_then(by_id).is_none())
        .collect();
    let [head] = heads[..] else { return None };
    let reaches_head = |start: &KeyRecord| {
        let mut at = start;
        // At most one step per key: a stored cycle cannot loop forever.
        for _ in 0..keys.len() {
            if at.id == head.id {
                return true;
            }
            match at.rotated_to.as_deref().and_then(by_id) {
                Some(next) => at = next,
                None => return false,
            }
        }
        at.id == head.id
    };
    keys.iter().all(reaches_head).then(|| head.clone())
}
