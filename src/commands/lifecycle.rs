//! `disable`, `enable`, `revoke` and `delete`: state transitions of one or more keys,
//! all in one transaction (one refused key changes nothing).

use serde_json::json;

use super::keyref::resolve_all;
use super::{audit_event, confirmed_refs};
use crate::cli::{DeleteArgs, KeyRefsArgs, RevokeArgs};
use crate::context::Ctx;
use crate::core::model::{KeyRecord, State, Status};
use crate::core::names::optional_text;
use crate::error::{Error, Result};
use crate::store::Txn;

fn label(k: &KeyRecord) -> String {
    format!("\"{}\" ({})", k.name, k.id)
}

/// Runs `step` on every referenced key inside one write transaction and prints the
/// notes it returns after the commit; an error from any key rolls back all of them.
fn in_one_transaction(
    ctx: &Ctx,
    refs: &[String],
    mut step: impl FnMut(&mut dyn Txn, KeyRecord) -> Result<String>,
) -> Result<()> {
    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let keys = resolve_all(tx.as_ref(), refs, ctx.now)?;
    let mut notes = Vec::with_capacity(keys.len());
    for k in keys {
        notes.push(step(tx.as_mut(), k)?);
    }
    tx.commit()?;
    notes.iter().for_each(|n| ctx.note(n));
    Ok(())
}

/// Sets a key's state and records the event named after the new state.
fn set_state(
    ctx: &Ctx,
    tx: &mut dyn Txn,
    k: &mut KeyRecord,
    state: State,
    action: &str,
) -> Result<()> {
    k.state = state;
    tx.update_key(k)?;
    tx.append_audit(audit_event(
        ctx,
        action,
        Some(&k.id),
        json!({ "name": k.name }),
    ))?;
    Ok(())
}

pub fn disable(ctx: &Ctx, args: KeyRefsArgs) -> Result<()> {
    in_one_transaction(ctx, &args.keyrefs, |tx, mut k| match k.state {
        State::Revoked => Err(Error::conflict(format!(
            "key {} is revoked: revoked keys cannot be disabled",
            label(&k)
        ))),
        State::Disabled => Ok(format!("key {} is already disabled", label(&k))),
        State::Active => {
            set_state(ctx, tx, &mut k, State::Disabled, "disabled")?;
            Ok(format!("disabled key {}", label(&k)))
        }
    })
}

pub fn enable(ctx: &Ctx, args: KeyRefsArgs) -> Result<()> {
    in_one_transaction(ctx, &args.keyrefs, |tx, mut k| match k.state {
        State::Revoked => Err(Error::conflict(
            "revoked keys cannot be reactivated; create a new key",
        )),
        State::Active => Ok(format!("key {} is already active", label(&k))),
        State::Disabled => {
            set_state(ctx, tx, &mut k, State::Active, "enabled")?;
            Ok(if k.status(ctx.now) == Status::Expired {
                format!(
                    "enabled key {}, but it has expired: extend it with 'keyctl edit --expires'",
                    label(&k)
                )
            } else {
                format!("enabled key {}", label(&k))
            })
        }
    })
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
    in_one_transaction(ctx, &refs, |tx, mut k| {
        if k.state == State::Revoked {
            return Ok(format!("key {} is already revoked", label(&k)));
        }
        revoke_one(ctx, tx, &mut k, reason.as_deref())?;
        Ok(format!("revoked key {}", label(&k)))
    })
}

pub fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let refs = confirmed_refs(ctx, args.yes, "delete", &args.keyrefs, |keys| {
        format!(
            "Delete {}? This cannot be undone.",
            describe_keys(keys, ctx)
        )
    })?;
    in_one_transaction(ctx, &refs, |tx, mut k| {
        if !args.force && tx.has_requests(&k.id)? {
            return Err(Error::conflict(format!(
                "key {} has request history: pass --force to delete it anyway (its log rows and audit events keep its id)",
                label(&k)
            )));
        }
        if k.state != State::Revoked {
            revoke_one(ctx, tx, &mut k, Some("deleted"))?;
        }
        tx.delete_key(&k.id)?;
        tx.append_audit(audit_event(
            ctx,
            "deleted",
            Some(&k.id),
            json!({ "name": k.name, "key_prefix": k.key_prefix, "forced": args.force }),
        ))?;
        Ok(format!("deleted key {}", label(&k)))
    })
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
