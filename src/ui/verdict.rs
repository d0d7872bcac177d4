//! A verdict as json: the `--json` line of `verify`, `verify --stream` and the body of
//! `keyctl serve`'s `POST /v1/verify`, the same bytes everywhere.

use serde::Serialize;

use crate::app::verify::Verdict;
use crate::core::policy::QuotaRemaining;
use crate::ui::json::{push_opt_str, push_opt_u64, push_str, push_u64};
use crate::ui::meta::{push_meta, MetaJson};

/// The verdict object (`verdict_json`'s, and `verify --explain`'s `verdict`).
#[derive(Serialize)]
pub struct VerdictJson<'a> {
    valid: bool,
    code: &'static str,
    status: u16,
    message: String,
    key_id: Option<&'a str>,
    key_name: Option<&'a str>,
    credits_remaining: Option<u64>,
    quota_remaining: Option<&'a QuotaRemaining>,
    /// The key's metadata (`{}` when none); null when no key is named.
    meta: Option<MetaJson<'a>>,
}

/// The verdict's json object and a newline: [`VerdictJson`]'s bytes, written by hand
/// because a verify stream writes one per request (serde's map serializer was a
/// twentieth of a request's work).
pub fn verdict_json(v: &Verdict) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(if v.outcome.is_valid() {
        b"{\"valid\":true,\"code\":"
    } else {
        b"{\"valid\":false,\"code\":"
    });
    push_str(&mut out, v.outcome.code());
    out.extend_from_slice(b",\"status\":");
    push_u64(&mut out, u64::from(v.outcome.http_status()));
    out.extend_from_slice(b",\"message\":");
    push_str(&mut out, &v.outcome.message());
    out.extend_from_slice(b",\"key_id\":");
    push_opt_str(&mut out, v.key.as_ref().map(|k| k.id.as_str()));
    out.extend_from_slice(b",\"key_name\":");
    push_opt_str(&mut out, v.key.as_ref().map(|k| k.settings.name.as_str()));
    out.extend_from_slice(b",\"credits_remaining\":");
    push_opt_u64(&mut out, v.credits_remaining);
    out.extend_from_slice(b",\"quota_remaining\":");
    match &v.quota_remaining {
        None => out.extend_from_slice(b"null"),
        Some(q) => {
            out.extend_from_slice(b"{\"total\":");
            push_opt_u64(&mut out, q.total);
            out.extend_from_slice(b",\"daily\":");
            push_opt_u64(&mut out, q.daily);
            out.extend_from_slice(b",\"weekly\":");
            push_opt_u64(&mut out, q.weekly);
            out.extend_from_slice(b",\"monthly\":");
            push_opt_u64(&mut out, q.monthly);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"meta\":");
    match &v.key {
        None => out.extend_from_slice(b"null"),
        Some(k) => push_meta(&mut out, &k.settings.meta),
    }
    out.extend_from_slice(b"}\n");
    out
}

/// The verdict as its json object.
pub fn verdict_object(v: &Verdict) -> VerdictJson<'_> {
    VerdictJson {
        valid: v.outcome.is_valid(),
        code: v.outcome.code(),
        status: v.outcome.http_status(),
        message: v.outcome.message(),
        key_id: v.key.as_ref().map(|k| k.id.as_str()),
        key_name: v.key.as_ref().map(|k| k.settings.name.as_str()),
        credits_remaining: v.credits_remaining,
        quota_remaining: v.quota_remaining.as_ref(),
        meta: v.key.as_ref().map(|k| MetaJson(&k.settings.meta)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::limits::{RateLimit, RateUnit};
    use crate::core::policy::Outcome;
    use proptest::prelude::*;

    fn outcome() -> impl Strategy<Value = Outcome> {
        let limit = (any::<u64>(), any::<bool>()).prop_map(|(count, minute)| RateLimit {
            count,
            unit: if minute {
                RateUnit::Minute
            } else {
                RateUnit::Second
            },
        });
        prop_oneof![
            Just(Outcome::IpBlocked),
            Just(Outcome::Invalid),
            Just(Outcome::Revoked),
            Just(Outcome::Inactive),
            Just(Outcome::Expired),
            Just(Outcome::IpNotAllowed),
            Just(Outcome::ForbiddenDeployment),
            any::<String>().prop_map(Outcome::ForbiddenScope),
            Just(Outcome::ForbiddenModel),
            limit.clone().prop_map(Outcome::RateLimited),
            limit.prop_map(Outcome::StoreRateLimited),
            prop_oneof![Just("total"), Just("daily"), Just("monthly")]
                .prop_map(Outcome::QuotaExceeded),
            Just(Outcome::CreditsExhausted),
            Just(Outcome::Valid),
            any::<String>().prop_map(Outcome::BadRequest),
            Just(Outcome::Unavailable),
        ]
    }

    fn count() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(any::<u64>())
    }

    proptest! {
        #[test]
        fn the_hand_written_verdict_is_the_serde_one_byte_for_byte(
            outcome in outcome(),
            key in proptest::option::of(crate::ui::keys::tests::record()),
            credits_remaining in count(),
            quota in proptest::option::of((count(), count(), count(), count())),
        ) {
            let v = Verdict {
                outcome,
                key,
                credits_remaining,
                quota_remaining: quota.map(|(total, daily, weekly, monthly)| QuotaRemaining {
                    total,
                    daily,
                    weekly,
                    monthly,
                }),
            };
            let mut via_serde = crate::ui::json::to_vec(&verdict_object(&v)).unwrap();
            via_serde.push(b'\n');
            prop_assert_eq!(
                String::from_utf8(verdict_json(&v)).unwrap(),
                String::from_utf8(via_serde).unwrap()
            );
        }
    }
}
