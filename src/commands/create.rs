//! `keyctl create`: validate every input, insert the key, reveal the secret once, and
//! only then commit, so a secret that could not be delivered leaves no key behind.

use std::io::Write;

use super::audit_event;
use super::new_key::{generate, insert_key, new_settings};
use crate::app::audit::append_audit;
use crate::app::keys::check_can_add;
use crate::app::retry::with_retry;
use crate::cli::{CopyArgs, CreateArgs, Format};
use crate::context::Ctx;
use crate::core::inputs;
use crate::core::key::{Mode, Secret};
use crate::core::model::KeyRecord;
use crate::core::names::validate_name;
use crate::error::{Error, Result};
use crate::store::{Intent, Txn};
use crate::ui::clipboard;
use crate::ui::output::{stdout, sync_stdout_if_file};
use crate::ui::reveal::{details, end_reveal, write_reveal, RevealStyle};

pub fn run(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let style = reveal_style(ctx, "create")?;
    let mut fields = args.fields;
    let name = match fields.name.clone() {
        Some(n) => n,
        None if ctx.interactive() => {
            let answers = wizard(ctx)?;
            // The answers are read as the flags they stand for; a flag given wins.
            if fields.description.is_none() {
                fields.description = answers
                    .description
                    .as_deref()
                    .map(|d| usage(inputs::text("--description", d)))
                    .transpose()?;
            }
            if fields.expires.is_none() {
                fields.expires = Some(usage(inputs::expiry("--expires", &answers.expires))?);
            }
            if fields.scopes.is_empty() {
                fields.scopes = answers
                    .scopes
                    .iter()
                    .map(|s| usage(inputs::token("--scope", s)))
                    .collect::<Result<_>>()?;
            }
            answers.name
        }
        None => {
            return Err(Error::usage(
                "--name is required without a terminal: keyctl create --name NAME",
            ))
        }
    };
    let settings = new_settings(&fields, name, ctx.actor(), ctx.now()).map_err(Error::usage)?;
    let mode = if args.test { Mode::Test } else { Mode::Live };

    let mut store = ctx.open_write()?;
    with_retry(store.retry_attempts(), || {
        let mut tx = store.begin(Intent::Admin)?;
        let store_settings = tx.settings()?;
        check_can_add(tx.as_ref(), &store_settings, &settings.name, ctx.now())?;
        let (secret, new_key) = generate(
            &store_settings.key_prefix,
            mode,
            settings.clone(),
            ctx.now(),
            None,
        )?;
        let record = insert_key(tx.as_mut(), &new_key)?;
        append_audit(
            &mut *tx,
            audit_event(ctx, "created", Some(&record.id), created_details(&record)),
        )?;
        reveal_and_commit(ctx, tx, style, &secret, &record, args.copy)
    })
}

fn usage<T>(r: std::result::Result<T, String>) -> Result<T> {
    r.map_err(Error::usage)
}

/// The details of a `created` audit event.
pub(crate) fn created_details(record: &KeyRecord) -> serde_json::Value {
    let mut details = serde_json::json!({
        "name": record.settings.name,
        "key_prefix": record.key_prefix,
        "mode": record.mode.as_str(),
        "expires_at": record.settings.expires_at.map(crate::core::time::rfc3339),
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
    copy: CopyArgs,
) -> Result<()> {
    deliver(ctx, style, secret, record)?;
    // The secret has been shown: running the transaction again would show another.
    tx.commit().map_err(|e| Error::from(e).final_attempt())?;
    if style == RevealStyle::Plain {
        ctx.note(&details(record));
    }
    copy_to_clipboard(ctx, style, secret, copy_wish(ctx, copy));
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
            .begin(Intent::Read)
            .and_then(|tx| tx.name_holder(name, ctx.now()))
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
pub(crate) fn copy_wish(ctx: &Ctx, copy: CopyArgs) -> CopyWish {
    match (copy.copy, ctx.stdout_tty && !copy.no_copy) {
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
    write_reveal(&mut out, style, secret, record, ctx.now())
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
