//! `keyctl edit KEYREF`: change a key's settings; the secret never changes. Each
//! changed field is audited as old → new.

use std::io::Write;

use super::audit_event;
use super::keyref::resolve;
use super::new_key::{apply_fields, check_refill};
use crate::app::audit::append_audit;
use crate::app::keys::claim_name;
use crate::app::refill::{changes_refill, rewrite_pool};
use crate::app::retry::with_retry;
use crate::cli::{EditArgs, Format, KeyFields};
use crate::context::Ctx;
use crate::core::diff::{changes_json, changes_text, settings_diff};
use crate::core::meta::{self, KeyMeta};
use crate::core::model::{KeySettings, State};
use crate::core::time::TimeSpec;
use crate::error::{Error, Result};
use crate::store::Intent;
use crate::ui::keys::write_json;
use crate::ui::output::stdout;

pub fn run(ctx: &Ctx, args: EditArgs) -> Result<()> {
    let EditArgs {
        keyref,
        fields,
        clear_scopes,
        clear_models,
        clear_ips,
        unlimited,
        unset_meta,
    } = args;
    if fields.is_empty()
        && unset_meta.is_empty()
        && !(clear_scopes || clear_models || clear_ips || unlimited)
    {
        return Err(Error::usage(
            "nothing to change: pass a flag such as --name, --expires or --scope (see 'keyctl edit --help')",
        ));
    }
    // Metadata is set and unset in one step (meta::apply), so that a removal makes
    // room for an entry set in the same edit.
    let meta_set = fields.meta.clone();
    let fields = KeyFields {
        meta: Vec::new(),
        ..fields
    };
    // Every value is checked before the store is opened (a missing one is created).
    apply_fields(&fields, &mut KeySettings::default(), ctx.now()).map_err(Error::usage)?;
    meta::apply(&KeyMeta::default(), &meta_set, &unset_meta).map_err(Error::usage)?;
    let mut store = ctx.open_write()?;
    let (key, said) = with_retry(store.retry_attempts(), || {
        let mut tx = store.begin(Intent::Admin)?;
        let mut key = resolve(tx.as_ref(), &keyref, ctx.now())?;
        if key.state == State::Revoked {
            return Err(Error::conflict(format!(
                "key \"{}\" ({}) is revoked: revoked keys cannot be edited",
                key.settings.name, key.id
            )));
        }
        // A superseded key lives on only for its grace period: never for good.
        let never = fields
            .expires
            .as_ref()
            .is_some_and(|when| when.spec == TimeSpec::Never);
        if key.rotated_to.is_some() && never {
            return Err(super::lifecycle::superseded_error(
            tx.as_ref(),
            &key,
            ctx.now(),
            "a superseded key cannot be given 'never' as expiry; its grace may be extended to a later date",
        )?);
        }
        let old = key.settings.clone();
        let mut new = old.clone();
        apply_fields(&fields, &mut new, ctx.now()).map_err(Error::usage)?;
        if clear_scopes {
            new.scopes.clear();
        }
        if clear_models {
            new.allowed_models.clear();
        }
        if clear_ips {
            new.allowed_ips.clear();
        }
        if unlimited {
            new.credit_limit = None;
            // A refill refills a credit limit: it goes with it (docs/decisions.md).
            new.refill = None;
        }
        new.meta = meta::apply(&new.meta, &meta_set, &unset_meta).map_err(Error::usage)?;
        check_refill(&fields, &new).map_err(Error::usage)?;
        let held_before = key.holds_name(ctx.now());
        let mut edited = key.clone();
        edited.settings = new.clone();
        // A new name, or an extended expiry that brings the key back, must not take a name
        // another key holds.
        if edited.holds_name(ctx.now()) && (new.name != old.name || !held_before) {
            claim_name(
                tx.as_ref(),
                &new.name,
                Some(&key.id),
                ctx.now(),
                "choose another name",
            )?;
        }
        let changes = settings_diff(&old, &new);
        if changes.is_empty() {
            let said = format!(
                "key \"{}\" ({}) already has these settings; nothing changed",
                key.settings.name, key.id
            );
            return Ok((key, said));
        }
        if changes_refill(&old, &new) {
            rewrite_pool(&mut *tx, &mut key, &new, ctx.now())?;
        }
        key.settings = new;
        tx.update_key(&key)?;
        append_audit(
            &mut *tx,
            audit_event(ctx, "edited", Some(&key.id), changes_json(&changes)),
        )?;
        tx.commit()?;
        let said = format!(
            "updated key \"{}\" ({}): {}",
            key.settings.name,
            key.id,
            changes_text(&changes)
        );
        Ok((key, said))
    })?;
    ctx.note(&said);
    if ctx.format == Format::Json {
        let mut out = stdout();
        write_json(&mut out, &key, ctx.now())?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(())
}
