//! `keyctl audit [KEYREF]` lists admin events; `keyctl audit verify` checks the hash
//! chain (and, with `--expect-head`, that a recorded head is still in it).

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::keyref::filter_id;
use crate::cli::{AuditArgs, AuditCommand, Format};
use crate::context::Ctx;
use crate::core::audit::{chain_hash, GENESIS};
use crate::core::key::hex;
use crate::core::limits::parse_count;
use crate::core::time::{from_millis, parse_time_spec, rfc3339};
use crate::error::{Error, Kind, Result};
use crate::store::{AuditQuery, StoredAuditEvent, Txn};
use crate::ui::output::{answer_written, plural, stdout};

use crate::core::audit::ACTIONS;

#[derive(Serialize)]
struct EventJson<'a> {
    seq: i64,
    at: String,
    actor: &'a str,
    action: &'a str,
    key_id: Option<&'a str>,
    details: Value,
    hash: String,
}

fn details_value(e: &StoredAuditEvent) -> Value {
    serde_json::from_str(&e.event.details).unwrap_or(Value::String(e.event.details.clone()))
}

/// Details for people: edits as `field: old → new`, other events as `key=value`.
fn details_text(details: &Value) -> String {
    let show = |v: &Value| match v {
        Value::Null => "none".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(Value::Object(changes)) = details.get("changes") {
        return changes
            .iter()
            .map(|(f, c)| format!("{f}: {} → {}", show(&c["old"]), show(&c["new"])))
            .collect::<Vec<_>>()
            .join(", ");
    }
    match details {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => show(other),
    }
}

/// The keys whose events `audit KEYREF` shows: the whole rotation chain of the key,
/// since the name moves from key to key. A name that no key holds now (the newest of
/// its chain was revoked) still means its chain when all its keys are in that one chain.
fn chain_of(tx: &dyn Txn, reference: &str, now: DateTime<Utc>) -> Result<Vec<String>> {
    let err = match filter_id(tx, reference, now) {
        Ok(id) => return Ok(tx.rotation_chain(&id)?),
        Err(e) if e.kind == Kind::Conflict => e,
        Err(e) => return Err(e),
    };
    let named = tx.keys_by_name(reference.trim())?;
    if let Some(first) = named.first() {
        let chain = tx.rotation_chain(&first.id)?;
        if named.iter().all(|k| chain.contains(&k.id)) {
            return Ok(chain);
        }
    }
    Err(err)
}

pub fn run(ctx: &Ctx, args: AuditArgs) -> Result<()> {
    if let Some(AuditCommand::Verify { expect_head }) = args.command {
        return verify(ctx, expect_head);
    }
    let limit = parse_count("--limit", &args.limit).map_err(Error::usage)?;
    let since = match &args.since {
        None => None,
        Some(t) => parse_time_spec(t, false)
            .map_err(|e| Error::usage(format!("invalid --since: {e}")))?
            .before(ctx.now),
    };
    if let Some(a) = &args.action {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(Error::usage(format!(
                "invalid --action '{a}': use one of {}",
                ACTIONS.join(", ")
            )));
        }
    }
    let mut store = ctx.open_read()?;
    let tx = store.read()?;
    let key_ids = match &args.keyref {
        None => Vec::new(),
        Some(r) => chain_of(tx.as_ref(), r, ctx.now)?,
    };
    let query = AuditQuery {
        key_id: None,
        key_ids,
        since,
        action: args.action.clone(),
        limit: Some(limit),
        newest_first: true,
    };
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            let mut first = true;
            tx.for_each_audit(&query, &mut |e| {
                out.write_all(if first { b"[\n" } else { b",\n" })?;
                first = false;
                let j = EventJson {
                    seq: e.event.seq,
                    at: rfc3339(from_millis(e.event.at_ms)),
                    actor: &e.event.actor,
                    action: &e.event.action,
                    key_id: e.event.key_id.as_deref(),
                    details: details_value(e),
                    hash: hex(&e.hash),
                };
                crate::ui::json::write(&mut out, &j)
            })?;
            out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
        }
        Format::Csv => {
            crate::ui::csv::write_row(
                &mut out,
                &["seq", "at", "actor", "action", "key_id", "details", "hash"],
            )?;
            tx.for_each_audit(&query, &mut |e| {
                crate::ui::csv::write_row(
                    &mut out,
                    &[
                        e.event.seq.to_string(),
                        rfc3339(from_millis(e.event.at_ms)),
                        e.event.actor.clone(),
                        e.event.action.clone(),
                        e.event.key_id.clone().unwrap_or_default(),
                        e.event.details.clone(),
                        hex(&e.hash),
                    ],
                )
            })?;
        }
        Format::Table => {
            let mut rows: Vec<[String; 5]> = Vec::new();
            tx.for_each_audit(&query, &mut |e| {
                rows.push([
                    crate::ui::keys::local_time(from_millis(e.event.at_ms)),
                    e.event.actor.clone(),
                    e.event.action.clone(),
                    e.event.key_id.clone().unwrap_or_default(),
                    details_text(&details_value(e)),
                ]);
                Ok(())
            })?;
            if rows.is_empty() {
                ctx.note("no audit events match");
            } else {
                crate::ui::keys::write_plain_table(
                    &mut out,
                    &["Time", "Actor", "Action", "Key", "Details"],
                    rows,
                    ctx.color,
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct VerifyJson {
    intact: bool,
    events: u64,
    head: String,
    broken_at: Option<i64>,
    problem: Option<String>,
}

fn verify(ctx: &Ctx, expect_head: Option<String>) -> Result<()> {
    let expected = match expect_head {
        None => None,
        Some(h) => {
            let h = h.trim().to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::usage(format!(
                    "invalid --expect-head '{h}': use the 64-hex-digit head printed by 'keyctl audit verify'"
                )));
            }
            Some(h)
        }
    };
    let mut store = ctx.open_read()?;
    let tx = store.read()?;
    let query = AuditQuery::default();
    let mut prev = GENESIS;
    let mut expected_seq = 1i64;
    let mut count = 0u64;
    let mut seen_expected = expected.as_deref() == Some(&hex(&GENESIS));
    let mut broken: Option<(i64, String)> = None;
    tx.for_each_audit(&query, &mut |e| {
        if broken.is_some() {
            return Ok(());
        }
        let seq = e.event.seq;
        let problem = if seq != expected_seq {
            Some(format!(
                "expected event {expected_seq} next but found event {seq} (events were deleted or inserted)"
            ))
        } else if e.prev_hash != prev {
            Some("its link to the previous event does not match (an earlier event was changed, deleted or inserted)".to_string())
        } else if chain_hash(&prev, &e.event) != e.hash.as_slice() {
            Some("its contents do not match its hash (the event was edited)".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            broken = Some((seq, p));
            return Ok(());
        }
        prev.copy_from_slice(&e.hash);
        expected_seq += 1;
        count += 1;
        if expected.as_deref() == Some(&hex(&e.hash)) {
            seen_expected = true;
        }
        Ok(())
    })?;
    let head = hex(&prev);
    let verdict: std::result::Result<(), (Option<i64>, String)> = match (&broken, &expected) {
        (Some((seq, p)), _) => Err((Some(*seq), format!("audit trail broken at event {seq}: {p}"))),
        (None, Some(h)) if !seen_expected => Err((
            None,
            format!(
                "audit trail does not contain the expected head {h}: its newest events were cut off or it was rewritten (head now {head}, {})",
                plural(count, "event")
            ),
        )),
        _ => Ok(()),
    };
    let mut out = stdout();
    let written = (|| -> std::io::Result<()> {
        if ctx.format == Format::Json {
            let j = VerifyJson {
                intact: verdict.is_ok(),
                events: count,
                head: head.clone(),
                broken_at: verdict.as_ref().err().and_then(|(s, _)| *s),
                problem: verdict.as_ref().err().map(|(_, p)| p.clone()),
            };
            crate::ui::json::write(&mut out, &j)?;
            writeln!(out)?;
        } else if verdict.is_ok() {
            writeln!(
                out,
                "audit trail intact: {}, head {head}",
                plural(count, "event")
            )?;
        }
        out.flush()
    })();
    answer_written(written)?;
    verdict.map_err(|(_, msg)| Error::new(Kind::AuditBroken, msg))
}
