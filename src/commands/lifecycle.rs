//! `disable`, `enable`, `revoke` and `delete`: state transitions of one or more keys,
//! all in one transaction (one refused key changes nothing).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::keyref::resolve_all;
use super::{audit_event, confirmed_refs};
use crate::app::audit::append_audit;
use crate::app::retry::with_retry;
use crate::cli::{DeleteArgs, KeyRefsArgs, RevokeArgs};
use crate::context::Ctx;
use crate::core::model::{KeyRecord, State, Status};
use crate::core::names::optional_text;
use crate::core::time::rfc3339;
use crate::error::{Error, Result};
use crate::store::{Intent, Store, Txn};

fn label(k: &KeyRecord) -> String {
    format!("\"{}\" ({})", k.settings.name, k.id)
}

/// What a lifecycle command does about the keys its keys replaced in rotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Predecessors {
    /// `--with-predecessor`: every non-revoked one is acted on too.
    Include,
    /// Those still verifying in their grace period are named in a warning, with the
    /// command's verb, so nobody believes a leak is closed while an old key works.
    WarnInGrace(&'static str),
    Ignore,
}

impl Predecessors {
    fn of(with_predecessor: bool, verb: &'static str) -> Predecessors {
        if with_predecessor {
            Predecessors::Include
        } else {
            Predecessors::WarnInGrace(verb)
        }
    }
}

/// What one key's step tells the user after the commit.
enum Said {
    Note(String),
    Warning(String),
}

/// A key to act on; `added` when `--with-predecessor` brought it in.
struct Target {
    key: KeyRecord,
    added: bool,
}

/// Runs `step` on every referenced key (and, as `predecessors` says, the keys they
/// replaced) inside one write transaction and prints what it says after the commit; an
/// error from any key rolls back all of them.
fn in_one_transaction(
    ctx: &Ctx,
    refs: &[String],
    predecessors: Predecessors,
    mut step: impl FnMut(&mut dyn Txn, KeyRecord, bool) -> Result<Said>,
) -> Result<()> {
    let mut store = ctx.open_write()?;
    let attempts = store.retry_attempts();
    let said = with_retry(attempts, || {
        transaction(ctx, store.as_mut(), refs, predecessors, &mut step)
    })?;
    for s in &said {
        match s {
            Said::Note(n) => ctx.note(n),
            Said::Warning(w) => ctx.warn(w),
        }
    }
    Ok(())
}

/// The transaction of [`in_one_transaction`]: what to say once it is committed.
fn transaction(
    ctx: &Ctx,
    store: &mut dyn Store,
    refs: &[String],
    predecessors: Predecessors,
    step: &mut impl FnMut(&mut dyn Txn, KeyRecord, bool) -> Result<Said>,
) -> Result<Vec<Said>> {
    let mut tx = store.begin(Intent::Admin)?;
    let named = resolve_all(tx.as_ref(), refs, ctx.now())?;
    let mut targets: Vec<Target> = named
        .iter()
        .map(|k| Target {
            key: k.clone(),
            added: false,
        })
        .collect();
    if predecessors == Predecessors::Include {
        for (p, _) in behind(tx.as_ref(), &named, |p| p.state != State::Revoked)? {
            targets.push(Target {
                key: p,
                added: true,
            });
        }
    }
    let mut said = Vec::with_capacity(targets.len());
    for t in targets {
        said.push(step(tx.as_mut(), t.key, t.added)?);
    }
    if let Predecessors::WarnInGrace(verb) = predecessors {
        let verifying = |p: &KeyRecord| p.status(ctx.now()) == Status::Active;
        for (p, by) in behind(tx.as_ref(), &named, verifying)? {
            said.push(Said::Warning(grace_warning(&p, &by, verb)));
        }
    }
    tx.commit()?;
    Ok(said)
}

/// The keys `keys` replaced in rotations (whole chains, on behind deleted keys) that
/// `keep` accepts as `tx` has them now: each once, none of `keys` themselves, with the
/// id of the key in `keys` they were found behind.
fn behind(
    tx: &dyn Txn,
    keys: &[KeyRecord],
    keep: impl Fn(&KeyRecord) -> bool,
) -> Result<Vec<(KeyRecord, String)>> {
    let mut found: Vec<(KeyRecord, String)> = Vec::new();
    for k in keys {
        for id in tx.predecessors(&k.id)? {
            if keys.iter().any(|n| n.id == id) || found.iter().any(|(f, _)| f.id == id) {
                continue;
            }
            if let Some(p) = tx.key_by_id(&id)?.filter(|p| keep(p)) {
                found.push((p, k.id.clone()));
            }
        }
    }
    Ok(found)
}

/// Says that `p`, a key behind `by` in its rotation chain, still verifies after `verb`.
fn grace_warning(p: &KeyRecord, by: &str, verb: &str) -> String {
    let until = match p.settings.expires_at {
        Some(end) => format!("until {} (its grace period)", rfc3339(end)),
        None => "with no end".to_string(),
    };
    // Ids, not the name: once no key holds the name it is ambiguous; a deleted key's
    // id no longer resolves, so `delete` names the old key itself.
    let hint = if verb == "delete" {
        format!("revoke it with 'keyctl revoke {}'", p.id)
    } else {
        format!("{verb} it too with 'keyctl {verb} --with-predecessor {by}'")
    };
    format!(
        "key {} was replaced by {} in a rotation and still verifies {until}: {hint}",
        label(p),
        p.rotated_to.as_deref().unwrap_or("another key"),
    )
}

/// `key_new ("prod-api", active)`, or `key_new (since deleted)`: the key that
/// replaced `k` in a rotation.
fn successor_text(tx: &dyn Txn, k: &KeyRecord, now: DateTime<Utc>) -> Result<String> {
    let Some(to) = &k.rotated_to else {
        return Ok("no other key".to_string());
    };
    Ok(match tx.key_by_id(to)? {
        Some(s) => format!("{to} (\"{}\", {})", s.settings.name, s.status(now).as_str()),
        None => format!("{to} (since deleted)"),
    })
}

/// Exit 4 for a change a key superseded by a rotation cannot take, naming its
/// successor (or saying it was deleted); `why` says what is refused and what to do.
pub(crate) fn superseded_error(
    tx: &dyn Txn,
    k: &KeyRecord,
    now: DateTime<Utc>,
    why: &str,
) -> Result<Error> {
    Ok(Error::conflict(format!(
        "key {} was superseded by {} in a rotation: {why}",
        label(k),
        successor_text(tx, k, now)?
    )))
}

/// `, which key_new replaced` for a key `--with-predecessor` brought in.
fn replaced(k: &KeyRecord, added: bool) -> String {
    match (&k.rotated_to, added) {
        (Some(to), true) => format!(", which {to} replaced"),
        _ => String::new(),
    }
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
    append_audit(
        &mut *tx,
        audit_event(ctx, action, Some(&k.id), json!({ "name": k.settings.name })),
    )?;
    Ok(())
}

pub fn disable(ctx: &Ctx, args: KeyRefsArgs) -> Result<()> {
    let scope = Predecessors::of(args.chain.with_predecessor, "disable");
    in_one_transaction(ctx, &args.keyrefs, scope, |tx, mut k, added| {
        let more = replaced(&k, added);
        match k.state {
            State::Revoked => Err(Error::conflict(format!(
                "key {} is revoked: revoked keys cannot be disabled",
                label(&k)
            ))),
            State::Disabled => Ok(Said::Note(format!(
                "key {}{more} is already disabled",
                label(&k)
            ))),
            State::Active => {
                set_state(ctx, tx, &mut k, State::Disabled, "disabled")?;
                Ok(Said::Note(format!("disabled key {}{more}", label(&k))))
            }
        }
    })
}

/// A superseded key is never enabled: a named one is refused, one that
/// `--with-predecessor` brought in stays as it is, with a warning.
pub fn enable(ctx: &Ctx, args: KeyRefsArgs) -> Result<()> {
    let scope = if args.chain.with_predecessor {
        Predecessors::Include
    } else {
        Predecessors::Ignore
    };
    in_one_transaction(ctx, &args.keyrefs, scope, |tx, mut k, added| {
        let more = replaced(&k, added);
        match k.state {
            State::Revoked => Err(Error::conflict(
                "revoked keys cannot be reactivated; create a new key",
            )),
            State::Active => Ok(Said::Note(format!(
                "key {}{more} is already active",
                label(&k)
            ))),
            State::Disabled if k.rotated_to.is_some() => {
                if added {
                    return Ok(Said::Warning(format!(
                        "key {} stays disabled: it was superseded by {} in a rotation, and superseded keys cannot be enabled",
                        label(&k),
                        successor_text(tx, &k, ctx.now())?
                    )));
                }
                Err(superseded_error(
                    tx,
                    &k,
                    ctx.now(),
                    "superseded keys cannot be enabled",
                )?)
            }
            State::Disabled => {
                set_state(ctx, tx, &mut k, State::Active, "enabled")?;
                Ok(Said::Note(if k.status(ctx.now()) == Status::Expired {
                    format!(
                        "enabled key {}, but it has expired: extend it with 'keyctl edit --expires'",
                        label(&k)
                    )
                } else {
                    format!("enabled key {}", label(&k))
                }))
            }
        }
    })
}

/// Revokes `k` in `tx`, with its audit event.
fn revoke_one(ctx: &Ctx, tx: &mut dyn Txn, k: &mut KeyRecord, reason: Option<&str>) -> Result<()> {
    k.state = State::Revoked;
    k.revoked_at = Some(ctx.now());
    k.revoke_reason = reason.map(str::to_string);
    tx.update_key(k)?;
    append_audit(
        &mut *tx,
        audit_event(
            ctx,
            "revoked",
            Some(&k.id),
            json!({ "name": k.settings.name, "reason": reason }),
        ),
    )?;
    Ok(())
}

pub fn revoke(ctx: &Ctx, args: RevokeArgs) -> Result<()> {
    let reason = optional_text("--reason", args.reason.as_deref()).map_err(Error::usage)?;
    let with_predecessor = args.chain.with_predecessor;
    let refs = confirmed_refs(ctx, args.yes, "revoke", &args.keyrefs, |keys| {
        format!(
            "Revoke {}{}? This cannot be undone.",
            describe_keys(keys, ctx),
            if with_predecessor {
                " and every key it replaced in rotations"
            } else {
                ""
            }
        )
    })?;
    let scope = Predecessors::of(with_predecessor, "revoke");
    in_one_transaction(ctx, &refs, scope, |tx, mut k, added| {
        let more = replaced(&k, added);
        if k.state == State::Revoked {
            return Ok(Said::Note(format!(
                "key {}{more} is already revoked",
                label(&k)
            )));
        }
        revoke_one(ctx, tx, &mut k, reason.as_deref())?;
        Ok(Said::Note(format!("revoked key {}{more}", label(&k))))
    })
}

/// Revokes keys by id, each with its own reason (`scan --revoke`: where it was
/// found), in one transaction, as `revoke` does; confirmation is the caller's.
pub(crate) fn revoke_with_reasons(ctx: &Ctx, reasons: &[(String, String)]) -> Result<()> {
    let ids: Vec<String> = reasons.iter().map(|(id, _)| id.clone()).collect();
    let scope = Predecessors::of(false, "revoke");
    in_one_transaction(ctx, &ids, scope, |tx, mut k, _| {
        if k.state == State::Revoked {
            return Ok(Said::Note(format!("key {} is already revoked", label(&k))));
        }
        let reason = reasons
            .iter()
            .find(|(id, _)| *id == k.id)
            .map(|(_, reason)| reason.as_str());
        revoke_one(ctx, tx, &mut k, reason)?;
        Ok(Said::Note(format!("revoked key {}", label(&k))))
    })
}

pub fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let refs = confirmed_refs(ctx, args.yes, "delete", &args.keyrefs, |keys| {
        format!(
            "Delete {}? This cannot be undone.",
            describe_keys(keys, ctx)
        )
    })?;
    // Deleting revokes first: the same warning as `revoke` (there is no flag here).
    let scope = Predecessors::WarnInGrace("delete");
    in_one_transaction(ctx, &refs, scope, |tx, mut k, _| {
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
        append_audit(
            &mut *tx,
            audit_event(
                ctx,
                "deleted",
                Some(&k.id),
                json!({ "name": k.settings.name, "key_prefix": k.key_prefix, "forced": args.force }),
            ),
        )?;
        Ok(Said::Note(format!("deleted key {}", label(&k))))
    })
}

/// `"ci" (sk_live_4eC3..., active)` or `3 keys: "a" (...), "b" (...)`.
pub(crate) fn describe_keys(keys: &[KeyRecord], ctx: &Ctx) -> String {
    let one = |k: &KeyRecord| {
        format!(
            "\"{}\" ({}, {})",
            k.settings.name,
            k.prefix_shown(),
            k.status(ctx.now()).as_str()
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
