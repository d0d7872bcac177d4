//! Quotas, rate limits and credit limits as typed values.

use std::fmt;

/// Largest count, cost or credit figure keyctl takes, stores or prints: 2^53 - 1, the
/// largest whole number every JSON reader holds exactly (SPEC §5). Inputs above it are
/// refused; stored values above it read as it; counters stop at it.
pub const MAX_COUNT: u64 = (1 << 53) - 1;

/// Parses a whole number within `range` (whose end is at most [`MAX_COUNT`]) for a
/// flag, field or setting: the one parser of every count, cost, credit and limit.
pub fn parse_whole(
    flag: &str,
    text: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let t = text.trim();
    let problem = if t.starts_with('-') && t.len() > 1 {
        "negative values are not allowed".to_string()
    } else if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        "not a whole number".to_string()
    } else {
        // All digits: too many for u64 is simply too large.
        match t.parse::<u64>().map(|n| check_whole(n, range.clone())) {
            Ok(Ok(n)) => return Ok(n),
            Ok(Err(why)) => why.trim_start_matches("is ").to_string(),
            Err(_) => "too large".to_string(),
        }
    };
    Err(format!(
        "invalid {flag} '{text}': {problem}; use a whole number from {} to {}",
        range.start(),
        range.end()
    ))
}

/// Checks an already-parsed number (a JSON field) against `range`; the error is the
/// problem alone ("must be at least 1", "is too large"), for the caller to put after
/// the field's name.
pub fn check_whole(n: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    if n < *range.start() {
        Err(format!("must be at least {}", range.start()))
    } else if n > *range.end() {
        Err("is too large".into())
    } else {
        Ok(n)
    }
}

/// Parses a cap: a quota, rate-limit count, credit limit, `--limit` or count setting
/// (1 to [`MAX_COUNT`]).
pub fn parse_count(flag: &str, text: &str) -> Result<u64, String> {
    parse_whole(flag, text, 1..=MAX_COUNT)
}

/// Parses an amount that may be zero: a request's cost or duration (0 to [`MAX_COUNT`]).
pub fn parse_amount(flag: &str, text: &str) -> Result<u64, String> {
    parse_whole(flag, text, 0..=MAX_COUNT)
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

/// A stored figure as keyctl reads it: negative is 0, above [`MAX_COUNT`] is
/// [`MAX_COUNT`] (another writer, an older keyctl, a hand edit).
pub fn clamp_stored(n: i64) -> u64 {
    n.clamp(0, MAX_COUNT as i64) as u64
}

/// A stored floating-point figure (an SQL `total()`, a REAL written by another tool),
/// read like [`clamp_stored`]; NaN is 0.
pub fn clamp_stored_real(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= MAX_COUNT as f64 {
        MAX_COUNT
    } else {
        x as u64
    }
}

/// A stored setting's count text, read like [`clamp_stored`]: digits beyond the
/// ceiling read as the ceiling; anything else is not a count.
pub fn clamp_stored_text(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(t.parse::<u64>().map_or(MAX_COUNT, |n| n.min(MAX_COUNT)))
}

/// `a + b`, stopping at [`MAX_COUNT`].
pub fn add_counts(a: u64, b: u64) -> u64 {
    a.saturating_add(b).min(MAX_COUNT)
}

/// What IP blocking counts an address as: an IPv4 address alone, an IPv6 address as
/// its network of `v6_prefix` bits (one holder of a /64 has every address in it).
pub fn block_subject(ip: std::net::IpAddr, v6_prefix: u8) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match ipnet::Ipv6Net::new(v6, v6_prefix.min(128)) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
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
        format!(
            "invalid --rate-limit '{text}': the count must be a whole number from 1 to {MAX_COUNT}; {help}"
        )
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
            parse_count("--quota-total", "9007199254740991"),
            Ok(MAX_COUNT)
        );
        assert_eq!(MAX_COUNT, 9_007_199_254_740_991);
        for bad in [
            "0",
            "-1",
            "1.5",
            "",
            "-",
            "abc",
            "9007199254740992",
            "9223372036854775807",
            "99999999999999999999999",
        ] {
            let err = parse_count("--quota-total", bad).unwrap_err();
            assert!(err.contains("--quota-total"), "{err}");
            assert!(err.contains("from 1 to 9007199254740991"), "{err}");
        }
        assert!(parse_count("--x", "-1").unwrap_err().contains("negative"));
        assert!(parse_count("--x", "9007199254740992")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(parse_amount("--cost", "0"), Ok(0));
        assert_eq!(parse_amount("--cost", "9007199254740991"), Ok(MAX_COUNT));
        assert!(parse_amount("--cost", "9007199254740992").is_err());
        assert_eq!(parse_optional_count("--quota-daily", "none"), Ok(None));
        assert_eq!(parse_optional_count("--quota-daily", "5"), Ok(Some(5)));
    }

    #[test]
    fn stored_values_clamp() {
        assert_eq!(clamp_stored(i64::MAX), MAX_COUNT);
        assert_eq!(clamp_stored(-5), 0);
        assert_eq!(clamp_stored(7), 7);
        assert_eq!(clamp_stored_real(1e300), MAX_COUNT);
        assert_eq!(clamp_stored_real(f64::NAN), 0);
        assert_eq!(clamp_stored_real(-1.5), 0);
        assert_eq!(clamp_stored_real(3.0), 3);
        assert_eq!(
            clamp_stored_text("99999999999999999999999"),
            Some(MAX_COUNT)
        );
        assert_eq!(clamp_stored_text("12"), Some(12));
        assert_eq!(clamp_stored_text("-1"), None);
        assert_eq!(add_counts(MAX_COUNT, MAX_COUNT), MAX_COUNT);
        assert_eq!(add_counts(u64::MAX, 1), MAX_COUNT);
    }

    #[test]
    fn ipv6_is_blocked_by_prefix() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(block_subject(ip("10.1.2.3"), 64), "10.1.2.3");
        assert_eq!(
            block_subject(ip("2001:db8:1:2:aaaa::1"), 64),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            block_subject(ip("2001:db8:1:2:aaaa::1"), 64),
            block_subject(ip("2001:db8:1:2:ffff::9"), 64)
        );
        assert_eq!(block_subject(ip("2001:db8::1"), 128), "2001:db8::1/128");
        assert_eq!(block_subject(ip("2001:db8::1"), 48), "2001:db8::/48");
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
