//! `keyctl import FILE|-` (SPEC §8): keys from another system, one json object per
//! line: `secret` (hashed on the way in, never kept) or `sha256`, create's fields (read
//! by `create --batch`'s parser, so every field batch learns, import learns too), and
//! `created_at` / `last_used_at`. Every line is checked, and every key checked against
//! the store, before anything is written; one transaction: all or nothing.

use std::collections::HashMap;
use std::io::Write;

use chrono::{DateTime, Utc};

use super::batch::{in_field_words, key_fields, read_json_lines};
use super::new_key::{new_settings, os_random};
use crate::app::audit::AuditTrail;
use crate::app::keys::{claim_name, KeyLimit};
use crate::cli::ImportArgs;
use crate::context::Ctx;
use crate::core::audit::AuditEvent;
use crate::core::fields::parse_line;
use crate::core::import::{from_secret, from_sha256, times, ImportedSecret};
use crate::core::key::{self, Mode};
use crate::core::model::{KeyRecord, KeySettings, NewKey};
use crate::core::time::{rfc3339, to_millis};
use crate::error::{Error, Result};
use crate::store::{Intent, Txn};
use crate::ui::keys::KeyRows;
use crate::ui::output::{plural, stdout};
use crate::ui::records::RecordWriter;

/// The fields import reads itself, besides create's.
const IMPORT_FIELDS: &[&str] = &["secret", "sha256", "created_at", "last_used_at"];

/// A good import line, shown when a line is not one.
const IMPORT_EXAMPLE: &str = r#"{"name": "legacy-ci", "sha256": "<64 hex digits>"}"#;

/// One checked line: the new key's settings and what its secret gave.
struct Line {
    number: usize,
    settings: KeySettings,
    mode: Mode,
    secret: ImportedSecret,
    created_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

/// Reads one line: create's fields, exactly one of `secret` and `sha256`, the times.
fn read_line(ctx: &Ctx, number: usize, bytes: &[u8]) -> std::result::Result<Line, String> {
    let f = parse_line(bytes, IMPORT_EXAMPLE)?;
    let (name, fields, asked_mode) = key_fields(&f, IMPORT_FIELDS)?;
    let secret = match (f.text("secret")?, f.text("sha256")?) {
        (Some(s), None) => from_secret(s)?,
        (None, Some(h)) => from_sha256(h)?,
        (Some(_), Some(_)) => {
            return Err("give either field `secret` or field `sha256`, not both".into())
        }
        (None, None) => {
            return Err("field `secret` or `sha256` is missing; one of them is required".into())
        }
    };
    // A keyctl-format secret carries its mode; `test` may only agree with it.
    let mode = match secret.mode {
        Some(Mode::Live) if asked_mode == Mode::Test => {
            return Err(format!(
                "field `test` is true but the secret ({}) is a live key",
                secret.shown
            ))
        }
        Some(m) => m,
        None => asked_mode,
    };
    let (created_at, last_used_at) =
        times(f.text("created_at")?, f.text("last_used_at")?, ctx.now())?;
    let settings = new_settings(&fields, name, ctx.actor(), ctx.now())?;
    Ok(Line {
        number,
        settings,
        mode,
        secret,
        created_at,
        last_used_at,
    })
}

/// Every line checked on its own and against the others (names, secrets).
fn read_lines(ctx: &Ctx, lines: Vec<(usize, Vec<u8>)>) -> Result<Vec<Line>> {
    let mut out: Vec<Line> = Vec::with_capacity(lines.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut hashes: HashMap<[u8; 32], usize> = HashMap::new();
    for (number, bytes) in lines {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = read_line(ctx, number, bytes)
            .map_err(|why| Error::usage(format!("line {number}: {}", in_field_words(&why))))?;
        if let Some(first) = names.insert(line.settings.name.clone(), number) {
            return Err(Error::usage(format!(
                "line {number}: the name '{}' is also on line {first}: names must be unique",
                line.settings.name
            )));
        }
        if let Some(first) = hashes.insert(line.secret.hash, number) {
            return Err(Error::usage(format!(
                "line {number}: the key {} is also on line {first}: each key is imported once",
                line.secret.shown
            )));
        }
        out.push(line);
    }
    Ok(out)
}

/// The keys the store already has among the lines' (any status: hashes are unique).
fn known_keys(tx: &dyn Txn, lines: &[Line]) -> Result<HashMap<[u8; 32], KeyRecord>> {
    let hashes: Vec<[u8; 32]> = lines.iter().map(|l| l.secret.hash).collect();
    Ok(tx.keys_by_hashes(&hashes)?.into_iter().collect())
}

/// The `created` event's details of an imported key.
fn imported_details(record: &KeyRecord, line: &Line) -> String {
    let details = serde_json::json!({
        "name": record.settings.name,
        "key_prefix": record.key_prefix,
        "mode": record.mode.as_str(),
        "expires_at": record.settings.expires_at.map(rfc3339),
        "imported": line.secret.given_as,
        "import_line": line.number,
        "created_at": rfc3339(record.created_at),
    });
    details.to_string()
}

/// The new keys' ids, drawn in one read of the OS random source.
fn new_ids(n: usize) -> Result<Vec<String>> {
    let mut random = vec![0u8; n * key::ID_LEN];
    os_random(&mut random)?;
    Ok(random
        .chunks_exact(key::ID_LEN)
        .map(|chunk| {
            let mut bytes = [0u8; key::ID_LEN];
            bytes.copy_from_slice(chunk);
            key::key_id(&bytes)
        })
        .collect())
}

pub fn run(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    let lines = read_lines(
        ctx,
        read_json_lines(&args.file, "the import input (stdin)", "import file")?,
    )?;
    if lines.is_empty() {
        return Err(Error::usage(
            "the import input has no lines: give one json object per line, like {\"name\": \"legacy-ci\", \"secret\": \"...\"}",
        ));
    }
    if args.dry_run {
        return dry_run(ctx, &lines);
    }
    let now = ctx.now();
    let mut store = ctx.open_write()?;
    let mut tx = store.begin(Intent::Bulk)?;
    check_against_store(tx.as_ref(), &lines, now)?;
    let new_keys = new_keys(&lines, now)?;
    let mut records = Vec::with_capacity(lines.len());
    let mut trail = AuditTrail::default();
    for (new_key, line) in new_keys.iter().zip(&lines) {
        tx.insert_key(new_key)?;
        if let Some(at) = line.last_used_at {
            tx.set_imported_last_use(&new_key.id, at)?;
        }
        let record = record_of(new_key, line);
        let event = AuditEvent {
            seq: 0,
            at_ms: to_millis(now),
            actor: ctx.actor().to_string(),
            action: "created".to_string(),
            key_id: Some(new_key.id.clone()),
            details: imported_details(&record, line),
        };
        trail.append(tx.as_mut(), event)?;
        records.push(record);
    }
    tx.commit()?;
    print(
        ctx,
        &records,
        &format!("imported {}", plural(records.len() as u64, "key")),
    )
}

/// `--dry-run`: every check of a real import in a read transaction, nothing written.
/// With no store yet, the lines are checked on their own (an empty store holds no
/// key or name they could clash with, and has no key limit).
fn dry_run(ctx: &Ctx, lines: &[Line]) -> Result<()> {
    let mut now = ctx.now();
    // Only a missing SQLite store is one the real import would create (SPEC §6).
    let missing = ctx.db.sqlite_path().is_some() && crate::store::is_empty_target(&ctx.db)?;
    if !missing {
        let mut store = ctx.open_read()?;
        now = ctx.now(); // the database's clock on PostgreSQL
        let tx = store.begin(Intent::Read)?;
        check_against_store(tx.as_ref(), lines, now)?;
    }
    let records: Vec<KeyRecord> = new_keys(lines, now)?
        .iter()
        .zip(lines)
        .map(|(k, line)| record_of(k, line))
        .collect();
    let n = plural(records.len() as u64, "key");
    let note = if missing {
        format!(
            "dry run: {n} would be imported into a new store at {}; nothing was written",
            ctx.db
        )
    } else {
        format!("dry run: {n} would be imported; nothing was written")
    };
    print(ctx, &records, &note)
}

/// The checks against the store, in its write (or dry run's read) transaction: keys
/// it already has, names other keys hold, the key limit.
fn check_against_store(tx: &dyn Txn, lines: &[Line], now: DateTime<Utc>) -> Result<()> {
    let known = known_keys(tx, lines)?;
    let settings = tx.settings()?;
    let mut limit = KeyLimit::read(tx, &settings, now)?;
    // Line by line, so the first line with a problem is the one named.
    for line in lines {
        if let Some(k) = known.get(&line.secret.hash) {
            return Err(Error::conflict(format!(
                "line {}: the key {} is already in this store as {} ('{}'); nothing was imported",
                line.number, line.secret.shown, k.id, k.settings.name
            )));
        }
        let fail = |e: Error| Error::new(e.kind, format!("line {}: {}", line.number, e.message));
        claim_name(tx, &line.settings.name, None, now, "choose another name").map_err(&fail)?;
        limit.take().map_err(&fail)?;
    }
    Ok(())
}

/// The keys the lines become, with new ids.
fn new_keys(lines: &[Line], now: DateTime<Utc>) -> Result<Vec<NewKey>> {
    let ids = new_ids(lines.len())?;
    Ok(lines
        .iter()
        .zip(ids)
        .map(|(line, id)| NewKey {
            id,
            hash: line.secret.hash,
            key_prefix: line.secret.key_prefix.clone(),
            mode: line.mode,
            created_at: line.created_at.unwrap_or(now),
            settings: line.settings.clone(),
            rotated_from: None,
        })
        .collect())
}

/// The record an imported key has once inserted: a new key's, with its old last use.
fn record_of(new_key: &NewKey, line: &Line) -> KeyRecord {
    let mut record = KeyRecord::from_new(new_key, 0);
    record.last_used_at = line.last_used_at;
    record
}

/// The keys as `list` prints them (never a secret), then `note` on stderr.
fn print(ctx: &Ctx, records: &[KeyRecord], note: &str) -> Result<()> {
    let now = ctx.now();
    let mut out = stdout();
    let mut writer = RecordWriter::new(
        &mut out,
        KeyRows::new(now, ctx.color),
        ctx.format,
        ctx.color,
    )?;
    for record in records {
        writer.add(record)?;
    }
    writer.finish()?;
    out.flush()?;
    drop(out);
    ctx.note(note);
    Ok(())
}
