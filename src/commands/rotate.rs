//! `keyctl rotate KEYREF`: a new key with every setting of the old one, revealed once;
//! the old key is disabled at once, or keeps working until `--grace` and then expires.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::create::{created_details, reveal_and_commit, reveal_style};
use super::keyref::resolve;
use super::lifecycle::{describe_keys, superseded_error};
use super::new_key::{generate, insert_key};
use super::{audit_event, confirmed_refs};
use crate::app::audit::append_audit;
use crate::app::keys::claim_name;
use crate::app::retry::with_retry;
use crate::cli::RotateArgs;
use crate::context::Ctx;
use crate::core::model::{KeyRecord, State};
use crate::core::time::{rfc3339, TimeSpec};
use crate::error::{Error, Result};
use crate::store::{Intent, Txn};

pub fn run(ctx: &Ctx, args: RotateArgs) -> Result<()> {
    let style = reveal_style(ctx, "rotate")?;
    let grace_until = args
        .grace
        .as_ref()
        .map(|g| g.grace_end(ctx.now()))
        .transpose()
        .map_err(Error::usage)?;
    let expires_override = match &args.expires {
        Some(when) => Some(when.expiry_after(ctx.now()).map_err(Error::usage)?),
        None => None,
    };
    let refs = confirmed_refs(
        ctx,
        args.yes,
        "rotate",
        std::slice::from_ref(&args.keyref),
        |keys| {
            let when = match grace_until {
                Some(t) => format!("keeps working until {}", rfc3339(t)),
                None => "is disabled at once".to_string(),
            };
            format!("Rotate {}? The old key {when}.", describe_keys(keys, ctx))
        },
    )?;

    let mut store = ctx.open_write()?;
    let old = with_retry(store.retry_attempts(), || -> Result<KeyRecord> {
        let mut tx = store.begin(Intent::Admin)?;
        let mut old = resolve(tx.as_ref(), &refs[0], ctx.now())?;
        refuse(tx.as_ref(), &old, ctx.now())?;
        // The new key takes the old one's name: another key may have taken it meanwhile
        // (after the old key expired).
        claim_name(
            tx.as_ref(),
            &old.settings.name,
            Some(&old.id),
            ctx.now(),
            "rename the key with 'keyctl edit --name' before rotating it",
        )?;
        let prefix = tx.settings()?.key_prefix;
        let mut settings = old.settings.clone();
        // A set lifetime is kept as the same length from now; --expires overrides it.
        settings.expires_at = match expires_override {
            Some(expiry) => expiry,
            None => old
                .settings
                .expires_at
                .and_then(|e| TimeSpec::In(e - old.created_at).after(ctx.now())),
        };
        let (secret, new_key) =
            generate(&prefix, old.mode, settings, ctx.now(), Some(old.id.clone()))?;

        // The old key gives up its name before the new one takes it.
        old.rotated_to = Some(new_key.id.clone());
        match grace_until {
            Some(until) => {
                old.settings.expires_at =
                    Some(old.settings.expires_at.map_or(until, |e| e.min(until)));
            }
            None => {
                if old.state == State::Active {
                    old.state = State::Disabled;
                }
            }
        }
        tx.update_key(&old)?;
        let record = insert_key(tx.as_mut(), &new_key)?;
        append_audit(
            &mut *tx,
            audit_event(
                ctx,
                "rotated",
                Some(&old.id),
                json!({
                    "name": old.settings.name,
                    "rotated_to": record.id,
                    "grace_until": grace_until.map(rfc3339),
                }),
            ),
        )?;
        append_audit(
            &mut *tx,
            audit_event(ctx, "created", Some(&record.id), created_details(&record)),
        )?;
        reveal_and_commit(ctx, tx, style, &secret, &record, args.copy)?;
        Ok(old)
    })?;
    ctx.note(&match grace_until {
        Some(t) => format!("old key {} keeps working until {}", old.id, rfc3339(t)),
        None => format!("old key {} is disabled", old.id),
    });
    Ok(())
}

fn refuse(tx: &dyn Txn, old: &KeyRecord, now: DateTime<Utc>) -> Result<()> {
    if old.state == State::Revoked {
        return Err(Error::conflict(format!(
            "key \"{}\" ({}) is revoked: revoked keys cannot be rotated; create a new key",
            old.settings.name, old.id
        )));
    }
    if old.rotated_to.is_some() {
        return Err(superseded_error(
            tx,
            old,
            now,
            "superseded keys cannot be rotated again; rotate the newest key of its chain",
        )?);
    }
    Ok(())
}
