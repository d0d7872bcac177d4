//! `keyctl report`'s findings as people and programs read them: one row per finding
//! of a key (json object, csv row, table row), the table grouped by finding under a
//! heading per group, drawn in parts of bounded size with the columns of the whole.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use comfy_table::{Cell, Table};
use serde::Serialize;

use super::csv;
use super::keys::status_cell;
use super::output::plural;
use super::records::ListFrame;
use super::table::{cell_width, fix_widths, header, new_table, render, terminal_width, text_cell};
use crate::cli::Format;
use crate::core::model::KeyRecord;
use crate::core::report::{Detail, Finding};
use crate::core::time::{relative, rfc3339};

/// The finding's figures in words (the table's Detail column; `detail` in json/csv).
pub fn detail_text(d: &Detail, now: DateTime<Utc>) -> String {
    match d {
        Detail::NeverUsed { created_at } => {
            format!("never used; created {}", relative(*created_at, now))
        }
        Detail::Unused { last_used_at } => format!("last used {}", relative(*last_used_at, now)),
        Detail::Expiring { expires_at } => format!("expires {}", relative(*expires_at, now)),
        Detail::NoExpiry => "never expires".into(),
        Detail::Unrestricted => "no scope, IP allowlist, deployment or model".into(),
        Detail::NearLimit {
            limit,
            used,
            cap,
            percent,
        } => {
            let what = match limit {
                crate::core::report::Limit::Credits => "credits".to_string(),
                other => format!("{} quota", other.as_str()),
            };
            format!("{what}: {used} of {cap} used ({percent}%)")
        }
        Detail::InGrace { successor, until } => match until {
            Some(t) => format!(
                "replaced by {successor}; verifies until {} ({})",
                rfc3339(*t),
                relative(*t, now)
            ),
            None => format!("replaced by {successor}; verifies with no end set"),
        },
    }
}

/// One finding row as json and csv carry it; the figure members are null where the
/// finding has none.
#[derive(Serialize)]
struct RowJson<'a> {
    finding: &'static str,
    key_id: &'a str,
    name: &'a str,
    owner: &'a str,
    status: &'static str,
    detail: String,
    limit: Option<&'static str>,
    used: Option<u64>,
    cap: Option<u64>,
    percent: Option<u64>,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
    rotated_to: Option<&'a str>,
}

pub const CSV_HEADER: [&str; 14] = [
    "finding",
    "key_id",
    "name",
    "owner",
    "status",
    "detail",
    "limit",
    "used",
    "cap",
    "percent",
    "created_at",
    "last_used_at",
    "expires_at",
    "rotated_to",
];

fn row_json<'a>(k: &'a KeyRecord, d: &Detail, now: DateTime<Utc>) -> RowJson<'a> {
    let (limit, used, cap, percent) = match d {
        Detail::NearLimit {
            limit,
            used,
            cap,
            percent,
        } => (
            Some(limit.as_str()),
            Some(*used),
            Some(*cap),
            Some(*percent),
        ),
        _ => (None, None, None, None),
    };
    RowJson {
        finding: d.finding().as_str(),
        key_id: &k.id,
        name: &k.settings.name,
        owner: &k.settings.owner,
        status: k.status(now).as_str(),
        detail: detail_text(d, now),
        limit,
        used,
        cap,
        percent,
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
        expires_at: k.settings.expires_at.map(rfc3339),
        rotated_to: k.rotated_to.as_deref(),
    }
}

fn csv_fields(r: &RowJson) -> [String; 14] {
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        r.finding.into(),
        r.key_id.into(),
        r.name.into(),
        r.owner.into(),
        r.status.into(),
        r.detail.clone(),
        r.limit.unwrap_or_default().into(),
        opt(r.used),
        opt(r.cap),
        opt(r.percent),
        r.created_at.clone(),
        r.last_used_at.clone().unwrap_or_default(),
        r.expires_at.clone().unwrap_or_default(),
        r.rotated_to.unwrap_or_default().into(),
    ]
}

/// Streams finding rows as a json array (one object per line) or csv under a header.
pub struct RecordsWriter {
    frame: ListFrame,
    json: bool,
    now: DateTime<Utc>,
}

impl RecordsWriter {
    /// csv gets its header now, so a report without findings still has one.
    pub fn new(
        out: &mut dyn Write,
        format: Format,
        now: DateTime<Utc>,
    ) -> io::Result<RecordsWriter> {
        Ok(RecordsWriter {
            frame: ListFrame::start(out, format, &CSV_HEADER)?,
            json: format == Format::Json,
            now,
        })
    }

    pub fn add(&mut self, out: &mut dyn Write, k: &KeyRecord, d: &Detail) -> io::Result<()> {
        let row = row_json(k, d, self.now);
        self.frame.next(out)?;
        if self.json {
            super::json::write(out, &row)
        } else {
            csv::write_row(out, &csv_fields(&row))
        }
    }

    pub fn finish(self, out: &mut dyn Write) -> io::Result<()> {
        self.frame.end(out).map(|_| ())
    }
}

const TABLE_HEADER: [&str; 5] = ["Key", "Name", "Owner", "Status", "Detail"];

/// Rows drawn at once: a report with no more is kept from the first pass and drawn
/// from memory; a larger one is drawn group by group in parts of this many rows.
pub const ROWS_AT_ONCE: usize = 1000;

/// The Detail column is never squeezed below this to fit a terminal (it wraps).
const MIN_DETAIL: usize = 24;

fn row_cells(k: &KeyRecord, d: &Detail, now: DateTime<Utc>, color: bool) -> Vec<Cell> {
    vec![
        Cell::new(&k.id),
        text_cell(&k.settings.name),
        text_cell(&k.settings.owner),
        status_cell(k, now, color),
        Cell::new(detail_text(d, now)),
    ]
}

/// The first pass of the table: how many rows each finding has, the widest cell of
/// each column over every row, and the first [`ROWS_AT_ONCE`] rows.
pub struct TableSizer {
    now: DateTime<Utc>,
    color: bool,
    widths: Vec<usize>,
    counts: [u64; 7],
    kept: Vec<(Finding, Vec<Cell>)>,
    rows: u64,
}

impl TableSizer {
    pub fn new(now: DateTime<Utc>, color: bool) -> TableSizer {
        TableSizer {
            now,
            color,
            widths: header(&TABLE_HEADER, color)
                .iter()
                .map(cell_width)
                .collect(),
            counts: [0; 7],
            kept: Vec::new(),
            rows: 0,
        }
    }

    pub fn add(&mut self, k: &KeyRecord, d: &Detail) {
        let cells = row_cells(k, d, self.now, self.color);
        for (w, cell) in self.widths.iter_mut().zip(&cells) {
            *w = (*w).max(cell_width(cell));
        }
        let f = d.finding();
        self.counts[f as usize] += 1;
        self.rows += 1;
        if self.kept.len() < ROWS_AT_ONCE {
            self.kept.push((f, cells));
        }
    }

    /// Rows of finding `f`.
    pub fn count(&self, f: Finding) -> u64 {
        self.counts[f as usize]
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// True when every row was kept: the table needs no second pass.
    pub fn all_kept(&self) -> bool {
        self.rows <= ROWS_AT_ONCE as u64
    }

    /// The printer, with the rows kept when they were all kept.
    pub fn finish(self) -> (GroupPrinter, Vec<(Finding, Vec<Cell>)>) {
        let all_kept = self.all_kept();
        let mut widths = self.widths;
        // On a terminal narrower than the table, the Detail column gives way (and its
        // text wraps); the others keep their width, so ids and names stay whole.
        if let Some(room) = terminal_width() {
            let others: usize = widths[..4].iter().map(|w| w + 2).sum();
            let detail = room.saturating_sub(others + 2).max(MIN_DETAIL);
            widths[4] = widths[4].min(detail);
        }
        let kept = if all_kept { self.kept } else { Vec::new() };
        (
            GroupPrinter {
                now: self.now,
                color: self.color,
                widths,
                part: Vec::new(),
                header: true,
                groups: 0,
            },
            kept,
        )
    }
}

/// Draws the groups one after another: a heading (`never-used (3)`), then its rows
/// under the column header in parts of at most [`ROWS_AT_ONCE`], every part with the
/// widths the first pass measured, so the groups line up as one table.
pub struct GroupPrinter {
    now: DateTime<Utc>,
    color: bool,
    widths: Vec<usize>,
    part: Vec<Vec<Cell>>,
    header: bool,
    groups: u64,
}

impl GroupPrinter {
    /// Starts the group of finding `f`, which has `rows` rows.
    pub fn begin(&mut self, out: &mut dyn Write, f: Finding, rows: u64) -> io::Result<()> {
        if self.groups > 0 {
            writeln!(out)?;
        }
        self.groups += 1;
        let heading = format!("{} ({rows})", f.as_str());
        if self.color {
            // Outside a table comfy styles nothing: bold by hand, as `chart` colours.
            writeln!(out, "\x1b[1m{heading}\x1b[0m")?;
        } else {
            writeln!(out, "{heading}")?;
        }
        self.header = true;
        Ok(())
    }

    pub fn add(&mut self, out: &mut dyn Write, k: &KeyRecord, d: &Detail) -> io::Result<()> {
        let cells = row_cells(k, d, self.now, self.color);
        self.add_cells(out, cells)
    }

    pub fn add_cells(&mut self, out: &mut dyn Write, cells: Vec<Cell>) -> io::Result<()> {
        self.part.push(cells);
        if self.part.len() == ROWS_AT_ONCE {
            self.draw(out)?;
        }
        Ok(())
    }

    /// Ends the current group.
    pub fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.part.is_empty() {
            self.draw(out)?;
        }
        Ok(())
    }

    fn draw(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut table: Table = new_table(self.color);
        if std::mem::take(&mut self.header) {
            table.set_header(header(&TABLE_HEADER, self.color));
        }
        table.add_rows(self.part.drain(..));
        fix_widths(&mut table, &self.widths);
        writeln!(out, "{}", render(&mut table))
    }
}

/// `5 findings on 3 keys · 40 keys checked`, or `no findings · 40 keys checked`.
pub fn summary_line(rows: u64, keys_found: u64, checked: u64) -> String {
    let checked = format!("{} checked", plural(checked, "key"));
    if rows == 0 {
        format!("no findings · {checked}")
    } else {
        format!(
            "{} on {} · {checked}",
            plural(rows, "finding"),
            plural(keys_found, "key")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::report::Limit;
    use crate::core::time::parse_datetime;

    #[test]
    fn details_say_the_figures() {
        let now = parse_datetime("2026-11-23T12:00:00Z").unwrap();
        let near = Detail::NearLimit {
            limit: Limit::Daily,
            used: 85,
            cap: 100,
            percent: 85,
        };
        assert_eq!(detail_text(&near, now), "daily quota: 85 of 100 used (85%)");
        let credits = Detail::NearLimit {
            limit: Limit::Credits,
            used: 9,
            cap: 10,
            percent: 90,
        };
        assert_eq!(detail_text(&credits, now), "credits: 9 of 10 used (90%)");
        let grace = Detail::InGrace {
            successor: "key_bbbbbbbbbbbb".into(),
            until: Some(parse_datetime("2026-11-24T12:00:00Z").unwrap()),
        };
        assert_eq!(
            detail_text(&grace, now),
            "replaced by key_bbbbbbbbbbbb; verifies until 2026-11-24T12:00:00Z (in 1 day)"
        );
        assert_eq!(summary_line(0, 0, 1), "no findings · 1 key checked");
        assert_eq!(
            summary_line(5, 3, 40),
            "5 findings on 3 keys · 40 keys checked"
        );
    }
}
