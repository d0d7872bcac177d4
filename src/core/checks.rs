//! The checks of SPEC §3 one by one, in order, each evaluated on its own with the
//! figure it rests on. The one source of the verification rules: `policy::decide`
//! takes the first failure (and stops there), `verify --explain` shows them all.
//!
//! Evaluating a check allocates nothing: a [`Figure`] borrows from the key and the
//! request, so the one-shot verify pays only for the checks it reaches.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::allowlist::parse_rule;
use super::limits::RateLimit;
use super::model::{KeyRecord, State};
use super::policy::{Counts, Outcome, Request};
use super::refill::{self, Refill};
use super::store_limits::StoreView;

/// One check of SPEC §3. The quota check is one per window, in SPEC's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    IpBlocked,
    Invalid,
    Revoked,
    Inactive,
    Expired,
    IpNotAllowed,
    ForbiddenDeployment,
    ForbiddenScope,
    ForbiddenModel,
    RateLimited,
    /// The store-wide rate limit (`config set rate-limit`), all keys together.
    StoreRateLimited,
    QuotaTotal,
    QuotaDaily,
    QuotaWeekly,
    QuotaMonthly,
    CreditsExhausted,
    /// The store-wide credit limit (`config set credit-limit`), all keys together.
    StoreCreditsExhausted,
}

impl Check {
    /// Every check, in the order SPEC §3 applies them.
    pub const ALL: [Check; 17] = [
        Check::IpBlocked,
        Check::Invalid,
        Check::Revoked,
        Check::Inactive,
        Check::Expired,
        Check::IpNotAllowed,
        Check::ForbiddenDeployment,
        Check::ForbiddenScope,
        Check::ForbiddenModel,
        Check::RateLimited,
        Check::StoreRateLimited,
        Check::QuotaTotal,
        Check::QuotaDaily,
        Check::QuotaWeekly,
        Check::QuotaMonthly,
        Check::CreditsExhausted,
        Check::StoreCreditsExhausted,
    ];
    /// The checks of a known key against the request (revoked through model).
    pub const KEY: &'static [Check] = Check::ALL.split_at(2).1.split_at(7).0;
    /// The checks of a key's limits (rate limit, quotas, credits) and the store's.
    pub const LIMITS: &'static [Check] = Check::ALL.split_at(9).1;

    /// The row's name: the verify code it fails with, the quota ones by window.
    pub fn name(self) -> &'static str {
        match self {
            Check::QuotaTotal => "quota_total",
            Check::QuotaDaily => "quota_daily",
            Check::QuotaWeekly => "quota_weekly",
            Check::QuotaMonthly => "quota_monthly",
            Check::StoreRateLimited => "store_rate_limited",
            Check::StoreCreditsExhausted => "store_credits_exhausted",
            other => other.code(),
        }
    }

    /// The verify code this check fails with (SPEC §3).
    pub fn code(self) -> &'static str {
        match self {
            Check::IpBlocked => "ip_blocked",
            Check::Invalid => "invalid",
            Check::Revoked => "revoked",
            Check::Inactive => "inactive",
            Check::Expired => "expired",
            Check::IpNotAllowed => "ip_not_allowed",
            Check::ForbiddenDeployment => "forbidden_deployment",
            Check::ForbiddenScope => "forbidden_scope",
            Check::ForbiddenModel => "forbidden_model",
            Check::RateLimited | Check::StoreRateLimited => "rate_limited",
            Check::QuotaTotal | Check::QuotaDaily | Check::QuotaWeekly | Check::QuotaMonthly => {
                "quota_exceeded"
            }
            Check::CreditsExhausted | Check::StoreCreditsExhausted => "credits_exhausted",
        }
    }

    /// The quota window a quota check counts (`total`, `daily`, ...).
    pub fn window(self) -> Option<&'static str> {
        match self {
            Check::QuotaTotal => Some("total"),
            Check::QuotaDaily => Some("daily"),
            Check::QuotaWeekly => Some("weekly"),
            Check::QuotaMonthly => Some("monthly"),
            _ => None,
        }
    }
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result {
    Pass,
    Fail,
    /// Nothing to check: the key sets no such limit, the request does not ask it, or
    /// no key was found to check it on.
    NotApplicable,
}

impl Result {
    pub fn as_str(self) -> &'static str {
        match self {
            Result::Pass => "pass",
            Result::Fail => "fail",
            Result::NotApplicable => "n.a.",
        }
    }
}

/// What a check looked at: the figures behind its result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure<'a> {
    /// The check needs a key and none was found.
    NoKey,
    /// The client's address and until when it is blocked (None: not blocked).
    Block {
        ip: Option<IpAddr>,
        until: Option<DateTime<Utc>>,
    },
    /// The presented key: well-formed with a good checksum (`parsed`), and the key
    /// it is the secret of, if any.
    Presented {
        parsed: bool,
        key: Option<&'a KeyRecord>,
    },
    /// The key's lifecycle state; `successor` when a rotation superseded it.
    State {
        state: State,
        revoked_at: Option<DateTime<Utc>>,
        reason: Option<&'a str>,
        successor: Option<&'a str>,
    },
    /// The key's expiry against "now"; `successor` when it is a rotated key's grace
    /// period (SPEC §5: the old key keeps working until then).
    Expiry {
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        successor: Option<&'a str>,
    },
    /// The key's IP allowlist, the request's IP and the first entry containing it.
    Allowlist {
        entries: &'a [String],
        ip: Option<IpAddr>,
        matched: Option<&'a str>,
    },
    /// A restriction to a set of values (one deployment, scopes, models) and what the
    /// request asked for.
    Allowed {
        allowed: AllowedValues<'a>,
        requested: Option<&'a str>,
    },
    /// Accepted requests in the rate window before this one, against the limit.
    Rate {
        limit: Option<RateLimit>,
        count: u64,
    },
    /// Accepted requests in a quota window before this one, against its cap.
    Quota { cap: Option<u64>, used: u64 },
    /// Credits spent against the limit, and what this request costs.
    Credits {
        limit: Option<u64>,
        used: u64,
        cost: u64,
        /// The credit refill that applies, and when it next comes (`used` is as of now).
        refill: Option<(&'a Refill, DateTime<Utc>)>,
    },
}

/// What a key allows, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedValues<'a> {
    /// The deployment the key is bound to (None: project-wide).
    One(Option<&'a str>),
    /// Scopes or models (empty: any).
    Set(&'a [String]),
}

impl Figure<'_> {
    /// Credits left before this request (None: unlimited or not a credits figure).
    pub fn credits_remaining(&self) -> Option<u64> {
        match self {
            Figure::Credits {
                limit: Some(l),
                used,
                ..
            } => Some(l.saturating_sub(*used)),
            _ => None,
        }
    }
}

/// One check, evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluated<'a> {
    pub check: Check,
    pub result: Result,
    pub figure: Figure<'a>,
}

impl Evaluated<'_> {
    pub fn failed(&self) -> bool {
        self.result == Result::Fail
    }

    /// The verify outcome of this check when it failed.
    pub fn outcome(&self) -> Outcome {
        match self.check {
            Check::IpBlocked => Outcome::IpBlocked,
            Check::Invalid => Outcome::Invalid,
            Check::Revoked => Outcome::Revoked,
            Check::Inactive => Outcome::Inactive,
            Check::Expired => Outcome::Expired,
            Check::IpNotAllowed => Outcome::IpNotAllowed,
            Check::ForbiddenDeployment => Outcome::ForbiddenDeployment,
            Check::ForbiddenScope => match self.figure {
                Figure::Allowed {
                    requested: Some(s), ..
                } => Outcome::ForbiddenScope(s.to_string()),
                _ => Outcome::ForbiddenScope(String::new()),
            },
            Check::ForbiddenModel => Outcome::ForbiddenModel,
            Check::RateLimited => match self.figure {
                Figure::Rate {
                    limit: Some(limit), ..
                } => Outcome::RateLimited(limit),
                // Only a key with a rate limit fails this check.
                _ => Outcome::Valid,
            },
            Check::QuotaTotal | Check::QuotaDaily | Check::QuotaWeekly | Check::QuotaMonthly => {
                Outcome::QuotaExceeded(self.check.window().unwrap_or("total"))
            }
            Check::StoreRateLimited => match self.figure {
                Figure::Rate {
                    limit: Some(limit), ..
                } => Outcome::StoreRateLimited(limit),
                _ => Outcome::Valid,
            },
            Check::CreditsExhausted | Check::StoreCreditsExhausted => Outcome::CreditsExhausted,
        }
    }
}

/// Everything the checks look at for one request.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Until when the request's IP is blocked, if it is blocked now.
    pub ip_blocked_until: Option<DateTime<Utc>>,
    /// The presented key is well-formed and its checksum holds.
    pub parsed: bool,
    /// The key whose secret was presented, if one was found.
    pub key: Option<&'a KeyRecord>,
    /// The key's lineage's accepted requests in each window it limits.
    pub counts: &'a Counts,
    pub req: &'a Request,
    pub now: DateTime<Utc>,
    /// The store-wide limits, figures and the key's group's multiplier; None when
    /// none is set.
    pub store: Option<StoreView>,
}

impl<'a> Subject<'a> {
    /// One check, evaluated on its own (every other check's result aside).
    pub fn evaluate(&self, check: Check) -> Evaluated<'a> {
        let (result, figure) = match check {
            Check::IpBlocked => self.ip_blocked(),
            Check::Invalid => self.invalid(),
            _ => match self.key.filter(|_| self.parsed) {
                None => (Result::NotApplicable, Figure::NoKey),
                Some(key) => self.of_key(check, key),
            },
        };
        Evaluated {
            check,
            result,
            figure,
        }
    }

    /// `checks` evaluated in order (all of them: nothing stops at a failure).
    pub fn all(&self, checks: &'a [Check]) -> impl Iterator<Item = Evaluated<'a>> + 'a {
        let subject = *self;
        checks.iter().map(move |c| subject.evaluate(*c))
    }

    /// The outcome of `checks` in order: the first failure decides (SPEC §3).
    pub fn first_failure(&self, checks: &[Check]) -> Outcome {
        checks
            .iter()
            .map(|c| self.evaluate(*c))
            .find(Evaluated::failed)
            .map_or(Outcome::Valid, |e| e.outcome())
    }

    fn ip_blocked(&self) -> (Result, Figure<'a>) {
        let figure = Figure::Block {
            ip: self.req.ip,
            until: self.ip_blocked_until,
        };
        let result = if self.ip_blocked_until.is_some() {
            Result::Fail
        } else if self.req.ip.is_none() {
            Result::NotApplicable
        } else {
            Result::Pass
        };
        (result, figure)
    }

    fn invalid(&self) -> (Result, Figure<'a>) {
        // A key that does not parse is invalid even if a record was found for it.
        let key = self.key.filter(|_| self.parsed);
        let figure = Figure::Presented {
            parsed: self.parsed,
            key,
        };
        (pass_unless(key.is_none()), figure)
    }

    /// What this request is charged: its cost times its key's group's multiplier.
    pub fn charge(&self) -> u64 {
        self.store
            .map_or(self.req.cost, |s| s.charge(self.req.cost))
    }

    fn of_key(&self, check: Check, key: &'a KeyRecord) -> (Result, Figure<'a>) {
        let s = &key.settings;
        let req = self.req;
        let state = || Figure::State {
            state: key.state,
            revoked_at: key.revoked_at,
            reason: key.revoke_reason.as_deref(),
            successor: key.rotated_to.as_deref(),
        };
        match check {
            Check::Revoked => (pass_unless(key.state == State::Revoked), state()),
            Check::Inactive => (pass_unless(key.state == State::Disabled), state()),
            Check::Expired => {
                let figure = Figure::Expiry {
                    expires_at: s.expires_at,
                    now: self.now,
                    successor: key.rotated_to.as_deref(),
                };
                let result = match s.expires_at {
                    None => Result::NotApplicable,
                    Some(e) => pass_unless(e <= self.now),
                };
                (result, figure)
            }
            Check::IpNotAllowed => {
                // Stored entries were validated on the way in; one that no longer
                // parses allows nothing.
                let matched = req.ip.and_then(|ip| {
                    s.allowed_ips
                        .iter()
                        .find(|e| parse_rule(e).is_ok_and(|r| r.contains(&ip)))
                        .map(String::as_str)
                });
                let figure = Figure::Allowlist {
                    entries: &s.allowed_ips,
                    ip: req.ip,
                    matched,
                };
                let result = if s.allowed_ips.is_empty() {
                    Result::NotApplicable
                } else {
                    pass_unless(matched.is_none())
                };
                (result, figure)
            }
            Check::ForbiddenDeployment => {
                let requested = req.deployment.as_deref();
                let bound = s.deployment.as_deref();
                let figure = Figure::Allowed {
                    allowed: AllowedValues::One(bound),
                    requested,
                };
                let result = match bound {
                    None => Result::NotApplicable,
                    Some(b) => pass_unless(requested != Some(b)),
                };
                (result, figure)
            }
            Check::ForbiddenScope => in_set(&s.scopes, req.scope.as_deref()),
            Check::ForbiddenModel => in_set(&s.allowed_models, req.model.as_deref()),
            Check::RateLimited => {
                let count = self.counts.rate_window;
                let figure = Figure::Rate {
                    limit: s.rate_limit,
                    count,
                };
                let result = match s.rate_limit {
                    None => Result::NotApplicable,
                    Some(rate) => pass_unless(count >= rate.count),
                };
                (result, figure)
            }
            Check::QuotaTotal | Check::QuotaDaily | Check::QuotaWeekly | Check::QuotaMonthly => {
                let (q, c) = (&s.quotas, self.counts);
                let (cap, used) = match check {
                    Check::QuotaTotal => (q.total, c.total),
                    Check::QuotaDaily => (q.daily, c.daily),
                    Check::QuotaWeekly => (q.weekly, c.weekly),
                    _ => (q.monthly, c.monthly),
                };
                let result = match cap {
                    None => Result::NotApplicable,
                    Some(cap) => pass_unless(used >= cap),
                };
                (result, Figure::Quota { cap, used })
            }
            Check::CreditsExhausted => {
                let figure = Figure::Credits {
                    limit: s.credit_limit,
                    used: key.credits_used,
                    cost: self.charge(),
                    refill: refill::of(key)
                        .map(|(r, _)| (r, refill::next_boundary(r.interval, self.now))),
                };
                let result = match s.credit_limit {
                    None => Result::NotApplicable,
                    Some(limit) => {
                        pass_unless(key.credits_used.saturating_add(self.charge()) > limit)
                    }
                };
                (result, figure)
            }
            Check::StoreRateLimited => {
                let store = self.store.unwrap_or_default();
                let figure = Figure::Rate {
                    limit: store.rate_limit,
                    count: store.rate_window,
                };
                let result = match store.rate_limit {
                    None => Result::NotApplicable,
                    Some(rate) => pass_unless(store.rate_window >= rate.count),
                };
                (result, figure)
            }
            Check::StoreCreditsExhausted => {
                let store = self.store.unwrap_or_default();
                let figure = Figure::Credits {
                    limit: store.credit_limit,
                    used: store.credits_used,
                    cost: self.charge(),
                    // Store-wide credits never refill (docs/decisions.md).
                    refill: None,
                };
                let result = match store.credit_limit {
                    None => Result::NotApplicable,
                    Some(limit) => {
                        pass_unless(store.credits_used.saturating_add(self.charge()) > limit)
                    }
                };
                (result, figure)
            }
            // Decided before a key is looked at ([`Subject::evaluate`]).
            Check::IpBlocked | Check::Invalid => (Result::NotApplicable, Figure::NoKey),
        }
    }
}

fn pass_unless(failed: bool) -> Result {
    if failed {
        Result::Fail
    } else {
        Result::Pass
    }
}

/// A scope or model check: only a request that asks for one, of a key that limits
/// them, is checked.
fn in_set<'a>(allowed: &'a [String], requested: Option<&'a str>) -> (Result, Figure<'a>) {
    let figure = Figure::Allowed {
        allowed: AllowedValues::Set(allowed),
        requested,
    };
    let result = match requested {
        Some(r) if !allowed.is_empty() => pass_unless(!allowed.iter().any(|a| a == r)),
        _ => Result::NotApplicable,
    };
    (result, figure)
}

#[cfg(test)]
mod tests {
    use super::Check;

    #[test]
    fn the_key_and_limit_checks_are_their_runs_of_the_whole_order() {
        assert_eq!(Check::KEY.first(), Some(&Check::Revoked));
        assert_eq!(Check::KEY.last(), Some(&Check::ForbiddenModel));
        assert_eq!(Check::LIMITS.first(), Some(&Check::RateLimited));
        assert_eq!(Check::LIMITS.last(), Some(&Check::StoreCreditsExhausted));
        assert_eq!(Check::KEY.len() + Check::LIMITS.len() + 2, Check::ALL.len());
    }
}
