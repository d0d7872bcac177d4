//! Resolving a KEYREF (id, exact name, or display prefix) to one key, or saying why not.

use chrono::{DateTime, Utc};

use crate::core::key::looks_like_key_id;
use crate::core::model::KeyRecord;
use crate::core::naming::meant_by_name;
use crate::error::{Error, Result};
use crate::store::Txn;

/// How a reference matched a key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Id,
    Name,
    Prefix,
}

impl By {
    fn word(self) -> &'static str {
        match self {
            By::Id => "id",
            By::Name => "name",
            By::Prefix => "display prefix",
        }
    }
}

/// A reference is matched as an id, an exact name and a display prefix (with or
/// without "...") at once. Among several keys with one name (rotations, revoked keys)
/// the one that holds the name now is meant. When the matches are not one key, the
/// reference is ambiguous and the candidates are listed, with how each matched:
/// a name shaped like another key's id or display prefix (an old store may hold one)
/// never silently wins or loses (SPEC §5).
pub fn resolve(tx: &dyn Txn, reference: &str, now: DateTime<Utc>) -> Result<KeyRecord> {
    let r = reference.trim();
    if r.is_empty() {
        return Err(Error::usage(
            "empty key reference: give a key id, exact name or prefix",
        ));
    }
    let mut matches: Vec<(By, KeyRecord)> = Vec::new();
    if looks_like_key_id(r) {
        matches.extend(tx.key_by_id(r)?.map(|k| (By::Id, k)));
    }
    let named = meant_by_name(tx.keys_by_name(r)?, now);
    matches.extend(named.into_iter().map(|k| (By::Name, k)));
    let prefix = r.strip_suffix("...").unwrap_or(r);
    matches.extend(
        tx.keys_by_prefix(prefix)?
            .into_iter()
            .map(|k| (By::Prefix, k)),
    );
    // One key matched in several ways (a key named like its own prefix) is one key.
    let mut seen: Vec<&str> = Vec::new();
    let distinct = matches
        .iter()
        .filter(|(_, k)| {
            let new = !seen.contains(&k.id.as_str());
            seen.push(&k.id);
            new
        })
        .count();
    match distinct {
        0 => Err(Error::not_found(format!(
            "no key matches '{r}': use a key id, exact name or prefix (see 'keyctl list --all')"
        ))),
        1 => Ok(matches.swap_remove(0).1),
        n => {
            let listed: Vec<String> = matches
                .iter()
                .map(|(by, k)| {
                    format!(
                        "{} by {} ({}, {}, {})",
                        k.id,
                        by.word(),
                        k.settings.name,
                        k.prefix_shown(),
                        k.status(now).as_str()
                    )
                })
                .collect();
            let kinds: Vec<By> = matches.iter().map(|(by, _)| *by).collect();
            let hint = if kinds.iter().any(|b| *b != kinds[0]) {
                "; use the key id, and rename a look-alike with 'keyctl edit ID --name NEW'"
            } else {
                "; use the key id"
            };
            Err(Error::conflict(format!(
                "'{r}' matches {n} keys: {}{hint}",
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
