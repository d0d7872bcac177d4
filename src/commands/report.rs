//! `keyctl report`: key-hygiene findings (SPEC §8), streamed from the store a page of
//! keys at a time so memory stays bounded however many keys there are.
//!
//! json and csv take one pass: each key's findings as the key is read, in creation
//! order. The table is grouped by finding, and its groups must not wait for every
//! row in memory: a first pass measures the columns and counts each group (keeping
//! the rows only when there are few), then, for a larger report, one pass per
//! non-empty group draws that group's rows. Every pass reads the same snapshot (one
//! read transaction), so the groups add up to what the first pass counted.

use std::io::{self, Write};

use crate::cli::{Format, ReportArgs};
use crate::context::Ctx;
use crate::core::exit;
use crate::core::model::KeyRecord;
use crate::core::policy::{counts_from, window_starts, Counts};
use crate::core::report::{
    considered, findings, needs_windows, Detail, Finding, Findings, Thresholds,
};
use crate::error::{is_closed_output, Error, Kind, Result};
use crate::store::{Intent, Txn};
use crate::ui::output::stdout;
use crate::ui::report::{summary_line, RecordsWriter, TableSizer};

/// Keys read from the store at once.
const PAGE: u32 = 500;

pub fn run(ctx: &Ctx, args: ReportArgs) -> Result<()> {
    let shown = args
        .only
        .iter()
        .fold(Findings::none(), |all, f| all.union(*f));
    let shown = if shown.is_empty() {
        Findings::all()
    } else {
        shown
    };
    let fail_on = args
        .fail_on
        .iter()
        .fold(Findings::none(), |all, f| all.union(*f));
    if !shown.covers(fail_on) {
        let left_out: Vec<&str> = fail_on
            .iter()
            .filter(|f| !shown.contains(*f))
            .map(Finding::as_str)
            .collect();
        return Err(Error::usage(format!(
            "--fail-on names {}, which --only leaves out: add it to --only or remove it from --fail-on",
            left_out.join(", ")
        )));
    }
    let thresholds = Thresholds {
        unused: args.unused,
        expiring: args.expiring,
        near_percent: args.near,
    };
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let scan = Scan {
        tx: tx.as_ref(),
        now: ctx.now(),
        thresholds,
    };
    let mut out = Guarded {
        inner: stdout(),
        closed: false,
    };
    let present = match ctx.format {
        Format::Table => table(&scan, shown, &mut out, ctx)?,
        Format::Json | Format::Csv => records(&scan, shown, fail_on, &mut out, ctx.format)?,
    };
    out.flush()?;
    let failed = fail_on.intersect(present);
    if !failed.is_empty() {
        return Err(Error::new(Kind::Exit(exit::FINDINGS.code), ""));
    }
    if out.closed {
        return Err(Error::new(Kind::ClosedOutput, "output closed"));
    }
    Ok(())
}

/// stdout that takes a closed pipe as the end of output, not a failure: a report
/// gated by `--fail-on` keeps its exit code when its reader stops early (SPEC §5), so
/// the scan goes on (unwritten) until the answer is known.
struct Guarded<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> Guarded<W> {
    fn settle(&mut self, r: io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if is_closed_output(&e) => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl<W: Write> Write for Guarded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write_all(buf);
        self.settle(r).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.settle(r)
    }
}

/// What one pass over the store needs.
struct Scan<'t> {
    tx: &'t dyn Txn,
    now: chrono::DateTime<chrono::Utc>,
    thresholds: Thresholds,
}

/// Whether a pass goes on after a key.
enum Flow {
    Go,
    Stop,
}

impl Scan<'_> {
    /// Calls `each` with every considered key and its `wanted` findings (possibly
    /// none), a page of keys at a time. Returns how many keys were considered.
    fn pass(
        &self,
        wanted: Findings,
        each: &mut dyn FnMut(&KeyRecord, &[Detail]) -> io::Result<Flow>,
    ) -> Result<u64> {
        let mut checked = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.tx.keys_page(after.as_deref(), PAGE)?;
            for key in page.iter().filter(|k| considered(k, self.now)) {
                checked += 1;
                let counts = if needs_windows(key, wanted) {
                    // Exactly what verify counts: the same windows, the same store
                    // read (the lineage's accepted requests since each start).
                    let starts = window_starts(key, self.now);
                    counts_from(key, self.tx.pool_windows(key, &starts)?)
                } else {
                    Counts::default()
                };
                let found = findings(key, &counts, self.now, &self.thresholds, wanted);
                if let Flow::Stop = each(key, &found)? {
                    return Ok(checked);
                }
            }
            if page.len() < PAGE as usize {
                return Ok(checked);
            }
            after = page.last().map(|k| k.id.clone());
        }
    }
}

/// True when no more output can be written and the exit code is already known.
fn done(out: &Guarded<impl Write>, fail_on: Findings, present: Findings) -> bool {
    out.closed && (fail_on.is_empty() || !fail_on.intersect(present).is_empty())
}

/// json or csv, in one pass. Returns the findings present.
fn records(
    scan: &Scan,
    shown: Findings,
    fail_on: Findings,
    out: &mut Guarded<impl Write>,
    format: Format,
) -> Result<Findings> {
    let mut present = Findings::none();
    let mut rows = RecordsWriter::new(out, format, scan.now)?;
    scan.pass(shown, &mut |key, found| {
        for d in found {
            present.insert(d.finding());
            rows.add(out, key, d)?;
        }
        Ok(if done(out, fail_on, present) {
            Flow::Stop
        } else {
            Flow::Go
        })
    })?;
    rows.finish(out)?;
    Ok(present)
}

/// The grouped table, a summary line under it. Returns the findings present, known
/// after the first pass: a closed stdout then ends the drawing at once.
fn table(
    scan: &Scan,
    shown: Findings,
    out: &mut Guarded<impl Write>,
    ctx: &Ctx,
) -> Result<Findings> {
    let mut sizer = TableSizer::new(scan.now, ctx.color);
    let mut keys_found = 0;
    let checked = scan.pass(shown, &mut |key, found| {
        if !found.is_empty() {
            keys_found += 1;
        }
        for d in found {
            sizer.add(key, d);
        }
        Ok(Flow::Go)
    })?;
    let mut present = Findings::none();
    for f in Finding::ALL {
        if sizer.count(f) > 0 {
            present.insert(f);
        }
    }
    let rows = sizer.rows();
    let all_kept = sizer.all_kept();
    let counts: Vec<(Finding, u64)> = present.iter().map(|f| (f, sizer.count(f))).collect();
    let (mut printer, mut kept) = sizer.finish();
    if all_kept {
        // Few rows: group them from memory (a stable sort keeps the keys' order).
        kept.sort_by_key(|(f, _)| *f);
        let mut rows_of = kept.into_iter().peekable();
        for (f, n) in &counts {
            printer.begin(out, *f, *n)?;
            while let Some((_, cells)) = rows_of.next_if(|(g, _)| g == f) {
                printer.add_cells(out, cells)?;
            }
            printer.end(out)?;
        }
    } else {
        for (f, n) in &counts {
            if out.closed {
                break;
            }
            printer.begin(out, *f, *n)?;
            scan.pass(Findings::one(*f), &mut |key, found| {
                for d in found {
                    printer.add(out, key, d)?;
                }
                Ok(if out.closed { Flow::Stop } else { Flow::Go })
            })?;
            printer.end(out)?;
        }
    }
    if rows > 0 {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(rows, keys_found, checked))?;
    Ok(present)
}
