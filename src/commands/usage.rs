//! `keyctl usage [KEYREF] [--days N]`: requests per day (accepted, rejected) and
//! credits; a bar chart at a terminal, a table, json or csv otherwise.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::keyref::filter_id;
use crate::cli::{Format, UsageArgs};
use crate::context::Ctx;
use crate::core::limits::{add_counts, parse_whole};
use crate::core::model::UsageFigures;
use crate::error::{Error, Result};
use crate::store::Txn;
use crate::ui::output::stdout;

const DAY_MS: i64 = 86_400_000;

/// Most days `usage --days` shows: ten years.
const MAX_DAYS: u64 = 3660;

/// UTC day number of a time (days since the epoch), as the store buckets them.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().div_euclid(DAY_MS)
}

pub fn day_label(day: i64) -> String {
    DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Every day of `from..=to` with its figures (zero for days without requests).
pub fn daily(
    tx: &dyn Txn,
    key_id: Option<&str>,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, UsageFigures)>> {
    let found = tx.usage_by_day(key_id, from, to)?;
    let mut it = found.into_iter().peekable();
    let mut out = Vec::with_capacity((to - from + 1).max(0) as usize);
    for day in from..=to {
        let figures = match it.peek() {
            Some((d, _)) if *d == day => it.next().map(|(_, f)| f).unwrap_or_default(),
            _ => UsageFigures::default(),
        };
        out.push((day, figures));
    }
    Ok(out)
}

#[derive(Serialize)]
struct DayJson {
    date: String,
    accepted: u64,
    rejected: u64,
    credits: u64,
}

#[derive(Serialize)]
struct UsageJson {
    key_id: Option<String>,
    key_name: Option<String>,
    days: Vec<DayJson>,
    totals: DayTotals,
}

#[derive(Serialize)]
struct DayTotals {
    accepted: u64,
    rejected: u64,
    credits: u64,
}

pub fn run(ctx: &Ctx, args: UsageArgs) -> Result<()> {
    let days = parse_whole("--days", &args.days, 1..=MAX_DAYS).map_err(Error::usage)?;
    let mut store = ctx.open_read()?;
    let tx = store.read()?;
    let (key_id, key_name) = match &args.keyref {
        None => (None, None),
        Some(r) => {
            let id = filter_id(tx.as_ref(), r, ctx.now)?;
            let name = tx.key_by_id(&id)?.map(|k| k.name);
            (Some(id), name)
        }
    };
    let to = day_of(ctx.now);
    let from = to - days as i64 + 1;
    let rows = daily(tx.as_ref(), key_id.as_deref(), from, to)?;
    let totals = rows.iter().fold(
        DayTotals {
            accepted: 0,
            rejected: 0,
            credits: 0,
        },
        |t, (_, u)| DayTotals {
            accepted: add_counts(t.accepted, u.accepted),
            rejected: add_counts(t.rejected, u.rejected),
            credits: add_counts(t.credits, u.credits),
        },
    );
    let mut out = stdout();
    match ctx.format {
        Format::Json => {
            let j = UsageJson {
                key_id,
                key_name,
                days: rows
                    .iter()
                    .map(|(d, u)| DayJson {
                        date: day_label(*d),
                        accepted: u.accepted,
                        rejected: u.rejected,
                        credits: u.credits,
                    })
                    .collect(),
                totals,
            };
            crate::ui::json::write_pretty(&mut out, &j)?;
            writeln!(out)?;
        }
        Format::Csv => {
            crate::ui::csv::write_row(&mut out, &["date", "accepted", "rejected", "credits"])?;
            for (d, u) in &rows {
                crate::ui::csv::write_row(
                    &mut out,
                    &[
                        day_label(*d),
                        u.accepted.to_string(),
                        u.rejected.to_string(),
                        u.credits.to_string(),
                    ],
                )?;
            }
        }
        Format::Table if ctx.stdout_tty => {
            let labelled: Vec<(String, UsageFigures)> =
                rows.iter().map(|(d, u)| (day_label(*d), *u)).collect();
            let title = match (&key_name, &key_id) {
                (Some(n), Some(id)) => format!("Requests per day for {n} ({id}), UTC"),
                _ => "Requests per day, all keys, UTC".to_string(),
            };
            let title = crate::core::text::escape(&title);
            writeln!(out, "{title}   █ accepted  ░ rejected")?;
            out.write_all(crate::ui::chart::bar_chart(&labelled, 40, ctx.color).as_bytes())?;
            writeln!(
                out,
                "total: {} accepted, {} rejected, {}",
                totals.accepted,
                totals.rejected,
                crate::ui::output::plural(totals.credits, "credit")
            )?;
        }
        Format::Table => {
            let table_rows: Vec<[String; 4]> = rows
                .iter()
                .map(|(d, u)| {
                    [
                        day_label(*d),
                        u.accepted.to_string(),
                        u.rejected.to_string(),
                        u.credits.to_string(),
                    ]
                })
                .collect();
            crate::ui::keys::write_plain_table(
                &mut out,
                &["Date", "Accepted", "Rejected", "Credits"],
                table_rows,
                ctx.color,
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
