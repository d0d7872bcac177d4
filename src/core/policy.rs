//! The verification policy of SPEC §3 as pure code: given what the store loaded for one
//! request ([`VerifyView`]), which outcome applies and what to record ([`decide`]). The
//! first failing check decides, from `ip_blocked` through `invalid` to credits.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::checks::{Check, Evaluated, Subject};
use super::exit;
use super::limits::{add_counts, RateLimit};
use super::model::KeyRecord;
use super::settings::Settings;
use super::store_limits::StoreView;

/// Every answer `verify` can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    IpBlocked,
    Invalid,
    Revoked,
    Inactive,
    Expired,
    IpNotAllowed,
    ForbiddenDeployment,
    ForbiddenScope(String),
    ForbiddenModel,
    RateLimited(RateLimit),
    /// The store-wide rate limit (all keys together).
    StoreRateLimited(RateLimit),
    QuotaExceeded(&'static str),
    CreditsExhausted,
    Valid,
    /// A stream-mode line that is not a request.
    BadRequest(String),
    /// The store could not be reached or failed: nothing was decided or recorded
    /// (SPEC §6; a stream answers it and goes on).
    Unavailable,
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::IpBlocked => "ip_blocked",
            Outcome::Invalid => "invalid",
            Outcome::Revoked => "revoked",
            Outcome::Inactive => "inactive",
            Outcome::Expired => "expired",
            Outcome::IpNotAllowed => "ip_not_allowed",
            Outcome::ForbiddenDeployment => "forbidden_deployment",
            Outcome::ForbiddenScope(_) => "forbidden_scope",
            Outcome::ForbiddenModel => "forbidden_model",
            Outcome::RateLimited(_) | Outcome::StoreRateLimited(_) => "rate_limited",
            Outcome::QuotaExceeded(_) => "quota_exceeded",
            Outcome::CreditsExhausted => "credits_exhausted",
            Outcome::Valid => "valid",
            Outcome::BadRequest(_) => "bad_request",
            Outcome::Unavailable => "unavailable",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Outcome::Valid => 200,
            Outcome::BadRequest(_) => 400,
            Outcome::Unavailable => 503,
            Outcome::Invalid
            | Outcome::Inactive
            | Outcome::Expired
            | Outcome::QuotaExceeded(_)
            | Outcome::CreditsExhausted => 401,
            Outcome::RateLimited(_) | Outcome::StoreRateLimited(_) => 429,
            _ => 403,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Outcome::IpBlocked => "IP temporarily blocked".into(),
            Outcome::Invalid => "Invalid API Key".into(),
            Outcome::Revoked => "API key has been revoked".into(),
            Outcome::Inactive => "Inactive API Key".into(),
            Outcome::Expired => "Expired API Key".into(),
            Outcome::IpNotAllowed => "IP address not allowed for this key".into(),
            Outcome::ForbiddenDeployment => "API key is not authorized for this deployment.".into(),
            Outcome::ForbiddenScope(s) => format!("API key lacks scope: {s}"),
            Outcome::ForbiddenModel => "API key is not authorized for this model.".into(),
            Outcome::RateLimited(r) => {
                format!("Rate limit exceeded: {} per {}", r.count, r.unit.word())
            }
            Outcome::StoreRateLimited(r) => format!(
                "exceeded the {} per {} rate limit on your subscription",
                r.count,
                r.unit.word()
            ),
            Outcome::QuotaExceeded(which) => format!("Rate limit exceeded: quota {which}"),
            Outcome::CreditsExhausted => "Credit limit reached".into(),
            Outcome::Valid => "OK".into(),
            // `why` may quote a field of the request: a pasted secret shows as its
            // display prefix (SPEC §5).
            Outcome::BadRequest(why) => format!("Bad request: {}", super::text::redact(why)),
            Outcome::Unavailable => "Key store unavailable".into(),
        }
    }

    /// The process exit code of a single `verify` (the table is `core::exit`).
    pub fn exit_code(&self) -> i32 {
        let exit = match self {
            Outcome::Valid => exit::SUCCESS,
            Outcome::Invalid => exit::INVALID,
            Outcome::Inactive => exit::INACTIVE,
            Outcome::Expired => exit::EXPIRED,
            Outcome::Revoked => exit::REVOKED,
            Outcome::QuotaExceeded(_) => exit::QUOTA_EXCEEDED,
            Outcome::CreditsExhausted => exit::CREDITS_EXHAUSTED,
            Outcome::IpNotAllowed => exit::IP_NOT_ALLOWED,
            Outcome::IpBlocked => exit::IP_BLOCKED,
            Outcome::ForbiddenDeployment => exit::FORBIDDEN_DEPLOYMENT,
            Outcome::ForbiddenScope(_) => exit::FORBIDDEN_SCOPE,
            Outcome::ForbiddenModel => exit::FORBIDDEN_MODEL,
            Outcome::RateLimited(_) | Outcome::StoreRateLimited(_) => exit::RATE_LIMITED,
            Outcome::BadRequest(_) => exit::USAGE,
            Outcome::Unavailable => exit::UNAVAILABLE,
        };
        exit.code
    }

    pub fn is_valid(&self) -> bool {
        *self == Outcome::Valid
    }
}

/// The request context a service passes along with the presented key.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub ip: Option<IpAddr>,
    pub scope: Option<String>,
    pub deployment: Option<String>,
    pub model: Option<String>,
    pub cost: u64,
}

/// Checks that need only the key and the request (revoked through model), as
/// [`decide`] applies them.
pub fn check_key(key: &KeyRecord, req: &Request, now: DateTime<Utc>) -> Outcome {
    Subject {
        ip_blocked_until: None,
        parsed: true,
        key: Some(key),
        counts: &Counts::default(),
        req,
        now,
        store: None,
    }
    .first_failure(Check::KEY)
}

/// Accepted requests of a key in each window that has a limit, counted before this
/// request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rate_window: u64,
    pub total: u64,
    pub daily: u64,
    pub weekly: u64,
    pub monthly: u64,
}

/// Rate limit, quotas and credits, in that order, as [`decide`] applies them.
pub fn check_limits(key: &KeyRecord, counts: &Counts, cost: u64) -> Outcome {
    let req = Request {
        cost,
        ..Request::default()
    };
    Subject {
        ip_blocked_until: None,
        parsed: true,
        key: Some(key),
        counts,
        req: &req,
        // No limit check reads the time: the counts are of the windows at "now".
        now: DateTime::<Utc>::MIN_UTC,
        store: None,
    }
    .first_failure(Check::LIMITS)
}

/// Where each window a key limits starts at `now`: its rate-limit window, then its
/// daily, weekly and monthly quotas, only those it has. [`counts_from`] reads the
/// figures back in this order.
pub fn window_starts(key: &KeyRecord, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut starts = Vec::with_capacity(4);
    if let Some(rate) = key.settings.rate_limit {
        starts.push(now - Duration::milliseconds(rate.unit.millis()));
    }
    let q = &key.settings.quotas;
    for (cap, span) in [
        (q.daily, Duration::days(1)),
        (q.weekly, Duration::days(7)),
        (q.monthly, Duration::days(30)),
    ] {
        if cap.is_some() {
            starts.push(now - span);
        }
    }
    starts
}

/// The counts for `key` from the figures of its [`window_starts`], in that order.
pub fn counts_from(key: &KeyRecord, figures: Vec<u64>) -> Counts {
    let mut it = figures.into_iter();
    let mut next = |present: bool| if present { it.next().unwrap_or(0) } else { 0 };
    let q = &key.settings.quotas;
    Counts {
        rate_window: next(key.settings.rate_limit.is_some()),
        daily: next(q.daily.is_some()),
        weekly: next(q.weekly.is_some()),
        monthly: next(q.monthly.is_some()),
        total: key.pool_accepted_total,
    }
}

/// Everything one decision needs, loaded by the store in one call
/// (`Txn::load_for_verify`) under the lock of the rows the outcome will change.
#[derive(Debug, Clone, Default)]
pub struct VerifyView {
    /// The settings in force; loaded when the request has an IPv6 address (its block
    /// is its network's) or the outcome will be recorded (blocking, retention).
    pub settings: Option<Settings>,
    /// What IP blocking counts the request's address as (`limits::block_subject`).
    pub ip_subject: Option<String>,
    /// Until when that subject is blocked, if it is blocked now.
    pub ip_blocked_until: Option<DateTime<Utc>>,
    /// The key whose secret hash was presented; not loaded for a blocked IP or a
    /// presented key that does not parse.
    pub key: Option<KeyRecord>,
    /// The key's lineage's accepted requests in each window it limits.
    pub counts: Counts,
    /// The time the decision is made at (the store's `Clock`, read after the key's
    /// rows were locked).
    pub now: DateTime<Utc>,
    /// The store-wide limits and figures and the key's group's multiplier, when a
    /// store-wide limit or that multiplier is set (None: nothing store-wide applies).
    pub store: Option<StoreView>,
}

/// An invalid attempt to count against an IP, with the settings that decide its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub subject: String,
    pub window: Duration,
    pub limit: u64,
    pub block: Duration,
}

/// What is left of a key's quotas after a request (it counts when accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuotaRemaining {
    pub total: Option<u64>,
    pub daily: Option<u64>,
    pub weekly: Option<u64>,
    pub monthly: Option<u64>,
}

/// The outcome of one request and what recording it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    /// The key the request is recorded against and answered about (None for
    /// `ip_blocked` and `invalid`).
    pub key: Option<KeyRecord>,
    /// Credits charged (the cost when accepted, else 0).
    pub credits: u64,
    /// For `invalid` from a known IP with the settings loaded: the failure to count.
    pub auth_failure: Option<AuthFailure>,
    /// Request-log rows older than this go (the `log-retention` setting).
    pub prune_before: Option<DateTime<Utc>>,
    pub credits_remaining: Option<u64>,
    pub quota_remaining: Option<QuotaRemaining>,
}

/// SPEC §3 in order: the IP's block, the presented key's format and checksum
/// (`parsed`) and existence, then [`check_key`] and [`check_limits`]: the first
/// failing check of `core::checks` decides.
pub fn decide(view: VerifyView, parsed: bool, req: &Request, now: DateTime<Utc>) -> Decision {
    let VerifyView {
        settings,
        ip_subject,
        ip_blocked_until,
        key,
        counts,
        // The caller passes it as `now` (tests decide at other times too).
        now: _,
        store,
    } = view;
    let subject = Subject {
        ip_blocked_until,
        parsed,
        key: key.as_ref(),
        counts: &counts,
        req,
        now,
        store,
    };
    let outcome = subject.first_failure(&Check::ALL);
    let charge = subject.charge();
    // A blocked IP learns nothing about the key it presented; an invalid one has none.
    let key = match outcome {
        Outcome::IpBlocked | Outcome::Invalid => None,
        _ => key,
    };
    let accepted = outcome.is_valid();
    let credits = if accepted { charge } else { 0 };
    let auth_failure = match (&outcome, ip_subject, &settings) {
        (Outcome::Invalid, Some(subject), Some(s)) => Some(AuthFailure {
            subject,
            window: s.failed_auth_window,
            limit: s.failed_auth_limit,
            block: s.block_duration,
        }),
        _ => None,
    };
    let prune_before = settings
        .as_ref()
        .and_then(|s| s.log_retention)
        .map(|keep| now - keep);
    let (credits_remaining, quota_remaining) = match &key {
        None => (None, None),
        Some(k) => remaining(k, &counts, accepted, credits),
    };
    Decision {
        outcome,
        key,
        credits,
        auth_failure,
        prune_before,
        credits_remaining,
        quota_remaining,
    }
}

/// Every check of SPEC §3 for this request, each evaluated on its own with the
/// figure behind it (`verify --explain`). The same checks [`decide`] applies to the
/// same view: the first failure here is its outcome.
pub fn explain<'a>(view: &'a VerifyView, parsed: bool, req: &'a Request) -> Vec<Evaluated<'a>> {
    Subject {
        ip_blocked_until: view.ip_blocked_until,
        parsed,
        key: view.key.as_ref(),
        counts: &view.counts,
        req,
        now: view.now,
        store: view.store,
    }
    .all(&Check::ALL)
    .collect()
}

/// Credits and quotas left after this request.
fn remaining(
    k: &KeyRecord,
    counts: &Counts,
    accepted: bool,
    credits: u64,
) -> (Option<u64>, Option<QuotaRemaining>) {
    let used_now = u64::from(accepted);
    let spent = add_counts(k.credits_used, credits);
    let left =
        |cap: Option<u64>, used: u64| cap.map(|c| c.saturating_sub(add_counts(used, used_now)));
    let q = &k.settings.quotas;
    (
        k.settings.credit_limit.map(|l| l.saturating_sub(spent)),
        Some(QuotaRemaining {
            total: left(q.total, k.pool_accepted_total),
            daily: left(q.daily, counts.daily),
            weekly: left(q.weekly, counts.weekly),
            monthly: left(q.monthly, counts.monthly),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::Mode;
    use crate::core::limits::{Quotas, RateUnit};
    use crate::core::model::{KeySettings, NewKey, State};
    use crate::core::time::parse_datetime;

    fn now() -> DateTime<Utc> {
        parse_datetime("2026-11-23T12:00:00Z").unwrap()
    }

    fn key() -> KeyRecord {
        let new = NewKey {
            id: "key_aaaaaaaaaaaa".into(),
            hash: [0; 32],
            key_prefix: Some("sk_live_abcd".into()),
            mode: Mode::Live,
            created_at: now(),
            settings: KeySettings {
                name: "k".into(),
                owner: "o".into(),
                ..KeySettings::default()
            },
            rotated_from: None,
        };
        KeyRecord::from_new(&new, 0)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn unrestricted_key_is_valid() {
        assert_eq!(
            check_key(&key(), &Request::default(), now()),
            Outcome::Valid
        );
    }

    #[test]
    fn lifecycle_checks_come_first_in_spec_order() {
        let mut k = key();
        k.state = State::Revoked;
        k.settings.expires_at = Some(now());
        assert_eq!(check_key(&k, &Request::default(), now()), Outcome::Revoked);
        k.state = State::Disabled;
        assert_eq!(check_key(&k, &Request::default(), now()), Outcome::Inactive);
        k.state = State::Active;
        assert_eq!(check_key(&k, &Request::default(), now()), Outcome::Expired);
    }

    #[test]
    fn allowlist_requires_a_matching_ip() {
        let mut k = key();
        k.settings.allowed_ips = vec!["10.0.0.0/8".into()];
        let mut req = Request::default();
        assert_eq!(check_key(&k, &req, now()), Outcome::IpNotAllowed);
        req.ip = ip("11.0.0.1");
        assert_eq!(check_key(&k, &req, now()), Outcome::IpNotAllowed);
        req.ip = ip("10.1.2.3");
        assert_eq!(check_key(&k, &req, now()), Outcome::Valid);
    }

    #[test]
    fn deployment_scope_model() {
        let mut k = key();
        k.settings.deployment = Some("prod".into());
        k.settings.scopes = vec!["read".into()];
        k.settings.allowed_models = vec!["gpt".into()];
        let mut req = Request::default();
        assert_eq!(check_key(&k, &req, now()), Outcome::ForbiddenDeployment);
        req.deployment = Some("prod".into());
        req.scope = Some("write".into());
        assert_eq!(
            check_key(&k, &req, now()),
            Outcome::ForbiddenScope("write".into())
        );
        assert_eq!(
            Outcome::ForbiddenScope("write".into()).message(),
            "API key lacks scope: write"
        );
        req.scope = Some("read".into());
        req.model = Some("other".into());
        assert_eq!(check_key(&k, &req, now()), Outcome::ForbiddenModel);
        req.model = Some("gpt".into());
        assert_eq!(check_key(&k, &req, now()), Outcome::Valid);
    }

    #[test]
    fn limits_in_order() {
        let mut k = key();
        k.settings.rate_limit = Some(RateLimit {
            count: 2,
            unit: RateUnit::Second,
        });
        k.settings.quotas = Quotas {
            total: Some(10),
            daily: Some(5),
            weekly: None,
            monthly: None,
        };
        k.settings.credit_limit = Some(3);
        let mut c = Counts {
            rate_window: 2,
            total: 10,
            daily: 5,
            ..Counts::default()
        };
        assert!(matches!(check_limits(&k, &c, 1), Outcome::RateLimited(_)));
        c.rate_window = 1;
        assert_eq!(check_limits(&k, &c, 1), Outcome::QuotaExceeded("total"));
        c.total = 9;
        assert_eq!(check_limits(&k, &c, 1), Outcome::QuotaExceeded("daily"));
        c.daily = 4;
        assert_eq!(check_limits(&k, &c, 1), Outcome::Valid);
        k.credits_used = 3;
        assert_eq!(check_limits(&k, &c, 1), Outcome::CreditsExhausted);
        assert_eq!(check_limits(&k, &c, 0), Outcome::Valid);
    }

    #[test]
    fn codes_statuses_exits() {
        let table = [
            (Outcome::IpBlocked, "ip_blocked", 403, 17),
            (Outcome::Invalid, "invalid", 401, 10),
            (Outcome::Revoked, "revoked", 403, 13),
            (Outcome::Inactive, "inactive", 401, 11),
            (Outcome::Expired, "expired", 401, 12),
            (Outcome::IpNotAllowed, "ip_not_allowed", 403, 16),
            (
                Outcome::ForbiddenDeployment,
                "forbidden_deployment",
                403,
                18,
            ),
            (
                Outcome::ForbiddenScope("s".into()),
                "forbidden_scope",
                403,
                19,
            ),
            (Outcome::ForbiddenModel, "forbidden_model", 403, 20),
            (
                Outcome::RateLimited(RateLimit {
                    count: 1,
                    unit: RateUnit::Minute,
                }),
                "rate_limited",
                429,
                21,
            ),
            (Outcome::QuotaExceeded("daily"), "quota_exceeded", 401, 14),
            (Outcome::CreditsExhausted, "credits_exhausted", 401, 15),
            (Outcome::Valid, "valid", 200, 0),
        ];
        for (o, code, status, exit) in table {
            assert_eq!(
                (o.code(), o.http_status(), o.exit_code()),
                (code, status, exit)
            );
        }
    }

    /// A view of an active, unrestricted key, loaded for a recorded request from
    /// 192.0.2.7 that is not blocked.
    fn view() -> VerifyView {
        VerifyView {
            settings: Some(Settings::defaults()),
            ip_subject: Some("192.0.2.7".into()),
            ip_blocked_until: None,
            key: Some(key()),
            counts: Counts::default(),
            now: now(),
            store: None,
        }
    }

    #[test]
    fn store_wide_checks_come_after_their_key_checks() {
        let per_second = |count| RateLimit {
            count,
            unit: RateUnit::Second,
        };
        let mut v = view();
        let k = v.key.as_mut().unwrap();
        k.settings.rate_limit = Some(per_second(1));
        k.settings.quotas.total = Some(1);
        k.settings.credit_limit = Some(10);
        k.credits_used = 10;
        k.pool_accepted_total = 1;
        v.counts = Counts {
            rate_window: 1,
            total: 1,
            ..Counts::default()
        };
        v.store = Some(StoreView {
            rate_limit: Some(per_second(5)),
            credit_limit: Some(100),
            rate_window: 5,
            credits_used: 100,
            multiplier: None,
        });
        let outcome = |v: &VerifyView| decide(v.clone(), true, &cost(1), now()).outcome;
        // Key rate limit, store rate limit, quotas, key credits, store credits.
        assert_eq!(outcome(&v), Outcome::RateLimited(per_second(1)));
        v.counts.rate_window = 0;
        let store = outcome(&v);
        assert_eq!(store, Outcome::StoreRateLimited(per_second(5)));
        assert_eq!(
            (store.code(), store.http_status(), store.exit_code()),
            ("rate_limited", 429, 21)
        );
        assert_eq!(
            store.message(),
            "exceeded the 5 per second rate limit on your subscription"
        );
        v.store.as_mut().unwrap().rate_window = 4;
        assert_eq!(outcome(&v), Outcome::QuotaExceeded("total"));
        v.counts.total = 0;
        v.key.as_mut().unwrap().pool_accepted_total = 0;
        assert_eq!(outcome(&v), Outcome::CreditsExhausted);
        v.key.as_mut().unwrap().credits_used = 9;
        // Key credits pass; the store's 100 are spent.
        let d = decide(v.clone(), true, &cost(1), now());
        assert_eq!(d.outcome, Outcome::CreditsExhausted);
        assert_eq!(d.credits, 0);
        v.store.as_mut().unwrap().credits_used = 99;
        assert_eq!(outcome(&v), Outcome::Valid);
    }

    #[test]
    fn a_group_multiplier_charges_the_rounded_up_cost_everywhere() {
        let mut v = view();
        v.key.as_mut().unwrap().settings.credit_limit = Some(100);
        v.store = Some(StoreView {
            multiplier: Some(11_000),
            ..StoreView::default()
        });
        let d = decide(v.clone(), true, &cost(50), now());
        assert_eq!((d.outcome.clone(), d.credits), (Outcome::Valid, 55));
        assert_eq!(d.credits_remaining, Some(45));
        // 46 left is not enough for 50 x 1.1.
        v.key.as_mut().unwrap().credits_used = 55;
        assert_eq!(
            decide(v, true, &cost(50), now()).outcome,
            Outcome::CreditsExhausted
        );
    }

    fn cost(n: u64) -> Request {
        Request {
            cost: n,
            ..Request::default()
        }
    }

    #[test]
    fn ip_blocked_comes_before_invalid_and_before_a_good_key() {
        let blocked = VerifyView {
            ip_blocked_until: Some(now() + Duration::minutes(5)),
            ..view()
        };
        // A mistyped key from a blocked IP: blocked, not counted as another failure.
        let d = decide(
            VerifyView {
                key: None,
                ..blocked.clone()
            },
            false,
            &cost(1),
            now(),
        );
        assert_eq!(d.outcome, Outcome::IpBlocked);
        assert_eq!(d.auth_failure, None);
        // A good key from a blocked IP: blocked, recorded without the key, no charge.
        let d = decide(blocked, true, &cost(1), now());
        assert_eq!(d.outcome, Outcome::IpBlocked);
        assert_eq!((d.key, d.credits, d.quota_remaining), (None, 0, None));
    }

    #[test]
    fn invalid_counts_a_failure_against_the_ip_with_the_settings_in_force() {
        let mut settings = Settings::defaults();
        settings.failed_auth_limit = 3;
        let unknown = VerifyView {
            key: None,
            settings: Some(settings),
            ..view()
        };
        let d = decide(unknown.clone(), true, &cost(1), now());
        assert_eq!(d.outcome, Outcome::Invalid);
        assert_eq!(
            d.auth_failure,
            Some(AuthFailure {
                subject: "192.0.2.7".into(),
                window: Duration::minutes(10),
                limit: 3,
                block: Duration::minutes(15),
            })
        );
        // A key that does not parse is invalid even if a record was loaded for it.
        assert_eq!(
            decide(view(), false, &cost(1), now()).outcome,
            Outcome::Invalid
        );
        // No IP, or nothing to record (no settings loaded): nothing to count.
        let no_ip = VerifyView {
            ip_subject: None,
            ..unknown.clone()
        };
        assert_eq!(decide(no_ip, true, &cost(1), now()).auth_failure, None);
        let not_recording = VerifyView {
            settings: None,
            ..unknown
        };
        assert_eq!(
            decide(not_recording, true, &cost(1), now()).auth_failure,
            None
        );
    }

    #[test]
    fn key_checks_come_before_limits_and_refusals_charge_nothing() {
        let mut v = view();
        let k = v.key.as_mut().unwrap();
        k.state = State::Revoked;
        k.settings.quotas.daily = Some(1);
        v.counts.daily = 1;
        let d = decide(v.clone(), true, &cost(1), now());
        assert_eq!(d.outcome, Outcome::Revoked);
        // The key is known: recorded against it, its quotas shown, nothing charged.
        assert_eq!(
            d.key.as_ref().map(|k| k.id.as_str()),
            Some("key_aaaaaaaaaaaa")
        );
        assert_eq!((d.credits, d.auth_failure), (0, None));
        v.key.as_mut().unwrap().state = State::Active;
        let d = decide(v, true, &cost(1), now());
        assert_eq!(d.outcome, Outcome::QuotaExceeded("daily"));
        assert_eq!(d.quota_remaining.and_then(|q| q.daily), Some(0));
    }

    #[test]
    fn an_accepted_request_charges_its_cost_and_counts_in_what_is_left() {
        let mut v = view();
        let k = v.key.as_mut().unwrap();
        k.settings.credit_limit = Some(10);
        k.credits_used = 3;
        k.settings.quotas.daily = Some(5);
        k.settings.quotas.total = Some(100);
        k.pool_accepted_total = 40;
        v.counts = Counts {
            daily: 1,
            total: 40,
            ..Counts::default()
        };
        let d = decide(v, true, &cost(2), now());
        assert_eq!(d.outcome, Outcome::Valid);
        assert_eq!((d.credits, d.credits_remaining), (2, Some(5)));
        assert_eq!(
            d.quota_remaining,
            Some(QuotaRemaining {
                total: Some(59),
                daily: Some(3),
                weekly: None,
                monthly: None,
            })
        );
    }

    #[test]
    fn log_retention_prunes_only_when_the_settings_were_loaded() {
        let mut settings = Settings::defaults();
        settings.log_retention = Some(Duration::days(7));
        let v = VerifyView {
            settings: Some(settings),
            ..view()
        };
        let d = decide(v, true, &cost(1), now());
        assert_eq!(d.prune_before, Some(now() - Duration::days(7)));
        assert_eq!(decide(view(), true, &cost(1), now()).prune_before, None);
    }

    #[test]
    fn window_figures_come_back_to_the_windows_the_key_limits() {
        let mut k = key();
        assert!(window_starts(&k, now()).is_empty());
        k.settings.rate_limit = Some(RateLimit {
            count: 5,
            unit: RateUnit::Minute,
        });
        k.settings.quotas.weekly = Some(9);
        k.pool_accepted_total = 77;
        assert_eq!(
            window_starts(&k, now()),
            vec![now() - Duration::minutes(1), now() - Duration::days(7)]
        );
        assert_eq!(
            counts_from(&k, vec![4, 6]),
            Counts {
                rate_window: 4,
                weekly: 6,
                total: 77,
                ..Counts::default()
            }
        );
    }
}
