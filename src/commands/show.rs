//! `keyctl show KEYREF`: every field of one key and its recent usage.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};

use super::keyref::resolve;
use crate::cli::{Format, ShowArgs};
use crate::context::Ctx;
use crate::core::model::{KeyRecord, Status};
use crate::core::time::relative;
use crate::error::Result;
use crate::store::{Intent, Txn};
use crate::ui::keys::{write_csv_row, write_show_json, write_show_table, CSV_HEADER};
use crate::ui::output::stdout;
use crate::ui::table::local_time;
use crate::ui::usage::{day_of, every_day, write_sparkline, Windows};

pub fn run(ctx: &Ctx, args: ShowArgs) -> Result<()> {
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let key = resolve(tx.as_ref(), &args.keyref, ctx.now())?;
    let figures = tx.usage_windows(
        &key,
        &[
            ctx.now() - Duration::hours(24),
            ctx.now() - Duration::days(7),
            ctx.now() - Duration::days(30),
        ],
    )?;
    let usage = Windows {
        last_24h: figures[0],
        last_7d: figures[1],
        last_30d: figures[2],
    };
    let mut out = stdout();
    match ctx.format {
        Format::Json => write_show_json(&mut out, &key, &usage, ctx.now())?,
        Format::Csv => {
            crate::ui::csv::write_row(&mut out, CSV_HEADER)?;
            write_csv_row(&mut out, &key, ctx.now())?;
        }
        Format::Table => {
            write_show_table(&mut out, &key, &usage, ctx.now(), ctx.color)?;
            if let Some(line) = superseded_line(tx.as_ref(), &key, ctx.now())? {
                writeln!(out, "{}", crate::core::text::escape(&line))?;
            }
            if ctx.stdout_tty {
                let today = day_of(ctx.now());
                let found = tx.usage_by_day(Some(&key.id), today - 29, today)?;
                write_sparkline(&mut out, &every_day(found, today - 29, today))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `superseded by key_… (grace until …)` for a key a rotation replaced.
fn superseded_line(tx: &dyn Txn, k: &KeyRecord, now: DateTime<Utc>) -> Result<Option<String>> {
    let Some(to) = &k.rotated_to else {
        return Ok(None);
    };
    let mut notes = Vec::new();
    if tx.key_by_id(to)?.is_none() {
        notes.push("since deleted".to_string());
    }
    match (k.status(now), k.settings.expires_at) {
        (Status::Active, Some(end)) => notes.push(format!(
            "grace until {}, {}",
            local_time(end),
            relative(end, now)
        )),
        (Status::Expired, Some(end)) => notes.push(format!(
            "grace ended {}, {}",
            local_time(end),
            relative(end, now)
        )),
        _ => {}
    }
    Ok(Some(if notes.is_empty() {
        format!("superseded by {to}")
    } else {
        format!("superseded by {to} ({})", notes.join("; "))
    }))
}
