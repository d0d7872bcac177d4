//! Store settings (`keyctl config`): names, defaults and validation.

use chrono::Duration;

use super::key::{validate_prefix, DEFAULT_PREFIX};
use super::limits::{
    clamp_stored_text, parse_optional_count, parse_rate_limit, parse_whole, MAX_COUNT,
};
use super::store_limits::{format_multiplier, multiplier_group, parse_multiplier, StoreLimits};
use super::time::{format_duration, parse_duration};

/// Every setting, in the order `config list` shows them, with its default.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "key-prefix",
        DEFAULT_PREFIX,
        "prefix of new secrets (1-16 of a-z0-9)",
    ),
    (
        "max-keys",
        "none",
        "limit on active + disabled keys ('none' = no limit)",
    ),
    (
        "failed-auth-limit",
        "10",
        "invalid attempts from one IP that block it",
    ),
    (
        "failed-auth-ipv6-prefix",
        "64",
        "IPv6 addresses are counted and blocked by network of this many bits (1-128)",
    ),
    (
        "failed-auth-window",
        "10m",
        "window in which failed attempts are counted",
    ),
    (
        "block-duration",
        "15m",
        "how long a blocked IP stays blocked",
    ),
    (
        "log-retention",
        "never",
        "request-log rows older than this are pruned ('never' keeps all)",
    ),
    (
        "rate-limit",
        "none",
        "accepted requests of all keys together per second or minute ('none' = no limit)",
    ),
    (
        "credit-limit",
        "none",
        "credits all keys together may ever spend ('none' = no limit)",
    ),
];

/// `group-multiplier.GROUP`: one setting per group, named by it, so not in
/// [`SETTINGS`]; `config list` shows the ones that are set after those.
pub const MULTIPLIER_SETTING: (&str, &str, &str) = (
    "group-multiplier.GROUP",
    "1",
    "a request's cost is multiplied by this for keys of GROUP (rounded up)",
);

/// The group of a `group-multiplier.GROUP` name, when it names one (free text as a
/// key's group is, without surrounding spaces).
fn multiplier_setting_group(name: &str) -> Option<&str> {
    multiplier_group(name).filter(|g| {
        !g.is_empty() && g.trim() == *g && super::names::validate_text("group", g).is_ok()
    })
}

pub fn is_known(name: &str) -> bool {
    SETTINGS.iter().any(|(n, _, _)| *n == name) || multiplier_setting_group(name).is_some()
}

pub fn default_of(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, d, _)| *d)
        .or_else(|| multiplier_setting_group(name).map(|_| MULTIPLIER_SETTING.1))
}

pub fn known_names() -> String {
    SETTINGS
        .iter()
        .map(|(n, _, _)| *n)
        .chain([MULTIPLIER_SETTING.0])
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values a setting takes, in words (what [`normalize`] accepts).
pub fn form_of(name: &str) -> &'static str {
    match name {
        "key-prefix" => "1-16 of a-z, 0-9",
        "max-keys" => "N or none",
        "failed-auth-limit" => "N",
        "failed-auth-ipv6-prefix" => "1-128",
        "failed-auth-window" | "block-duration" => "a duration like 10m",
        "log-retention" => "a duration like 90d, or never",
        "rate-limit" => "N/s, N/m or none",
        "credit-limit" => "N or none",
        _ if name == MULTIPLIER_SETTING.0 || multiplier_group(name).is_some() => {
            "0.0001-10000, at most 4 decimal places"
        }
        _ => "",
    }
}

/// The settings for `config set --help`: name, default, form and meaning, one a line.
pub fn help_text() -> String {
    let width = SETTINGS
        .iter()
        .chain([&MULTIPLIER_SETTING])
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Settings:");
    for (name, default, about) in SETTINGS.iter().chain([&MULTIPLIER_SETTING]) {
        out.push_str(&format!(
            "\n  {name:width$}  values: {}; default: {default}\n      {about}",
            form_of(name),
        ));
    }
    out
}

/// A duration longer than zero (a zero window, block or retention would be a mistake).
fn positive_duration(v: &str) -> Result<Duration, String> {
    match parse_duration(v)? {
        d if d > Duration::zero() => Ok(d),
        _ => Err(format!("'{v}' must be longer than zero, like 10m or 90d")),
    }
}

/// Validates a value for a setting and returns its canonical text.
pub fn normalize(name: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    match name {
        "key-prefix" => validate_prefix(v).map(|_| v.to_string()),
        "max-keys" => parse_optional_count("max-keys", v)
            .map(|n| n.map_or_else(|| "none".to_string(), |n| n.to_string())),
        "failed-auth-limit" => parse_whole(name, v, 1..=MAX_COUNT).map(|n| n.to_string()),
        "failed-auth-ipv6-prefix" => parse_whole(name, v, IPV6_PREFIX_RANGE).map(|n| n.to_string()),
        "failed-auth-window" | "block-duration" => positive_duration(v)
            .map(format_duration)
            .map_err(|e| format!("invalid {name}: {e}")),
        "log-retention" if v.eq_ignore_ascii_case("never") => Ok("never".into()),
        "log-retention" => positive_duration(v)
            .map(format_duration)
            .map_err(|e| format!("invalid log-retention: {e}, or 'never'")),
        "rate-limit" if v.eq_ignore_ascii_case("none") => Ok("none".into()),
        "rate-limit" => parse_rate_limit(v)
            .map(|r| r.to_string())
            .map_err(|e| format!("{}, or 'none'", e.replace("--rate-limit", "rate-limit"))),
        "credit-limit" => parse_optional_count("credit-limit", v)
            .map(|n| n.map_or_else(|| "none".to_string(), |n| n.to_string())),
        // `none` is the default, 1: no multiplier.
        _ if multiplier_setting_group(name).is_some() && v.eq_ignore_ascii_case("none") => {
            Ok(MULTIPLIER_SETTING.1.into())
        }
        _ if multiplier_setting_group(name).is_some() => parse_multiplier(v)
            .map(format_multiplier)
            .map_err(|e| e.replace("multiplier", name)),
        _ => Err(format!(
            "unknown setting '{name}': use one of {}",
            known_names()
        )),
    }
}

/// A stored setting as keyctl reads it, as canonical text (what `config get` shows and
/// what is in force): a count beyond its range reads as the nearest end (SPEC §5: a
/// larger stored value reads as 2^53 - 1). None when it cannot be read at all (another
/// writer's text), so the default applies.
pub fn read_stored(name: &str, value: &str) -> Option<String> {
    let count = |max: u64| {
        clamp_stored_text(value)
            .filter(|n| *n >= 1)
            .map(|n| n.min(max).to_string())
    };
    match name {
        "max-keys" if value.trim().eq_ignore_ascii_case("none") => Some("none".into()),
        "max-keys" | "failed-auth-limit" => count(MAX_COUNT),
        "credit-limit" if value.trim().eq_ignore_ascii_case("none") => Some("none".into()),
        "credit-limit" => count(MAX_COUNT),
        "failed-auth-ipv6-prefix" => count(*IPV6_PREFIX_RANGE.end()),
        _ => normalize(name, value).ok(),
    }
}

/// Bits of an IPv6 network that `failed-auth-ipv6-prefix` may name.
const IPV6_PREFIX_RANGE: std::ops::RangeInclusive<u64> = 1..=128;

/// The settings in force, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub key_prefix: String,
    pub max_keys: Option<u64>,
    pub failed_auth_limit: u64,
    /// IPv6 addresses count toward `failed_auth_limit` by network of this many bits.
    pub failed_auth_ipv6_prefix: u8,
    pub failed_auth_window: Duration,
    pub block_duration: Duration,
    pub log_retention: Option<Duration>,
    /// Store-wide rate and credit limits and group multipliers.
    pub store: StoreLimits,
}

impl Settings {
    /// Builds typed settings from stored (name, value) pairs, each read as
    /// [`read_stored`] reads it (an unreadable value leaves the default in force rather
    /// than making the store unusable).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Settings {
        let mut s = Settings::defaults();
        for (name, value) in pairs {
            let Some(v) = read_stored(name, value) else {
                continue;
            };
            let duration = |default| parse_duration(&v).unwrap_or(default);
            match name {
                "key-prefix" => s.key_prefix = v,
                "max-keys" => s.max_keys = v.parse().ok(),
                "failed-auth-limit" => s.failed_auth_limit = v.parse().unwrap_or(10),
                "failed-auth-ipv6-prefix" => s.failed_auth_ipv6_prefix = v.parse().unwrap_or(64),
                "failed-auth-window" => s.failed_auth_window = duration(s.failed_auth_window),
                "block-duration" => s.block_duration = duration(s.block_duration),
                "log-retention" => s.log_retention = parse_duration(&v).ok(),
                "rate-limit" => s.store.rate_limit = parse_rate_limit(&v).ok(),
                "credit-limit" => s.store.credit_limit = v.parse().ok(),
                _ => {
                    if let (Some(group), Ok(m)) = (multiplier_group(name), parse_multiplier(&v)) {
                        s.store.multipliers.insert(group.to_string(), m);
                    }
                }
            }
        }
        s
    }

    pub fn defaults() -> Settings {
        Settings {
            key_prefix: DEFAULT_PREFIX.into(),
            max_keys: None,
            failed_auth_limit: 10,
            failed_auth_ipv6_prefix: 64,
            failed_auth_window: Duration::minutes(10),
            block_duration: Duration::minutes(15),
            log_retention: None,
            store: StoreLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(normalize("max-keys", "50").unwrap(), "50");
        assert_eq!(normalize("max-keys", "NONE").unwrap(), "none");
        assert_eq!(normalize("failed-auth-window", "600s").unwrap(), "10m");
        assert_eq!(normalize("log-retention", "Never").unwrap(), "never");
        assert_eq!(normalize("key-prefix", "acme").unwrap(), "acme");
        for (n, v) in [
            ("max-keys", "-1"),
            ("max-keys", "0"),
            ("failed-auth-limit", "none"),
            ("failed-auth-limit", "9007199254740992"),
            ("max-keys", "9007199254740992"),
            ("failed-auth-ipv6-prefix", "0"),
            ("failed-auth-ipv6-prefix", "129"),
            ("failed-auth-ipv6-prefix", "none"),
            ("block-duration", "forever"),
            ("key-prefix", "ACME"),
            ("log-retention", "0d"),
            ("block-duration", "0m"),
            ("nosuch", "1"),
        ] {
            assert!(normalize(n, v).is_err(), "{n}={v}");
        }
    }

    #[test]
    fn typed_from_pairs() {
        let s = Settings::from_pairs([("max-keys", "3"), ("block-duration", "1h")]);
        assert_eq!(s.max_keys, Some(3));
        assert_eq!(s.block_duration, Duration::hours(1));
        assert_eq!(s.failed_auth_limit, 10);
        assert_eq!(s.failed_auth_ipv6_prefix, 64);
        let big = Settings::from_pairs([
            ("max-keys", "99999999999999999999"),
            ("failed-auth-limit", "9223372036854775807"),
            ("failed-auth-ipv6-prefix", "999"),
        ]);
        assert_eq!(big.max_keys, Some(MAX_COUNT));
        assert_eq!(big.failed_auth_limit, MAX_COUNT);
        assert_eq!(big.failed_auth_ipv6_prefix, 128);
        assert_eq!(normalize("failed-auth-ipv6-prefix", "48").unwrap(), "48");
        // Unreadable stored values leave the default; zero durations too.
        let odd = Settings::from_pairs([
            ("max-keys", "lots"),
            ("failed-auth-window", "0m"),
            ("key-prefix", "NOPE"),
            ("log-retention", "never"),
        ]);
        assert_eq!(odd, Settings::defaults());
        assert_eq!(read_stored("max-keys", "-4"), None);
        assert_eq!(
            read_stored("block-duration", "3600s").as_deref(),
            Some("1h")
        );
        for (name, default, _) in SETTINGS {
            assert!(normalize(name, default).is_ok(), "{name}");
        }
    }
}
