//! Key records: json objects, csv rows, `list` tables with their summary, `show`
//! details.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use comfy_table::{Cell, Color, Table};
use serde::Serialize;

use super::csv;
use super::meta::{meta_lines, MetaJson};
use super::records::Rows;
use super::table::{
    cell_width, fix_widths, header, label, laid_out_widths, new_table, relative_or_never, render,
    text_cell, time_with_relative,
};
use super::usage::{usage_text, Windows, WindowsJson};
use crate::core::key::Mode;
use crate::core::limits::RateUnit;
use crate::core::model::{KeyRecord, Status, StatusCounts};
use crate::core::refill;
use crate::core::time::{relative, rfc3339};

#[derive(Serialize)]
struct QuotasJson {
    total: Option<u64>,
    daily: Option<u64>,
    weekly: Option<u64>,
    monthly: Option<u64>,
}

/// A key's credit refill (SPEC §8), null without one.
#[derive(Serialize)]
struct RefillJson {
    amount: u64,
    interval: &'static str,
    mode: &'static str,
}

/// The key object of SPEC §2, field for field, in the spec's order.
#[derive(Serialize)]
pub struct KeyJson<'a> {
    id: &'a str,
    name: &'a str,
    description: Option<&'a str>,
    owner: &'a str,
    key_prefix: Option<&'a str>,
    status: &'static str,
    is_active: bool,
    livemode: bool,
    category: Option<&'a str>,
    group: Option<&'a str>,
    scopes: &'a [String],
    deployment: Option<&'a str>,
    allowed_models: &'a [String],
    allowed_ips: &'a [String],
    quotas: QuotasJson,
    rate_limit: Option<String>,
    credit_limit: Option<u64>,
    credits_used: u64,
    refill: Option<RefillJson>,
    next_refill_at: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    last_used_ip: Option<&'a str>,
    rotated_from: Option<&'a str>,
    rotated_to: Option<&'a str>,
    meta: MetaJson<'a>,
}

impl<'a> KeyJson<'a> {
    pub fn new(k: &'a KeyRecord, now: DateTime<Utc>) -> KeyJson<'a> {
        let status = k.status(now);
        KeyJson {
            id: &k.id,
            name: &k.settings.name,
            description: k.settings.description.as_deref(),
            owner: &k.settings.owner,
            key_prefix: k.key_prefix.as_deref(),
            status: status.as_str(),
            is_active: status == Status::Active,
            livemode: k.mode == Mode::Live,
            category: k.settings.category.as_deref(),
            group: k.settings.group.as_deref(),
            scopes: &k.settings.scopes,
            deployment: k.settings.deployment.as_deref(),
            allowed_models: &k.settings.allowed_models,
            allowed_ips: &k.settings.allowed_ips,
            quotas: QuotasJson {
                total: k.settings.quotas.total,
                daily: k.settings.quotas.daily,
                weekly: k.settings.quotas.weekly,
                monthly: k.settings.quotas.monthly,
            },
            rate_limit: k.settings.rate_limit.map(|r| r.to_string()),
            credit_limit: k.settings.credit_limit,
            credits_used: refill::used_at(k, now),
            refill: refill::of(k).map(|(r, _)| RefillJson {
                amount: r.amount,
                interval: r.interval.as_str(),
                mode: r.mode.as_str(),
            }),
            next_refill_at: refill::next_at(k, now).map(rfc3339),
            created_at: rfc3339(k.created_at),
            expires_at: k.settings.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            last_used_ip: k.last_used_ip.as_deref(),
            rotated_from: k.rotated_from.as_deref(),
            rotated_to: k.rotated_to.as_deref(),
            meta: MetaJson(&k.settings.meta),
        }
    }
}

/// Writes one key object as compact json (no newline).
pub fn write_json(out: &mut dyn Write, k: &KeyRecord, now: DateTime<Utc>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(640);
    push_json(&mut buf, k, now);
    out.write_all(&buf)
}

/// Appends one key object as compact json, byte for byte what serialising
/// [`KeyJson`] gives (a test holds them equal), without serde: `list --json` and
/// batch reveals write one per key, and this is most of their work.
pub fn push_json(out: &mut Vec<u8>, k: &KeyRecord, now: DateTime<Utc>) {
    use super::json::{push_opt_str, push_opt_u64, push_str, push_str_list, push_u64};
    let s = &k.settings;
    let status = k.status(now);
    out.extend_from_slice(b"{\"id\":");
    push_str(out, &k.id);
    out.extend_from_slice(b",\"name\":");
    push_str(out, &s.name);
    out.extend_from_slice(b",\"description\":");
    push_opt_str(out, s.description.as_deref());
    out.extend_from_slice(b",\"owner\":");
    push_str(out, &s.owner);
    out.extend_from_slice(b",\"key_prefix\":");
    push_opt_str(out, k.key_prefix.as_deref());
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(if status == Status::Active {
        b"\",\"is_active\":true"
    } else {
        b"\",\"is_active\":false"
    });
    out.extend_from_slice(if k.mode == Mode::Live {
        b",\"livemode\":true"
    } else {
        b",\"livemode\":false"
    });
    out.extend_from_slice(b",\"category\":");
    push_opt_str(out, s.category.as_deref());
    out.extend_from_slice(b",\"group\":");
    push_opt_str(out, s.group.as_deref());
    out.extend_from_slice(b",\"scopes\":");
    push_str_list(out, &s.scopes);
    out.extend_from_slice(b",\"deployment\":");
    push_opt_str(out, s.deployment.as_deref());
    out.extend_from_slice(b",\"allowed_models\":");
    push_str_list(out, &s.allowed_models);
    out.extend_from_slice(b",\"allowed_ips\":");
    push_str_list(out, &s.allowed_ips);
    out.extend_from_slice(b",\"quotas\":{\"total\":");
    push_opt_u64(out, s.quotas.total);
    out.extend_from_slice(b",\"daily\":");
    push_opt_u64(out, s.quotas.daily);
    out.extend_from_slice(b",\"weekly\":");
    push_opt_u64(out, s.quotas.weekly);
    out.extend_from_slice(b",\"monthly\":");
    push_opt_u64(out, s.quotas.monthly);
    out.extend_from_slice(b"},\"rate_limit\":");
    match s.rate_limit {
        Some(rate) => {
            out.push(b'"');
            push_u64(out, rate.count);
            out.extend_from_slice(match rate.unit {
                RateUnit::Second => b"/s\"",
                RateUnit::Minute => b"/m\"",
            });
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"credit_limit\":");
    push_opt_u64(out, s.credit_limit);
    out.extend_from_slice(b",\"credits_used\":");
    push_u64(out, refill::used_at(k, now));
    out.extend_from_slice(b",\"refill\":");
    match refill::of(k) {
        Some((r, _)) => {
            out.extend_from_slice(b"{\"amount\":");
            push_u64(out, r.amount);
            out.extend_from_slice(b",\"interval\":\"");
            out.extend_from_slice(r.interval.as_str().as_bytes());
            out.extend_from_slice(b"\",\"mode\":\"");
            out.extend_from_slice(r.mode.as_str().as_bytes());
            out.extend_from_slice(b"\"}");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"next_refill_at\":");
    push_time(out, refill::next_at(k, now));
    out.extend_from_slice(b",\"created_at\":");
    push_time(out, Some(k.created_at));
    out.extend_from_slice(b",\"expires_at\":");
    push_time(out, s.expires_at);
    out.extend_from_slice(b",\"last_used_at\":");
    push_time(out, k.last_used_at);
    out.extend_from_slice(b",\"last_used_ip\":");
    push_opt_str(out, k.last_used_ip.as_deref());
    out.extend_from_slice(b",\"rotated_from\":");
    push_opt_str(out, k.rotated_from.as_deref());
    out.extend_from_slice(b",\"rotated_to\":");
    push_opt_str(out, k.rotated_to.as_deref());
    out.extend_from_slice(b",\"meta\":");
    super::meta::push_meta(out, &s.meta);
    out.push(b'}');
}

/// Appends a time as a json string in [`rfc3339`]'s form (`2024-05-01T12:00:00Z`),
/// digit by digit for the years stored times have (0000-9999), else `null`.
fn push_time(out: &mut Vec<u8>, t: Option<DateTime<Utc>>) {
    use chrono::{Datelike, Timelike};
    let Some(t) = t else {
        out.extend_from_slice(b"null");
        return;
    };
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Never read back from a store (from_millis clamps); kept exact regardless.
        super::json::push_str(out, &rfc3339(t));
        return;
    }
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    out.push(b'"');
    let year = year as u32;
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, t.month());
    out.push(b'-');
    two(out, t.day());
    out.push(b'T');
    two(out, t.hour());
    out.push(b':');
    two(out, t.minute());
    out.push(b':');
    // A leap second (second() is 59 with nanosecond() >= 1e9) prints as 60, as chrono does.
    two(out, t.second() + u32::from(t.nanosecond() >= 1_000_000_000));
    out.extend_from_slice(b"Z\"");
}

/// The csv header; lists are joined with `;` inside one field.
pub const CSV_HEADER: &[&str] = &[
    "id",
    "name",
    "description",
    "owner",
    "key_prefix",
    "status",
    "is_active",
    "livemode",
    "category",
    "group",
    "scopes",
    "deployment",
    "allowed_models",
    "allowed_ips",
    "quota_total",
    "quota_daily",
    "quota_weekly",
    "quota_monthly",
    "rate_limit",
    "credit_limit",
    "credits_used",
    "refill",
    "next_refill_at",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "rotated_from",
    "rotated_to",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_fields(k: &KeyRecord, now: DateTime<Utc>) -> [String; 29] {
    let status = k.status(now);
    [
        k.id.clone(),
        k.settings.name.clone(),
        opt(k.settings.description.as_deref()),
        k.settings.owner.clone(),
        opt(k.key_prefix.as_deref()),
        status.as_str().into(),
        (status == Status::Active).to_string(),
        (k.mode == Mode::Live).to_string(),
        opt(k.settings.category.as_deref()),
        opt(k.settings.group.as_deref()),
        k.settings.scopes.join(";"),
        opt(k.settings.deployment.as_deref()),
        k.settings.allowed_models.join(";"),
        k.settings.allowed_ips.join(";"),
        opt(k.settings.quotas.total),
        opt(k.settings.quotas.daily),
        opt(k.settings.quotas.weekly),
        opt(k.settings.quotas.monthly),
        opt(k.settings.rate_limit),
        opt(k.settings.credit_limit),
        refill::used_at(k, now).to_string(),
        opt(refill::of(k).map(|(r, _)| r)),
        opt(refill::next_at(k, now).map(rfc3339)),
        rfc3339(k.created_at),
        opt(k.settings.expires_at.map(rfc3339)),
        opt(k.last_used_at.map(rfc3339)),
        opt(k.last_used_ip.as_deref()),
        opt(k.rotated_from.as_deref()),
        opt(k.rotated_to.as_deref()),
    ]
}

pub fn write_csv_row(out: &mut dyn Write, k: &KeyRecord, now: DateTime<Utc>) -> io::Result<()> {
    csv::write_row(out, &csv_fields(k, now))
}

/// A key's status for people: a key superseded by a rotation is marked, `active
/// (grace)` while it still verifies, else e.g. `disabled (rotated)`, so several rows
/// with one name are not a puzzle.
pub fn status_text(k: &KeyRecord, now: DateTime<Utc>) -> String {
    let status = k.status(now);
    match (&k.rotated_to, status) {
        (None, _) => status.as_str().to_string(),
        (Some(_), Status::Active) => "active (grace)".to_string(),
        (Some(_), _) => format!("{} (rotated)", status.as_str()),
    }
}

/// A key's status with its coloured dot: active green, disabled amber, expired/revoked
/// grey.
pub fn status_cell(k: &KeyRecord, now: DateTime<Utc>, color: bool) -> Cell {
    let status = k.status(now);
    let cell = Cell::new(format!("● {}", status_text(k, now)));
    if !color {
        return cell;
    }
    cell.fg(match status {
        Status::Active => Color::Green,
        Status::Disabled => Color::Yellow,
        Status::Expired | Status::Revoked => Color::DarkGrey,
    })
}

/// Keys as `list` shows them: the key object, a csv row, or Name, Key, Status,
/// Created, Expires, Last used.
pub struct KeyRows {
    pub now: DateTime<Utc>,
    pub color: bool,
    /// One json object's bytes, reused from row to row.
    line: std::cell::RefCell<Vec<u8>>,
}

impl KeyRows {
    pub fn new(now: DateTime<Utc>, color: bool) -> KeyRows {
        KeyRows {
            now,
            color,
            line: std::cell::RefCell::new(Vec::with_capacity(1024)),
        }
    }
}

impl Rows for KeyRows {
    type Item = KeyRecord;
    type Row = Vec<Cell>;
    const CSV_HEADER: &'static [&'static str] = CSV_HEADER;
    const TABLE_HEADER: &'static [&'static str] =
        &["Name", "Key", "Status", "Created", "Expires", "Last used"];

    fn json(&self, out: &mut dyn Write, k: &KeyRecord) -> io::Result<()> {
        let mut line = self.line.borrow_mut();
        line.clear();
        push_json(&mut line, k, self.now);
        out.write_all(&line)
    }

    fn csv(&self, k: &KeyRecord) -> Vec<String> {
        csv_fields(k, self.now).into()
    }

    fn row(&self, k: &KeyRecord) -> Vec<Cell> {
        let now = self.now;
        vec![
            text_cell(&k.settings.name),
            text_cell(&k.prefix_shown()),
            status_cell(k, now, self.color),
            Cell::new(relative(k.created_at, now)),
            Cell::new(relative_or_never(k.settings.expires_at, now)),
            Cell::new(relative_or_never(k.last_used_at, now)),
        ]
    }

    fn fill(&self, table: &mut Table, rows: Vec<Vec<Cell>>) {
        table.add_rows(rows);
    }
}

/// Rows `list` keeps in memory at once: a store with no more is drawn whole, as one
/// table; a larger one in parts of this many rows.
const ROWS_AT_ONCE: usize = 1000;

/// The first of `list`'s two passes over one snapshot: the width of every column,
/// from every row, without keeping the rows (only the first [`ROWS_AT_ONCE`], and
/// the widest cell of each column).
pub struct KeyTableSizer {
    rows: KeyRows,
    widths: Vec<usize>,
    widest: Vec<Cell>,
    first: Vec<Vec<Cell>>,
    count: usize,
}

/// How `list` draws the table once every row has been measured.
pub enum KeyTableLayout {
    /// No keys: no table.
    Empty,
    /// Few keys: the rows were kept; the table as it is.
    Whole(Table),
    /// Many keys: a second pass draws them in parts, columns fixed to these widths.
    Parts(KeyTablePrinter),
}

impl KeyTableSizer {
    pub fn new(rows: KeyRows) -> KeyTableSizer {
        let head = header(KeyRows::TABLE_HEADER, rows.color);
        KeyTableSizer {
            rows,
            widths: head.iter().map(cell_width).collect(),
            widest: head,
            first: Vec::new(),
            count: 0,
        }
    }

    pub fn add(&mut self, k: &KeyRecord) {
        let row = self.rows.row(k);
        for (i, cell) in row.iter().enumerate() {
            let w = cell_width(cell);
            if w > self.widths[i] {
                self.widths[i] = w;
                self.widest[i] = cell.clone();
            }
        }
        if self.first.len() < ROWS_AT_ONCE {
            self.first.push(row);
        }
        self.count += 1;
    }

    pub fn finish(self) -> KeyTableLayout {
        let color = self.rows.color;
        let mut table = new_table(color);
        table.set_header(header(KeyRows::TABLE_HEADER, color));
        if self.count == 0 {
            return KeyTableLayout::Empty;
        }
        if self.count <= ROWS_AT_ONCE {
            table.add_rows(self.first);
            return KeyTableLayout::Whole(table);
        }
        // A table wider than the terminal is wrapped by comfy, which sizes the columns
        // from their widest cells and, for the columns it must wrap, from where their
        // cells break: laid out here from the widest cell of each column and the
        // first rows. A table that fits (or any table not on a terminal) takes the
        // widest cell of each column, as drawn whole.
        let natural: usize = self.widths.iter().map(|w| w + 2).sum();
        let fits = table
            .width()
            .is_none_or(|w| w == 0 || natural <= usize::from(w));
        let widths = if fits {
            self.widths
        } else {
            table.add_row(self.widest);
            table.add_rows(self.first);
            laid_out_widths(&table)
        };
        KeyTableLayout::Parts(KeyTablePrinter {
            rows: self.rows,
            widths,
            part: Vec::new(),
            header: true,
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }
}

/// The second pass: rows drawn [`ROWS_AT_ONCE`] at a time, every part with the
/// columns of the whole table.
pub struct KeyTablePrinter {
    rows: KeyRows,
    widths: Vec<usize>,
    part: Vec<Vec<Cell>>,
    header: bool,
}

impl KeyTablePrinter {
    pub fn add(&mut self, out: &mut dyn Write, k: &KeyRecord) -> io::Result<()> {
        self.part.push(self.rows.row(k));
        if self.part.len() == ROWS_AT_ONCE {
            self.draw(out)?;
        }
        Ok(())
    }

    pub fn finish(mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.part.is_empty() {
            self.draw(out)?;
        }
        Ok(())
    }

    fn draw(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let color = self.rows.color;
        let mut table = new_table(color);
        if std::mem::take(&mut self.header) {
            table.set_header(header(KeyRows::TABLE_HEADER, color));
        }
        table.add_rows(self.part.drain(..));
        fix_widths(&mut table, &self.widths);
        writeln!(out, "{}", render(&mut table))
    }
}

/// `12 active · 2 disabled · limit 14/50` (counts of the listed keys; the limit is the
/// store's: active and disabled keys against `max-keys`), or `… · 14 keys, no limit`
/// when `max-keys` is not set.
pub fn summary_line(counts: &StatusCounts, limited: u64, max_keys: Option<u64>) -> String {
    let mut parts = vec![format!("{} active", counts.active)];
    for (n, word) in [
        (counts.disabled, "disabled"),
        (counts.expired, "expired"),
        (counts.revoked, "revoked"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    parts.push(match max_keys {
        Some(max) => format!("limit {limited}/{max}"),
        None => format!("{}, no limit", super::output::plural(limited, "key")),
    });
    parts.join(" · ")
}

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    key: KeyJson<'a>,
    usage: WindowsJson,
}

/// `show --json`: the key object plus a `usage` member.
pub fn write_show_json(
    out: &mut dyn Write,
    k: &KeyRecord,
    usage: &Windows,
    now: DateTime<Utc>,
) -> io::Result<()> {
    let value = ShowJson {
        key: KeyJson::new(k, now),
        usage: usage.into(),
    };
    super::json::write_pretty(&mut *out, &value)?;
    out.write_all(b"\n")
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(", ")
    }
}

/// `show` for people: every field, one per line.
pub fn write_show_table(
    out: &mut dyn Write,
    k: &KeyRecord,
    usage: &Windows,
    now: DateTime<Utc>,
    color: bool,
) -> io::Result<()> {
    let mut table = new_table(color);
    let none = "none";
    let quota = |q: Option<u64>| q.map_or_else(|| none.to_string(), |n| n.to_string());
    let used = refill::used_at(k, now);
    let credits = match k.settings.credit_limit {
        Some(limit) => format!(
            "{} used of {limit} ({} left)",
            used,
            limit.saturating_sub(used)
        ),
        None => format!("{} used (unlimited)", used),
    };
    let refill_text = match (refill::of(k), refill::next_at(k, now)) {
        (Some((r, _)), Some(next)) => format!(
            "{} {} every {} at 00:00 UTC{}; next {}",
            match r.mode {
                refill::Mode::Set => "set to",
                refill::Mode::Add => "add",
            },
            r.amount,
            match r.interval {
                refill::Interval::Day => "day",
                refill::Interval::Month => "month on the 1st",
            },
            match r.mode {
                refill::Mode::Set => "",
                refill::Mode::Add => " (up to the limit)",
            },
            time_with_relative(Some(next), now)
        ),
        _ => none.to_string(),
    };
    let rows: Vec<(&str, Cell)> = vec![
        ("ID", text_cell(&k.id)),
        ("Name", text_cell(&k.settings.name)),
        (
            "Description",
            text_cell(k.settings.description.as_deref().unwrap_or("")),
        ),
        ("Owner", text_cell(&k.settings.owner)),
        ("Key", text_cell(&k.prefix_shown())),
        ("Status", status_cell(k, now, color)),
        ("Mode", Cell::new(k.mode.as_str())),
        (
            "Category",
            text_cell(k.settings.category.as_deref().unwrap_or("")),
        ),
        (
            "Group",
            text_cell(k.settings.group.as_deref().unwrap_or("")),
        ),
        (
            "Scopes",
            text_cell(&list_or(&k.settings.scopes, "unrestricted")),
        ),
        (
            "Deployment",
            text_cell(k.settings.deployment.as_deref().unwrap_or("project-wide")),
        ),
        (
            "Allowed models",
            text_cell(&list_or(&k.settings.allowed_models, "any")),
        ),
        (
            "Allowed IPs",
            text_cell(&list_or(&k.settings.allowed_ips, "any")),
        ),
        (
            "Quotas",
            Cell::new(format!(
                "total {}, daily {}, weekly {}, monthly {}",
                quota(k.settings.quotas.total),
                quota(k.settings.quotas.daily),
                quota(k.settings.quotas.weekly),
                quota(k.settings.quotas.monthly)
            )),
        ),
        (
            "Rate limit",
            Cell::new(k.settings.rate_limit.map_or_else(
                || none.to_string(),
                |r| format!("{} per {}", r.count, r.unit.word()),
            )),
        ),
        ("Credits", Cell::new(credits)),
        ("Refill", Cell::new(refill_text)),
        (
            "Created",
            Cell::new(time_with_relative(Some(k.created_at), now)),
        ),
        (
            "Expires",
            Cell::new(time_with_relative(k.settings.expires_at, now)),
        ),
        (
            "Last used",
            Cell::new(time_with_relative(k.last_used_at, now)),
        ),
        (
            "Last used IP",
            text_cell(k.last_used_ip.as_deref().unwrap_or("")),
        ),
        (
            "Rotated from",
            text_cell(k.rotated_from.as_deref().unwrap_or("")),
        ),
        (
            "Rotated to",
            text_cell(k.rotated_to.as_deref().unwrap_or("")),
        ),
        ("Metadata", Cell::new(meta_lines(&k.settings.meta))),
        ("Usage 24h", Cell::new(usage_text(&usage.last_24h))),
        ("Usage 7d", Cell::new(usage_text(&usage.last_7d))),
        ("Usage 30d", Cell::new(usage_text(&usage.last_30d))),
    ];
    for (name, value) in rows {
        table.add_row(vec![label(name, color), value]);
    }
    writeln!(out, "{}", render(&mut table))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::limits::{Quotas, RateLimit};
    use crate::core::model::{KeySettings, State};
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect())
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // The range stored times are read back in (core::time::from_millis).
        (-62_167_219_200_000i64..=253_402_300_799_999).prop_map(crate::core::time::from_millis)
    }

    fn count() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(prop_oneof![0u64..1000, any::<u64>()])
    }

    prop_compose! {
        /// Any key record (also the verdict tests' keys).
        pub(crate) fn record()(
            (id, name, owner, key_prefix) in (text(), text(), text(), opt_text()),
            (description, category, group, deployment) in (opt_text(), opt_text(), opt_text(), opt_text()),
            (scopes, allowed_models, allowed_ips) in (
                proptest::collection::vec(text(), 0..3),
                proptest::collection::vec(text(), 0..3),
                proptest::collection::vec(text(), 0..3),
            ),
            (total, daily, weekly, monthly, credit_limit) in (count(), count(), count(), count(), count()),
            rate in proptest::option::of((any::<u64>(), any::<bool>())),
            (created_at, expires_at, last_used_at) in (time(), proptest::option::of(time()), proptest::option::of(time())),
            (last_used_ip, rotated_from, rotated_to) in (opt_text(), opt_text(), opt_text()),
            (credits_used, live, state) in (any::<u64>(), any::<bool>(), 0..3u8),
            meta in proptest::option::of(prop_oneof![
                proptest::collection::btree_map("[a-z._-]{1,8}", text(), 0..4)
                    .prop_map(|m| serde_json::to_string(&m).unwrap()),
                text(),
            ]),
            (refill, refilled_at) in (
                proptest::option::of((prop_oneof![1u64..1000, any::<u64>()], any::<bool>(), any::<bool>())),
                proptest::option::of(time()),
            ),
        ) -> KeyRecord {
            KeyRecord {
                id,
                settings: KeySettings {
                    name,
                    description,
                    owner,
                    category,
                    group,
                    scopes,
                    deployment,
                    allowed_models,
                    allowed_ips,
                    quotas: Quotas { total, daily, weekly, monthly },
                    rate_limit: rate.map(|(count, minute)| RateLimit {
                        count,
                        unit: if minute { RateUnit::Minute } else { RateUnit::Second },
                    }),
                    credit_limit,
                    expires_at,
                    meta: crate::core::meta::KeyMeta::from_stored(meta),
                    refill: refill.map(|(amount, month, add)| refill::Refill {
                        amount,
                        interval: if month { refill::Interval::Month } else { refill::Interval::Day },
                        mode: if add { refill::Mode::Add } else { refill::Mode::Set },
                    }),
                },
                key_prefix,
                mode: if live { Mode::Live } else { Mode::Test },
                credits_used,
                accepted_total: 0,
                events_total: 0,
                credits_total: 0,
                pool_accepted_total: 0,
                created_at,
                last_used_at,
                last_used_ip,
                state: [State::Active, State::Disabled, State::Revoked][usize::from(state)],
                revoked_at: None,
                revoke_reason: None,
                rotated_from,
                rotated_to,
                refilled_at,
                heads: None,
            }
        }
    }

    proptest! {
        #[test]
        fn the_hand_written_key_object_is_the_serde_one_byte_for_byte(k in record(), now in time()) {
            let mut by_hand = Vec::new();
            push_json(&mut by_hand, &k, now);
            let via_serde = crate::ui::json::to_vec(&KeyJson::new(&k, now)).unwrap();
            prop_assert_eq!(String::from_utf8(by_hand).unwrap(), String::from_utf8(via_serde).unwrap());
        }
    }

    #[test]
    fn summary_shapes() {
        let c = StatusCounts {
            active: 12,
            disabled: 2,
            expired: 0,
            revoked: 0,
        };
        assert_eq!(
            summary_line(&c, 14, Some(50)),
            "12 active · 2 disabled · limit 14/50"
        );
        assert_eq!(
            summary_line(&StatusCounts::default(), 0, None),
            "0 active · 0 keys, no limit"
        );
        assert_eq!(
            summary_line(&StatusCounts::default(), 1, None),
            "0 active · 1 key, no limit"
        );
    }
}
