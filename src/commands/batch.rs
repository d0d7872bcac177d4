//! `keyctl create --batch FILE|-`: one json object of create fields per line, all keys
//! in one transaction. Every line is validated and every key inserted before any
//! secret is printed, so a bad line fails the whole batch with nothing shown or kept.

use std::io::{BufRead, BufReader, Read, Write};

use serde::Deserialize;
use serde_json::json;

use super::audit_event_text;
use super::create::{generate, key_settings};
use crate::cli::CreateArgs;
use crate::context::Ctx;
use crate::core::key::Mode;
use crate::core::model::{KeyRecord, KeySettings, NewKey};
use crate::core::time::rfc3339;
use crate::error::{Error, Result};
use crate::ui::output::{stdout, sync_stdout_if_file};
use crate::ui::reveal::{write_reveal, RevealStyle};

/// A number given as json number or string (`"quota_daily": 100` or `"100"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Count {
    Number(serde_json::Number),
    Text(String),
}

impl Count {
    fn text(self) -> String {
        match self {
            Count::Number(n) => n.to_string(),
            Count::Text(t) => t,
        }
    }
}

/// A list given as json array or comma-separated string.
#[derive(Deserialize)]
#[serde(untagged)]
enum List {
    Items(Vec<String>),
    Text(String),
}

impl List {
    fn items(self) -> Vec<String> {
        match self {
            List::Items(v) => v,
            List::Text(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
        }
    }
}

/// The create fields a batch line may carry (the flags' names, with `_`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLine {
    name: String,
    description: Option<String>,
    owner: Option<String>,
    category: Option<String>,
    group: Option<String>,
    scopes: Option<List>,
    deployment: Option<String>,
    allowed_models: Option<List>,
    allowed_ips: Option<List>,
    expires: Option<String>,
    quota_total: Option<Count>,
    quota_daily: Option<Count>,
    quota_weekly: Option<Count>,
    quota_monthly: Option<Count>,
    rate_limit: Option<String>,
    credits: Option<Count>,
    #[serde(default)]
    test: bool,
}

impl BatchLine {
    fn into_args(self) -> CreateArgs {
        let list = |l: Option<List>| l.map(List::items).unwrap_or_default();
        CreateArgs {
            name: Some(self.name),
            description: self.description,
            owner: self.owner,
            category: self.category,
            group: self.group,
            scopes: list(self.scopes),
            deployment: self.deployment,
            allow_models: list(self.allowed_models),
            // IP lists are comma-separated per entry, like repeated --allow-ip flags.
            allow_ips: list(self.allowed_ips),
            expires: self.expires,
            quota_total: self.quota_total.map(Count::text),
            quota_daily: self.quota_daily.map(Count::text),
            quota_weekly: self.quota_weekly.map(Count::text),
            quota_monthly: self.quota_monthly.map(Count::text),
            rate_limit: self.rate_limit,
            credits: self.credits.map(Count::text),
            test: self.test,
            ..CreateArgs::default()
        }
    }
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

/// Longest batch line accepted (a create object is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

fn read_lines(source: &str) -> Result<Vec<(usize, String)>> {
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
            return Err(Error::usage(format!(
                "line {number}: longer than {MAX_LINE} bytes (each line must be one json object of create fields)"
            )));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| Error::usage(format!("line {number}: not valid UTF-8 text")))?;
        let text = text.trim();
        if !text.is_empty() {
            lines.push((number, text.to_string()));
        }
    }
    Ok(lines)
}

fn parse_lines(ctx: &Ctx, lines: Vec<(usize, String)>) -> Result<Vec<(usize, KeySettings, Mode)>> {
    let mut parsed = Vec::with_capacity(lines.len());
    let mut first_line: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(lines.len());
    for (number, text) in lines {
        let line: BatchLine = serde_json::from_str(&text).map_err(|e| {
            // serde's own position ("at line 1 column 6") is within the line: drop it.
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            Error::usage(format!(
                "line {number}: {msg} (each line must be one json object of create fields)"
            ))
        })?;
        let mode = if line.test { Mode::Test } else { Mode::Live };
        let args = line.into_args();
        let name = args.name.clone().unwrap_or_default();
        let settings = key_settings(ctx, &args, name, ctx.now)
            .map_err(|e| Error::new(e.kind, format!("line {number}: {}", e.message)))?;
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
    let lines: Vec<(usize, String)> = input
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| std::str::from_utf8(l).ok().map(|t| (i + 1, t.to_string())))
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
    ctx.note(&format!("created {total} keys"));
    Ok(())
}
