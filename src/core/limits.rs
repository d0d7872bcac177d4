//! Quotas, rate limits and credit limits as typed values.

use std::fmt;

/// Largest count the store can hold (SQLite integers are signed 64-bit).
pub const MAX_COUNT: u64 = i64::MAX as u64;

/// Parses a positive whole number for a quota, credit limit or setting.
pub fn parse_count(flag: &str, text: &str) -> Result<u64, String> {
    let t = text.trim();
    let help = "use a whole number from 1 to 9223372036854775807";
    if t.starts_with('-') {
        return Err(format!(
            "invalid {flag} '{text}': negative values are not allowed; {help}"
        ));
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid {flag} '{text}': {help}"));
    }
    match t.parse::<u64>() {
        Ok(0) => Err(format!(
            "invalid {flag} '{text}': must be at least 1; {help}"
        )),
        Ok(n) if n <= MAX_COUNT => Ok(n),
        _ => Err(format!("invalid {flag} '{text}': too large; {help}")),
    }
}

/// Like [`parse_count`], but `none` clears the value (for `edit` and settings).
pub fn parse_optional_count(flag: &str, text: &str) -> Result<Option<u64>, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        parse_count(flag, text)
            .map(Some)
            .map_err(|e| format!("{e}, or 'none'"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Second,
    Minute,
}

impl RateUnit {
    pub fn word(self) -> &'static str {
        match self {
            RateUnit::Second => "second",
            RateUnit::Minute => "minute",
        }
    }
    pub fn millis(self) -> i64 {
        match self {
            RateUnit::Second => 1_000,
            RateUnit::Minute => 60_000,
        }
    }
}

/// A rate limit: at most `count` accepted requests per second or minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u64,
    pub unit: RateUnit,
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            RateUnit::Second => "s",
            RateUnit::Minute => "m",
        };
        write!(f, "{}/{u}", self.count)
    }
}

/// Parses `N/s` or `N/m`.
pub fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let help = "use N/s or N/m, like 10/s or 600/m";
    let t = text.trim();
    let (n, unit) = t
        .split_once('/')
        .ok_or_else(|| format!("invalid --rate-limit '{text}': {help}"))?;
    let unit = match unit {
        "s" | "sec" | "second" => RateUnit::Second,
        "m" | "min" | "minute" => RateUnit::Minute,
        _ => {
            return Err(format!(
                "invalid --rate-limit '{text}': unknown unit '{unit}'; {help}"
            ))
        }
    };
    let count = parse_count("--rate-limit", n).map_err(|_| {
        format!("invalid --rate-limit '{text}': the count must be a whole number from 1; {help}")
    })?;
    Ok(RateLimit { count, unit })
}

/// Request caps over all time and rolling 24 h / 7 d / 30 d windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quotas {
    pub total: Option<u64>,
    pub daily: Option<u64>,
    pub weekly: Option<u64>,
    pub monthly: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("--quota-total", "100"), Ok(100));
        assert_eq!(
            parse_count("--quota-total", "9223372036854775807"),
            Ok(MAX_COUNT)
        );
        for bad in [
            "0",
            "-1",
            "1.5",
            "",
            "abc",
            "9223372036854775808",
            "99999999999999999999999",
        ] {
            let err = parse_count("--quota-total", bad).unwrap_err();
            assert!(err.contains("--quota-total"), "{err}");
        }
        assert_eq!(parse_optional_count("--quota-daily", "none"), Ok(None));
        assert_eq!(parse_optional_count("--quota-daily", "5"), Ok(Some(5)));
    }

    #[test]
    fn rate_limits() {
        let r = parse_rate_limit("10/s").unwrap();
        assert_eq!((r.count, r.unit), (10, RateUnit::Second));
        assert_eq!(r.to_string(), "10/s");
        assert_eq!(parse_rate_limit("600/m").unwrap().to_string(), "600/m");
        for bad in ["10", "10/h", "0/s", "-1/s", "/s", "x/m", "10/"] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }
}
