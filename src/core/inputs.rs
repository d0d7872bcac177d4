//! A key's settings as typed values, each parsed from one flag's or batch field's text.
//! The one parser per setting: `create`/`edit`/`rotate` flags call these as clap value
//! parsers, `create --batch` for its json fields and the wizard for its answers.
//! `flag` names the value in messages (`--quota-total`); batch turns it into its field.

use chrono::{DateTime, Utc};

use super::allowlist::{parse_lists, IpRule};
use super::limits::{parse_count, parse_optional_count, parse_rate_limit, RateLimit};
use super::names::{optional_text, token_set, validate_name};
use super::time::{parse_time_spec, TimeSpec};

/// Optional text: empty (or blank) means none, which clears the field on `edit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub Option<String>);

/// A request cap or credit limit; `None` is `none` (no cap), where a command takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(pub Option<u64>);

/// A rate limit; `None` is `none` (no limit), where a command takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub Option<RateLimit>);

/// One `--allow-ip` value: IPs and CIDR ranges, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpList(pub Vec<IpRule>);

/// A time input, with the text it was given (its messages quote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    pub text: String,
    pub spec: TimeSpec,
}

pub fn name(_flag: &str, text: &str) -> Result<String, String> {
    validate_name(text).map(|_| text.to_string())
}

pub fn text(flag: &str, text: &str) -> Result<Text, String> {
    optional_text(flag, Some(text)).map(Text)
}

/// One scope or model: a word without spaces or commas.
pub fn token(flag: &str, text: &str) -> Result<String, String> {
    token_set(flag, &[text]).map(|set| set.concat())
}

pub fn ip_list(flag: &str, text: &str) -> Result<IpList, String> {
    parse_lists(&[text])
        .map(IpList)
        .map_err(|e| format!("{flag}: {e}"))
}

/// A whole number from 0 (a request's cost or duration, `verify`).
pub fn amount(flag: &str, text: &str) -> Result<u64, String> {
    super::limits::parse_amount(flag, text)
}

/// The client's IP address of a request (`verify --ip`).
pub fn ip(flag: &str, text: &str) -> Result<std::net::IpAddr, String> {
    super::allowlist::parse_ip(text).map_err(|e| format!("{flag}: {e}"))
}

/// A request's context text (`verify --scope` ...): checked and trimmed, and kept even
/// when empty (an empty scope is still a scope the key must have).
pub fn request_text(flag: &str, text: &str) -> Result<String, String> {
    super::names::validate_text(flag, text).map(|_| text.trim().to_string())
}

/// A count from 1 (a credit limit).
pub fn count(flag: &str, text: &str) -> Result<u64, String> {
    parse_count(flag, text)
}

/// A cap that must be a count (`create`).
pub fn cap(flag: &str, text: &str) -> Result<Cap, String> {
    parse_count(flag, text).map(|n| Cap(Some(n)))
}

/// A cap that `none` removes (`edit`).
pub fn cap_or_none(flag: &str, text: &str) -> Result<Cap, String> {
    parse_optional_count(flag, text).map(Cap)
}

/// A rate limit N/s or N/m (`create`).
pub fn rate(_flag: &str, text: &str) -> Result<Rate, String> {
    parse_rate_limit(text).map(|r| Rate(Some(r)))
}

/// A rate limit that `none` removes (`edit`).
pub fn rate_or_none(flag: &str, text: &str) -> Result<Rate, String> {
    if is_none(text) {
        Ok(Rate(None))
    } else {
        rate(flag, text)
    }
}

fn is_none(text: &str) -> bool {
    text.trim().eq_ignore_ascii_case("none")
}

/// A credit refill `N/day` or `N/month`; `None` is `none` (no refill), where a
/// command takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefillRate(pub Option<super::refill::Rate>);

/// A credit refill (`create`).
pub fn refill(flag: &str, text: &str) -> Result<RefillRate, String> {
    super::refill::parse_rate(flag, text).map(|r| RefillRate(Some(r)))
}

/// A credit refill that `none` removes (`edit`).
pub fn refill_or_none(flag: &str, text: &str) -> Result<RefillRate, String> {
    if is_none(text) {
        Ok(RefillRate(None))
    } else {
        refill(flag, text).map_err(|e| format!("{e}, or none"))
    }
}

/// What a refill does: `add` or `set`.
pub fn refill_mode(flag: &str, text: &str) -> Result<super::refill::Mode, String> {
    super::refill::parse_mode(flag, text)
}

/// An expiry: a duration, a date, a date-time or `never`.
pub fn expiry(flag: &str, text: &str) -> Result<When, String> {
    when(flag, text, true)
}

/// A grace period's end: a duration or a date (never `never`).
pub fn grace(flag: &str, text: &str) -> Result<When, String> {
    when(flag, text, false)
}

/// The start or end of a log window (`--since`, `--until`): a duration back from now
/// or a date (never `never`).
pub fn window(flag: &str, text: &str) -> Result<When, String> {
    when(flag, text, false)
}

fn when(flag: &str, text: &str, allow_never: bool) -> Result<When, String> {
    parse_time_spec(text, allow_never)
        .map(|spec| When {
            text: text.to_string(),
            spec,
        })
        .map_err(|e| format!("invalid {flag}: {e}"))
}

impl When {
    /// The expiry this names from `now` (`None` for never); it must be in the future.
    pub fn expiry_after(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, String> {
        let at = self.spec.after(now);
        if at.is_some_and(|at| at <= now) {
            return Err(format!(
                "invalid --expires '{}': it is in the past; use a future date, a duration like 30d, or never",
                self.text
            ));
        }
        Ok(at)
    }

    /// The end of a grace period from `now`, which must be in the future.
    pub fn grace_end(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        match self.spec.after(now) {
            Some(at) if at > now => Ok(at),
            _ => Err(format!(
                "invalid --grace '{}': it must end in the future, like 24h or 7d",
                self.text
            )),
        }
    }
}

/// `serve --listen`: an IP address and a port (`127.0.0.1:8787`, `[::1]:8787`).
pub fn listen_addr(flag: &str, text: &str) -> Result<std::net::SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("invalid {flag} '{text}': use ADDRESS:PORT, like 127.0.0.1:8787 or [::1]:8787")
    })
}

/// `serve --trust-proxy`: one IP address or CIDR range of a proxy whose forwarding
/// headers are believed.
pub fn proxy_range(flag: &str, text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| {
            format!("invalid {flag} '{text}': use an IP address or a CIDR range, like 10.0.0.0/8")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::parse_datetime;

    #[test]
    fn each_parser_names_its_flag_and_keeps_the_core_wording() {
        let now = parse_datetime("2026-11-23T12:00:00Z").unwrap();
        assert_eq!(text("--group", "  ").unwrap(), Text(None));
        assert_eq!(token("--scope", " read ").unwrap(), "read");
        assert!(token("--scope", "a b")
            .unwrap_err()
            .contains("--scope 'a b'"));
        assert!(ip_list("--allow-ip", "10.0.0.300")
            .unwrap_err()
            .starts_with("--allow-ip: "));
        assert_eq!(cap_or_none("--quota-total", "NONE").unwrap(), Cap(None));
        assert!(cap("--quota-total", "none").is_err());
        assert!(cap_or_none("--quota-total", "x")
            .unwrap_err()
            .ends_with(", or 'none'"));
        assert_eq!(rate_or_none("--rate-limit", "none").unwrap(), Rate(None));
        assert!(rate("--rate-limit", "none").is_err());
        assert!(expiry("--expires", "soon")
            .unwrap_err()
            .starts_with("invalid --expires: "));
        assert_eq!(
            expiry("--expires", "never").unwrap().expiry_after(now),
            Ok(None)
        );
        assert!(expiry("--expires", "0d")
            .unwrap()
            .expiry_after(now)
            .is_err());
        assert!(grace("--grace", "never").is_err());
        let past = grace("--grace", "2020-01-01").unwrap().grace_end(now);
        assert!(past.unwrap_err().contains("'2020-01-01'"));
        assert!(window("--until", "never")
            .unwrap_err()
            .starts_with("invalid --until: "));
        assert_eq!(
            window("--since", "1h").unwrap().spec.before(now),
            Some(now - chrono::Duration::hours(1))
        );
    }
}
