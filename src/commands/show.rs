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
    let figures = tx.usage_windows(
        &key,
        &[
            ctx.now - Duration::hours(24),
            ctx.now - Duration::days(7),
            ctx.now - Duration::days(30),
        ],
    )?;
    let usage = UsageWindows {
        last_24h: figures[0],
        last_7d: figures[1],
        last_30d: figures[2],
    };
    let mut out = stdout();
    match ctx.format {
        Format::Json => write_show_json(&mut out, &key, &usage, ctx.now)?,
        Format::Csv => {
            crate::ui::csv::write_row(&mut out, CSV_HEADER)?;
            write_csv_row(&mut out, &key, ctx.now)?;
        }
        Format::Table => {
            write_show_table(&mut out, &key, &usage, ctx.now, ctx.color)?;
            if ctx.stdout_tty {
                let today = super::usage::day_of(ctx.now);
                let days = super::usage::daily(tx.as_ref(), Some(&key.id), today - 29, today)?;
                let values: Vec<u64> = days.iter().map(|(_, u)| u.accepted + u.rejected).collect();
                writeln!(
                    out,
                    "Last 30 days    {}  ({})",
                    crate::ui::chart::sparkline(&values),
                    crate::ui::output::plural(values.iter().sum::<u64>(), "request")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
