//! Domain types shared by the store and the commands.

use chrono::{DateTime, Utc};

use super::key::Mode;
use super::limits::{Quotas, RateLimit, MAX_COUNT};
use super::meta::KeyMeta;
use super::refill::Refill;

/// What the store records about a key's lifecycle. `expired` is not stored: it is
/// derived from `expires_at` and "now" (see [`KeyRecord::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Disabled,
    Revoked,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Disabled => "disabled",
            State::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        match text {
            "active" => Some(State::Active),
            "disabled" => Some(State::Disabled),
            "revoked" => Some(State::Revoked),
            _ => None,
        }
    }
}

/// The status users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Active,
    Disabled,
    Expired,
    Revoked,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Active,
        Status::Disabled,
        Status::Expired,
        Status::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!("invalid --status '{text}': use active, disabled, expired or revoked")
            })
    }
}

/// Derives the visible status. The precedence matches `verify`'s order of checks
/// (revoked, then inactive, then expired), so `list` agrees with what `verify` says.
pub fn derive_status(
    state: State,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Status {
    match state {
        State::Revoked => Status::Revoked,
        State::Disabled => Status::Disabled,
        State::Active if expires_at.is_some_and(|e| e <= now) => Status::Expired,
        State::Active => Status::Active,
    }
}

/// What tables and messages show for a key without a display prefix.
pub const HASH_ONLY: &str = "(hash only)";

/// Everything stored about one key (never its secret: only the hash is stored, and
/// it is not part of this record).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub id: String,
    /// What the key was created with and `edit` changes (`rotate` copies them).
    pub settings: KeySettings,
    /// The public display prefix; `None` for a key imported by its hash alone.
    pub key_prefix: Option<String>,
    pub mode: Mode,
    pub credits_used: u64,
    /// Accepted requests over the key's lifetime (what the total quota counts).
    pub accepted_total: u64,
    /// Recorded requests over the key's lifetime, accepted or not.
    pub events_total: u64,
    /// Credits this key itself has spent (its pool may be shared after a rotation).
    pub credits_total: u64,
    /// Accepted requests of the key's whole rotation lineage (its pool), all time: what
    /// the total quota counts, since a rotation neither resets nor doubles it.
    pub pool_accepted_total: u64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub state: State,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    /// The last credit refill boundary applied to the key's pool (`core::refill`).
    pub refilled_at: Option<DateTime<Utc>>,
    /// Read only with a key looked up for a verification, by a store that then writes
    /// the running totals advanced instead of reading them back ([`RunningTotals`]).
    pub heads: Option<LedgerHeads>,
}

/// The running totals a recorded request advances that no reader shows, read with the
/// key (see [`KeyRecord::heads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerHeads {
    /// Rejected requests over the key's lifetime.
    pub rejected_total: u64,
    /// The newest recorded request's time, kept non-decreasing per key.
    pub last_event_at: Option<DateTime<Utc>>,
    /// The key's credit pool (its rotation lineage), as the store numbers it.
    pub pool_id: i64,
    /// The lineage's newest accepted request's time, kept non-decreasing per pool.
    pub pool_last_event_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    /// The record a freshly inserted key has (so callers need not read it back).
    pub fn from_new(new: &NewKey, credits_used: u64) -> KeyRecord {
        KeyRecord {
            id: new.id.clone(),
            settings: new.settings.clone(),
            key_prefix: new.key_prefix.clone(),
            mode: new.mode,
            credits_used,
            accepted_total: 0,
            events_total: 0,
            credits_total: 0,
            pool_accepted_total: 0,
            created_at: new.created_at,
            last_used_at: None,
            last_used_ip: None,
            state: State::Active,
            revoked_at: None,
            revoke_reason: None,
            rotated_from: new.rotated_from.clone(),
            rotated_to: None,
            refilled_at: new.refilled_at(),
            heads: None,
        }
    }

    /// The key as tables and messages show it: `sk_live_4eC3...`, or `(hash only)` for
    /// a key imported by its hash alone (it has no display prefix).
    pub fn prefix_shown(&self) -> String {
        match &self.key_prefix {
            Some(p) => format!("{p}..."),
            None => HASH_ONLY.to_string(),
        }
    }

    pub fn status(&self, now: DateTime<Utc>) -> Status {
        derive_status(self.state, self.settings.expires_at, now)
    }

    /// True when this key holds its name: active or disabled, not past its expiry, and
    /// not superseded by a rotation. At most one key holds any name. (A disabled key
    /// past its expiry shows as disabled but no longer holds its name.)
    pub fn holds_name(&self, now: DateTime<Utc>) -> bool {
        self.state != State::Revoked
            && self.rotated_to.is_none()
            && self.settings.expires_at.is_none_or(|e| e > now)
    }
}

/// The settings a new key is created with (every field but the generated ones).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySettings {
    pub name: String,
    pub description: Option<String>,
    pub owner: String,
    pub category: Option<String>,
    pub group: Option<String>,
    pub scopes: Vec<String>,
    pub deployment: Option<String>,
    pub allowed_models: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub quotas: Quotas,
    pub rate_limit: Option<RateLimit>,
    pub credit_limit: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Free-form entries verification hands back (SPEC §8), kept as stored.
    pub meta: KeyMeta,
    /// The credit refill of the key's pool (shared by a rotated pair).
    pub refill: Option<Refill>,
}

/// A key about to be inserted: its settings plus what was generated for it.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub hash: [u8; 32],
    /// `None` for a key imported by its hash alone (`keyctl import`).
    pub key_prefix: Option<String>,
    pub mode: Mode,
    pub created_at: DateTime<Utc>,
    pub settings: KeySettings,
    /// For a rotation: the key whose credit balance the new key shares.
    pub rotated_from: Option<String>,
}

impl NewKey {
    /// The refill boundary a new pool starts from: the last one at creation, so the
    /// first refill comes at the next (a rotation's pool already has its own).
    pub fn refilled_at(&self) -> Option<DateTime<Utc>> {
        self.settings
            .refill
            .map(|r| super::refill::boundary_at(r.interval, self.created_at))
    }
}

/// Counts shown in the `list` summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub active: u64,
    pub disabled: u64,
    pub expired: u64,
    pub revoked: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Active => self.active += 1,
            Status::Disabled => self.disabled += 1,
            Status::Expired => self.expired += 1,
            Status::Revoked => self.revoked += 1,
        }
    }
}

/// Accepted and rejected requests and credits over one span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageFigures {
    pub accepted: u64,
    pub rejected: u64,
    pub credits: u64,
}

/// One recorded verification, as `verify` hands it to the store.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    /// The key the presented secret matched (id, name), if any.
    pub key: Option<(String, String)>,
    pub endpoint: Option<String>,
    pub http_status: u16,
    pub code: String,
    pub ip: Option<String>,
    pub duration_ms: Option<u64>,
    /// Credits charged (0 unless accepted).
    pub credits: u64,
    pub accepted: bool,
    /// For a key whose credit refill applies: its pool's balance as of this request,
    /// written before the charge (`core::refill::to_write`); None adds to the stored one.
    pub refill: Option<super::refill::Balance>,
    /// The key's running totals as the recording transaction read them with the key,
    /// under the lock it still holds; None: the store reads them itself.
    pub totals: Option<RunningTotals>,
}

/// A key's and its lineage's running totals: what recording one request advances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTotals {
    /// Recorded requests, accepted or not (numbering the key's window ledger).
    pub events: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Credits this key itself has spent.
    pub credits: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The last accepted request's time and IP (`KeyRecord::last_used_at`, `_ip`).
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub pool_id: i64,
    /// The pool's credits used: the stored figure, or the refilled balance as of the
    /// request when a refill applies (`KeyRecord::credits_used` after the catch-up).
    pub pool_credits_used: u64,
    /// Accepted requests of the lineage (numbering its window ledger).
    pub pool_accepted: u64,
    pub pool_last_event_at: Option<DateTime<Utc>>,
}

impl RunningTotals {
    /// The totals read with `key`, when they were ([`KeyRecord::heads`]).
    pub fn of(key: &KeyRecord) -> Option<RunningTotals> {
        key.heads.map(|h| RunningTotals {
            events: key.events_total,
            accepted: key.accepted_total,
            rejected: h.rejected_total,
            credits: key.credits_total,
            last_event_at: h.last_event_at,
            last_used_at: key.last_used_at,
            last_used_ip: key.last_used_ip.clone(),
            pool_id: h.pool_id,
            pool_credits_used: key.credits_used,
            pool_accepted: key.pool_accepted_total,
            pool_last_event_at: h.pool_last_event_at,
        })
    }

    /// The totals after one more recorded request at `at` from `ip` charging `cost`
    /// credits (0 unless accepted): counts stop at [`MAX_COUNT`], the event times never
    /// go back (the last use is the accepted request's own time, as shown). The pool
    /// and the last use move only for an accepted one.
    pub fn after(
        &self,
        accepted: bool,
        cost: u64,
        at: DateTime<Utc>,
        ip: Option<&str>,
    ) -> RunningTotals {
        let add = |n: u64, by: u64| n.saturating_add(by).min(MAX_COUNT);
        let later = |t: Option<DateTime<Utc>>| Some(t.map_or(at, |t| t.max(at)));
        let mut next = RunningTotals {
            events: add(self.events, 1),
            credits: add(self.credits, cost),
            last_event_at: later(self.last_event_at),
            ..self.clone()
        };
        if accepted {
            next.last_used_at = Some(at);
            next.last_used_ip = ip.map(str::to_owned);
            next.accepted = add(self.accepted, 1);
            next.pool_credits_used = add(self.pool_credits_used, cost);
            next.pool_accepted = add(self.pool_accepted, 1);
            next.pool_last_event_at = later(self.pool_last_event_at);
        } else {
            next.rejected = add(self.rejected, 1);
        }
        next
    }
}

/// One request-log row, as `logs` shows it.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// The row's number as shown (`seq` in json and csv); following the log uses
    /// `store::LogCursor`, never this.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub endpoint: Option<String>,
    pub http_status: u16,
    pub code: String,
    pub ip: Option<String>,
    pub duration_ms: Option<u64>,
    pub credits: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::parse_datetime;

    #[test]
    fn status_precedence_follows_verify_order() {
        let now = parse_datetime("2026-11-23T12:00:00Z").unwrap();
        let past = Some(parse_datetime("2026-11-01").unwrap());
        let future = Some(parse_datetime("2027-01-01").unwrap());
        assert_eq!(derive_status(State::Active, None, now), Status::Active);
        assert_eq!(derive_status(State::Active, future, now), Status::Active);
        assert_eq!(derive_status(State::Active, past, now), Status::Expired);
        assert_eq!(
            derive_status(State::Active, Some(now), now),
            Status::Expired
        );
        assert_eq!(derive_status(State::Disabled, past, now), Status::Disabled);
        assert_eq!(derive_status(State::Revoked, past, now), Status::Revoked);
    }

    #[test]
    fn running_totals_advance_as_the_stores_sql_does() {
        let t = |s: &str| parse_datetime(s).unwrap();
        let before = RunningTotals {
            events: 9,
            accepted: MAX_COUNT,
            rejected: 4,
            credits: MAX_COUNT - 1,
            last_event_at: Some(t("2026-11-23T12:00:00Z")),
            last_used_at: Some(t("2026-11-23T12:00:00Z")),
            last_used_ip: Some("10.0.0.1".into()),
            pool_id: 7,
            pool_credits_used: 10,
            pool_accepted: 20,
            pool_last_event_at: None,
        };
        // Accepted, with the clock stepped back: counts stop at the ceiling, the key's
        // last event stays, the pool's first one is this request's time.
        let back = t("2026-11-23T11:00:00Z");
        let accepted = before.after(true, 5, back, Some("10.0.0.2"));
        assert_eq!(
            accepted,
            RunningTotals {
                events: 10,
                accepted: MAX_COUNT,
                credits: MAX_COUNT,
                pool_credits_used: 15,
                pool_accepted: 21,
                pool_last_event_at: Some(back),
                last_used_at: Some(back),
                last_used_ip: Some("10.0.0.2".into()),
                ..before.clone()
            }
        );
        // Rejected, later: the pool and the last use do not move.
        let later = t("2026-11-23T13:00:00Z");
        let rejected = accepted.after(false, 0, later, Some("10.0.0.3"));
        assert_eq!(
            rejected,
            RunningTotals {
                events: 11,
                rejected: 5,
                last_event_at: Some(later),
                ..accepted.clone()
            }
        );
    }
}
