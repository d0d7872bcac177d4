//! `disable`, `enable`, `revoke` and `delete`: state transitions of one or more keys,
//! all in one transaction (one refused key changes nothing).

use serde_json::json;

use super::keyref::resolve;
use super::{audit_event, confirmed_refs};
use crate::cli::{DeleteArgs, KeyRefsArgs, RevokeArgs};
use crate::context::Ctx;
use crate::core::model::{KeyRecord, State, Status};
use crate::core::names::optional_text;
use crate::error::{Error, Result};
use crate::store::Txn;

/// Resolves every reference, dropping repeats of the same key.
fn resolve_all(tx: &dyn Txn, refs: &[String], ctx: &Ctx) -> Result<Vec<KeyRecord>> {
    let mut keys: Vec<KeyRecord> = Vec::with_capacity(refs.len());
    for r in refs {
        let k = resolve(tx, r, ctx.now)?;
        if !keys.iter().any(|x| x.id == k.id) {
            keys.push(k);
        }
    }
    Ok(keys)
}

fn label(k: &KeyRecord) -> String {
    format!("\"{}\" ({})", k.name, k.id)
}

pub fn disable(ctx: &Ctx, args: KeyRefsArgs) -> Result<()> {
    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let keys = resolve_all(tx.as_ref(), &args.keyrefs, ctx)?;
    let mut notes = Vec::new();
    for mut k in keys {
        match k.state {
            State::Revoked => {
                return Err(Error::conflict(format!(
                    "key {} is revoked: revoked keys cannot be disabled",
                    label(&k)
                )))
            }
            State::Disabled => notes.push(format!("key {} is already disabled", label(&k))),
            State::Active => {
                k.state = State::Disabled;
                tx.update_key(&k)?;
                tx.append_audit(audit_event(
                    ctx,
                    "disabled",
                    Some(&k.id),
                    json!({ "name": k.name }),
                ))?;
                notes.push(format!("disabled key {}", label(&k)));
            }
        }
    }
    tx.commit()?;
    notes.iter().for_each(|n| ctx.note(n));
    Ok(())
}

pub fn enable(ctx: &Ctx, args: KeyRefsArgs) -> Result<()> {
    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let keys = resolve_all(tx.as_ref(), &args.keyrefs, ctx)?;
    let mut notes = Vec::new();
    for mut k in keys {
        match k.state {
            State::Revoked => {
                return Err(Error::conflict(
                    "revoked keys cannot be reactivated; create a new key",
                ))
            }
            State::Active => notes.push(format!("key {} is already active", label(&k))),
            State::Disabled => {
                k.state = State::Active;
                tx.update_key(&k)?;
                tx.append_audit(audit_event(
                    ctx,
                    "enabled",
                    Some(&k.id),
                    json!({ "name": k.name }),
                ))?;
                let expired = k.status(ctx.now) == Status::Expired;
                notes.push(if expired {
                    format!("enabled key {}, but it has expired: extend it with 'keyctl edit --expires'", label(&k))
                } else {
                    format!("enabled key {}", label(&k))
                });
            }
        }
    }
    tx.commit()?;
    notes.iter().for_each(|n| ctx.note(n));
    Ok(())
}

/// Revokes `k` in `tx`, with its audit event.
fn revoke_one(ctx: &Ctx, tx: &mut dyn Txn, k: &mut KeyRecord, reason: Option<&str>) -> Result<()> {
    k.state = State::Revoked;
    k.revoked_at = Some(ctx.now);
    k.revoke_reason = reason.map(str::to_string);
    tx.update_key(k)?;
    tx.append_audit(audit_event(
        ctx,
        "revoked",
        Some(&k.id),
        json!({ "name": k.name, "reason": reason }),
    ))?;
    Ok(())
}

pub fn revoke(ctx: &Ctx, args: RevokeArgs) -> Result<()> {
    let reason = optional_text("--reason", args.reason.as_deref()).map_err(Error::usage)?;
    let refs = confirmed_refs(ctx, args.yes, "revoke", &args.keyrefs, |keys| {
        format!(
            "Revoke {}? This cannot be undone.",
            describe_keys(keys, ctx)
        )
    })?;
    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let keys = resolve_all(tx.as_ref(), &refs, ctx)?;
    let mut notes = Vec::new();
    for mut k in keys {
        if k.state == State::Revoked {
            notes.push(format!("key {} is already revoked", label(&k)));
            continue;
        }
        revoke_one(ctx, tx.as_mut(), &mut k, reason.as_deref())?;
        notes.push(format!("revoked key {}", label(&k)));
    }
    tx.commit()?;
    notes.iter().for_each(|n| ctx.note(n));
    Ok(())
}

pub fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let refs = confirmed_refs(ctx, args.yes, "delete", &args.keyrefs, |keys| {
        format!(
            "Delete {}? This cannot be undone.",
            describe_keys(keys, ctx)
        )
    })?;
    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let keys = resolve_all(tx.as_ref(), &refs, ctx)?;
    let mut notes = Vec::new();
    for mut k in keys {
        if !args.force && tx.has_requests(&k.id)? {
            return Err(Error::conflict(format!(
                "key {} has request history: pass --force to delete it anyway (its log rows and audit events keep its id)",
                label(&k)
            )));
        }
        if k.state != State::Revoked {
            revoke_one(ctx, tx.as_mut(), &mut k, Some("deleted"))?;
        }
        tx.delete_key(&k.id)?;
        tx.append_audit(audit_event(
            ctx,
            "deleted",
            Some(&k.id),
            json!({ "name": k.name, "key_prefix": k.key_prefix, "forced": args.force }),
        ))?;
        notes.push(format!("deleted key {}", label(&k)));
    }
    tx.commit()?;
    notes.iter().for_each(|n| ctx.note(n));
    Ok(())
}

/// `"ci" (sk_live_4eC3..., active)` or `3 keys: "a" (...), "b" (...)`.
pub(crate) fn describe_keys(keys: &[KeyRecord], ctx: &Ctx) -> String {
    let one = |k: &KeyRecord| {
        format!(
            "\"{}\" ({}..., {})",
            k.name,
            k.key_prefix,
            k.status(ctx.now).as_str()
        )
    };
    match keys {
        [k] => format!("key {}", one(k)),
        _ => format!(
            "{} keys: {}",
            keys.len(),
            keys.iter().map(one).collect::<Vec<_>>().join(", ")
        ),
    }
}
