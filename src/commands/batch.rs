//! `keyctl create --batch FILE|-`: one json object of create fields per line, all keys
//! in one transaction. Every line is validated and every key inserted before any
//! secret is printed, so a bad line fails the whole batch with nothing shown or kept.

use std::io::{BufReader, Read, Write};

use serde_json::json;

use super::audit_event_text;
use super::new_key::{generate, new_settings};
use crate::app::audit::AuditTrail;
use crate::app::keys::{claim_name, KeyLimit};
use crate::cli::{CreateArgs, KeyFields};
use crate::context::Ctx;
use crate::core::fields::{parse_line, read_bounded_line, too_long, Line};
use crate::core::inputs::{self, Cap, Text};
use crate::core::key::Mode;
use crate::core::model::{KeyRecord, KeySettings, NewKey};
use crate::core::time::rfc3339;
use crate::error::{Error, Result};
use crate::store::Intent;
use crate::ui::output::{plural, stdout, sync_stdout_if_file};
use crate::ui::reveal::{write_reveal, RevealStyle};

/// The fields a batch line may carry (create's flags, with `_`), each with its flag,
/// so the messages of create's checks can name the field instead.
const FIELDS: &[(&str, &str)] = &[
    ("name", "--name"),
    ("description", "--description"),
    ("owner", "--owner"),
    ("category", "--category"),
    ("group", "--group"),
    ("scopes", "--scope"),
    ("deployment", "--deployment"),
    ("allowed_models", "--allow-model"),
    ("allowed_ips", "--allow-ip"),
    ("expires", "--expires"),
    ("quota_total", "--quota-total"),
    ("quota_daily", "--quota-daily"),
    ("quota_weekly", "--quota-weekly"),
    ("quota_monthly", "--quota-monthly"),
    ("rate_limit", "--rate-limit"),
    ("credits", "--credits"),
    ("test", "--test"),
];

/// A good batch line, shown when a line is not one.
const BATCH_EXAMPLE: &str = r#"{"name": "ci-deploy", "scopes": ["read"]}"#;

/// Reads one batch line into create's fields, each type-checked by name and then
/// parsed by its flag's own parser; returns the name too (it is required here).
fn batch_fields(line: &[u8]) -> std::result::Result<(String, KeyFields, Mode), String> {
    let f = parse_line(line, BATCH_EXAMPLE)?;
    let names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
    f.refuse_unknown(&names)?;
    let flag = |name: &str| {
        FIELDS
            .iter()
            .find(|(field, _)| *field == name)
            .map_or("", |(_, flag)| *flag)
    };
    let text = |name: &str| -> std::result::Result<Option<Text>, String> {
        f.text(name)?
            .map(|t| inputs::text(flag(name), t))
            .transpose()
    };
    let list = |name: &str, parse: fn(&str, &str) -> std::result::Result<String, String>| {
        f.list(name)?
            .iter()
            .map(|item| parse(flag(name), item))
            .collect::<std::result::Result<Vec<_>, _>>()
    };
    // Counts are read in the field's words (a json number or digits).
    let cap = |name: &str| f.count(name, 1).map(|n| n.map(|n| Cap(Some(n))));
    let name = inputs::name("--name", f.required_text("name")?)?;
    let fields = KeyFields {
        name: Some(name.clone()),
        description: text("description")?,
        owner: text("owner")?,
        category: text("category")?,
        group: text("group")?,
        scopes: list("scopes", inputs::token)?,
        deployment: text("deployment")?,
        allow_models: list("allowed_models", inputs::token)?,
        // IP lists are comma-separated per entry, like repeated --allow-ip flags.
        allow_ips: f
            .list("allowed_ips")?
            .iter()
            .map(|l| inputs::ip_list("--allow-ip", l))
            .collect::<std::result::Result<_, _>>()?,
        expires: f
            .text("expires")?
            .map(|t| inputs::expiry("--expires", t))
            .transpose()?,
        quota_total: cap("quota_total")?,
        quota_daily: cap("quota_daily")?,
        quota_weekly: cap("quota_weekly")?,
        quota_monthly: cap("quota_monthly")?,
        rate_limit: f
            .text("rate_limit")?
            .map(|t| inputs::rate("--rate-limit", t))
            .transpose()?,
        credits: f.count("credits", 1)?,
    };
    let mode = if f.flag("test")? {
        Mode::Test
    } else {
        Mode::Live
    };
    Ok((name, fields, mode))
}

/// The parsers speak of create's flags; a batch line has fields, so the first flag
/// its message names becomes that field (a bad name names neither: it says "name").
fn in_field_words(message: &str) -> String {
    FIELDS
        .iter()
        .filter_map(|(field, flag)| message.find(flag).map(|at| (at, field, flag)))
        .min()
        .map_or_else(
            || message.to_string(),
            |(_, field, flag)| message.replacen(flag, &format!("field `{field}`"), 1),
        )
}

fn read_lines(source: &str) -> Result<Vec<(usize, Vec<u8>)>> {
    let (reader, name): (Box<dyn Read>, String) = if source == "-" {
        (Box::new(std::io::stdin()), "the batch input (stdin)".into())
    } else {
        if std::path::Path::new(source).is_dir() {
            return Err(Error::usage(format!(
                "cannot read --batch file '{source}': it is a directory"
            )));
        }
        let file = std::fs::File::open(source)
            .map_err(|e| Error::usage(format!("cannot read --batch file '{source}': {e}")))?;
        (Box::new(file), format!("--batch file '{source}'"))
    };
    let mut lines = Vec::new();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        let line = read_bounded_line(&mut reader, &mut buf)
            .map_err(|e| Error::usage(format!("cannot read {name}: {e}")))?;
        if line == Line::Eof {
            break;
        }
        number += 1;
        if line == Line::TooLong {
            return Err(Error::usage(format!("line {number}: {}", too_long())));
        }
        // Blank lines (a trailing newline, a spacer) are skipped but still counted.
        if !buf.iter().all(u8::is_ascii_whitespace) {
            lines.push((number, std::mem::take(&mut buf)));
        }
    }
    Ok(lines)
}

fn parse_lines(ctx: &Ctx, lines: Vec<(usize, Vec<u8>)>) -> Result<Vec<(usize, KeySettings, Mode)>> {
    let mut parsed = Vec::with_capacity(lines.len());
    let mut first_line: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(lines.len());
    for (number, bytes) in lines {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line_error =
            |why: String| Error::usage(format!("line {number}: {}", in_field_words(&why)));
        let (name, fields, mode) = batch_fields(bytes).map_err(line_error)?;
        let settings = new_settings(&fields, name, ctx.actor(), ctx.now()).map_err(line_error)?;
        if let Some(first) = first_line.insert(settings.name.clone(), number) {
            return Err(Error::usage(format!(
                "line {number}: the name '{}' is also on line {first} of this batch: names must be unique",
                settings.name
            )));
        }
        parsed.push((number, settings, mode));
    }
    Ok(parsed)
}

/// Fuzzing entry point: parses and validates batch input (must never panic).
#[doc(hidden)]
pub fn fuzz_batch_input(input: &[u8]) {
    let ctx = Ctx::detached(chrono::DateTime::UNIX_EPOCH);
    let lines: Vec<(usize, Vec<u8>)> = input
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.to_vec()))
        .collect();
    let _ = parse_lines(&ctx, lines);
}

/// A key made ready off the database thread: what to insert and audit.
struct Prepared {
    number: usize,
    new_key: NewKey,
    audit_details: String,
}

pub fn run(ctx: &Ctx, args: &CreateArgs) -> Result<()> {
    let source = args.batch.as_deref().unwrap_or("-");
    if !args.fields.is_empty() || args.test {
        return Err(Error::usage(
            "--batch takes every key's fields from its input: drop the other create flags",
        ));
    }
    let parsed = parse_lines(ctx, read_lines(source)?)?;
    if parsed.is_empty() {
        return Err(Error::usage(
            "the batch input has no lines: give one json object per line",
        ));
    }
    let total = parsed.len();
    // One attempt, never retried (app::retry): the secrets of a batch are drawn as it
    // runs, and a failure leaves nothing behind, so the user runs it again as a whole.
    let mut store = ctx.open_write()?;
    let mut tx = store.begin(Intent::Bulk)?;
    let settings = tx.settings()?;
    let mut limit = KeyLimit::read(tx.as_ref(), &settings, ctx.now())?;
    let now = ctx.now();
    let prefix = settings.key_prefix.clone();

    // Two stages on two cores: a producer draws secrets, hashes them and renders the
    // output lines (kept in memory: nothing is printed until every key is in), while
    // this thread does the database work in order.
    const CHUNK: usize = 512;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Prepared>>(8);
    let output = std::thread::scope(|scope| -> Result<Vec<u8>> {
        let producer = scope.spawn(move || -> Result<Vec<u8>> {
            let mut out = Vec::with_capacity(total * 768);
            let mut chunk = Vec::with_capacity(CHUNK);
            for (number, key_settings, mode) in parsed {
                let (secret, new_key) = generate(&prefix, mode, key_settings, now, None)?;
                let record = KeyRecord::from_new(&new_key, 0);
                write_reveal(&mut out, RevealStyle::Json, &secret, &record, now)?;
                let audit_details = json!({
                    "name": record.settings.name,
                    "key_prefix": record.key_prefix,
                    "mode": record.mode.as_str(),
                    "expires_at": record.settings.expires_at.map(rfc3339),
                    "batch_line": number,
                })
                .to_string();
                chunk.push(Prepared {
                    number,
                    new_key,
                    audit_details,
                });
                // Hand over in chunks: one wake-up per chunk, not per key.
                if chunk.len() == CHUNK && sender.send(std::mem::take(&mut chunk)).is_err() {
                    return Ok(out); // the database stage failed; its error is reported
                }
            }
            if !chunk.is_empty() {
                let _ = sender.send(chunk);
            }
            Ok(out)
        });
        let consumed = (|| -> Result<()> {
            // One head lookup for the whole batch.
            let mut audit = AuditTrail::default();
            for item in receiver.iter().flatten() {
                let number = item.number;
                let fail = |e: Error| Error::new(e.kind, format!("line {number}: {}", e.message));
                let name = &item.new_key.settings.name;
                // Keys inserted earlier in this batch are visible here, so in-batch
                // duplicates are caught like any other taken name.
                claim_name(tx.as_ref(), name, None, now, "choose another name").map_err(&fail)?;
                limit.take().map_err(&fail)?;
                tx.insert_key(&item.new_key)?;
                audit.append(
                    &mut *tx,
                    audit_event_text(ctx, "created", Some(&item.new_key.id), item.audit_details),
                )?;
            }
            Ok(())
        })();
        // On failure, dropping the receiver stops the producer at its next send.
        drop(receiver);
        let produced = producer
            .join()
            .map_err(|_| Error::runtime("the batch worker thread failed"))?;
        consumed?;
        let out = produced?;
        Ok(out)
    })?;

    let mut out = stdout();
    let delivered = out
        .write_all(&output)
        .and_then(|_| out.flush())
        .and_then(|_| sync_stdout_if_file());
    delivered.map_err(|e| {
        Error::runtime(format!(
            "could not write the new keys to stdout ({e}); nothing was created"
        ))
    })?;
    tx.commit()?;
    ctx.note(&format!("created {}", plural(total as u64, "key")));
    Ok(())
}
