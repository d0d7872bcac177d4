//! Credit refill (SPEC §8): a credit pool's remaining credits are set to N (`set`) or
//! raised by N (`add`, never above the credit limit) at every UTC midnight (`day`) or
//! 00:00 UTC on the 1st of a month (`month`). There is no daemon: every reader brings
//! the stored balance up to "now" with [`catch_up`], and the write path stores what it
//! computed, with the last boundary it applied, so each boundary counts once.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use super::limits::{parse_count, MAX_COUNT};
use super::model::KeyRecord;

/// How often a refill comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// At 00:00 UTC every day.
    Day,
    /// At 00:00 UTC on the 1st of every month.
    Month,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Month => "month",
        }
    }

    pub fn parse(text: &str) -> Option<Interval> {
        match text {
            "day" => Some(Interval::Day),
            "month" => Some(Interval::Month),
            _ => None,
        }
    }
}

/// What a refill does to the remaining credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The remaining credits become N (Unkey's refill; the default).
    #[default]
    Set,
    /// The remaining credits grow by N per boundary passed, up to the credit limit.
    Add,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Set => "set",
            Mode::Add => "add",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "set" => Some(Mode::Set),
            "add" => Some(Mode::Add),
            _ => None,
        }
    }
}

/// `--refill N/day|N/month`: how much and how often, without the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub amount: u64,
    pub interval: Interval,
}

/// A credit pool's refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    pub amount: u64,
    pub interval: Interval,
    pub mode: Mode,
}

impl fmt::Display for Refill {
    /// `100/day set`: what `show`, csv and audit details print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}",
            self.amount,
            self.interval.as_str(),
            self.mode.as_str()
        )
    }
}

/// Parses `N/day` or `N/month` (N a count, 1..2^53-1); `flag` names it in messages.
pub fn parse_rate(flag: &str, text: &str) -> Result<Rate, String> {
    let help = "use N/day or N/month, like 1000/day or 50000/month";
    let t = text.trim();
    let (n, unit) = t
        .split_once('/')
        .ok_or_else(|| format!("invalid {flag} '{text}': {help}"))?;
    let interval = match unit.trim() {
        "day" | "d" => Interval::Day,
        "month" | "mo" => Interval::Month,
        other => {
            return Err(format!(
                "invalid {flag} '{text}': unknown interval '{other}'; {help}"
            ))
        }
    };
    let amount = parse_count(flag, n).map_err(|_| {
        format!(
            "invalid {flag} '{text}': the amount must be a whole number from 1 to {MAX_COUNT}; {help}"
        )
    })?;
    Ok(Rate { amount, interval })
}

/// A refill as stored: its text (`100/day set`, the [`fmt::Display`] form). Anything
/// else, never written by keyctl, reads as no refill, so no stored value fails a
/// command.
pub fn stored(text: &str) -> Option<Refill> {
    let (rate, mode) = text.split_once(' ')?;
    let rate = parse_rate("", rate).ok()?;
    Some(Refill {
        amount: rate.amount,
        interval: rate.interval,
        mode: Mode::parse(mode)?,
    })
}

/// Parses `add` or `set`.
pub fn parse_mode(flag: &str, text: &str) -> Result<Mode, String> {
    Mode::parse(text.trim()).ok_or_else(|| format!("invalid {flag} '{text}': use add or set"))
}

/// The number of the period `t` falls in: days or months since the Unix epoch, so
/// the boundaries between two times are the difference of their numbers.
fn period(interval: Interval, t: DateTime<Utc>) -> i64 {
    match interval {
        Interval::Day => t.timestamp().div_euclid(86_400),
        Interval::Month => i64::from(t.year()) * 12 + i64::from(t.month0()),
    }
}

/// The start of period number `n` (UTC midnight, or 00:00 on the 1st); the latest
/// time chrono holds for a number beyond it.
fn period_start(interval: Interval, n: i64) -> DateTime<Utc> {
    let start = match interval {
        Interval::Day => n
            .checked_mul(86_400)
            .and_then(|s| DateTime::from_timestamp(s, 0)),
        Interval::Month => i32::try_from(n.div_euclid(12))
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, n.rem_euclid(12) as u32 + 1, 1))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Utc.from_utc_datetime(&d)),
    };
    start.unwrap_or(if n < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The latest boundary at or before `t`.
pub fn boundary_at(interval: Interval, t: DateTime<Utc>) -> DateTime<Utc> {
    period_start(interval, period(interval, t))
}

/// The first boundary after `t`: when the next refill comes.
pub fn next_boundary(interval: Interval, t: DateTime<Utc>) -> DateTime<Utc> {
    period_start(interval, period(interval, t).saturating_add(1))
}

/// A credit pool's balance: the credits used, as of the last boundary applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub used: u64,
    /// The last refill boundary applied (None: no refill).
    pub refilled_at: Option<DateTime<Utc>>,
}

/// The balance as of `now`: every boundary after `b.refilled_at` up to `now` applied
/// once. `set` leaves `limit − N` used (none when N ≥ limit: the remaining credits are
/// capped at the limit); `add` takes N × boundaries off what is used, never leaving
/// more remaining than the limit. A refilled_at of None starts counting at `now`
/// (nothing to apply yet); a clock behind refilled_at applies nothing and keeps it.
pub fn balance_at(refill: &Refill, limit: u64, b: Balance, now: DateTime<Utc>) -> Balance {
    let Some(at) = b.refilled_at else {
        return Balance {
            used: b.used,
            refilled_at: Some(boundary_at(refill.interval, now)),
        };
    };
    let passed = period(refill.interval, now) - period(refill.interval, at);
    if passed <= 0 {
        return b;
    }
    let remaining = limit.saturating_sub(b.used);
    let remaining = match refill.mode {
        Mode::Set => refill.amount.min(limit),
        Mode::Add => {
            let added = refill.amount.saturating_mul(passed as u64);
            remaining.saturating_add(added).min(limit)
        }
    };
    Balance {
        used: limit - remaining,
        refilled_at: Some(boundary_at(refill.interval, now)),
    }
}

/// The refill that applies to `key`: its pool's, when the key has a credit limit (a
/// key without one has nothing to refill).
pub fn of(key: &KeyRecord) -> Option<(&Refill, u64)> {
    match (&key.settings.refill, key.settings.credit_limit) {
        (Some(r), Some(limit)) => Some((r, limit)),
        _ => None,
    }
}

/// Brings `key`'s credits used and last boundary up to `now` (what every reader
/// shows and decides on). A key without a refill is left as it is, at no cost.
pub fn catch_up(key: &mut KeyRecord, now: DateTime<Utc>) {
    if let Some(b) = caught_up(key, now) {
        key.credits_used = b.used;
        key.refilled_at = b.refilled_at;
    }
}

/// `key`'s credits used as of `now` (see [`catch_up`]).
pub fn used_at(key: &KeyRecord, now: DateTime<Utc>) -> u64 {
    caught_up(key, now).map_or(key.credits_used, |b| b.used)
}

/// `key`'s pool balance as of `now`; None when no refill applies.
fn caught_up(key: &KeyRecord, now: DateTime<Utc>) -> Option<Balance> {
    let (refill, limit) = of(key)?;
    let stored = Balance {
        used: key.credits_used,
        refilled_at: key.refilled_at,
    };
    Some(balance_at(refill, limit, stored, now))
}

/// When `key`'s next refill comes after `now` (None: no refill applies).
pub fn next_at(key: &KeyRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    of(key).map(|(r, _)| next_boundary(r.interval, now))
}

/// The balance a recorded verification writes for `key` (read and caught up in the
/// same transaction) before charging it: Some only for a key whose refill applies, so
/// a key without one writes exactly what it wrote before refills existed.
pub fn to_write(key: &KeyRecord) -> Option<Balance> {
    of(key).map(|_| Balance {
        used: key.credits_used,
        refilled_at: key.refilled_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::parse_datetime;

    fn t(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap()
    }

    fn refill(amount: u64, interval: Interval, mode: Mode) -> Refill {
        Refill {
            amount,
            interval,
            mode,
        }
    }

    #[test]
    fn parses_rates_and_modes_naming_the_flag() {
        assert_eq!(
            parse_rate("--refill", "100/day"),
            Ok(Rate {
                amount: 100,
                interval: Interval::Day
            })
        );
        assert_eq!(
            parse_rate("--refill", " 5/month ").map(|r| r.interval),
            Ok(Interval::Month)
        );
        for bad in [
            "100",
            "0/day",
            "-1/day",
            "x/day",
            "100/week",
            "9007199254740992/day",
            "/day",
            "",
        ] {
            let e = parse_rate("--refill", bad).unwrap_err();
            assert!(e.starts_with("invalid --refill '"), "{e}");
            assert!(e.contains("N/day or N/month"), "{e}");
        }
        assert_eq!(parse_mode("--refill-mode", "add"), Ok(Mode::Add));
        assert_eq!(parse_mode("--refill-mode", "set"), Ok(Mode::Set));
        assert!(parse_mode("--refill-mode", "reset")
            .unwrap_err()
            .contains("use add or set"));
    }

    #[test]
    fn the_stored_text_reads_back_and_anything_else_is_none() {
        for r in [
            refill(100, Interval::Day, Mode::Set),
            refill(MAX_COUNT, Interval::Month, Mode::Add),
        ] {
            assert_eq!(stored(&r.to_string()), Some(r));
        }
        for bad in [
            "",
            "100/day",
            "100/day reset",
            "0/day set",
            "x/day add",
            "100/week set",
        ] {
            assert_eq!(stored(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_boundaries_are_utc_midnights() {
        let at = t("2026-12-03T09:15:00Z");
        assert_eq!(boundary_at(Interval::Day, at), t("2026-12-03T00:00:00Z"));
        assert_eq!(next_boundary(Interval::Day, at), t("2026-12-04T00:00:00Z"));
        let midnight = t("2026-12-04T00:00:00Z");
        assert_eq!(boundary_at(Interval::Day, midnight), midnight);
        assert_eq!(
            next_boundary(Interval::Day, midnight),
            t("2026-12-05T00:00:00Z")
        );
        // Before the epoch too (floor, not truncation).
        assert_eq!(
            boundary_at(Interval::Day, t("1969-12-31T23:00:00Z")),
            t("1969-12-31T00:00:00Z")
        );
    }

    #[test]
    fn month_boundaries_across_month_lengths_and_years() {
        for (at, start, next) in [
            ("2026-01-31T23:59:59Z", "2026-01-01", "2026-02-01"),
            ("2026-02-28T12:00:00Z", "2026-02-01", "2026-03-01"),
            ("2028-02-29T12:00:00Z", "2028-02-01", "2028-03-01"),
            ("2026-04-30T23:59:59.999Z", "2026-04-01", "2026-05-01"),
            ("2026-12-31T23:59:59Z", "2026-12-01", "2027-01-01"),
            ("2027-01-01T00:00:00Z", "2027-01-01", "2027-02-01"),
            ("1969-12-15T00:00:00Z", "1969-12-01", "1970-01-01"),
        ] {
            let at = t(at);
            assert_eq!(boundary_at(Interval::Month, at), t(start), "{at}");
            assert_eq!(next_boundary(Interval::Month, at), t(next), "{at}");
        }
    }

    fn bal(used: u64, at: &str) -> Balance {
        Balance {
            used,
            refilled_at: Some(t(at)),
        }
    }

    #[test]
    fn set_makes_the_remaining_n_once_whatever_the_boundaries_passed() {
        let r = refill(30, Interval::Day, Mode::Set);
        let b = bal(95, "2026-12-03T00:00:00Z");
        // Same day: nothing.
        assert_eq!(balance_at(&r, 100, b, t("2026-12-03T23:59:59.999Z")), b);
        // Next midnight: 30 remaining, i.e. 70 used.
        assert_eq!(
            balance_at(&r, 100, b, t("2026-12-04T00:00:00Z")),
            bal(70, "2026-12-04T00:00:00Z")
        );
        // Three midnights later: still 30 remaining.
        assert_eq!(
            balance_at(&r, 100, b, t("2026-12-06T08:00:00Z")),
            bal(70, "2026-12-06T00:00:00Z")
        );
        // N above the limit: the remaining credits are the limit.
        let big = refill(500, Interval::Day, Mode::Set);
        assert_eq!(balance_at(&big, 100, b, t("2026-12-04T00:00:00Z")).used, 0);
        // Set also lowers a balance above N.
        assert_eq!(
            balance_at(
                &r,
                100,
                bal(0, "2026-12-03T00:00:00Z"),
                t("2026-12-04T01:00:00Z")
            )
            .used,
            70
        );
    }

    #[test]
    fn add_adds_n_per_boundary_never_above_the_limit() {
        let r = refill(10, Interval::Day, Mode::Add);
        let b = bal(95, "2026-12-03T00:00:00Z");
        assert_eq!(balance_at(&r, 100, b, t("2026-12-04T00:00:01Z")).used, 85);
        assert_eq!(balance_at(&r, 100, b, t("2026-12-06T00:00:00Z")).used, 65);
        assert_eq!(balance_at(&r, 100, b, t("2027-12-06T00:00:00Z")).used, 0);
        // A limit lowered below what was used: 0 remaining, then N.
        assert_eq!(balance_at(&r, 50, b, t("2026-12-04T00:00:00Z")).used, 40);
        // Huge amounts and spans saturate.
        let huge = refill(MAX_COUNT, Interval::Day, Mode::Add);
        let far = Balance {
            used: MAX_COUNT,
            refilled_at: Some(t("1970-01-01T00:00:00Z")),
        };
        assert_eq!(
            balance_at(&huge, MAX_COUNT, far, t("9999-12-31T00:00:00Z")).used,
            0
        );
    }

    #[test]
    fn months_count_calendar_boundaries() {
        let r = refill(10, Interval::Month, Mode::Add);
        let b = bal(100, "2026-01-01T00:00:00Z");
        assert_eq!(balance_at(&r, 100, b, t("2026-01-31T23:59:59Z")), b);
        assert_eq!(
            balance_at(&r, 100, b, t("2026-02-01T00:00:00Z")),
            bal(90, "2026-02-01T00:00:00Z")
        );
        // Jan → Mar 1 of a leap year, and across a year: boundaries, not 30-day spans.
        assert_eq!(balance_at(&r, 100, b, t("2026-03-01T00:00:00Z")).used, 80);
        assert_eq!(balance_at(&r, 100, b, t("2027-01-01T00:00:00Z")).used, 0);
        let dec = bal(100, "2027-12-01T00:00:00Z");
        assert_eq!(
            balance_at(&r, 100, dec, t("2028-01-01T00:00:00Z")),
            bal(90, "2028-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_clock_behind_the_last_boundary_applies_nothing() {
        let r = refill(10, Interval::Day, Mode::Add);
        let b = bal(95, "2026-12-05T00:00:00Z");
        assert_eq!(balance_at(&r, 100, b, t("2026-12-03T00:00:00Z")), b);
        let none = Balance {
            used: 95,
            refilled_at: None,
        };
        assert_eq!(
            balance_at(&r, 100, none, t("2026-12-03T10:00:00Z")),
            bal(95, "2026-12-03T00:00:00Z")
        );
    }

    #[test]
    fn far_periods_do_not_panic() {
        for interval in [Interval::Day, Interval::Month] {
            let _ = next_boundary(interval, DateTime::<Utc>::MAX_UTC);
            let _ = boundary_at(interval, DateTime::<Utc>::MIN_UTC);
        }
    }
}
