//! What `create`, `create --batch` and `rotate` share to make a key: its settings
//! checked as a whole, the name and key-limit checks, and the drawing of its secret.

use chrono::{DateTime, Utc};
use rand::TryRng;

use crate::cli::KeyFields;
use crate::core::inputs::{Cap, RefillRate, Text};
use crate::core::key::{self, Mode, Secret};
use crate::core::model::{KeyRecord, KeySettings, NewKey};
use crate::core::names::{token_set, validate_name};
use crate::core::refill::Refill;
use crate::error::{Error, Result};
use crate::store::Txn;

/// A new key's settings from its fields (flags, a batch line, the wizard's answers):
/// an owner left out or empty is the actor.
pub(crate) fn new_settings(
    fields: &KeyFields,
    name: String,
    actor: &str,
    now: DateTime<Utc>,
) -> std::result::Result<KeySettings, String> {
    validate_name(&name)?;
    let mut settings = KeySettings {
        name,
        owner: actor.to_string(),
        ..KeySettings::default()
    };
    let owner = fields.owner.clone().filter(|o| o.0.is_some());
    apply_fields(
        &KeyFields {
            owner,
            ..fields.clone()
        },
        &mut settings,
        now,
    )?;
    check_refill(fields, &settings)?;
    Ok(settings)
}

/// Puts the fields given into `s` (a new key's settings, or the key `edit` changes),
/// leaving the others: the one place a key's values are checked together (an expiry
/// must lie ahead) and its sets are put in order.
pub(crate) fn apply_fields(
    f: &KeyFields,
    s: &mut KeySettings,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
        if let Some(v) = value {
            *slot = v.clone();
        }
    }
    fn text(slot: &mut Option<String>, value: &Option<Text>) {
        if let Some(Text(v)) = value {
            *slot = v.clone();
        }
    }
    fn cap(slot: &mut Option<u64>, value: &Option<Cap>) {
        if let Some(Cap(v)) = value {
            *slot = *v;
        }
    }
    set(&mut s.name, &f.name);
    text(&mut s.description, &f.description);
    match &f.owner {
        Some(Text(Some(owner))) => s.owner = owner.clone(),
        Some(Text(None)) => return Err("--owner cannot be empty: give a name".into()),
        None => {}
    }
    text(&mut s.category, &f.category);
    text(&mut s.group, &f.group);
    text(&mut s.deployment, &f.deployment);
    if !f.scopes.is_empty() {
        s.scopes = token_set("--scope", &f.scopes)?;
    }
    if !f.allow_models.is_empty() {
        s.allowed_models = token_set("--allow-model", &f.allow_models)?;
    }
    if !f.allow_ips.is_empty() {
        // Several lists are one allowlist: duplicates dropped, first-seen order kept.
        let mut rules = Vec::new();
        for rule in f.allow_ips.iter().flat_map(|list| &list.0) {
            if !rules.contains(rule) {
                rules.push(*rule);
            }
        }
        s.allowed_ips = rules.iter().map(ToString::to_string).collect();
    }
    if let Some(when) = &f.expires {
        s.expires_at = when.expiry_after(now)?;
    }
    cap(&mut s.quotas.total, &f.quota_total);
    cap(&mut s.quotas.daily, &f.quota_daily);
    cap(&mut s.quotas.weekly, &f.quota_weekly);
    cap(&mut s.quotas.monthly, &f.quota_monthly);
    if let Some(rate) = f.rate_limit {
        s.rate_limit = rate.0;
    }
    if let Some(credits) = f.credits {
        s.credit_limit = Some(credits);
    }
    if !f.meta.is_empty() {
        // Merged into what the key has (edit); `edit --unset-meta` goes through
        // meta::apply itself, so a removal makes room in the same edit.
        s.meta = crate::core::meta::apply(&s.meta, &f.meta, &[])?;
    }
    apply_refill(f, s);
    Ok(())
}

/// `--refill` sets the amount and interval (a new refill is `set`, an edited one keeps
/// its mode), `none` removes it; `--refill-mode` sets the mode of the refill there is.
fn apply_refill(f: &KeyFields, s: &mut KeySettings) {
    if let Some(RefillRate(rate)) = f.refill {
        s.refill = rate.map(|r| Refill {
            amount: r.amount,
            interval: r.interval,
            mode: s.refill.map(|old| old.mode).unwrap_or_default(),
        });
    }
    if let (Some(mode), Some(refill)) = (f.refill_mode, s.refill.as_mut()) {
        refill.mode = mode;
    }
}

/// A refill's rules once the settings are whole (create, batch, edit): it needs a
/// credit limit, and `--refill-mode` needs a refill.
pub(crate) fn check_refill(f: &KeyFields, s: &KeySettings) -> std::result::Result<(), String> {
    if f.refill_mode.is_some() && s.refill.is_none() {
        return Err(
            "--refill-mode needs a credit refill: add --refill N/day or --refill N/month".into(),
        );
    }
    if s.refill.is_some() && s.credit_limit.is_none() {
        return Err("--refill needs a credit limit: add --credits N".into());
    }
    Ok(())
}

/// Inserts a new key and reads it back as stored (for its reveal and audit event).
pub(crate) fn insert_key(tx: &mut dyn Txn, new_key: &NewKey) -> Result<KeyRecord> {
    tx.insert_key(new_key)?;
    tx.key_by_id(&new_key.id)?
        .ok_or_else(|| Error::runtime("the new key could not be read back from the store"))
}

/// Fills `buf` from the OS random source.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<()> {
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|e| Error::runtime(format!("cannot read the OS random source: {e}")))
}

/// Draws a new secret and id and builds the row to insert.
pub(crate) fn generate(
    prefix: &str,
    mode: Mode,
    settings: KeySettings,
    now: DateTime<Utc>,
    rotated_from: Option<String>,
) -> Result<(Secret, NewKey)> {
    generate_with(&mut os_random, prefix, mode, settings, now, rotated_from)
}

/// OS random bytes drawn in large reads and handed out in order, each byte once and
/// wiped as it is handed out: a batch of 100k keys makes ~120 reads of the OS random
/// source instead of 100k (each read is a system call).
pub(crate) struct RandomPool {
    buf: Vec<u8>,
    at: usize,
}

impl RandomPool {
    const SIZE: usize = 64 * 1024;

    pub(crate) fn new() -> RandomPool {
        RandomPool {
            buf: vec![0; Self::SIZE],
            at: Self::SIZE,
        }
    }

    /// Fills `out` with bytes from the OS random source.
    pub(crate) fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.at == self.buf.len() {
                os_random(&mut self.buf)?;
                self.at = 0;
            }
            let n = (out.len() - done).min(self.buf.len() - self.at);
            let taken = &mut self.buf[self.at..self.at + n];
            out[done..done + n].copy_from_slice(taken);
            taken.fill(0);
            self.at += n;
            done += n;
        }
        Ok(())
    }
}

/// [`generate`] with the random bytes from `draw` (the OS random source, directly or
/// through a [`RandomPool`]).
pub(crate) fn generate_with(
    draw: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    prefix: &str,
    mode: Mode,
    settings: KeySettings,
    now: DateTime<Utc>,
    rotated_from: Option<String>,
) -> Result<(Secret, NewKey)> {
    // One draw for both the body and the id (the last ID_LEN bytes).
    let mut random = [0u8; 64 + key::ID_LEN];
    let body = loop {
        draw(&mut random)?;
        if let Some(body) = key::random_body(&random[..64]) {
            break body;
        }
    };
    let secret = key::assemble(prefix, mode, &body);
    let mut id_bytes = [0u8; key::ID_LEN];
    id_bytes.copy_from_slice(&random[64..]);
    let new_key = NewKey {
        id: key::key_id(&id_bytes),
        hash: secret.hash(),
        key_prefix: Some(key::display_prefix(prefix, mode, &body)),
        mode,
        created_at: now,
        settings,
        rotated_from,
    };
    random.fill(0);
    Ok((secret, new_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_hands_out_each_drawn_byte_once_across_refills() {
        let mut pool = RandomPool::new();
        let mut seen = Vec::new();
        // Odd sizes so reads straddle the refill boundary.
        let mut chunk = [0u8; 77];
        while seen.len() < 3 * RandomPool::SIZE {
            pool.fill(&mut chunk).unwrap();
            seen.extend_from_slice(&chunk);
        }
        // 64-byte windows of random data never repeat: no byte range is handed out twice.
        let mut windows: Vec<&[u8]> = seen.chunks_exact(64).collect();
        let n = windows.len();
        windows.sort();
        windows.dedup();
        assert_eq!(windows.len(), n);
        assert!(
            pool.buf[..pool.at].iter().all(|&b| b == 0),
            "handed-out bytes are wiped"
        );
    }
}
