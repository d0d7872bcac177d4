//! Usage figures: per UTC day for `usage` (json, csv, a bar chart at a terminal, a
//! table otherwise) and over the windows `show` reports, with its sparkline.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::output::plural;
use crate::cli::Format;
use crate::core::limits::add_counts;
use crate::core::model::UsageFigures;

const DAY_MS: i64 = 86_400_000;

/// UTC day number of a time (days since the epoch), as the store buckets them.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().div_euclid(DAY_MS)
}

pub fn day_label(day: i64) -> String {
    DateTime::from_timestamp_millis(day * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Every day of `from..=to` with its figures, zero for days the store has none of
/// (`found` is ascending, as the store returns it).
pub fn every_day(found: Vec<(i64, UsageFigures)>, from: i64, to: i64) -> Vec<(i64, UsageFigures)> {
    let mut it = found.into_iter().peekable();
    let mut out = Vec::with_capacity((to - from + 1).max(0) as usize);
    for day in from..=to {
        let figures = match it.peek() {
            Some((d, _)) if *d == day => it.next().map(|(_, f)| f).unwrap_or_default(),
            _ => UsageFigures::default(),
        };
        out.push((day, figures));
    }
    out
}

/// Requests accepted and rejected (saturating: stored counts may be anything).
fn requests(u: &UsageFigures) -> u64 {
    add_counts(u.accepted, u.rejected)
}

// ---- `show`: windows and the sparkline ----

/// Usage over the windows `show` reports.
pub struct Windows {
    pub last_24h: UsageFigures,
    pub last_7d: UsageFigures,
    pub last_30d: UsageFigures,
}

#[derive(Serialize)]
struct FiguresJson {
    requests: u64,
    accepted: u64,
    rejected: u64,
    credits: u64,
}

impl From<&UsageFigures> for FiguresJson {
    fn from(u: &UsageFigures) -> FiguresJson {
        FiguresJson {
            requests: requests(u),
            accepted: u.accepted,
            rejected: u.rejected,
            credits: u.credits,
        }
    }
}

/// `show --json`'s `usage` member.
#[derive(Serialize)]
pub struct WindowsJson {
    last_24h: FiguresJson,
    last_7d: FiguresJson,
    last_30d: FiguresJson,
}

impl From<&Windows> for WindowsJson {
    fn from(w: &Windows) -> WindowsJson {
        WindowsJson {
            last_24h: (&w.last_24h).into(),
            last_7d: (&w.last_7d).into(),
            last_30d: (&w.last_30d).into(),
        }
    }
}

/// `12 requests (10 accepted, 2 rejected), 14 credits`
pub fn usage_text(u: &UsageFigures) -> String {
    format!(
        "{} ({} accepted, {} rejected), {}",
        plural(requests(u), "request"),
        u.accepted,
        u.rejected,
        plural(u.credits, "credit")
    )
}

/// `show`'s last line at a terminal: one spark per day and the requests in all.
pub fn write_sparkline(out: &mut dyn Write, days: &[(i64, UsageFigures)]) -> io::Result<()> {
    let values: Vec<u64> = days.iter().map(|(_, u)| requests(u)).collect();
    writeln!(
        out,
        "Last 30 days    {}  ({})",
        super::chart::sparkline(&values),
        plural(values.iter().fold(0, |t, v| add_counts(t, *v)), "request")
    )
}

// ---- `usage`: per day ----

/// Whose requests: one key's (id and name), or every key's.
pub struct Subject {
    pub key_id: Option<String>,
    pub key_name: Option<String>,
}

#[derive(Serialize)]
struct DayJson {
    date: String,
    accepted: u64,
    rejected: u64,
    credits: u64,
}

#[derive(Serialize)]
struct UsageJson<'a> {
    key_id: Option<&'a str>,
    key_name: Option<&'a str>,
    days: Vec<DayJson>,
    totals: Totals,
}

#[derive(Serialize)]
struct Totals {
    accepted: u64,
    rejected: u64,
    credits: u64,
}

fn totals(days: &[(i64, UsageFigures)]) -> Totals {
    days.iter().fold(
        Totals {
            accepted: 0,
            rejected: 0,
            credits: 0,
        },
        |t, (_, u)| Totals {
            accepted: add_counts(t.accepted, u.accepted),
            rejected: add_counts(t.rejected, u.rejected),
            credits: add_counts(t.credits, u.credits),
        },
    )
}

/// A day's row for csv and the table: date, accepted, rejected, credits.
fn day_row(day: i64, u: &UsageFigures) -> [String; 4] {
    [
        day_label(day),
        u.accepted.to_string(),
        u.rejected.to_string(),
        u.credits.to_string(),
    ]
}

/// `usage` in `format`; a table at a terminal (`chart`) is a bar chart.
pub fn write_days(
    out: &mut dyn Write,
    format: Format,
    subject: &Subject,
    days: &[(i64, UsageFigures)],
    chart: bool,
    color: bool,
) -> io::Result<()> {
    let totals = totals(days);
    match format {
        Format::Json => {
            let j = UsageJson {
                key_id: subject.key_id.as_deref(),
                key_name: subject.key_name.as_deref(),
                days: days
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
            super::json::write_pretty(&mut *out, &j)?;
            writeln!(out)
        }
        Format::Csv => {
            super::csv::write_row(out, &["date", "accepted", "rejected", "credits"])?;
            for (d, u) in days {
                super::csv::write_row(out, &day_row(*d, u))?;
            }
            Ok(())
        }
        Format::Table if chart => {
            let labelled: Vec<(String, UsageFigures)> =
                days.iter().map(|(d, u)| (day_label(*d), *u)).collect();
            let title = match (&subject.key_name, &subject.key_id) {
                (Some(n), Some(id)) => format!("Requests per day for {n} ({id}), UTC"),
                _ => "Requests per day, all keys, UTC".to_string(),
            };
            let title = crate::core::text::escape(&title);
            writeln!(out, "{title}   █ accepted  ░ rejected")?;
            out.write_all(super::chart::bar_chart(&labelled, 40, color).as_bytes())?;
            writeln!(
                out,
                "total: {} accepted, {} rejected, {}",
                totals.accepted,
                totals.rejected,
                plural(totals.credits, "credit")
            )
        }
        Format::Table => super::table::write_plain_table(
            out,
            &["Date", "Accepted", "Rejected", "Credits"],
            days.iter().map(|(d, u)| day_row(*d, u)).collect(),
            color,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_fills_the_gaps_with_zero() {
        let f = |n| UsageFigures {
            accepted: n,
            rejected: 0,
            credits: 0,
        };
        let days = every_day(vec![(11, f(1)), (13, f(3))], 10, 13);
        let counts: Vec<(i64, u64)> = days.iter().map(|(d, u)| (*d, u.accepted)).collect();
        assert_eq!(counts, [(10, 0), (11, 1), (12, 0), (13, 3)]);
    }
}
