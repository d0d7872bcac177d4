//! One verification, the same for `verify` and each request of `verify --stream`, on
//! every backend: one store call loads what the decision needs, core decides (SPEC §3,
//! the whole order), one store call records it.

use crate::app::retry::with_retry;
use crate::core::key::{self, hash_secret};
use crate::core::model::{KeyRecord, RequestRecord, RunningTotals};
use crate::core::policy::{decide, Decision, Outcome, QuotaRemaining, Request};
use crate::core::refill;
use chrono::{DateTime, Utc};

use crate::store::{Clock, Intent, Result, Store, VerdictRecord};

/// What is recorded about a request besides its outcome.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub ip_text: Option<String>,
    pub endpoint: Option<String>,
    pub duration_ms: Option<u64>,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: Outcome,
    pub key: Option<KeyRecord>,
    pub credits_remaining: Option<u64>,
    pub quota_remaining: Option<QuotaRemaining>,
}

impl Verdict {
    /// The answer to a stream line that is not a request.
    pub fn bad_request(why: String) -> Verdict {
        Verdict::without_key(Outcome::BadRequest(why))
    }

    /// The answer when the store failed: nothing was decided or recorded.
    pub fn unavailable() -> Verdict {
        Verdict::without_key(Outcome::Unavailable)
    }

    fn without_key(outcome: Outcome) -> Verdict {
        Verdict {
            outcome,
            key: None,
            credits_remaining: None,
            quota_remaining: None,
        }
    }
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Verdict {
        Verdict {
            outcome: d.outcome,
            key: d.key,
            credits_remaining: d.credits_remaining,
            quota_remaining: d.quota_remaining,
        }
    }
}

/// One request of a group ([`verify_group`]): what was presented and asked, and the
/// clock it is decided by (its own arrival time, or `KEYCTL_NOW`; on PostgreSQL the
/// database's clock read after its rows are locked, which is never before arrival).
#[derive(Debug, Clone)]
pub struct Pending {
    pub presented: String,
    pub req: Request,
    pub meta: Meta,
    pub clock: Clock,
}

/// Decides one request and, with `record`, writes it down, in one transaction
/// (`Intent::Verify`; `Intent::Read` without `record`), run again when the store asks
/// for a retry (nothing of it is seen before its commit).
pub fn verify_one(
    store: &mut dyn Store,
    presented: &str,
    req: &Request,
    meta: &Meta,
    clock: Clock,
    record: bool,
) -> Result<Verdict> {
    let checked = [Checked::new(presented)];
    let one = [(req, meta, clock)];
    with_retry(store.retry_attempts(), || {
        run_group(store, &checked, &one, record)
    })
    .map(|mut v| v.remove(0))
}

/// Decides the requests waiting at the same moment (stream lines already buffered,
/// concurrent HTTP requests) and, with `record`, writes them down, all in ONE
/// transaction (SPEC §7, group commit): exactly the verdicts, counters and log rows
/// that one transaction per request in this order would give, each decided at its
/// own `clock`. Nothing is committed, and nothing should be answered, before this
/// returns.
///
/// One answer per request, in order. A request that fails gets its own error and the
/// others are unaffected: when the group's transaction fails, it rolled back whole,
/// and every request of it is run again in a transaction of its own. Without `record` the group shares one read transaction.
pub fn verify_group(
    store: &mut dyn Store,
    group: &[Pending],
    record: bool,
) -> Vec<Result<Verdict>> {
    let checked: Vec<Checked> = group.iter().map(|p| Checked::new(&p.presented)).collect();
    let asks: Vec<_> = group.iter().map(|p| (&p.req, &p.meta, p.clock)).collect();
    let attempts = store.retry_attempts();
    // A group is tried once: it fails mostly because a row it wanted was held (on
    // PostgreSQL its later requests do not wait), and then its requests one by one
    // wait their turn like any other transaction.
    if group.len() > 1 {
        if let Ok(verdicts) = run_group(store, &checked, &asks, record) {
            return verdicts.into_iter().map(Ok).collect();
        }
    }
    checked
        .iter()
        .zip(&asks)
        .map(|(c, ask)| {
            with_retry(attempts, || {
                run_group(
                    store,
                    std::slice::from_ref(c),
                    std::slice::from_ref(ask),
                    record,
                )
                .map(|mut v| v.remove(0))
            })
        })
        .collect()
}

/// A presented key's format and checksum, checked first: a mistyped key is never
/// hashed nor looked up.
struct Checked {
    parsed: bool,
    hash: Option<[u8; 32]>,
}

impl Checked {
    fn new(presented: &str) -> Checked {
        // keyctl's format by its checksum first (unchanged cost); another format, an
        // imported key's, by its hash alone (SPEC §8).
        let parsed = key::lookup(presented) != key::Lookup::Refused;
        Checked {
            parsed,
            hash: parsed.then(|| hash_secret(presented)),
        }
    }
}

/// One transaction deciding (and recording) `asks` in order. The settings are read
/// once; retention pruning runs once, at the end, at the latest cut-off any request
/// asked for (log rows decide nothing, and every row a request adds is younger than
/// its own cut-off, so the log ends as after pruning per request).
fn run_group(
    store: &mut dyn Store,
    checked: &[Checked],
    asks: &[(&Request, &Meta, Clock)],
    record: bool,
) -> Result<Vec<Verdict>> {
    let intent = if record { Intent::Verify } else { Intent::Read };
    let mut tx = store.begin(intent)?;
    let mut settings = None;
    let mut prune: Option<DateTime<Utc>> = None;
    let mut verdicts = Vec::with_capacity(asks.len());
    for (c, (req, meta, clock)) in checked.iter().zip(asks) {
        let view =
            tx.load_for_verify_cached(c.hash.as_ref(), req.ip, record, *clock, &mut settings)?;
        let now = view.now;
        // Charged store-wide only while a store-wide limit is set.
        let store_ledger = view
            .store
            .filter(|s| s.rate_limit.is_some() || s.credit_limit.is_some())
            .map(|s| s.rate_limit.is_some());
        let mut d = decide(view, c.parsed, req, now);
        if record {
            tx.record_verdict(&VerdictRecord {
                request: RequestRecord {
                    at: now,
                    key: d
                        .key
                        .as_ref()
                        .map(|k| (k.id.clone(), k.settings.name.clone())),
                    endpoint: meta.endpoint.clone(),
                    http_status: d.outcome.http_status(),
                    code: d.outcome.code().to_string(),
                    ip: meta.ip_text.clone(),
                    duration_ms: meta.duration_ms,
                    credits: d.credits,
                    accepted: d.outcome.is_valid(),
                    refill: d.key.as_ref().and_then(refill::to_write),
                    totals: d.key.as_ref().and_then(RunningTotals::of),
                },
                auth_failure: d.auth_failure.take(),
                prune_before: None,
                store_ledger,
            })?;
            prune = prune.max(d.prune_before);
        }
        verdicts.push(Verdict::from(d));
    }
    if record {
        if let Some(before) = prune {
            tx.prune_requests(before)?;
        }
        tx.commit()?;
    }
    Ok(verdicts)
}
