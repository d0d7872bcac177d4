//! One verification, the same for `verify` and each request of `verify --stream`, on
//! every backend: one store call loads what the decision needs, core decides (SPEC §3,
//! the whole order), one store call records it.

use crate::app::retry::with_retry;
use crate::core::key::{self, hash_secret};
use crate::core::model::{KeyRecord, RequestRecord};
use crate::core::policy::{decide, Outcome, QuotaRemaining, Request};
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
    // Format and checksum first: a mistyped key never reaches the index.
    let parsed = key::parse(presented).is_ok();
    let hash = parsed.then(|| hash_secret(presented));
    let intent = if record { Intent::Verify } else { Intent::Read };
    with_retry(store.retry_attempts(), || {
        let mut tx = store.begin(intent)?;
        let view = tx.load_for_verify(hash.as_ref(), req.ip, record, clock)?;
        let now = view.now;
        let d = decide(view, parsed, req, now);
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
                },
                auth_failure: d.auth_failure,
                prune_before: d.prune_before,
            })?;
            tx.commit()?;
        }
        Ok(Verdict {
            outcome: d.outcome,
            key: d.key,
            credits_remaining: d.credits_remaining,
            quota_remaining: d.quota_remaining,
        })
    })
}
