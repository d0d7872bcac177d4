//! `keyctl config get|set|list`: store settings, validated, audited when changed.

use std::io::Write;

use serde::Serialize;

use super::audit_event;
use crate::app::audit::append_audit;
use crate::app::retry::with_retry;
use crate::cli::{ConfigCommand, Format};
use crate::context::Ctx;
use crate::core::settings::{default_of, is_known, known_names, normalize, read_stored, SETTINGS};
use crate::core::store_limits::{multiplier_group, MULTIPLIER_PREFIX};
use crate::core::text::escape;
use crate::error::{Error, Result};
use crate::store::{Intent, Txn};
use crate::ui::output::stdout;

fn is_multiplier(name: &str) -> bool {
    multiplier_group(name).is_some()
}

fn check_known(name: &str) -> Result<()> {
    if is_known(name) {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "unknown setting '{name}': use one of {}",
            known_names()
        )))
    }
}

/// A stored value as it is in force (a count past its range is the ceiling); one keyctl
/// cannot read at all is shown as stored, so the odd row is visible.
fn shown(name: &str, stored: String) -> String {
    read_stored(name, &stored).unwrap_or(stored)
}

/// The stored value of a setting as it is in force, or None when it has its default.
fn stored(tx: &dyn Txn, name: &str) -> Result<Option<String>> {
    Ok(tx
        .setting_pairs()?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| shown(name, v)))
}

/// The warning for a `max-keys` below the keys that already count against it.
fn over_limit(counted: u64, max: u64) -> Option<String> {
    (counted > max).then(|| {
        format!(
            "{counted} keys already count against max-keys {max}: create will fail until {} of them are revoked or deleted",
            counted - max + 1
        )
    })
}

#[derive(Serialize)]
struct SettingJson<'a> {
    name: &'a str,
    value: String,
    default: &'a str,
    is_default: bool,
}

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> Result<()> {
    match cmd {
        ConfigCommand::Get { name } => {
            check_known(&name)?;
            let mut store = ctx.open_read()?;
            let tx = store.begin(Intent::Read)?;
            let default = default_of(&name).unwrap_or_default();
            let value = stored(tx.as_ref(), &name)?;
            let mut out = stdout();
            match ctx.format {
                Format::Json => {
                    let v = SettingJson {
                        name: &name,
                        is_default: value.is_none(),
                        value: value.unwrap_or_else(|| default.to_string()),
                        default,
                    };
                    crate::ui::json::write(&mut out, &v)?;
                    writeln!(out)?;
                }
                // A stored value is shown escaped: another writer may have put anything there.
                _ => writeln!(out, "{}", escape(value.as_deref().unwrap_or(default)))?,
            }
            out.flush()?;
            Ok(())
        }
        ConfigCommand::Set { name, value } => {
            check_known(&name)?;
            let value = normalize(&name, &value).map_err(Error::usage)?;
            let mut store = ctx.open_write()?;
            let over = with_retry(store.retry_attempts(), || -> Result<Option<String>> {
                let mut tx = store.begin(Intent::Admin)?;
                let old = stored(tx.as_ref(), &name)?;
                let default = default_of(&name).unwrap_or_default();
                let old_shown = old.clone().unwrap_or_else(|| default.to_string());
                // A multiplier of 1 is no multiplier: no row, not listed.
                let multiplier_one = is_multiplier(&name) && value == default;
                if old_shown != value || (old.is_none() && !multiplier_one) {
                    tx.set_setting(&name, Some(value.as_str()).filter(|_| !multiplier_one))?;
                    // A store-wide limit set where there was none starts from what
                    // was spent and accepted before (docs/decisions.md).
                    let was_none = old_shown == "none";
                    if was_none && value != "none" {
                        match name.as_str() {
                            "rate-limit" => tx.reset_store_usage(ctx.now(), false, true)?,
                            "credit-limit" => tx.reset_store_usage(ctx.now(), true, false)?,
                            _ => {}
                        }
                    }
                    append_audit(
                        &mut *tx,
                        audit_event(
                            ctx,
                            "config",
                            None,
                            serde_json::json!({ "setting": name, "old": old_shown, "new": value }),
                        ),
                    )?;
                }
                // Keys that already exist are kept: a lower limit only stops new ones.
                let over = match tx.settings()?.max_keys.filter(|_| name == "max-keys") {
                    Some(max) => over_limit(tx.count_limited(ctx.now())?, max),
                    None => None,
                };
                tx.commit()?;
                Ok(over)
            })?;
            ctx.note(&format!("{name} = {value}"));
            if let Some(warning) = over {
                ctx.warn(&warning);
            }
            Ok(())
        }
        ConfigCommand::List => {
            let mut store = ctx.open_read()?;
            let tx = store.begin(Intent::Read)?;
            let pairs = tx.setting_pairs()?;
            let mut rows: Vec<SettingJson> = SETTINGS
                .iter()
                .map(|(name, default, _)| {
                    let v = pairs
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| shown(name, v.clone()));
                    SettingJson {
                        name,
                        is_default: v.is_none(),
                        value: v.unwrap_or_else(|| default.to_string()),
                        default,
                    }
                })
                .collect();
            // Then each group multiplier that is set, by name (a group's own row).
            let fixed = rows.len();
            let multiplier = &crate::core::settings::MULTIPLIER_SETTING;
            rows.extend(
                pairs
                    .iter()
                    .filter(|(n, _)| n.starts_with(MULTIPLIER_PREFIX) && is_known(n))
                    .map(|(n, v)| SettingJson {
                        name: n,
                        is_default: false,
                        value: shown(n, v.clone()),
                        default: multiplier.1,
                    }),
            );
            let mut out = stdout();
            match ctx.format {
                Format::Json => {
                    crate::ui::json::write_pretty(&mut out, &rows)?;
                    writeln!(out)?;
                }
                Format::Csv => {
                    crate::ui::csv::write_row(
                        &mut out,
                        &["name", "value", "default", "is_default"],
                    )?;
                    for r in &rows {
                        crate::ui::csv::write_row(
                            &mut out,
                            &[
                                r.name,
                                &r.value,
                                r.default,
                                if r.is_default { "true" } else { "false" },
                            ],
                        )?;
                    }
                }
                Format::Table => {
                    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
                    let vwidth = rows.iter().map(|r| r.value.len()).max().unwrap_or(0);
                    let abouts = SETTINGS.iter().map(|(_, _, about)| *about);
                    let abouts = abouts.chain(std::iter::repeat_n(
                        crate::core::settings::MULTIPLIER_SETTING.2,
                        rows.len() - fixed,
                    ));
                    for (r, about) in rows.iter().zip(abouts) {
                        let source = if r.is_default { "default" } else { "set" };
                        writeln!(
                            out,
                            "{:width$}  {:vwidth$}  ({source}) {about}",
                            r.name,
                            escape(&r.value)
                        )?;
                    }
                }
            }
            out.flush()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::over_limit;

    #[test]
    fn a_limit_below_the_count_says_how_many_must_go() {
        assert_eq!(over_limit(2, 2), None);
        assert_eq!(over_limit(0, 1), None);
        assert_eq!(
            over_limit(6, 2).as_deref(),
            Some("6 keys already count against max-keys 2: create will fail until 5 of them are revoked or deleted")
        );
    }
}
