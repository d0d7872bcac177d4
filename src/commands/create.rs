//! `keyctl create`: validate every input, insert the key, reveal the secret once, and
//! only then commit, so a secret that could not be delivered leaves no key behind.

use std::io::Write;

use chrono::{DateTime, Utc};
use rand::TryRng;

use super::audit_event;
use crate::cli::{CreateArgs, Format};
use crate::context::Ctx;
use crate::core::allowlist;
use crate::core::key::{self, Mode, Secret};
use crate::core::limits::{parse_count, parse_rate_limit, Quotas};
use crate::core::model::{KeyRecord, KeySettings, NewKey};
use crate::core::names::{optional_text, token_set, validate_name};
use crate::core::settings::Settings;
use crate::core::time::parse_time_spec;
use crate::error::{Error, Result};
use crate::store::Txn;
use crate::ui::clipboard;
use crate::ui::output::{stdout, sync_stdout_if_file};
use crate::ui::reveal::{details, end_reveal, write_reveal, RevealStyle};

pub fn run(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    if let Some(source) = &args.batch {
        if super::batch::has_other_fields(&args) {
            return Err(Error::usage(
                "--batch takes every key's fields from its input: drop the other create flags",
            ));
        }
        return super::batch::run(ctx, source);
    }
    let style = reveal_style(ctx, "create")?;
    let mut args = args;
    let name = match args.name.clone() {
        Some(n) => n,
        None if ctx.interactive() => {
            let answers = wizard(ctx)?;
            if args.description.is_none() {
                args.description = answers.description;
            }
            if args.expires.is_none() {
                args.expires = Some(answers.expires);
            }
            if args.scopes.is_empty() {
                args.scopes = answers.scopes;
            }
            answers.name
        }
        None => {
            return Err(Error::usage(
                "--name is required without a terminal: keyctl create --name NAME",
            ))
        }
    };
    let settings = key_settings(ctx, &args, name, ctx.now)?;
    let mode = if args.test { Mode::Test } else { Mode::Live };

    let mut store = ctx.open_write()?;
    let mut tx = store.write()?;
    let store_settings = tx.settings()?;
    check_can_add(tx.as_ref(), &store_settings, &settings.name, ctx.now)?;
    let (secret, new_key) = generate(&store_settings.key_prefix, mode, settings, ctx.now, None)?;
    tx.insert_key(&new_key)?;
    let record = tx
        .key_by_id(&new_key.id)?
        .ok_or_else(|| Error::runtime("the new key could not be read back from the store"))?;
    tx.append_audit(audit_event(
        ctx,
        "created",
        Some(&record.id),
        created_details(&record),
    ))?;
    reveal_and_commit(ctx, tx, style, &secret, &record, args.copy, args.no_copy)
}

/// The details of a `created` audit event.
pub(crate) fn created_details(record: &KeyRecord) -> serde_json::Value {
    let mut details = serde_json::json!({
        "name": record.name,
        "key_prefix": record.key_prefix,
        "mode": record.mode.as_str(),
        "expires_at": record.expires_at.map(crate::core::time::rfc3339),
    });
    if let Some(from) = &record.rotated_from {
        details["rotated_from"] = serde_json::json!(from);
    }
    details
}

/// Shows the new secret once, then commits: the key exists only if its secret reached
/// stdout. The clipboard copy comes after the commit (SPEC §5), so no helper start
/// ever holds the store's write lock.
pub(crate) fn reveal_and_commit(
    ctx: &Ctx,
    tx: Box<dyn Txn + '_>,
    style: RevealStyle,
    secret: &Secret,
    record: &KeyRecord,
    copy: bool,
    no_copy: bool,
) -> Result<()> {
    deliver(ctx, style, secret, record)?;
    tx.commit()?;
    if style == RevealStyle::Plain {
        ctx.note(&details(record));
    }
    copy_to_clipboard(ctx, style, secret, copy_wish(ctx, copy, no_copy));
    Ok(())
}

/// Asks for the key's fields at a terminal; a name is checked as it is entered, for
/// its form and against the names held in the store (when there is one).
fn wizard(ctx: &Ctx) -> Result<crate::ui::wizard::Answers> {
    // The store is opened per check and closed again: no connection stays open while
    // a person types (Ctrl-C would leave its -wal/-shm files behind).
    let check = |name: &str| -> std::result::Result<(), String> {
        validate_name(name)?;
        let Ok(mut store) = ctx.open_read() else {
            return Ok(()); // no store yet: every valid name is free
        };
        let taken = store
            .read()
            .and_then(|tx| tx.name_holder(name, ctx.now))
            .map_err(|e| e.to_string())?;
        match taken {
            Some(id) => Err(format!("a key named '{name}' already exists ({id})")),
            None => Ok(()),
        }
    };
    crate::ui::wizard::run(&check)
}

/// How the secret will be shown; csv has no sensible shape for a one-time reveal.
pub(crate) fn reveal_style(ctx: &Ctx, command: &str) -> Result<RevealStyle> {
    match ctx.format {
        Format::Json => Ok(RevealStyle::Json),
        Format::Csv => Err(Error::usage(format!(
            "--format csv is not available for {command}: use --json or the default output"
        ))),
        Format::Table if ctx.stdout_tty => Ok(RevealStyle::Terminal),
        Format::Table => Ok(RevealStyle::Plain),
    }
}

/// Whether the new secret goes to the clipboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyWish {
    No,
    /// A terminal's default: silently off without a display.
    Default,
    /// `--copy`: a copy that cannot be made is a warning.
    Asked,
}

/// `--copy` forces the clipboard copy, `--no-copy` prevents it; by default only a
/// terminal gets it (never a pipe or a file).
pub(crate) fn copy_wish(ctx: &Ctx, copy: bool, no_copy: bool) -> CopyWish {
    match (copy, ctx.stdout_tty && !no_copy) {
        (true, _) => CopyWish::Asked,
        (false, true) => CopyWish::Default,
        (false, false) => CopyWish::No,
    }
}

/// Writes, flushes and (for a regular file) syncs the reveal. An error here means the
/// secret did not reach its reader, so the caller must not commit.
pub(crate) fn deliver(
    ctx: &Ctx,
    style: RevealStyle,
    secret: &Secret,
    record: &KeyRecord,
) -> Result<()> {
    let mut out = stdout();
    write_reveal(&mut out, style, secret, record, ctx.now)
        .and_then(|_| out.flush())
        .and_then(|_| sync_stdout_if_file())
        .map_err(|e| {
            Error::runtime(format!(
                "could not write the new key to stdout ({e}); nothing was created"
            ))
        })
}

/// Copies the committed key's secret when wished, and says so after the reveal: in
/// the terminal frame's last lines, else on stderr; a failure is a warning.
fn copy_to_clipboard(ctx: &Ctx, style: RevealStyle, secret: &Secret, wish: CopyWish) {
    let copied = match wish {
        CopyWish::No => None,
        CopyWish::Default if !clipboard::display_configured() => None,
        CopyWish::Default | CopyWish::Asked => Some(clipboard::copy(secret.expose())),
    };
    if style == RevealStyle::Terminal {
        let line = match &copied {
            Some(Ok(c)) => Some(c.reveal_line()),
            _ => None,
        };
        // The key is committed: a stdout closed by now loses only the frame's end.
        let mut out = stdout();
        let _ = end_reveal(&mut out, line.as_deref()).and_then(|_| out.flush());
    }
    match copied {
        Some(Ok(c)) if style != RevealStyle::Terminal => ctx.note(&c.note()),
        Some(Err(reason)) => ctx.warn(&format!(
            "the key was not copied to the clipboard: {reason}"
        )),
        _ => {}
    }
}

/// Refuses a new key when the name is held by another key or the key limit is reached.
pub(crate) fn check_can_add(
    tx: &dyn Txn,
    settings: &Settings,
    name: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(holder) = tx.name_holder(name, now)? {
        return Err(Error::conflict(format!(
            "a key named '{name}' already exists ({holder}): choose another name, or rotate or revoke that key"
        )));
    }
    if let Some(max) = settings.max_keys {
        let used = tx.count_limited(now)?;
        if used >= max {
            return Err(Error::conflict(format!(
                "key limit reached ({used}/{max}): revoke or delete an unused key first"
            )));
        }
    }
    Ok(())
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
    // One draw from the OS for both the body and the id (the last ID_LEN bytes).
    let mut random = [0u8; 64 + key::ID_LEN];
    let body = loop {
        os_random(&mut random)?;
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
        key_prefix: key::display_prefix(prefix, mode, &body),
        mode,
        created_at: now,
        settings,
        rotated_from,
    };
    Ok((secret, new_key))
}

fn usage<T>(r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(Error::usage)
}

/// Validates every create flag into key settings, before the store is touched.
pub(crate) fn key_settings(
    ctx: &Ctx,
    args: &CreateArgs,
    name: String,
    now: DateTime<Utc>,
) -> Result<KeySettings> {
    usage(validate_name(&name))?;
    let count = |flag: &str, v: &Option<String>| -> Result<Option<u64>> {
        v.as_deref()
            .map(|t| usage(parse_count(flag, t)))
            .transpose()
    };
    let expires_at = match &args.expires {
        None => None,
        Some(text) => {
            let spec =
                usage(parse_time_spec(text, true).map_err(|e| format!("invalid --expires: {e}")))?;
            let at = spec.after(now);
            if let Some(t) = at {
                if t <= now {
                    return Err(Error::usage(format!(
                        "invalid --expires '{text}': it is in the past; use a future date or a duration like 30d"
                    )));
                }
            }
            at
        }
    };
    let owner = usage(optional_text("--owner", args.owner.as_deref()))?
        .unwrap_or_else(|| ctx.actor().to_string());
    Ok(KeySettings {
        name,
        description: usage(optional_text("--description", args.description.as_deref()))?,
        owner,
        category: usage(optional_text("--category", args.category.as_deref()))?,
        group: usage(optional_text("--group", args.group.as_deref()))?,
        scopes: usage(token_set("--scope", &args.scopes))?,
        deployment: usage(optional_text("--deployment", args.deployment.as_deref()))?,
        allowed_models: usage(token_set("--allow-model", &args.allow_models))?,
        allowed_ips: usage(
            allowlist::parse_lists(&args.allow_ips).map_err(|e| format!("--allow-ip: {e}")),
        )?
        .iter()
        .map(|r| r.to_string())
        .collect(),
        quotas: Quotas {
            total: count("--quota-total", &args.quota_total)?,
            daily: count("--quota-daily", &args.quota_daily)?,
            weekly: count("--quota-weekly", &args.quota_weekly)?,
            monthly: count("--quota-monthly", &args.quota_monthly)?,
        },
        rate_limit: args
            .rate_limit
            .as_deref()
            .map(|t| usage(parse_rate_limit(t)))
            .transpose()?,
        credit_limit: count("--credits", &args.credits)?,
        expires_at,
    })
}
