//! The one writer of record lists (`list`, `logs`, `audit`) in each format: a json
//! array with one object per line, csv under a header, or a table. Each record kind
//! says how one record looks in each format ([`Rows`]); the writer does the rest.

use std::io::{self, Write};

use comfy_table::Table;

use super::table::{header, new_table, render};
use crate::cli::Format;

/// How one kind of record is shown.
pub trait Rows {
    type Item: ?Sized;
    const CSV_HEADER: &'static [&'static str];
    const TABLE_HEADER: &'static [&'static str];
    /// Writes the record as one compact json object (no newline).
    fn json(&self, out: &mut dyn Write, item: &Self::Item) -> io::Result<()>;
    fn csv(&self, item: &Self::Item) -> Vec<String>;
    /// One table row, kept until every row is known.
    type Row;
    fn row(&self, item: &Self::Item) -> Self::Row;
    /// Adds the rows to the table (a kind may fit them to its width first).
    fn fill(&self, table: &mut Table, rows: Vec<Self::Row>);
}

/// Streams records to `out` in one format; a table is written whole by
/// [`RecordWriter::finish`].
pub struct RecordWriter<'w, R: Rows> {
    rows: R,
    out: &'w mut dyn Write,
    format: Format,
    table: Option<(Table, Vec<R::Row>)>,
    count: usize,
}

impl<'w, R: Rows> RecordWriter<'w, R> {
    /// csv gets its header now, so even an empty list has one.
    pub fn new(
        out: &'w mut dyn Write,
        rows: R,
        format: Format,
        color: bool,
    ) -> io::Result<RecordWriter<'w, R>> {
        let table = match format {
            Format::Csv => {
                super::csv::write_row(out, R::CSV_HEADER)?;
                None
            }
            Format::Json => None,
            Format::Table => {
                let mut t = new_table(color);
                t.set_header(header(R::TABLE_HEADER, color));
                Some((t, Vec::new()))
            }
        };
        Ok(RecordWriter {
            rows,
            out,
            format,
            table,
            count: 0,
        })
    }

    pub fn add(&mut self, item: &R::Item) -> io::Result<()> {
        match self.format {
            Format::Json => {
                // The opening bracket waits for the first record, so a store that
                // fails at the start of the query leaves stdout empty.
                self.out
                    .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
                self.rows.json(self.out, item)?;
            }
            Format::Csv => super::csv::write_row(self.out, &self.rows.csv(item))?,
            Format::Table => {
                if let Some((_, rows)) = &mut self.table {
                    rows.push(self.rows.row(item));
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Ends the list: closes the json array, writes a table that has rows. Returns
    /// how many records were written, so the caller can say when there were none.
    pub fn finish(self) -> io::Result<usize> {
        match (self.format, self.table) {
            (Format::Json, _) => {
                self.out
                    .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
            }
            (Format::Table, Some((mut t, rows))) if self.count > 0 => {
                self.rows.fill(&mut t, rows);
                writeln!(self.out, "{}", render(&mut t))?;
            }
            _ => {}
        }
        Ok(self.count)
    }
}
