//! `scan` findings: where a secret was found and whose key it is, as json objects,
//! csv rows or a table. The secret shows as its display prefix only.

use std::io::{self, Write};

use comfy_table::{Cell, Table};
use serde::Serialize;

use super::records::Rows;
use super::table::text_cell;

/// One place a secret of the store's format was found.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub path: String,
    pub line: u64,
    pub column: u64,
    /// The display prefix (`sk_live_4eC3`), as `key_prefix` is in the key object.
    pub key_prefix: String,
    /// `active`, `disabled`, `expired`, `revoked`, or `unknown` (checksum-valid, not
    /// this store's).
    pub status: &'static str,
    pub key_id: Option<String>,
    pub name: Option<String>,
}

/// Findings as `scan` lists them.
pub struct FindingRows;

impl Rows for FindingRows {
    type Item = Finding;
    type Row = [String; 5];
    const CSV_HEADER: &'static [&'static str] = &[
        "path",
        "line",
        "column",
        "key_prefix",
        "status",
        "key_id",
        "name",
    ];
    const TABLE_HEADER: &'static [&'static str] = &["Location", "Key", "Status", "Id", "Name"];

    fn json(&self, out: &mut dyn Write, f: &Finding) -> io::Result<()> {
        super::json::write(out, f)
    }

    fn csv(&self, f: &Finding) -> Vec<String> {
        vec![
            f.path.clone(),
            f.line.to_string(),
            f.column.to_string(),
            f.key_prefix.clone(),
            f.status.to_string(),
            f.key_id.clone().unwrap_or_default(),
            f.name.clone().unwrap_or_default(),
        ]
    }

    fn row(&self, f: &Finding) -> [String; 5] {
        [
            format!("{}:{}:{}", f.path, f.line, f.column),
            format!("{}...", f.key_prefix),
            f.status.to_string(),
            f.key_id.clone().unwrap_or_else(|| "-".into()),
            f.name.clone().unwrap_or_else(|| "-".into()),
        ]
    }

    fn fill(&self, table: &mut Table, rows: Vec<[String; 5]>) {
        for row in rows {
            table.add_row(row.iter().map(|c| text_cell(c)).collect::<Vec<Cell>>());
        }
    }
}
