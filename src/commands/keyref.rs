//! Resolving a KEYREF (id, exact name, or display prefix) to one key.

use chrono::{DateTime, Utc};

use crate::core::key::looks_like_key_id;
use crate::core::model::KeyRecord;
use crate::error::{Error, Result};
use crate::store::Txn;

/// Ids win, then exact names, then display prefixes (with or without "..."). Among
/// several keys with one name (rotations, revoked keys) the one that holds the name
/// now is meant; otherwise the reference is ambiguous and the candidates are listed.
pub fn resolve(tx: &dyn Txn, reference: &str, now: DateTime<Utc>) -> Result<KeyRecord> {
    let r = reference.trim();
    if r.is_empty() {
        return Err(Error::usage(
            "empty key reference: give a key id, exact name or prefix",
        ));
    }
    if looks_like_key_id(r) {
        if let Some(k) = tx.key_by_id(r)? {
            return Ok(k);
        }
    }
    let mut candidates = tx.keys_by_name(r)?;
    if candidates.len() > 1 {
        let holders: Vec<KeyRecord> = candidates
            .iter()
            .filter(|k| k.holds_name(now))
            .cloned()
            .collect();
        if holders.len() == 1 {
            candidates = holders;
        }
    }
    if candidates.is_empty() {
        let prefix = r.strip_suffix("...").unwrap_or(r);
        candidates = tx.keys_by_prefix(prefix)?;
    }
    match candidates.len() {
        0 => Err(Error::not_found(format!(
            "no key matches '{r}': use a key id, exact name or prefix (see 'keyctl list --all')"
        ))),
        1 => Ok(candidates.remove(0)),
        n => {
            let listed: Vec<String> = candidates
                .iter()
                .map(|k| {
                    format!(
                        "{} ({}, {}..., {})",
                        k.id,
                        k.name,
                        k.key_prefix,
                        k.status(now).as_str()
                    )
                })
                .collect();
            Err(Error::conflict(format!(
                "'{r}' matches {n} keys: {}; use the key id",
                listed.join("; ")
            )))
        }
    }
}

/// The key id a filter means: a resolved KEYREF, or the id of a deleted key (whose log
/// rows and audit events keep its id).
pub fn filter_id(tx: &dyn Txn, reference: &str, now: DateTime<Utc>) -> Result<String> {
    match resolve(tx, reference, now) {
        Ok(k) => Ok(k.id),
        Err(e) if e.kind == crate::error::Kind::NotFound && looks_like_key_id(reference.trim()) => {
            Ok(reference.trim().to_string())
        }
        Err(e) => Err(e),
    }
}

/// Resolves every reference, dropping repeats of the same key (in first-seen order).
pub fn resolve_all(tx: &dyn Txn, refs: &[String], now: DateTime<Utc>) -> Result<Vec<KeyRecord>> {
    let mut keys: Vec<KeyRecord> = Vec::with_capacity(refs.len());
    for r in refs {
        let k = resolve(tx, r, now)?;
        if !keys.iter().any(|x| x.id == k.id) {
            keys.push(k);
        }
    }
    Ok(keys)
}
