//! `keyctl edit KEYREF`: change a key's settings; the secret never changes. Each
//! changed field is audited as old → new.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::audit_event;
use super::keyref::resolve;
use crate::cli::{EditArgs, Format};
use crate::context::Ctx;
use crate::core::allowlist;
use crate::core::diff::{changes_json, changes_text, settings_diff};
use crate::core::limits::{parse_count, parse_optional_count, parse_rate_limit, RateLimit};
use crate::core::model::{KeySettings, State};
use crate::core::names::{optional_text, token_set, validate_name};
use crate::core::time::parse_time_spec;
use crate::error::{Error, Result};
use crate::ui::keys::write_json;
use crate::ui::output::stdout;

/// The requested changes, validated; `None` leaves a field as it is.
#[derive(Default)]
struct Patch {
    name: Option<String>,
    description: Option<Option<String>>,
    owner: Option<String>,
    category: Option<Option<String>>,
    group: Option<Option<String>>,
    scopes: Option<Vec<String>>,
    deployment: Option<Option<String>>,
    allowed_models: Option<Vec<String>>,
    allowed_ips: Option<Vec<String>>,
    expires_at: Option<Option<DateTime<Utc>>>,
    quota_total: Option<Option<u64>>,
    quota_daily: Option<Option<u64>>,
    quota_weekly: Option<Option<u64>>,
    quota_monthly: Option<Option<u64>>,
    rate_limit: Option<Option<RateLimit>>,
    credit_limit: Option<Option<u64>>,
}

fn usage<T>(r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(Error::usage)
}

impl Patch {
    fn from_args(a: &EditArgs, now: DateTime<Utc>) -> Result<Patch> {
        let text = |flag: &str, v: &Option<String>| -> Result<Option<Option<String>>> {
            v.as_deref()
                .map(|t| usage(optional_text(flag, Some(t))))
                .transpose()
        };
        let quota = |flag: &str, v: &Option<String>| -> Result<Option<Option<u64>>> {
            v.as_deref()
                .map(|t| usage(parse_optional_count(flag, t)))
                .transpose()
        };
        let name = match &a.name {
            Some(n) => {
                usage(validate_name(n))?;
                Some(n.clone())
            }
            None => None,
        };
        let owner = match text("--owner", &a.owner)? {
            Some(Some(o)) => Some(o),
            Some(None) => return Err(Error::usage("--owner cannot be empty: give a name")),
            None => None,
        };
        let scopes = if a.clear_scopes {
            Some(Vec::new())
        } else if a.scopes.is_empty() {
            None
        } else {
            Some(usage(token_set("--scope", &a.scopes))?)
        };
        let allowed_models = if a.clear_models {
            Some(Vec::new())
        } else if a.allow_models.is_empty() {
            None
        } else {
            Some(usage(token_set("--allow-model", &a.allow_models))?)
        };
        let allowed_ips = if a.clear_ips {
            Some(Vec::new())
        } else if a.allow_ips.is_empty() {
            None
        } else {
            Some(
                usage(
                    allowlist::parse_lists(&a.allow_ips).map_err(|e| format!("--allow-ip: {e}")),
                )?
                .iter()
                .map(|r| r.to_string())
                .collect(),
            )
        };
        let expires_at = match &a.expires {
            None => None,
            Some(t) => {
                let spec =
                    usage(parse_time_spec(t, true).map_err(|e| format!("invalid --expires: {e}")))?;
                let at = spec.after(now);
                if at.is_some_and(|at| at <= now) {
                    return Err(Error::usage(format!(
                        "invalid --expires '{t}': it is in the past; use a future date, a duration like 30d, or never"
                    )));
                }
                Some(at)
            }
        };
        let rate_limit = match a.rate_limit.as_deref() {
            None => None,
            Some(t) if t.trim().eq_ignore_ascii_case("none") => Some(None),
            Some(t) => Some(Some(usage(parse_rate_limit(t))?)),
        };
        let credit_limit = if a.unlimited {
            Some(None)
        } else {
            a.credits
                .as_deref()
                .map(|t| usage(parse_count("--credits", t)).map(Some))
                .transpose()?
        };
        Ok(Patch {
            name,
            description: text("--description", &a.description)?,
            owner,
            category: text("--category", &a.category)?,
            group: text("--group", &a.group)?,
            scopes,
            deployment: text("--deployment", &a.deployment)?,
            allowed_models,
            allowed_ips,
            expires_at,
            quota_total: quota("--quota-total", &a.quota_total)?,
            quota_daily: quota("--quota-daily", &a.quota_daily)?,
            quota_weekly: quota("--quota-weekly", &a.quota_weekly)?,
            quota_monthly: quota("--quota-monthly", &a.quota_monthly)?,
            rate_limit,
            credit_limit,
        })
    }

    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.owner.is_none()
            && self.category.is_none()
            && self.group.is_none()
            && self.scopes.is_none()
            && self.deployment.is_none()
            && self.allowed_models.is_none()
            && self.allowed_ips.is_none()
            && self.expires_at.is_none()
            && self.quota_total.is_none()
            && self.quota_daily.is_none()
            && self.quota_weekly.is_none()
            && self.quota_monthly.is_none()
            && self.rate_limit.is_none()
            && self.credit_limit.is_none()
    }

    fn apply(self, s: &mut KeySettings) {
        fn set<T>(slot: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *slot = v;
            }
        }
        set(&mut s.name, self.name);
        set(&mut s.description, self.description);
        set(&mut s.owner, self.owner);
        set(&mut s.category, self.category);
        set(&mut s.group, self.group);
        set(&mut s.scopes, self.scopes);
        set(&mut s.deployment, self.deployment);
        set(&mut s.allowed_models, self.allowed_models);
        set(&mut s.allowed_ips, self.allowed_ips);
        set(&mut s.expires_at, self.expires_at);
        set(&mut s.quotas.total, self.quota_total);
        set(&mut s.quotas.daily, self.quota_daily);
        set(&mut s.quotas.weekly, self.quota_weekly);
        set(&mut s.quotas.monthly, self.quota_monthly);
        set(&mut s.rate_limit, self.rate_limit);
        set(&mut s.credit_limit, self.credit_limit);
    }
}

pub fn run(ctx: &Ctx, args: EditArgs) -> Result<()> {
    let patch = Patch::from_args(&args, ctx.now)?;
    if patch.is_empty() {
        return Err(Error::usage(
            "nothing to change: pass a flag such as --name, --expires or --scope (see 'keyctl edit --help')",
        ));
    }
    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let mut key = resolve(tx.as_ref(), &args.keyref, ctx.now)?;
    if key.state == State::Revoked {
        return Err(Error::conflict(format!(
            "key \"{}\" ({}) is revoked: revoked keys cannot be edited",
            key.name, key.id
        )));
    }
    // A superseded key lives on only for its grace period: never for good.
    if key.rotated_to.is_some() && patch.expires_at == Some(None) {
        return Err(super::lifecycle::superseded_error(
            tx.as_ref(),
            &key,
            ctx.now,
            "a superseded key cannot be given 'never' as expiry; its grace may be extended to a later date",
        )?);
    }
    let old = key.settings();
    let mut new = old.clone();
    patch.apply(&mut new);
    let held_before = key.holds_name(ctx.now);
    let mut edited = key.clone();
    edited.apply(new.clone());
    // A new name, or an extended expiry that brings the key back, must not take a name
    // another key holds.
    if edited.holds_name(ctx.now) && (new.name != old.name || !held_before) {
        if let Some(holder) = tx
            .keys_by_name(&new.name)?
            .into_iter()
            .find(|k| k.id != key.id && k.holds_name(ctx.now))
        {
            return Err(Error::conflict(format!(
                "a key named '{}' already exists ({}): choose another name",
                new.name, holder.id
            )));
        }
    }
    let changes = settings_diff(&old, &new);
    if changes.is_empty() {
        ctx.note(&format!(
            "key \"{}\" ({}) already has these settings; nothing changed",
            key.name, key.id
        ));
    } else {
        key.apply(new);
        tx.update_key(&key)?;
        tx.append_audit(audit_event(
            ctx,
            "edited",
            Some(&key.id),
            changes_json(&changes),
        ))?;
        tx.commit()?;
        ctx.note(&format!(
            "updated key \"{}\" ({}): {}",
            key.name,
            key.id,
            changes_text(&changes)
        ));
    }
    if ctx.format == Format::Json {
        let mut out = stdout();
        write_json(&mut out, &key, ctx.now)?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(())
}
