//! `keyctl create --batch FILE|-`: one json object of create fields per line, all keys
//! in one transaction. Every line is validated and every key inserted before any
//! secret is printed, so a bad line fails the whole batch with nothing shown or kept.

use std::io::{BufRead, BufReader, Read, Write};

use serde_json::json;

use super::audit_event_text;
use super::create::{generate, key_settings};
use crate::cli::CreateArgs;
use crate::context::Ctx;
use crate::core::fields::{parse_line, too_long, MAX_LINE};
use crate::core::key::Mode;
use crate::core::model::{KeyRecord, KeySettings, NewKey};
use crate::core::time::rfc3339;
use crate::error::{Error, Result};
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

/// Reads one batch line into create's arguments, each field type-checked by name.
fn batch_args(line: &[u8]) -> std::result::Result<(CreateArgs, Mode), String> {
    let f = parse_line(line, BATCH_EXAMPLE)?;
    let names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
    f.refuse_unknown(&names)?;
    let text = |name: &str| f.text(name).map(|t| t.map(str::to_string));
    // Counts are checked here, in the field's words; create checks them again.
    let count = |name: &str| f.count(name, 1).map(|n| n.map(|n| n.to_string()));
    let mode = if f.flag("test")? {
        Mode::Test
    } else {
        Mode::Live
    };
    let args = CreateArgs {
        name: Some(f.required_text("name")?.to_string()),
        description: text("description")?,
        owner: text("owner")?,
        category: text("category")?,
        group: text("group")?,
        scopes: f.list("scopes")?,
        deployment: text("deployment")?,
        allow_models: f.list("allowed_models")?,
        // IP lists are comma-separated per entry, like repeated --allow-ip flags.
        allow_ips: f.list("allowed_ips")?,
        expires: text("expires")?,
        quota_total: count("quota_total")?,
        quota_daily: count("quota_daily")?,
        quota_weekly: count("quota_weekly")?,
        quota_monthly: count("quota_monthly")?,
        rate_limit: text("rate_limit")?,
        credits: count("credits")?,
        test: mode == Mode::Test,
        ..CreateArgs::default()
    };
    Ok((args, mode))
}

/// key_settings speaks of create's flags; a batch line has fields, so the first flag
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

/// True when any create flag other than --batch was given.
pub fn has_other_fields(a: &CreateArgs) -> bool {
    a.name.is_some()
        || a.description.is_some()
        || a.owner.is_some()
        || a.category.is_some()
        || a.group.is_some()
        || !a.scopes.is_empty()
        || a.deployment.is_some()
        || !a.allow_models.is_empty()
        || !a.allow_ips.is_empty()
        || a.expires.is_some()
        || a.quota_total.is_some()
        || a.quota_daily.is_some()
        || a.quota_weekly.is_some()
        || a.quota_monthly.is_some()
        || a.rate_limit.is_some()
        || a.credits.is_some()
        || a.test
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
        buf.clear();
        // Bounded per line, so input without newlines cannot exhaust memory.
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::usage(format!("cannot read {name}: {e}")))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.len() > MAX_LINE {
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
        let (args, mode) =
            batch_args(bytes).map_err(|why| Error::usage(format!("line {number}: {why}")))?;
        let name = args.name.clone().unwrap_or_default();
        let settings = key_settings(ctx, &args, name, ctx.now).map_err(|e| {
            Error::new(
                e.kind,
                format!("line {number}: {}", in_field_words(&e.message)),
            )
        })?;
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

pub fn run(ctx: &Ctx, source: &str) -> Result<()> {
    let parsed = parse_lines(ctx, read_lines(source)?)?;
    if parsed.is_empty() {
        return Err(Error::usage(
            "the batch input has no lines: give one json object per line",
        ));
    }
    let total = parsed.len();
    let mut store = ctx.open_write()?;
    let mut tx = store.write_bulk()?;
    let settings = tx.settings()?;
    let mut counted = match settings.max_keys {
        Some(_) => tx.count_limited(ctx.now)?,
        None => 0,
    };
    let now = ctx.now;
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
                    "name": record.name,
                    "key_prefix": record.key_prefix,
                    "mode": record.mode.as_str(),
                    "expires_at": record.expires_at.map(rfc3339),
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
            for item in receiver.iter().flatten() {
                let number = item.number;
                let fail = |e: Error| Error::new(e.kind, format!("line {number}: {}", e.message));
                let name = &item.new_key.settings.name;
                // Keys inserted earlier in this batch are visible here, so in-batch
                // duplicates are caught like any other taken name.
                if let Some(holder) = tx.name_holder(name, now)? {
                    return Err(fail(Error::conflict(format!(
                        "a key named '{name}' already exists ({holder}): choose another name"
                    ))));
                }
                if let Some(max) = settings.max_keys {
                    if counted >= max {
                        return Err(fail(Error::conflict(format!(
                            "key limit reached ({counted}/{max}): revoke or delete an unused key first"
                        ))));
                    }
                    counted += 1;
                }
                tx.insert_key(&item.new_key)?;
                tx.append_audit(audit_event_text(
                    ctx,
                    "created",
                    Some(&item.new_key.id),
                    item.audit_details,
                ))?;
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
