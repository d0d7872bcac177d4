//! `keyctl list`: stream keys as a table, json or csv.

use std::io::Write;

use crate::cli::{Format, ListArgs, SortArg, StatusArg};
use crate::context::Ctx;
use crate::core::model::Status;
use crate::core::names::optional_text;
use crate::error::{Error, Result};
use crate::store::{Intent, KeyQuery, SortBy};
use crate::ui::keys::{summary_line, KeyRows, KeyTableLayout, KeyTableSizer};
use crate::ui::output::stdout;
use crate::ui::records::RecordWriter;
use crate::ui::table::render;

fn query(args: &ListArgs) -> Result<KeyQuery> {
    let text =
        |flag: &str, v: &Option<String>| optional_text(flag, v.as_deref()).map_err(Error::usage);
    Ok(KeyQuery {
        statuses: args
            .status
            .iter()
            .map(|s| match s {
                StatusArg::Active => Status::Active,
                StatusArg::Disabled => Status::Disabled,
                StatusArg::Expired => Status::Expired,
                StatusArg::Revoked => Status::Revoked,
            })
            .collect(),
        include_revoked: args.all,
        category: text("--category", &args.category)?,
        owner: text("--owner", &args.owner)?,
        deployment: text("--deployment", &args.deployment)?,
        group: text("--group", &args.group)?,
        search: text("--search", &args.search)?,
        sort: match args.sort {
            SortArg::Name => SortBy::Name,
            SortArg::Created => SortBy::Created,
            SortArg::LastUsed => SortBy::LastUsed,
            SortArg::Expires => SortBy::Expires,
        },
    })
}

pub fn run(ctx: &Ctx, args: ListArgs) -> Result<()> {
    let query = query(&args)?;
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let now = ctx.now();
    let mut out = stdout();
    let rows = KeyRows::new(now, ctx.color);
    if ctx.format != Format::Table {
        let mut keys = RecordWriter::new(&mut out, rows, ctx.format, ctx.color)?;
        tx.for_each_key(&query, now, &mut |k| keys.add(k))?;
        keys.finish()?;
    } else {
        // Two passes over one snapshot (the read transaction): the first measures
        // the columns, the second draws the rows, so memory stays bounded however
        // many keys there are and the table is the one a single pass would draw.
        let mut sizer = KeyTableSizer::new(rows);
        let counts = tx.for_each_key(&query, now, &mut |k| {
            sizer.add(k);
            Ok(())
        })?;
        let shown = sizer.count();
        match sizer.finish() {
            KeyTableLayout::Empty => {}
            KeyTableLayout::Whole(mut table) => writeln!(out, "{}", render(&mut table))?,
            KeyTableLayout::Parts(mut printer) => {
                tx.for_each_key(&query, now, &mut |k| printer.add(&mut out, k))?;
                printer.finish(&mut out)?;
            }
        }
        let settings = tx.settings()?;
        let limited = tx.count_limited(now)?;
        if shown == 0 {
            ctx.note("no keys match: create one with 'keyctl create --name NAME', or widen the filters (--all shows revoked keys)");
        } else {
            writeln!(out)?;
        }
        writeln!(out, "{}", summary_line(&counts, limited, settings.max_keys))?;
    }
    out.flush()?;
    Ok(())
}
