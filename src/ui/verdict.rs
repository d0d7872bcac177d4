//! A verdict as json: the `--json` line of `verify`, `verify --stream` and the body of
//! `keyctl serve`'s `POST /v1/verify`, the same bytes everywhere.

use serde::Serialize;

use crate::app::verify::Verdict;
use crate::core::policy::QuotaRemaining;
use crate::ui::meta::MetaJson;

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

/// The verdict's json object and a newline.
pub fn verdict_json(v: &Verdict) -> Vec<u8> {
    let mut line = crate::ui::json::to_vec(&verdict_object(v)).unwrap_or_default();
    line.push(b'\n');
    line
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
