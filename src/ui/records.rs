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

/// The framing of a streamed list, apart from its records: json's brackets and
/// separators, csv's header. It holds no writer, so a caller that must look at its
/// output between records (`report`) can frame a list too.
pub struct ListFrame {
    format: Format,
    count: usize,
}

impl ListFrame {
    /// csv gets its header now, so even an empty list has one.
    pub fn start(
        out: &mut dyn Write,
        format: Format,
        csv_header: &[&str],
    ) -> io::Result<ListFrame> {
        if format == Format::Csv {
            super::csv::write_row(out, csv_header)?;
        }
        Ok(ListFrame { format, count: 0 })
    }

    /// Writes what goes before the next record and counts it.
    pub fn next(&mut self, out: &mut dyn Write) -> io::Result<()> {
        // The opening bracket waits for the first record, so a store that fails at
        // the start of the query leaves stdout empty.
        if self.format == Format::Json {
            out.write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
        }
        self.count += 1;
        Ok(())
    }

    /// Closes a json array; returns how many records were written.
    pub fn end(self, out: &mut dyn Write) -> io::Result<usize> {
        if self.format == Format::Json {
            out.write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        Ok(self.count)
    }
}

/// Streams records to `out` in one format; a table is written whole by
/// [`RecordWriter::finish`].
pub struct RecordWriter<'w, R: Rows> {
    rows: R,
    out: &'w mut dyn Write,
    frame: ListFrame,
    table: Option<(Table, Vec<R::Row>)>,
}

impl<'w, R: Rows> RecordWriter<'w, R> {
    /// csv gets its header now, so even an empty list has one.
    pub fn new(
        out: &'w mut dyn Write,
        rows: R,
        format: Format,
        color: bool,
    ) -> io::Result<RecordWriter<'w, R>> {
        let table = (format == Format::Table).then(|| {
            let mut t = new_table(color);
            t.set_header(header(R::TABLE_HEADER, color));
            (t, Vec::new())
        });
        let frame = ListFrame::start(out, format, R::CSV_HEADER)?;
        Ok(RecordWriter {
            rows,
            out,
            frame,
            table,
        })
    }

    pub fn add(&mut self, item: &R::Item) -> io::Result<()> {
        self.frame.next(self.out)?;
        match &mut self.table {
            Some((_, rows)) => rows.push(self.rows.row(item)),
            None if self.frame.format == Format::Json => self.rows.json(self.out, item)?,
            None => super::csv::write_row(self.out, &self.rows.csv(item))?,
        }
        Ok(())
    }

    /// Ends the list: closes the json array, writes a table that has rows. Returns
    /// how many records were written, so the caller can say when there were none.
    pub fn finish(self) -> io::Result<usize> {
        match self.table {
            Some((mut t, rows)) if !rows.is_empty() => {
                self.rows.fill(&mut t, rows);
                writeln!(self.out, "{}", render(&mut t))?;
            }
            _ => {}
        }
        self.frame.end(self.out)
    }
}
