//! The verification policy of SPEC §3 as pure code: given a key, a request and the
//! key's current counts, which outcome applies. The first failing check decides.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::allowlist::{allows, parse_rule};
use super::exit;
use super::limits::RateLimit;
use super::model::{KeyRecord, State};

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
    QuotaExceeded(&'static str),
    CreditsExhausted,
    Valid,
    /// A stream-mode line that is not a request.
    BadRequest(String),
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
            Outcome::RateLimited(_) => "rate_limited",
            Outcome::QuotaExceeded(_) => "quota_exceeded",
            Outcome::CreditsExhausted => "credits_exhausted",
            Outcome::Valid => "valid",
            Outcome::BadRequest(_) => "bad_request",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Outcome::Valid => 200,
            Outcome::BadRequest(_) => 400,
            Outcome::Invalid
            | Outcome::Inactive
            | Outcome::Expired
            | Outcome::QuotaExceeded(_)
            | Outcome::CreditsExhausted => 401,
            Outcome::RateLimited(_) => 429,
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
            Outcome::QuotaExceeded(which) => format!("Rate limit exceeded: quota {which}"),
            Outcome::CreditsExhausted => "Credit limit reached".into(),
            Outcome::Valid => "OK".into(),
            // `why` may quote a field of the request: a pasted secret shows as its
            // display prefix (SPEC §5).
            Outcome::BadRequest(why) => format!("Bad request: {}", super::text::redact(why)),
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
            Outcome::RateLimited(_) => exit::RATE_LIMITED,
            Outcome::BadRequest(_) => exit::USAGE,
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

/// Checks that need only the key and the request (revoked through model).
pub fn check_key(key: &KeyRecord, req: &Request, now: DateTime<Utc>) -> Outcome {
    match key.state {
        State::Revoked => return Outcome::Revoked,
        State::Disabled => return Outcome::Inactive,
        State::Active => {}
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Outcome::Expired;
    }
    if !key.allowed_ips.is_empty() {
        // Stored entries were validated on the way in; one that no longer parses
        // allows nothing.
        let rules: Vec<_> = key
            .allowed_ips
            .iter()
            .filter_map(|r| parse_rule(r).ok())
            .collect();
        match &req.ip {
            Some(ip) if !rules.is_empty() && allows(&rules, ip) => {}
            _ => return Outcome::IpNotAllowed,
        }
    }
    if let Some(bound) = &key.deployment {
        if req.deployment.as_deref() != Some(bound.as_str()) {
            return Outcome::ForbiddenDeployment;
        }
    }
    if let Some(scope) = &req.scope {
        if !key.scopes.is_empty() && !key.scopes.contains(scope) {
            return Outcome::ForbiddenScope(scope.clone());
        }
    }
    if let Some(model) = &req.model {
        if !key.allowed_models.is_empty() && !key.allowed_models.contains(model) {
            return Outcome::ForbiddenModel;
        }
    }
    Outcome::Valid
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

/// Rate limit, quotas and credits, in that order.
pub fn check_limits(key: &KeyRecord, counts: &Counts, cost: u64) -> Outcome {
    if let Some(rate) = key.rate_limit {
        if counts.rate_window >= rate.count {
            return Outcome::RateLimited(rate);
        }
    }
    let q = &key.quotas;
    for (cap, used, which) in [
        (q.total, counts.total, "total"),
        (q.daily, counts.daily, "daily"),
        (q.weekly, counts.weekly, "weekly"),
        (q.monthly, counts.monthly, "monthly"),
    ] {
        if cap.is_some_and(|cap| used >= cap) {
            return Outcome::QuotaExceeded(which);
        }
    }
    if let Some(limit) = key.credit_limit {
        if key.credits_used.saturating_add(cost) > limit {
            return Outcome::CreditsExhausted;
        }
    }
    Outcome::Valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::Mode;
    use crate::core::limits::{Quotas, RateUnit};
    use crate::core::model::{KeySettings, NewKey};
    use crate::core::time::parse_datetime;

    fn now() -> DateTime<Utc> {
        parse_datetime("2026-11-23T12:00:00Z").unwrap()
    }

    fn key() -> KeyRecord {
        let new = NewKey {
            id: "key_aaaaaaaaaaaa".into(),
            hash: [0; 32],
            key_prefix: "sk_live_abcd".into(),
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
        k.expires_at = Some(now());
        assert_eq!(check_key(&k, &Request::default(), now()), Outcome::Revoked);
        k.state = State::Disabled;
        assert_eq!(check_key(&k, &Request::default(), now()), Outcome::Inactive);
        k.state = State::Active;
        assert_eq!(check_key(&k, &Request::default(), now()), Outcome::Expired);
    }

    #[test]
    fn allowlist_requires_a_matching_ip() {
        let mut k = key();
        k.allowed_ips = vec!["10.0.0.0/8".into()];
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
        k.deployment = Some("prod".into());
        k.scopes = vec!["read".into()];
        k.allowed_models = vec!["gpt".into()];
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
        k.rate_limit = Some(RateLimit {
            count: 2,
            unit: RateUnit::Second,
        });
        k.quotas = Quotas {
            total: Some(10),
            daily: Some(5),
            weekly: None,
            monthly: None,
        };
        k.credit_limit = Some(3);
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
}
