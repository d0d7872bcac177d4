//! `keyctl create --batch FILE|-`: one json object of create fields per line, all keys
//! in one transaction. Every line is validated and every key inserted before any
//! secret is printed, so a bad line fails the whole batch with nothing shown or kept.

use std::io::{BufReader, Read, Write};

use chrono::{DateTime, Utc};

use super::new_key::{generate_with, new_settings, RandomPool};
use crate::app::keys::{claim_name, KeyLimit};
use crate::cli::{CreateArgs, KeyFields};
use crate::context::Ctx;
use crate::core::audit::{next as next_event, AuditEvent, StoredAuditEvent};
use crate::core::fields::{parse_line, read_bounded_line, too_long, JsonLine, Line};
use crate::core::inputs::{self, Cap, Text};
use crate::core::key::{Mode, Secret};
use crate::core::meta;
use crate::core::model::{KeyRecord, KeySettings, NewKey, State};
use crate::core::time::rfc3339;
use crate::error::{Error, Result};
use crate::store::Intent;
use crate::ui::keys::push_json;
use crate::ui::output::{plural, stdout, sync_stdout_if_file};

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
    ("refill", "--refill"),
    ("refill_mode", "--refill-mode"),
    ("test", "--test"),
    ("meta", "--meta"),
];

/// A good batch line, shown when a line is not one.
const BATCH_EXAMPLE: &str = r#"{"name": "ci-deploy", "scopes": ["read"]}"#;

/// Reads one batch line into create's fields, each type-checked by name and then
/// parsed by its flag's own parser; returns the name too (it is required here).
fn batch_fields(line: &[u8]) -> std::result::Result<(String, KeyFields, Mode), String> {
    let f = parse_line(line, BATCH_EXAMPLE)?;
    key_fields(&f, &[])
}

/// Create's fields of one parsed line, refusing any other field but `extra` (which
/// `import` reads itself: `secret`, `sha256`, `created_at`, `last_used_at`).
pub(crate) fn key_fields(
    f: &JsonLine,
    extra: &[&str],
) -> std::result::Result<(String, KeyFields, Mode), String> {
    let mut names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
    names.extend_from_slice(extra);
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
        meta: f
            .string_map("meta")?
            .into_iter()
            .map(|(key, value)| meta::entry("--meta", key, value))
            .collect::<std::result::Result<_, _>>()?,
        refill: f
            .text("refill")?
            .map(|t| inputs::refill("--refill", t))
            .transpose()?,
        refill_mode: f
            .text("refill_mode")?
            .map(|t| inputs::refill_mode("--refill-mode", t))
            .transpose()?,
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
pub(crate) fn in_field_words(message: &str) -> String {
    FIELDS
        .iter()
        .filter_map(|(field, flag)| {
            // At one place, the longer flag (`--refill-mode`, not `--refill`).
            message
                .find(flag)
                .map(|at| (at, std::cmp::Reverse(flag.len()), field, flag))
        })
        .min()
        .map_or_else(
            || message.to_string(),
            |(_, _, field, flag)| message.replacen(flag, &format!("field `{field}`"), 1),
        )
}

fn read_lines(source: &str) -> Result<Vec<(usize, Vec<u8>)>> {
    read_json_lines(source, "the batch input (stdin)", "--batch file")
}

/// The non-blank lines of `source` (a file, or `-` for stdin) with their numbers;
/// `stdin_name` and `file_word` name the input in messages.
pub(crate) fn read_json_lines(
    source: &str,
    stdin_name: &str,
    file_word: &str,
) -> Result<Vec<(usize, Vec<u8>)>> {
    let (reader, name): (Box<dyn Read>, String) = if source == "-" {
        (Box::new(std::io::stdin()), stdin_name.into())
    } else {
        if std::path::Path::new(source).is_dir() {
            return Err(Error::usage(format!(
                "cannot read {file_word} '{source}': it is a directory"
            )));
        }
        let file = std::fs::File::open(source)
            .map_err(|e| Error::usage(format!("cannot read {file_word} '{source}': {e}")))?;
        (Box::new(file), format!("{file_word} '{source}'"))
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

/// Checks batch lines one at a time, in order: each line's fields, and its name
/// against every earlier line's.
struct LineParser<'a> {
    actor: &'a str,
    now: DateTime<Utc>,
    first_line: std::collections::HashMap<String, usize>,
}

impl<'a> LineParser<'a> {
    fn new(actor: &'a str, now: DateTime<Utc>, lines: usize) -> Self {
        LineParser {
            actor,
            now,
            first_line: std::collections::HashMap::with_capacity(lines),
        }
    }

    fn parse(&mut self, number: usize, bytes: &[u8]) -> Result<(KeySettings, Mode)> {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line_error =
            |why: String| Error::usage(format!("line {number}: {}", in_field_words(&why)));
        let (name, fields, mode) = batch_fields(bytes).map_err(line_error)?;
        let settings = new_settings(&fields, name, self.actor, self.now).map_err(line_error)?;
        if let Some(first) = self.first_line.insert(settings.name.clone(), number) {
            return Err(Error::usage(format!(
                "line {number}: the name '{}' is also on line {first} of this batch: names must be unique",
                settings.name
            )));
        }
        Ok((settings, mode))
    }
}

/// Every line parsed, or the first bad one's error.
fn parse_lines(ctx: &Ctx, lines: &[(usize, Vec<u8>)]) -> Result<Vec<(usize, KeySettings, Mode)>> {
    let mut parser = LineParser::new(ctx.actor(), ctx.now(), lines.len());
    lines
        .iter()
        .map(|(number, bytes)| {
            let (settings, mode) = parser.parse(*number, bytes)?;
            Ok((*number, settings, mode))
        })
        .collect()
}

/// Maps an error of the store, or of one line's insert, to the first bad line's error
/// when the batch has one: a bad line fails the batch as if every line had been checked
/// before the store was touched.
fn bad_line_first<'a, E: Into<Error>>(
    ctx: &'a Ctx,
    lines: &'a [(usize, Vec<u8>)],
) -> impl FnOnce(E) -> Error + 'a {
    move |e| match parse_lines(ctx, lines) {
        Err(bad_line) => bad_line,
        Ok(_) => e.into(),
    }
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
    let _ = parse_lines(&ctx, &lines);
}

/// A key made ready off the database thread: what to insert and its audit event,
/// already linked into the chain.
struct Prepared {
    number: usize,
    new_key: NewKey,
    audit: StoredAuditEvent,
}

/// The `created` event's details for a batch key: what `json!` with these members
/// writes (serde_json's object keys are sorted; its own string escapes), built
/// without a map per key. A test holds the two equal.
fn created_details(record: &KeyRecord, number: usize) -> String {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"{\"batch_line\":");
    crate::ui::json::push_u64(&mut out, number as u64);
    out.extend_from_slice(b",\"expires_at\":");
    match record.settings.expires_at {
        Some(t) => plain_json_str(&mut out, &rfc3339(t)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"key_prefix\":");
    match &record.key_prefix {
        Some(p) => plain_json_str(&mut out, p),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"mode\":\"");
    out.extend_from_slice(record.mode.as_str().as_bytes());
    out.extend_from_slice(b"\",\"name\":");
    plain_json_str(&mut out, &record.settings.name);
    out.push(b'}');
    // Every piece is UTF-8: json syntax and strings serde_json wrote.
    String::from_utf8(out).unwrap_or_default()
}

/// A json string as serde_json writes it (the audit trail's details are plain serde
/// json, unlike output, which also escapes hidden characters).
pub(crate) fn plain_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The reveal line of one batch key: `{"key": …, "key_details": …}` as
/// `write_reveal` writes it in json style (key_details is the key object).
fn push_reveal(out: &mut Vec<u8>, secret: &Secret, record: &KeyRecord, now: DateTime<Utc>) {
    out.extend_from_slice(b"{\"key\":");
    crate::ui::json::push_str(out, secret.expose());
    out.extend_from_slice(b",\"key_details\":");
    push_json(out, record, now);
    out.extend_from_slice(b"}\n");
}

/// The record a new key has once inserted, made of the new key's own values, and its
/// hash (kept aside: a record has none).
fn record_of(new: NewKey) -> ([u8; 32], KeyRecord) {
    let refilled_at = new.refilled_at();
    let record = KeyRecord {
        id: new.id,
        settings: new.settings,
        key_prefix: new.key_prefix,
        mode: new.mode,
        credits_used: 0,
        accepted_total: 0,
        events_total: 0,
        credits_total: 0,
        pool_accepted_total: 0,
        created_at: new.created_at,
        last_used_at: None,
        last_used_ip: None,
        state: State::Active,
        revoked_at: None,
        revoke_reason: None,
        rotated_from: new.rotated_from,
        rotated_to: None,
        refilled_at,
        heads: None,
    };
    (new.hash, record)
}

/// The inverse of [`record_of`].
fn new_key_of(hash: [u8; 32], record: KeyRecord) -> NewKey {
    NewKey {
        id: record.id,
        hash,
        key_prefix: record.key_prefix,
        mode: record.mode,
        created_at: record.created_at,
        settings: record.settings,
        rotated_from: record.rotated_from,
    }
}

pub fn run(ctx: &Ctx, args: &CreateArgs) -> Result<()> {
    let source = args.batch.as_deref().unwrap_or("-");
    if !args.fields.is_empty() || args.test {
        return Err(Error::usage(
            "--batch takes every key's fields from its input: drop the other create flags",
        ));
    }
    let lines = read_lines(source)?;
    if lines.is_empty() {
        return Err(Error::usage(
            "the batch input has no lines: give one json object per line",
        ));
    }
    let total = lines.len();
    // The lines are parsed on the producer thread below, while this one inserts the
    // keys before them; bad_line_first keeps a bad line's error first. A store this
    // command would create (a missing SQLite file) is made only for a batch whose
    // every line is good, so its lines are checked before it is opened.
    if ctx.db.sqlite_path().is_some_and(|path| !path.exists()) {
        parse_lines(ctx, &lines)?;
    }
    // One attempt, never retried (app::retry): the secrets of a batch are drawn as it
    // runs, and a failure leaves nothing behind, so the user runs it again as a whole.
    let mut store = ctx.open_write().map_err(bad_line_first(ctx, &lines))?;
    let mut tx = store
        .begin(Intent::Bulk)
        .map_err(bad_line_first(ctx, &lines))?;
    // Taken under the write lock: the keys and audit events come after every commit
    // before this one.
    let now = ctx.now();
    let (settings, mut limit, names_held, head) = (|| -> Result<_> {
        let settings = tx.settings()?;
        let limit = KeyLimit::read(tx.as_ref(), &settings, now)?;
        // Names are held only by keys that count toward max-keys (active or disabled
        // and unexpired; see Txn::count_limited), so when none does, no name in the
        // store is taken and only in-batch duplicates could clash: the parser refuses
        // those. Then the per-key name lookup is skipped (it is a third of the
        // database work of a batch into an empty store).
        let names_held = tx.count_limited(now)? > 0;
        if !names_held {
            tx.expect_new_keys(total)?;
        }
        // The chain's head, read (and locked) once: the producer links every event to
        // the one before, as AuditTrail would, off the database thread.
        let head = tx.audit_head_for_append()?;
        Ok((settings, limit, names_held, head))
    })()
    .map_err(bad_line_first(ctx, &lines))?;
    let prefix = settings.key_prefix.clone();
    let actor = ctx.actor().to_string();
    let created_at_ms = crate::core::time::to_millis(now);

    // Two stages on two cores: a producer parses the lines, draws secrets, hashes
    // them, renders the output lines (kept in memory: nothing is printed until every
    // key is in) and chains the audit events, while this thread does the database
    // work in order.
    const CHUNK: usize = 512;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Prepared>>(8);
    let output = std::thread::scope(|scope| -> Result<Vec<u8>> {
        let lines = &lines;
        let producer = scope.spawn(move || -> Result<Vec<u8>> {
            let mut out = Vec::with_capacity(total * 1024);
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut random = RandomPool::new();
            let mut head = head;
            let mut parser = LineParser::new(&actor, now, total);
            let mut rest = lines.iter();
            for (number, bytes) in rest.by_ref() {
                let number = *number;
                let (key_settings, mode) = parser.parse(number, bytes)?;
                let (secret, new_key) = generate_with(
                    &mut |buf| random.fill(buf),
                    &prefix,
                    mode,
                    key_settings,
                    now,
                    None,
                )?;
                // The record shown borrows the new key's values (moved, not copied)
                // and gives them back for the insert.
                let (hash, record) = record_of(new_key);
                push_reveal(&mut out, &secret, &record, now);
                let details = created_details(&record, number);
                let event = AuditEvent {
                    seq: 0,
                    at_ms: created_at_ms,
                    actor: actor.clone(),
                    action: "created".to_string(),
                    key_id: Some(record.id.clone()),
                    details,
                };
                let stored = next_event(head.as_ref(), event);
                head = Some(stored.as_head());
                chunk.push(Prepared {
                    number,
                    new_key: new_key_of(hash, record),
                    audit: stored,
                });
                // Hand over in chunks: one wake-up per chunk, not per key.
                if chunk.len() == CHUNK && sender.send(std::mem::take(&mut chunk)).is_err() {
                    break; // the database stage failed
                }
            }
            // After a failed insert the lines left are only checked: a bad one's error
            // is the one reported.
            for (number, bytes) in rest {
                parser.parse(*number, bytes)?;
            }
            if !chunk.is_empty() {
                let _ = sender.send(chunk);
            }
            Ok(out)
        });
        let consumed = (|| -> Result<()> {
            for chunk in receiver.iter() {
                for item in &chunk {
                    let number = item.number;
                    let fail =
                        |e: Error| Error::new(e.kind, format!("line {number}: {}", e.message));
                    // Against the store's names; in-batch duplicates were refused
                    // already, so checking a chunk's names before inserting it is the
                    // same as checking each just before its insert.
                    if names_held {
                        let name = &item.new_key.settings.name;
                        claim_name(tx.as_ref(), name, None, now, "choose another name")
                            .map_err(&fail)?;
                    }
                    limit.take().map_err(&fail)?;
                }
                let keys: Vec<&NewKey> = chunk.iter().map(|item| &item.new_key).collect();
                tx.insert_keys(&keys)?;
                for item in &chunk {
                    tx.insert_audit(&item.audit)?;
                }
            }
            Ok(())
        })();
        // On failure, dropping the receiver stops the producer at its next send.
        drop(receiver);
        let produced = producer
            .join()
            .map_err(|_| Error::runtime("the batch worker thread failed"))?;
        // A bad line's error before the database stage's (see bad_line_first).
        let out = produced?;
        consumed?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::KeySettings;

    fn record(name: &str, expires: Option<DateTime<Utc>>) -> KeyRecord {
        let new = NewKey {
            id: "key_abcdefghijkl".into(),
            hash: [7; 32],
            key_prefix: Some("sk_live_AbC9".into()),
            mode: Mode::Live,
            created_at: DateTime::UNIX_EPOCH,
            settings: KeySettings {
                name: name.into(),
                expires_at: expires,
                ..KeySettings::default()
            },
            rotated_from: None,
        };
        KeyRecord::from_new(&new, 0)
    }

    #[test]
    fn created_details_are_what_json_macro_writes() {
        let later = DateTime::from_timestamp(1_900_000_000, 0);
        for (name, expires) in [("ci", None), ("a\u{1b}\"\\\u{202e}é😀\u{7f}", later)] {
            let r = record(name, expires);
            let expected = serde_json::json!({
                "name": r.settings.name,
                "key_prefix": r.key_prefix,
                "mode": r.mode.as_str(),
                "expires_at": r.settings.expires_at.map(rfc3339),
                "batch_line": 42,
            })
            .to_string();
            assert_eq!(created_details(&r, 42), expected);
        }
    }

    #[test]
    fn a_record_made_of_a_new_key_is_from_new_and_gives_it_back() {
        let new = NewKey {
            id: "key_abcdefghijkl".into(),
            hash: [9; 32],
            key_prefix: Some("sk_test_AbC9".into()),
            mode: Mode::Test,
            created_at: DateTime::UNIX_EPOCH,
            settings: KeySettings {
                name: "n".into(),
                ..KeySettings::default()
            },
            rotated_from: Some("key_from".into()),
        };
        let expected = KeyRecord::from_new(&new, 0);
        let (hash, record) = record_of(new.clone());
        assert_eq!(record, expected);
        let back = new_key_of(hash, record);
        assert_eq!(
            (
                back.id,
                back.hash,
                back.key_prefix,
                back.mode,
                back.created_at
            ),
            (new.id, new.hash, new.key_prefix, new.mode, new.created_at)
        );
        assert_eq!(
            (back.settings, back.rotated_from),
            (new.settings, new.rotated_from)
        );
    }
}
