//! `keyctl show KEYREF`: every field of one key and its recent usage.

use std::io::Write;

use chrono::Duration;

use super::keyref::resolve;
use crate::cli::{Format, ShowArgs};
use crate::context::Ctx;
use crate::error::Result;
use crate::ui::keys::{write_csv_row, write_show_json, write_show_table, UsageWindows, CSV_HEADER};
use crate::ui::output::stdout;

pub fn run(ctx: &Ctx, args: ShowArgs) -> Result<()> {
    let mut store = ctx.open_read()?;
    let tx = store.read()?;
    let key = resolve(tx.as_ref(), &args.keyref, ctx.now)?;
    let usage = UsageWindows {
        last_24h: tx.usage_since(&key.id, ctx.now - Duration::hours(24))?,
        last_7d: tx.usage_since(&key.id, ctx.now - Duration::days(7))?,
        last_30d: tx.usage_since(&key.id, ctx.now - Duration::days(30))?,
    };
    let mut out = stdout();
    match ctx.format {
        Format::Json => write_show_json(&mut out, &key, &usage, ctx.now)?,
        Format::Csv => {
            crate::ui::csv::write_row(&mut out, CSV_HEADER)?;
            write_csv_row(&mut out, &key, ctx.now)?;
        }
        Format::Table => write_show_table(&mut out, &key, &usage, ctx.now, ctx.color)?,
    }
    out.flush()?;
    Ok(())
}
