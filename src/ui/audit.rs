//! Audit events (`audit`): json objects, csv rows, a table with details for people;
//! and the answer of `audit verify`.

use std::io::{self, Write};

use comfy_table::{Cell, Table};
use serde::Serialize;
use serde_json::Value;

use super::records::Rows;
use super::table::{local_time, text_cell};
use crate::core::key::hex;
use crate::core::time::{from_millis, rfc3339};
use crate::store::StoredAuditEvent;

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

/// The stored details as json; a value that is not json is shown as the string it is.
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

/// Audit events as `audit` lists them.
pub struct EventRows;

impl Rows for EventRows {
    type Item = StoredAuditEvent;
    type Row = [String; 5];
    const CSV_HEADER: &'static [&'static str] =
        &["seq", "at", "actor", "action", "key_id", "details", "hash"];
    const TABLE_HEADER: &'static [&'static str] = &["Time", "Actor", "Action", "Key", "Details"];

    fn json(&self, out: &mut dyn Write, e: &StoredAuditEvent) -> io::Result<()> {
        let j = EventJson {
            seq: e.event.seq,
            at: rfc3339(from_millis(e.event.at_ms)),
            actor: &e.event.actor,
            action: &e.event.action,
            key_id: e.event.key_id.as_deref(),
            details: details_value(e),
            hash: hex(&e.hash),
        };
        super::json::write(out, &j)
    }

    fn csv(&self, e: &StoredAuditEvent) -> Vec<String> {
        vec![
            e.event.seq.to_string(),
            rfc3339(from_millis(e.event.at_ms)),
            e.event.actor.clone(),
            e.event.action.clone(),
            e.event.key_id.clone().unwrap_or_default(),
            e.event.details.clone(),
            hex(&e.hash),
        ]
    }

    fn row(&self, e: &StoredAuditEvent) -> [String; 5] {
        [
            local_time(from_millis(e.event.at_ms)),
            e.event.actor.clone(),
            e.event.action.clone(),
            e.event.key_id.clone().unwrap_or_default(),
            details_text(&details_value(e)),
        ]
    }

    fn fill(&self, table: &mut Table, rows: Vec<[String; 5]>) {
        for row in rows {
            table.add_row(row.iter().map(|c| text_cell(c)).collect::<Vec<Cell>>());
        }
    }
}

/// What `audit verify` found.
pub struct Verdict<'a> {
    pub events: u64,
    pub head: &'a str,
    /// The event where the chain breaks, if one does.
    pub broken_at: Option<i64>,
    /// Why the chain is not intact, if it is not.
    pub problem: Option<&'a str>,
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    intact: bool,
    events: u64,
    head: &'a str,
    broken_at: Option<i64>,
    problem: Option<&'a str>,
}

/// `audit verify`'s answer: one json object, or `audit trail intact: …` (a broken
/// chain is told on stderr by the error).
pub fn write_verdict(out: &mut dyn Write, json: bool, v: &Verdict) -> io::Result<()> {
    if json {
        let j = VerifyJson {
            intact: v.problem.is_none(),
            events: v.events,
            head: v.head,
            broken_at: v.broken_at,
            problem: v.problem,
        };
        super::json::write(&mut *out, &j)?;
        writeln!(out)
    } else if v.problem.is_none() {
        writeln!(
            out,
            "audit trail intact: {}, head {}",
            super::output::plural(v.events, "event"),
            v.head
        )
    } else {
        Ok(())
    }
}
