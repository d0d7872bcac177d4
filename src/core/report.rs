//! `keyctl report`'s key-hygiene findings (SPEC §8) as pure code: which findings one
//! key has, given "now", the thresholds and, for `near-limit`, the exact counts of its
//! quota windows (the ones `verify` decides on: `policy::window_starts` and
//! `policy::counts_from` over the store's `pool_windows`).

use chrono::{DateTime, Duration, Utc};

use super::model::{KeyRecord, Status};
use super::policy::Counts;
use super::time::parse_duration;

/// One finding name of SPEC §8, in the order the report groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    NeverUsed,
    Unused,
    Expiring,
    NoExpiry,
    Unrestricted,
    NearLimit,
    InGrace,
}

impl Finding {
    pub const ALL: [Finding; 7] = [
        Finding::NeverUsed,
        Finding::Unused,
        Finding::Expiring,
        Finding::NoExpiry,
        Finding::Unrestricted,
        Finding::NearLimit,
        Finding::InGrace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Finding::NeverUsed => "never-used",
            Finding::Unused => "unused",
            Finding::Expiring => "expiring",
            Finding::NoExpiry => "no-expiry",
            Finding::Unrestricted => "unrestricted",
            Finding::NearLimit => "near-limit",
            Finding::InGrace => "in-grace",
        }
    }

    /// Every name, comma-separated, for messages and help.
    pub fn names() -> String {
        Finding::ALL.map(Finding::as_str).join(", ")
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of findings (`--only`, `--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Findings(u8);

impl Findings {
    pub fn all() -> Findings {
        Findings(Finding::ALL.iter().fold(0, |bits, f| bits | f.bit()))
    }

    pub fn none() -> Findings {
        Findings(0)
    }

    pub fn one(f: Finding) -> Findings {
        Findings(f.bit())
    }

    pub fn contains(self, f: Finding) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn insert(&mut self, f: Finding) {
        self.0 |= f.bit();
    }

    pub fn union(self, other: Findings) -> Findings {
        Findings(self.0 | other.0)
    }

    pub fn intersect(self, other: Findings) -> Findings {
        Findings(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every finding of `other` is in this set.
    pub fn covers(self, other: Findings) -> bool {
        other.0 & !self.0 == 0
    }

    /// The members, in [`Finding::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Finding> {
        Finding::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// A comma-separated list of names (`never-used,unused`; spaces around a name are
    /// allowed). An unknown or empty name is an error naming the valid ones.
    pub fn parse(flag: &str, text: &str) -> Result<Findings, String> {
        let mut set = Findings::none();
        for name in text.split(',').map(str::trim) {
            match Finding::ALL.into_iter().find(|f| f.as_str() == name) {
                Some(f) => set.insert(f),
                None => {
                    let what = if name.is_empty() {
                        "an empty finding name".to_string()
                    } else {
                        format!("unknown finding '{name}'")
                    };
                    return Err(format!(
                        "invalid {flag}: {what}; use a comma-separated list of {}",
                        Finding::names()
                    ));
                }
            }
        }
        Ok(set)
    }
}

/// What `--unused`, `--expiring` and `--near` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A key used before `now - unused` (and not since) is `unused`.
    pub unused: Duration,
    /// A key that expires within `now + expiring` is `expiring`.
    pub expiring: Duration,
    /// A quota window or credit limit used to this percentage (1-100) is `near-limit`.
    pub near_percent: u64,
}

pub const DEFAULT_UNUSED: &str = "30d";
pub const DEFAULT_EXPIRING: &str = "14d";
pub const DEFAULT_NEAR: &str = "80%";

/// A duration threshold (`--unused 30d`): a duration as keyctl takes them elsewhere,
/// longer than zero.
pub fn parse_span(flag: &str, text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(d) if d > Duration::zero() => Ok(d),
        Ok(_) => Err(format!(
            "invalid {flag} '{text}': use a duration longer than zero, like 30d"
        )),
        Err(e) => Err(format!("invalid {flag}: {e}")),
    }
}

/// `--near`: a whole percentage from 1 to 100, with or without `%`.
pub fn parse_percent(flag: &str, text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.strip_suffix('%').unwrap_or(t);
    match digits.parse::<u64>() {
        Ok(n) if (1..=100).contains(&n) && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "invalid {flag} '{text}': use a whole percentage from 1% to 100%, like 80%"
        )),
    }
}

/// Which limit a `near-limit` finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Total,
    Daily,
    Weekly,
    Monthly,
    Credits,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Total => "total",
            Limit::Daily => "daily",
            Limit::Weekly => "weekly",
            Limit::Monthly => "monthly",
            Limit::Credits => "credits",
        }
    }
}

/// One finding of one key, with the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    NeverUsed {
        created_at: DateTime<Utc>,
    },
    Unused {
        last_used_at: DateTime<Utc>,
    },
    Expiring {
        expires_at: DateTime<Utc>,
    },
    NoExpiry,
    Unrestricted,
    /// `used` of `cap` (requests in the window, or credits spent), `percent` of it
    /// rounded down.
    NearLimit {
        limit: Limit,
        used: u64,
        cap: u64,
        percent: u64,
    },
    /// Superseded by `successor`, still verifying until `until` (its grace's end).
    InGrace {
        successor: String,
        until: Option<DateTime<Utc>>,
    },
}

impl Detail {
    pub fn finding(&self) -> Finding {
        match self {
            Detail::NeverUsed { .. } => Finding::NeverUsed,
            Detail::Unused { .. } => Finding::Unused,
            Detail::Expiring { .. } => Finding::Expiring,
            Detail::NoExpiry => Finding::NoExpiry,
            Detail::Unrestricted => Finding::Unrestricted,
            Detail::NearLimit { .. } => Finding::NearLimit,
            Detail::InGrace { .. } => Finding::InGrace,
        }
    }
}

/// The keys a report looks at: those that verify now (active, in grace included) or
/// come back with one `enable` (disabled, unless superseded by a rotation: such a key
/// can never be enabled again). Revoked and expired keys cannot verify until an
/// administrator gives them a new life on purpose, so they are left out.
pub fn considered(key: &KeyRecord, now: DateTime<Utc>) -> bool {
    match key.status(now) {
        Status::Active => true,
        Status::Disabled => key.rotated_to.is_none(),
        Status::Expired | Status::Revoked => false,
    }
}

/// True when `near-limit` needs the key's quota windows counted (a daily, weekly or
/// monthly quota): only then is the store asked for them.
pub fn needs_windows(key: &KeyRecord, wanted: Findings) -> bool {
    let q = &key.settings.quotas;
    wanted.contains(Finding::NearLimit)
        && (q.daily.is_some() || q.weekly.is_some() || q.monthly.is_some())
}

/// `used` is at least `near` percent of `cap` (exactly, in integers).
fn is_near(used: u64, cap: u64, near: u64) -> bool {
    u128::from(used) * 100 >= u128::from(near) * u128::from(cap)
}

/// The `wanted` findings of a [`considered`] key, in [`Finding::ALL`] order (a key
/// near several limits has one `near-limit` per limit). `counts` are its lineage's
/// accepted requests in each quota window, as `verify` counts them (any when
/// [`needs_windows`] is false: they are not read then).
pub fn findings(
    key: &KeyRecord,
    counts: &Counts,
    now: DateTime<Utc>,
    t: &Thresholds,
    wanted: Findings,
) -> Vec<Detail> {
    let mut out = Vec::new();
    let s = &key.settings;
    match key.last_used_at {
        None if wanted.contains(Finding::NeverUsed) => out.push(Detail::NeverUsed {
            created_at: key.created_at,
        }),
        Some(at) if wanted.contains(Finding::Unused) && now - at >= t.unused => {
            out.push(Detail::Unused { last_used_at: at })
        }
        _ => {}
    }
    match s.expires_at {
        Some(at) if wanted.contains(Finding::Expiring) && at > now && at - now <= t.expiring => {
            out.push(Detail::Expiring { expires_at: at })
        }
        None if wanted.contains(Finding::NoExpiry) => out.push(Detail::NoExpiry),
        _ => {}
    }
    if wanted.contains(Finding::Unrestricted)
        && s.scopes.is_empty()
        && s.allowed_ips.is_empty()
        && s.deployment.is_none()
        && s.allowed_models.is_empty()
    {
        out.push(Detail::Unrestricted);
    }
    if wanted.contains(Finding::NearLimit) {
        let q = &s.quotas;
        // The total quota counts the lineage's all-time accepted requests, as verify.
        for (limit, cap, used) in [
            (Limit::Total, q.total, key.pool_accepted_total),
            (Limit::Daily, q.daily, counts.daily),
            (Limit::Weekly, q.weekly, counts.weekly),
            (Limit::Monthly, q.monthly, counts.monthly),
            (
                Limit::Credits,
                s.credit_limit,
                super::refill::used_at(key, now),
            ),
        ] {
            if let Some(cap) = cap.filter(|&cap| is_near(used, cap, t.near_percent)) {
                out.push(Detail::NearLimit {
                    limit,
                    used,
                    cap,
                    percent: u64::try_from(u128::from(used) * 100 / u128::from(cap))
                        .unwrap_or(u64::MAX),
                });
            }
        }
    }
    if wanted.contains(Finding::InGrace) && key.status(now) == Status::Active {
        if let Some(successor) = &key.rotated_to {
            out.push(Detail::InGrace {
                successor: successor.clone(),
                until: s.expires_at,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::Mode;
    use crate::core::limits::Quotas;
    use crate::core::model::{KeySettings, NewKey, State};
    use crate::core::time::parse_datetime;

    fn now() -> DateTime<Utc> {
        parse_datetime("2026-11-23T12:00:00Z").unwrap()
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            unused: Duration::days(30),
            expiring: Duration::days(14),
            near_percent: 80,
        }
    }

    fn key(settings: KeySettings) -> KeyRecord {
        let new = NewKey {
            id: "key_aaaaaaaaaaaa".into(),
            hash: [0; 32],
            key_prefix: Some("sk_live_abcd".into()),
            mode: Mode::Live,
            created_at: now() - Duration::days(60),
            settings: KeySettings {
                name: "k".into(),
                owner: "o".into(),
                ..settings
            },
            rotated_from: None,
        };
        KeyRecord::from_new(&new, 0)
    }

    fn names(k: &KeyRecord, counts: &Counts) -> Vec<&'static str> {
        findings(k, counts, now(), &thresholds(), Findings::all())
            .iter()
            .map(|d| d.finding().as_str())
            .collect()
    }

    #[test]
    fn a_fresh_unrestricted_key_without_expiry_has_three_findings() {
        let k = key(KeySettings::default());
        assert_eq!(
            names(&k, &Counts::default()),
            ["never-used", "no-expiry", "unrestricted"]
        );
    }

    #[test]
    fn unused_starts_at_the_threshold_and_never_used_keys_are_not_unused() {
        let scoped = KeySettings {
            scopes: vec!["read".into()],
            expires_at: Some(now() + Duration::days(100)),
            ..KeySettings::default()
        };
        let mut k = key(scoped);
        k.last_used_at = Some(now() - Duration::days(30) + Duration::seconds(1));
        assert!(names(&k, &Counts::default()).is_empty());
        k.last_used_at = Some(now() - Duration::days(30));
        assert_eq!(names(&k, &Counts::default()), ["unused"]);
    }

    #[test]
    fn expiring_is_within_the_window_and_never_in_the_past() {
        let mut k = key(KeySettings {
            deployment: Some("eu".into()),
            ..KeySettings::default()
        });
        k.last_used_at = Some(now());
        for (days, expected) in [(14, vec!["expiring"]), (15, vec![]), (-1, vec![])] {
            k.settings.expires_at = Some(now() + Duration::days(days));
            assert_eq!(names(&k, &Counts::default()), expected, "{days}");
        }
    }

    #[test]
    fn near_limit_names_each_limit_from_the_threshold_up() {
        let mut k = key(KeySettings {
            allowed_models: vec!["m".into()],
            expires_at: Some(now() + Duration::days(100)),
            quotas: Quotas {
                total: Some(1000),
                daily: Some(100),
                weekly: Some(700),
                monthly: None,
            },
            credit_limit: Some(50),
            ..KeySettings::default()
        });
        k.last_used_at = Some(now());
        k.pool_accepted_total = 799;
        k.credits_used = 50;
        let counts = Counts {
            daily: 80,
            weekly: 559,
            monthly: 999_999,
            ..Counts::default()
        };
        let found = findings(&k, &counts, now(), &thresholds(), Findings::all());
        assert_eq!(
            found,
            [
                Detail::NearLimit {
                    limit: Limit::Daily,
                    used: 80,
                    cap: 100,
                    percent: 80
                },
                Detail::NearLimit {
                    limit: Limit::Credits,
                    used: 50,
                    cap: 50,
                    percent: 100
                },
            ]
        );
        // Huge figures neither overflow nor round up to the threshold.
        assert!(!is_near(u64::MAX / 2, u64::MAX, 80));
        assert!(is_near(u64::MAX, u64::MAX, 100));
    }

    #[test]
    fn in_grace_is_a_superseded_key_that_still_verifies() {
        let mut k = key(KeySettings {
            scopes: vec!["read".into()],
            expires_at: Some(now() + Duration::days(1)),
            ..KeySettings::default()
        });
        k.last_used_at = Some(now());
        k.rotated_to = Some("key_bbbbbbbbbbbb".into());
        assert_eq!(names(&k, &Counts::default()), ["expiring", "in-grace"]);
        assert!(considered(&k, now()));
        // Disabled after its rotation: it can never verify again.
        k.state = State::Disabled;
        assert!(!considered(&k, now()));
        k.rotated_to = None;
        assert!(considered(&k, now()));
        k.state = State::Revoked;
        assert!(!considered(&k, now()));
        k.state = State::Active;
        k.settings.expires_at = Some(now());
        assert!(!considered(&k, now()));
    }

    #[test]
    fn only_the_wanted_findings_are_evaluated() {
        let k = key(KeySettings::default());
        let found = findings(
            &k,
            &Counts::default(),
            now(),
            &thresholds(),
            Findings::one(Finding::NoExpiry),
        );
        assert_eq!(found, [Detail::NoExpiry]);
        assert!(!needs_windows(&k, Findings::all()));
    }

    #[test]
    fn flag_values() {
        assert_eq!(parse_percent("--near", "80%"), Ok(80));
        assert_eq!(parse_percent("--near", "100"), Ok(100));
        for bad in ["0%", "101%", "80.5%", "+80", "", "%", "eighty"] {
            assert!(
                parse_percent("--near", bad)
                    .unwrap_err()
                    .contains("1% to 100%"),
                "{bad}"
            );
        }
        assert_eq!(parse_span("--unused", "2w"), Ok(Duration::days(14)));
        assert!(parse_span("--unused", "0d").is_err());
        assert!(parse_span("--unused", "soon")
            .unwrap_err()
            .starts_with("invalid --unused: "));
        let set = Findings::parse("--fail-on", "in-grace, never-used").unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Finding::NeverUsed, Finding::InGrace]
        );
        let err = Findings::parse("--fail-on", "never-used,stale").unwrap_err();
        assert_eq!(
            err,
            "invalid --fail-on: unknown finding 'stale'; use a comma-separated list of \
             never-used, unused, expiring, no-expiry, unrestricted, near-limit, in-grace"
        );
        assert!(Findings::parse("--only", "").is_err());
        assert!(Findings::all().covers(set) && !set.covers(Findings::all()));
    }
}
