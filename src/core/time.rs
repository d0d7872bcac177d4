//! Time inputs (`never`, durations, RFC 3339 dates and date-times) and time output
//! (RFC 3339 UTC for machines, relative phrases for people). `now` is always passed in.

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};

/// A parsed time input, before it is anchored to "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Never,
    /// A length of time: `--expires 30d` means 30 days from now, `--since 1d` one day ago.
    In(Duration),
    At(DateTime<Utc>),
}

const DURATION_HELP: &str = "a duration like 90m, 12h, 30d or 2w";
const DATE_HELP: &str = "a date like 2027-01-31 or a date-time like 2027-01-31T12:00:00Z";

/// Parses a duration: a whole number followed by `s`, `m`, `h`, `d` or `w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let unit_at = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit: use {DURATION_HELP}"))?;
    let (digits, unit) = t.split_at(unit_at);
    if digits.is_empty() {
        return Err(format!("'{text}' is not a duration: use {DURATION_HELP}"));
    }
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is too long a duration: use {DURATION_HELP}"))?;
    let secs_per_unit: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{unit}': use {DURATION_HELP}"
            ))
        }
    };
    // Cap at 1000 years: beyond that chrono cannot represent the resulting dates.
    const MAX_SECS: i64 = 1000 * 366 * 86_400;
    match n.checked_mul(secs_per_unit) {
        Some(s) if s <= MAX_SECS => Ok(Duration::seconds(s)),
        _ => Err(format!(
            "'{text}' is too long a duration: use at most 1000 years"
        )),
    }
}

/// Parses an RFC 3339 date (`2027-01-31`, midnight UTC) or date-time.
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc());
        }
    }
    Err(format!("'{text}' is not a valid date: use {DATE_HELP}"))
}

/// Parses any time input. `allow_never` is false where "never" makes no sense.
pub fn parse_time_spec(text: &str, allow_never: bool) -> Result<TimeSpec, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("never") {
        return if allow_never {
            Ok(TimeSpec::Never)
        } else {
            Err(format!(
                "'{text}' is not allowed here: use {DURATION_HELP}, or {DATE_HELP}"
            ))
        };
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) && t.len() <= 21 && !t.contains(['-', ':']) {
        return parse_duration(t).map(TimeSpec::In);
    }
    parse_datetime(t).map(TimeSpec::At).map_err(|_| {
        let never = if allow_never { ", or 'never'" } else { "" };
        format!("'{text}' is not a time: use {DURATION_HELP}, {DATE_HELP}{never}")
    })
}

impl TimeSpec {
    /// A future instant: a duration counts forward from `now`.
    pub fn after(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            TimeSpec::Never => None,
            TimeSpec::In(d) => now.checked_add_signed(d),
            TimeSpec::At(t) => Some(t),
        }
    }

    /// A past instant: a duration counts back from `now` (`--since 1d`).
    pub fn before(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            TimeSpec::Never => None,
            TimeSpec::In(d) => now.checked_sub_signed(d),
            TimeSpec::At(t) => Some(t),
        }
    }
}

/// Formats a duration the way it is typed (`90m`, `12h`, `30d`, `2w`).
pub fn format_duration(d: Duration) -> String {
    let s = d.num_seconds();
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s != 0 && s % size == 0 {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

/// RFC 3339 in UTC with whole seconds, as json and csv print it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds since the epoch, as the store keeps times.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Earliest and latest stored time keyctl reads back (0000-01-01 .. 9999-12-31): every
/// time then prints as RFC 3339 with a four-digit year.
const EARLIEST_MS: i64 = -62_167_219_200_000;
const LATEST_MS: i64 = 253_402_300_799_999;

/// A stored time. Values outside years 0000–9999 (written by hand or by another
/// writer) read as the nearest bound, so a far-future expiry stays in the future.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.clamp(EARLIEST_MS, LATEST_MS))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Seconds in the units `relative` counts in; a month and a year are the Gregorian
/// averages (30.436875 and 365.2425 days), so 90 days read as 3 months and 365 as a year.
const MINUTE: u64 = 60;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;
const MONTH: u64 = 2_629_746;
const YEAR: u64 = 31_556_952;

/// "3 hours ago", "in 1 month", "just now": the nearest whole unit, as people read
/// (moment.js's thresholds): under 45 seconds is "just now" (or "in less than a
/// minute"); then minutes up to 44, hours up to 21, days up to 25, months up to 10,
/// then years. Each count is rounded to the nearest, so `--expires 1d` reads "in 1
/// day", not "in 23 hours" a second later.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (past, secs) = (secs >= 0, secs.unsigned_abs());
    let nearest = |unit: u64| (secs + unit / 2) / unit;
    if secs < 45 {
        return if past {
            "just now".into()
        } else {
            "in less than a minute".into()
        };
    }
    let (n, unit) = if nearest(MINUTE) < 45 {
        (nearest(MINUTE), "minute")
    } else if nearest(HOUR) < 22 {
        (nearest(HOUR), "hour")
    } else if nearest(DAY) < 26 {
        (nearest(DAY), "day")
    } else if nearest(MONTH) < 11 {
        (nearest(MONTH), "month")
    } else {
        (nearest(YEAR).max(1), "year")
    };
    let plural = if n == 1 { "" } else { "s" };
    if past {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_datetime("2026-11-23T12:00:00Z").unwrap()
    }

    #[test]
    fn stored_times_out_of_range_read_as_the_nearest_bound() {
        assert_eq!(rfc3339(from_millis(i64::MAX)), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(from_millis(i64::MIN)), "0000-01-01T00:00:00Z");
        assert!(from_millis(i64::MAX) > now());
        let t = parse_datetime("2027-01-31T12:00:00Z").unwrap();
        assert_eq!(from_millis(to_millis(t)), t);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_duration("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_duration("2w").unwrap(), Duration::weeks(2));
        assert_eq!(parse_duration("45s").unwrap(), Duration::seconds(45));
        for bad in [
            "",
            "d",
            "10",
            "10x",
            "1.5d",
            "-3d",
            "99999999999999999999999d",
            "9999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_specs() {
        let n = now();
        assert_eq!(parse_time_spec("never", true).unwrap(), TimeSpec::Never);
        assert!(parse_time_spec("never", false).is_err());
        let in30 = parse_time_spec("30d", true).unwrap();
        assert_eq!(in30.after(n).map(rfc3339).unwrap(), "2026-12-23T12:00:00Z");
        assert_eq!(in30.before(n).map(rfc3339).unwrap(), "2026-10-24T12:00:00Z");
        let date = parse_time_spec("2027-01-31", true).unwrap();
        assert_eq!(date.after(n).map(rfc3339).unwrap(), "2027-01-31T00:00:00Z");
        let dt = parse_time_spec("2027-01-31T12:00:00+02:00", true).unwrap();
        assert_eq!(dt.after(n).map(rfc3339).unwrap(), "2027-01-31T10:00:00Z");
        for bad in [
            "2027-02-30",
            "tomorrow",
            "2027-13-01",
            "31/01/2027",
            "2027-01-31T25:00:00Z",
        ] {
            let err = parse_time_spec(bad, true).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn relative_phrases() {
        let n = now();
        assert_eq!(relative(n, n), "just now");
        assert_eq!(relative(n - Duration::hours(3), n), "3 hours ago");
        assert_eq!(relative(n - Duration::minutes(1), n), "1 minute ago");
        assert_eq!(relative(n - Duration::days(400), n), "1 year ago");
        // The examples: whole days, months and years read as typed.
        assert_eq!(relative(n + Duration::days(1), n), "in 1 day");
        assert_eq!(relative(n + Duration::days(90), n), "in 3 months");
        assert_eq!(relative(n + Duration::days(365), n), "in 1 year");
        // A second later still reads the same (rounding, not truncation).
        let later = n + Duration::seconds(1);
        assert_eq!(relative(n + Duration::days(1), later), "in 1 day");
        assert_eq!(relative(n + Duration::days(90), later), "in 3 months");
        assert_eq!(relative(n + Duration::days(365), later), "in 1 year");
        assert_eq!(relative(n - Duration::hours(2), n), "2 hours ago");
    }

    /// Each threshold from both sides, in the past and the future: (offset, phrase
    /// without "in"/"ago").
    #[test]
    fn relative_thresholds() {
        let n = now();
        let s = Duration::seconds;
        let cases = [
            (s(44), None),
            (s(45), Some("1 minute")),
            (s(89), Some("1 minute")),
            (s(90), Some("2 minutes")),
            (Duration::minutes(44) + s(29), Some("44 minutes")),
            (Duration::minutes(44) + s(30), Some("1 hour")),
            (Duration::minutes(89), Some("1 hour")),
            (Duration::minutes(90), Some("2 hours")),
            (
                Duration::hours(21) + Duration::minutes(29),
                Some("21 hours"),
            ),
            (Duration::hours(21) + Duration::minutes(30), Some("1 day")),
            (Duration::hours(23), Some("1 day")),
            (Duration::hours(35), Some("1 day")),
            (Duration::hours(36), Some("2 days")),
            (Duration::days(25) + Duration::hours(11), Some("25 days")),
            (Duration::days(25) + Duration::hours(12), Some("1 month")),
            (Duration::days(30), Some("1 month")),
            (Duration::days(45), Some("1 month")),
            (Duration::days(46), Some("2 months")),
            (Duration::days(319), Some("10 months")),
            (Duration::days(320), Some("1 year")),
            (Duration::days(547), Some("1 year")),
            (Duration::days(548), Some("2 years")),
            (Duration::days(3653), Some("10 years")),
        ];
        for (d, phrase) in cases {
            let (ago, ahead) = match phrase {
                None => ("just now".to_string(), "in less than a minute".to_string()),
                Some(p) => (format!("{p} ago"), format!("in {p}")),
            };
            assert_eq!(relative(n - d, n), ago, "{d:?} ago");
            assert_eq!(relative(n + d, n), ahead, "{d:?} ahead");
        }
    }

    #[test]
    fn duration_round_trip() {
        for text in ["90m", "12h", "30d", "2w", "45s", "10m", "15m"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn millis_round_trip() {
        let n = now();
        assert_eq!(from_millis(to_millis(n)), n);
    }
}
