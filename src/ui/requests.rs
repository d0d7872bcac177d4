//! The request log (`logs`): json objects, csv rows, a table fitted to the terminal,
//! and `--follow`'s rows, which keep fixed column widths under a header as they
//! stream.

use std::borrow::Cow;
use std::io::{self, Write};

use comfy_table::{Cell, Table};
use serde::Serialize;

use super::records::Rows;
use super::table::{elide, local_time, pad, terminal_width, width};
use crate::cli::Format;
use crate::core::model::RequestRow;
use crate::core::text::escape;
use crate::core::time::rfc3339;

#[derive(Serialize)]
struct RowJson<'a> {
    seq: i64,
    at: String,
    key_id: Option<&'a str>,
    key_name: Option<&'a str>,
    endpoint: Option<&'a str>,
    status: u16,
    code: &'a str,
    ip: Option<&'a str>,
    duration_ms: Option<u64>,
    credits: u64,
}

impl<'a> From<&'a RequestRow> for RowJson<'a> {
    fn from(r: &'a RequestRow) -> RowJson<'a> {
        RowJson {
            seq: r.seq,
            at: rfc3339(r.at),
            key_id: r.key_id.as_deref(),
            key_name: r.key_name.as_deref(),
            endpoint: r.endpoint.as_deref(),
            status: r.http_status,
            code: &r.code,
            ip: r.ip.as_deref(),
            duration_ms: r.duration_ms,
            credits: r.credits,
        }
    }
}

const CSV_HEADER: &[&str] = &[
    "seq",
    "at",
    "key_id",
    "key_name",
    "endpoint",
    "status",
    "code",
    "ip",
    "duration_ms",
    "credits",
];

const HEADER: [&str; 8] = [
    "Time", "Key", "Endpoint", "Status", "Reason", "IP", "Duration", "Credits",
];

fn csv_row(r: &RequestRow) -> Vec<String> {
    vec![
        r.seq.to_string(),
        rfc3339(r.at),
        r.key_id.clone().unwrap_or_default(),
        r.key_name.clone().unwrap_or_default(),
        r.endpoint.clone().unwrap_or_default(),
        r.http_status.to_string(),
        r.code.clone(),
        r.ip.clone().unwrap_or_default(),
        r.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        r.credits.to_string(),
    ]
}

/// One table row, escaped (SPEC §5), before the key name and endpoint are fitted.
pub struct Line {
    time: String,
    name: Option<String>,
    /// ` (key_…)` after a name, the id alone without one, `-` without a key.
    id: String,
    endpoint: String,
    rest: [String; 5],
}

impl Line {
    fn new(r: &RequestRow) -> Line {
        let text = |t: &Option<String>| escape(t.as_deref().unwrap_or_default()).into_owned();
        let id = match (&r.key_name, &r.key_id) {
            (Some(_), Some(id)) => format!(" ({})", escape(id)),
            (None, Some(id)) => escape(id).into_owned(),
            _ => "-".into(),
        };
        Line {
            time: local_time(r.at),
            name: r
                .key_id
                .as_ref()
                .and(r.key_name.as_ref())
                .map(|n| escape(n).into_owned()),
            id,
            endpoint: text(&r.endpoint),
            rest: [
                r.http_status.to_string(),
                escape(&r.code).into_owned(),
                text(&r.ip),
                r.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
                r.credits.to_string(),
            ],
        }
    }

    fn name_width(&self) -> usize {
        self.name.as_deref().map_or(0, width)
    }

    /// The cells as shown, the name and endpoint cut to `fit`.
    fn cells(&self, fit: Fit) -> [Cow<'_, str>; 8] {
        let key = match &self.name {
            Some(n) => Cow::Owned(format!("{}{}", elide(n, fit.name), self.id)),
            None => Cow::Borrowed(self.id.as_str()),
        };
        let [status, reason, ip, duration, credits] = &self.rest;
        [
            Cow::Borrowed(self.time.as_str()),
            key,
            elide(&self.endpoint, fit.endpoint),
            Cow::Borrowed(status.as_str()),
            Cow::Borrowed(reason.as_str()),
            Cow::Borrowed(ip.as_str()),
            Cow::Borrowed(duration.as_str()),
            Cow::Borrowed(credits.as_str()),
        ]
    }
}

/// The most columns a key name and an endpoint may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fit {
    name: usize,
    endpoint: usize,
}

/// Neither is cut below this, however narrow the terminal: past that the row wraps.
const NARROWEST: usize = 6;

impl Fit {
    /// Narrows the wider of the key name and the endpoint, a column at a time, until
    /// `row_width` fits `columns` (or both are at their narrowest).
    fn narrowed(mut self, columns: usize, row_width: impl Fn(Fit) -> usize) -> Fit {
        while row_width(self) > columns {
            if self.name >= self.endpoint && self.name > NARROWEST {
                self.name -= 1;
            } else if self.endpoint > NARROWEST {
                self.endpoint -= 1;
            } else if self.name > NARROWEST {
                self.name -= 1;
            } else {
                break;
            }
        }
        self
    }
}

/// Requests as `logs` lists them.
pub struct RequestRows;

impl Rows for RequestRows {
    type Item = RequestRow;
    type Row = Line;
    const CSV_HEADER: &'static [&'static str] = CSV_HEADER;
    const TABLE_HEADER: &'static [&'static str] = &HEADER;

    fn json(&self, out: &mut dyn Write, r: &RequestRow) -> io::Result<()> {
        super::json::write(out, &RowJson::from(r))
    }

    fn csv(&self, r: &RequestRow) -> Vec<String> {
        csv_row(r)
    }

    fn row(&self, r: &RequestRow) -> Line {
        Line::new(r)
    }

    /// At a terminal that reports its width, long key names (then endpoints) are cut
    /// with `…` so each row stays one line; elsewhere every value is whole.
    fn fill(&self, table: &mut Table, lines: Vec<Line>) {
        let whole = Fit {
            name: lines.iter().map(Line::name_width).max().unwrap_or(0),
            endpoint: lines.iter().map(|l| width(&l.endpoint)).max().unwrap_or(0),
        };
        let fit = match terminal_width() {
            None => whole,
            Some(columns) => whole.narrowed(columns, |fit| {
                // comfy pads every column, the last too, by two.
                (0..HEADER.len())
                    .map(|i| {
                        let cells = lines.iter().map(|l| width(&l.cells(fit)[i]));
                        cells.max().unwrap_or(0).max(width(HEADER[i])) + 2
                    })
                    .sum()
            }),
        };
        for line in &lines {
            table.add_row(line.cells(fit).iter().map(Cell::new));
        }
    }
}

/// Column widths of `--follow`'s table: its rows are not known in advance.
const FOLLOW_WIDTHS: [usize; 7] = [
    26, // a local time with its offset
    0,  // the key: a name of `FOLLOW_FIT.name` and ` (key_` + 12 + `)`
    0,  // the endpoint: `FOLLOW_FIT.endpoint`
    6,  // `Status`
    20, // the longest reason, `forbidden_deployment`
    15, // an IPv4 address (an IPv6 one may push the rest of its row on)
    8,  // `Duration`; credits come last, unpadded
];
const FOLLOW_FIT: Fit = Fit {
    name: 16,
    endpoint: 20,
};
const KEY_ID_WIDTH: usize = " (key_xxxxxxxxxxxx)".len();

/// `logs --follow`: json lines, csv rows under a header, or table rows of fixed
/// widths under a header line.
pub struct Follow {
    format: Format,
    widths: [usize; 7],
    fit: Fit,
}

impl Follow {
    /// Writes the header; `columns` is the terminal's width when known, which the
    /// key name and endpoint narrow to fit.
    pub fn start(
        out: &mut dyn Write,
        format: Format,
        columns: Option<usize>,
    ) -> io::Result<Follow> {
        let widths_for = |fit: Fit| {
            let mut w = FOLLOW_WIDTHS;
            w[1] = fit.name + KEY_ID_WIDTH;
            // A column is never narrower than its header.
            w[2] = fit.endpoint.max(width(HEADER[2]));
            w
        };
        let fit = match columns {
            None => FOLLOW_FIT,
            Some(c) => FOLLOW_FIT.narrowed(c, |fit| {
                widths_for(fit).iter().sum::<usize>() + 2 * 7 + width(HEADER[7])
            }),
        };
        let follow = Follow {
            format,
            widths: widths_for(fit),
            fit,
        };
        match format {
            Format::Csv => super::csv::write_row(out, CSV_HEADER)?,
            Format::Table => follow.write_cells(out, &HEADER)?,
            Format::Json => {}
        }
        Ok(follow)
    }

    fn write_cells<S: AsRef<str>>(&self, out: &mut dyn Write, cells: &[S; 8]) -> io::Result<()> {
        let mut line = String::new();
        for (cell, w) in cells.iter().zip(self.widths) {
            line.push_str(&pad(cell.as_ref(), w));
            line.push_str("  ");
        }
        line.push_str(cells[7].as_ref());
        writeln!(out, "{line}")
    }

    pub fn row(&self, out: &mut dyn Write, r: &RequestRow) -> io::Result<()> {
        match self.format {
            Format::Json => {
                super::json::write(out, &RowJson::from(r))?;
                out.write_all(b"\n")
            }
            Format::Csv => super::csv::write_row(out, &csv_row(r)),
            Format::Table => self.write_cells(out, &Line::new(r).cells(self.fit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn request(name: &str, endpoint: &str) -> RequestRow {
        RequestRow {
            seq: 1,
            at: DateTime::from_timestamp(1_795_435_200, 0).unwrap(),
            key_id: Some("key_abcdefghijkl".into()),
            key_name: Some(name.into()),
            endpoint: Some(endpoint.into()),
            http_status: 200,
            code: "valid".into(),
            ip: Some("10.0.0.1".into()),
            duration_ms: Some(12),
            credits: 1,
        }
    }

    fn follow_lines(columns: Option<usize>, rows: &[RequestRow]) -> Vec<String> {
        let mut out = Vec::new();
        let f = Follow::start(&mut out, Format::Table, columns).unwrap();
        for r in rows {
            f.row(&mut out, r).unwrap();
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn follow_rows_line_up_under_their_header() {
        let rows = [
            request("a", "GET /"),
            request(
                "a-much-longer-key-name-than-fits",
                "POST /v1/chat/completions/stream",
            ),
        ];
        // 130 columns is the narrowest terminal the widths fit; a narrower one still
        // gets aligned rows, which the terminal wraps.
        for columns in [None, Some(140), Some(130), Some(80)] {
            let lines = follow_lines(columns, &rows);
            assert_eq!(lines.len(), 3);
            // Every column starts where its header does.
            for header in [
                "Key", "Endpoint", "Status", "Reason", "IP", "Duration", "Credits",
            ] {
                let at = lines[0].find(header).unwrap();
                for line in &lines[1..] {
                    let cut = line.char_indices().nth(at).map(|(i, _)| i).unwrap();
                    assert!(line[..cut].ends_with("  "), "{header} in {line:?}");
                    assert!(!line[cut..].starts_with(' '), "{header} in {line:?}");
                }
            }
            if columns.is_none() {
                assert!(
                    lines[2].contains("a-much-longer-k… (key_abcdefghijkl)"),
                    "{lines:?}"
                );
            }
            assert!(
                lines[2].contains("(key_abcdefghijkl)"),
                "the id is whole: {lines:?}"
            );
            if let Some(c) = columns.filter(|c| *c >= 130) {
                assert!(lines.iter().all(|l| width(l) <= c), "{lines:#?}");
            }
        }
    }
}
