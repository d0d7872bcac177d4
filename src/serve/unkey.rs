//! Unkey's v2 verify API (`POST /v2/keys.verifyKey`) in keyctl's terms, so code
//! written against Unkey (its `@unkey/api` SDK pointed at keyctl) works unchanged
//! (SPEC §7). Pure: a request body in, keyctl's request out ([`parse_request`]); a
//! verdict in, Unkey's response body out ([`verdict_body`], [`error_body`]). The
//! shapes are those the SDK's own schemas accept (`@unkey/api` 2.5.1, pinned in
//! tests/node); docs/decisions.md says what maps to what.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::verify::{Meta, Verdict};
use crate::core::key::strip_bearer;
use crate::core::limits::MAX_COUNT;
use crate::core::model::State;
use crate::core::policy::{Outcome, Request};

/// The route, as Unkey spells it.
pub const PATH: &str = "/v2/keys.verifyKey";

/// The members a request may have. `ratelimits` and `migrationId` are Unkey features
/// keyctl does not have (each key carries its own rate limit, applied always):
/// refused by name rather than silently ignored.
const KNOWN: [&str; 4] = ["key", "tags", "permissions", "credits"];

/// Unkey's error `type` URIs, so a client that tells errors apart by type still can.
const TYPE_BASE: &str = "https://unkey.com/docs/api-reference/errors-v2/unkey";

/// A verification asked for in Unkey's shape, in keyctl's terms.
#[derive(Debug, Clone)]
pub struct Ask {
    pub presented: String,
    pub req: Request,
    pub meta: Meta,
    /// Whether `permissions` was given: the key's scopes are then answered as its
    /// permissions, as Unkey does.
    pub permissions_checked: bool,
}

/// One thing wrong with a request, as Unkey lists them (`error.errors[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub location: String,
    pub message: String,
    pub fix: String,
}

impl Problem {
    fn new(location: &str, message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            location: location.to_string(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Parses a request body. `ip` is the client address serve determined (the peer, or
/// `X-Real-IP`/`X-Forwarded-For` from a trusted proxy): Unkey's request has no IP
/// member, and checks a key's IP allowlist against the caller of the verify request.
/// `default_cost` is what a request without `credits` costs (serve's `--cost`, 1 by
/// default as in Unkey).
pub fn parse_request(body: &[u8], ip: Option<IpAddr>, default_cost: u64) -> Result<Ask, Problem> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Problem::new(
            "body",
            format!(
                "the body is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
            "Send a JSON object encoded as UTF-8",
        )
    })?;
    // The stream parser's words for a syntax error (never serde's internals) and its
    // refusal of a member given twice.
    crate::core::fields::parse_line(text.as_bytes(), r#"{"key": "..."}"#).map_err(|why| {
        Problem::new(
            "body",
            body_words(&why),
            "Send one JSON object like {\"key\": \"sk_live_...\"}",
        )
    })?;
    let fields: Map<String, Value> = serde_json::from_str(text).map_err(|_| {
        Problem::new(
            "body",
            "the body must be one JSON object",
            "Send one JSON object like {\"key\": \"sk_live_...\"}",
        )
    })?;
    if let Some(name) = fields.keys().find(|n| !KNOWN.contains(&n.as_str())) {
        return Err(unknown_member(name));
    }
    let presented = match fields.get("key") {
        Some(Value::String(k)) if !k.is_empty() => strip_bearer(k).to_string(),
        Some(Value::String(_)) => {
            return Err(Problem::new(
                "body.key",
                "must not be empty",
                "Send the API key exactly as your user presented it",
            ))
        }
        Some(other) => return Err(wrong_type("body.key", "a string", other)),
        None => {
            return Err(Problem::new(
                "body.key",
                "is required",
                "Send the API key exactly as your user presented it",
            ))
        }
    };
    match fields.get("tags") {
        None => {}
        Some(Value::Array(items)) => {
            if let Some((i, item)) = items.iter().enumerate().find(|(_, v)| !v.is_string()) {
                return Err(wrong_type(&format!("body.tags[{i}]"), "a string", item));
            }
        }
        Some(other) => return Err(wrong_type("body.tags", "a list of strings", other)),
    }
    let scope = match fields.get("permissions") {
        None => None,
        Some(Value::String(p)) => Some(permission(p)?),
        Some(other) => return Err(wrong_type("body.permissions", "a string", other)),
    };
    let cost = match fields.get("credits") {
        None => default_cost,
        Some(Value::Object(credits)) => credits_cost(credits)?,
        Some(other) => {
            return Err(wrong_type(
                "body.credits",
                "an object like {\"cost\": 1}",
                other,
            ))
        }
    };
    Ok(Ask {
        presented,
        permissions_checked: scope.is_some(),
        req: Request {
            ip,
            scope,
            deployment: None,
            model: None,
            cost,
        },
        meta: Meta {
            ip_text: ip.map(|i| i.to_string()),
            endpoint: Some(format!("POST {PATH}")),
            duration_ms: None,
        },
    })
}

/// The stream parser's message is about "the line"; here it is the body. Redacted
/// as every bad-request message is (SPEC §5), should it ever quote a pasted secret.
fn body_words(why: &str) -> String {
    crate::core::text::redact(why).replace("the line", "the body")
}

fn unknown_member(name: &str) -> Problem {
    let location = format!("body.{}", crate::core::text::redact(name));
    match name {
        "ratelimits" => Problem::new(
            &location,
            "is not supported by keyctl",
            "Leave out `ratelimits`: keyctl applies each key's own rate limit on every verification",
        ),
        "migrationId" => Problem::new(
            &location,
            "is not supported by keyctl",
            "Leave out `migrationId`: keyctl has no key migrations",
        ),
        _ => Problem::new(
            &location,
            "is not a member of this request",
            format!("Send only {}", KNOWN.join(", ")),
        ),
    }
}

fn wrong_type(location: &str, want: &str, got: &Value) -> Problem {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    Problem::new(
        location,
        format!("must be {want}, got {got}"),
        format!("Send {want}"),
    )
}

/// A permissions query as one keyctl scope. keyctl checks one scope per request
/// (SPEC §3), so only a single permission name is taken: printable ASCII without
/// spaces or parentheses, which leaves out Unkey's `AND`/`OR` queries.
fn permission(p: &str) -> Result<String, Problem> {
    let fix = "Name one permission, like \"documents.read\"; keyctl checks one scope per request";
    if p.is_empty() {
        return Err(Problem::new("body.permissions", "must not be empty", fix));
    }
    if !p.bytes().all(permission_byte) {
        return Err(Problem::new(
            "body.permissions",
            "must be a single permission name (printable ASCII, no spaces or parentheses): queries with AND, OR and grouping are not supported",
            fix,
        ));
    }
    // A pasted secret or an over-long name is refused as in every free-text field
    // (SPEC §5), without echoing the value.
    crate::core::text::validate_text("permission", p)
        .map_err(|why| Problem::new("body.permissions", why, fix))?;
    Ok(p.to_string())
}

/// Printable ASCII but space and parentheses: `[!-'*-~]` (the OpenAPI pattern).
fn permission_byte(b: u8) -> bool {
    matches!(b, b'!'..=b'\'' | b'*'..=b'~')
}

/// The pattern [`permission`] enforces, for the OpenAPI document.
pub const PERMISSION_PATTERN: &str = "^[!-'*-~]+$";

/// The longest permission name taken (keyctl's bound on free text).
pub const PERMISSION_MAX: usize = crate::core::text::MAX_TEXT;

fn credits_cost(credits: &Map<String, Value>) -> Result<u64, Problem> {
    if let Some(name) = credits.keys().find(|n| n.as_str() != "cost") {
        return Err(Problem::new(
            &format!("body.credits.{}", crate::core::text::redact(name)),
            "is not a member of credits",
            "Send credits as {\"cost\": N}",
        ));
    }
    let fix = format!("Send a whole number of credits from 0 to {MAX_COUNT}");
    match credits.get("cost") {
        None => Err(Problem::new("body.credits.cost", "is required", fix)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(c) if c <= MAX_COUNT => Ok(c),
            _ => Err(Problem::new(
                "body.credits.cost",
                format!("must be a whole number from 0 to {MAX_COUNT}, got {n}"),
                fix,
            )),
        },
        Some(other) => Err(wrong_type("body.credits.cost", "a whole number", other)),
    }
}

/// Unkey's code for a keyctl outcome (SPEC §7). `None` for the answers that are not
/// verification outcomes (`bad_request`, `unavailable`): those are errors.
pub fn unkey_code(outcome: &Outcome) -> Option<&'static str> {
    Some(match outcome {
        Outcome::Invalid | Outcome::Revoked => "NOT_FOUND",
        Outcome::Inactive => "DISABLED",
        Outcome::Expired => "EXPIRED",
        Outcome::IpBlocked
        | Outcome::IpNotAllowed
        | Outcome::ForbiddenDeployment
        | Outcome::ForbiddenModel => "FORBIDDEN",
        Outcome::ForbiddenScope(_) => "INSUFFICIENT_PERMISSIONS",
        Outcome::RateLimited(_) | Outcome::StoreRateLimited(_) => "RATE_LIMITED",
        Outcome::QuotaExceeded(_) | Outcome::CreditsExhausted => "USAGE_EXCEEDED",
        Outcome::Valid => "VALID",
        Outcome::BadRequest(_) | Outcome::Unavailable => return None,
    })
}

#[derive(Serialize)]
struct ResponseMeta<'a> {
    #[serde(rename = "requestId")]
    request_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    valid: bool,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<&'a [String]>,
    keyctl_code: &'static str,
    keyctl_message: String,
}

#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    meta: ResponseMeta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetails<'a>>,
}

/// The HTTP status and JSON body answering `ask` with `verdict`: 200 with `data` for
/// every verification outcome; `bad_request` and `unavailable` as Unkey errors.
pub fn verdict_body(request_id: &str, ask: &Ask, verdict: &Verdict) -> (u16, Vec<u8>) {
    let Some(code) = unkey_code(&verdict.outcome) else {
        return match &verdict.outcome {
            Outcome::BadRequest(why) => error_body(
                request_id,
                ErrorKind::BadRequest(vec![Problem::new("body", why.clone(), "Fix the request")]),
            ),
            _ => error_body(request_id, ErrorKind::Unavailable),
        };
    };
    // Unkey answers nothing about a key it did not find (revoked keys included here),
    // so a caller learns nothing about keys it cannot use; keyctl's code still says
    // which it was.
    let key = verdict.key.as_ref().filter(|_| code != "NOT_FOUND");
    let data = Data {
        valid: verdict.outcome.is_valid(),
        code,
        key_id: key.map(|k| k.id.as_str()),
        name: key.map(|k| k.settings.name.as_str()),
        meta: key.map(|k| {
            let mut m = Map::new();
            m.insert("owner".into(), Value::String(k.settings.owner.clone()));
            for (name, v) in [
                ("category", &k.settings.category),
                ("group", &k.settings.group),
            ] {
                if let Some(v) = v {
                    m.insert(name.into(), Value::String(v.clone()));
                }
            }
            m.insert(
                "livemode".into(),
                Value::Bool(k.mode == crate::core::key::Mode::Live),
            );
            // The key's own metadata (SPEC §8), beside the fields above, which win
            // over an entry of the same name: an entry cannot pose as the key's owner
            // or mode to a service.
            for (name, v) in k.settings.meta.entries() {
                m.entry(name).or_insert(Value::String(v));
            }
            m
        }),
        expires: key.and_then(|k| k.settings.expires_at.map(|t| t.timestamp_millis())),
        credits: key.and(verdict.credits_remaining),
        enabled: key.map(|k| k.state == State::Active),
        permissions: key
            .filter(|_| ask.permissions_checked || code == "INSUFFICIENT_PERMISSIONS")
            .map(|k| k.settings.scopes.as_slice()),
        keyctl_code: verdict.outcome.code(),
        keyctl_message: verdict.outcome.message(),
    };
    let body = Body {
        meta: ResponseMeta { request_id },
        data: Some(data),
        error: None,
    };
    (200, to_json(&body))
}

/// The errors `/v2` answers in Unkey's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: what is wrong with the request.
    BadRequest(Vec<Problem>),
    /// 401: no caller token where one is required (Unkey's root key position).
    MissingToken,
    /// 401: a caller token that is not the configured one.
    WrongToken,
    /// 503: the store cannot answer; nothing was decided or recorded.
    Unavailable,
    /// What serve refuses before reading a request (413 too large, 408 too slow, 400
    /// a body that could not be read), with its reason.
    Refused { status: u16, detail: String },
}

#[derive(Serialize)]
struct ErrorDetails<'a> {
    title: &'static str,
    detail: String,
    status: u16,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [Problem]>,
}

/// The HTTP status and Unkey-shaped error body (`{meta: {requestId}, error: {title,
/// detail, status, type, errors?}}`).
pub fn error_body(request_id: &str, kind: ErrorKind) -> (u16, Vec<u8>) {
    let (status, title, detail, kind_path, errors) = match &kind {
        ErrorKind::BadRequest(problems) => (
            400,
            "Bad Request",
            match problems.first() {
                Some(p) => format!("{} {}", p.location, p.message),
                None => "the request is malformed".to_string(),
            },
            "application/invalid_input",
            Some(problems.as_slice()),
        ),
        ErrorKind::MissingToken => (
            401,
            "Unauthorized",
            "this server requires its caller token: send it as Authorization: Bearer <token>"
                .into(),
            "authentication/missing",
            None,
        ),
        ErrorKind::WrongToken => (
            401,
            "Unauthorized",
            "the caller token sent in Authorization is not this server's".into(),
            "authentication/key_not_found",
            None,
        ),
        ErrorKind::Unavailable => (
            503,
            "Service Unavailable",
            "Key store unavailable".into(),
            "application/service_unavailable",
            None,
        ),
        ErrorKind::Refused { status, detail } => (
            *status,
            match status {
                413 => "Payload Too Large",
                408 => "Request Timeout",
                _ => "Bad Request",
            },
            detail.clone(),
            "application/invalid_input",
            None,
        ),
    };
    let body: Body<'_, ()> = Body {
        meta: ResponseMeta { request_id },
        data: None,
        error: Some(ErrorDetails {
            title,
            detail,
            status,
            kind: format!("{TYPE_BASE}/{kind_path}"),
            errors,
        }),
    };
    (status, to_json(&body))
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail; an empty object is never sent.
    crate::ui::json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

/// A fresh request id (`req_` + 16 hex digits): unique within the process and across
/// restarts (the start time), never derived from anything secret.
pub fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("req_{:08x}{:08x}", start & 0xffff_ffff, n & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::key::Mode;
    use crate::core::limits::{RateLimit, RateUnit};
    use crate::core::model::{KeyRecord, KeySettings, NewKey};

    fn parse(body: &str) -> Result<Ask, Problem> {
        parse_request(body.as_bytes(), None, 1)
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn key(state: State) -> KeyRecord {
        let new = NewKey {
            id: "key_aaaaaaaaaaaa".into(),
            hash: [0; 32],
            key_prefix: Some("sk_live_abcd".into()),
            mode: Mode::Live,
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            settings: KeySettings {
                name: "billing".into(),
                owner: "ops".into(),
                group: Some("pro".into()),
                scopes: vec!["docs.read".into()],
                expires_at: chrono::DateTime::from_timestamp(1_800_000_000, 0),
                ..KeySettings::default()
            },
            rotated_from: None,
        };
        let mut k = KeyRecord::from_new(&new, 0);
        k.state = state;
        k
    }

    fn verdict(outcome: Outcome, k: Option<KeyRecord>) -> Verdict {
        Verdict {
            outcome,
            key: k,
            credits_remaining: Some(41),
            quota_remaining: None,
        }
    }

    #[test]
    fn a_full_request_maps_to_keyctl_terms() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let ask = parse_request(
            br#"{"key": "sk_live_x", "credits": {"cost": 5}, "permissions": "docs.read", "tags": ["a=b"]}"#,
            Some(ip),
            1,
        )
        .unwrap();
        assert_eq!(ask.presented, "sk_live_x");
        assert_eq!(ask.req.cost, 5);
        assert_eq!(ask.req.scope.as_deref(), Some("docs.read"));
        assert_eq!(ask.req.ip, Some(ip));
        assert_eq!(ask.meta.ip_text.as_deref(), Some("192.0.2.7"));
        assert_eq!(
            ask.meta.endpoint.as_deref(),
            Some("POST /v2/keys.verifyKey")
        );
        assert!(ask.permissions_checked);
    }

    #[test]
    fn only_the_key_is_required_and_cost_defaults_to_one() {
        let ask = parse(r#"{"key": "Bearer sk_live_x"}"#).unwrap();
        assert_eq!(ask.presented, "sk_live_x");
        assert_eq!(ask.req.cost, 1);
        assert_eq!(ask.req.scope, None);
        assert!(!ask.permissions_checked);
        assert_eq!(
            parse(r#"{"key": "k", "credits": {"cost": 0}}"#)
                .unwrap()
                .req
                .cost,
            0
        );
        let max = format!(r#"{{"key": "k", "credits": {{"cost": {MAX_COUNT}}}}}"#);
        assert_eq!(parse(&max).unwrap().req.cost, MAX_COUNT);
    }

    #[test]
    fn malformed_requests_name_the_member_and_the_fix() {
        for (body, location, words) in [
            ("", "body", "empty"),
            ("{", "body", "not valid json"),
            ("[1]", "body", "json object"),
            ("{}", "body.key", "required"),
            (r#"{"key": ""}"#, "body.key", "empty"),
            (
                r#"{"key": 7}"#,
                "body.key",
                "must be a string, got a number",
            ),
            (r#"{"key": null}"#, "body.key", "got null"),
            (r#"{"key": "k", "key": "j"}"#, "body", "twice"),
            (r#"{"key": "k", "credits": 3}"#, "body.credits", "object"),
            (
                r#"{"key": "k", "credits": {}}"#,
                "body.credits.cost",
                "required",
            ),
            (
                r#"{"key": "k", "credits": {"cost": -1}}"#,
                "body.credits.cost",
                "whole number",
            ),
            (
                r#"{"key": "k", "credits": {"cost": 1.5}}"#,
                "body.credits.cost",
                "whole number",
            ),
            (
                r#"{"key": "k", "credits": {"cost": 1.0}}"#,
                "body.credits.cost",
                "whole number",
            ),
            (
                r#"{"key": "k", "credits": {"cost": 9007199254740992}}"#,
                "body.credits.cost",
                "whole number",
            ),
            (
                r#"{"key": "k", "credits": {"cost": "5"}}"#,
                "body.credits.cost",
                "got a string",
            ),
            (
                r#"{"key": "k", "credits": {"cost": 1, "x": 1}}"#,
                "body.credits.x",
                "not a member",
            ),
            (
                r#"{"key": "k", "permissions": ""}"#,
                "body.permissions",
                "empty",
            ),
            (
                r#"{"key": "k", "permissions": "a AND b"}"#,
                "body.permissions",
                "not supported",
            ),
            (
                r#"{"key": "k", "permissions": "(a)"}"#,
                "body.permissions",
                "not supported",
            ),
            (
                r#"{"key": "k", "permissions": "caf\u00e9"}"#,
                "body.permissions",
                "ASCII",
            ),
            (
                r#"{"key": "k", "permissions": ["a"]}"#,
                "body.permissions",
                "got a list",
            ),
            (
                r#"{"key": "k", "tags": "a"}"#,
                "body.tags",
                "list of strings",
            ),
            (
                r#"{"key": "k", "tags": ["a", 1]}"#,
                "body.tags[1]",
                "a string",
            ),
            (
                r#"{"key": "k", "ratelimits": []}"#,
                "body.ratelimits",
                "not supported",
            ),
            (
                r#"{"key": "k", "migrationId": "m"}"#,
                "body.migrationId",
                "not supported",
            ),
            (
                r#"{"key": "k", "apiId": "a"}"#,
                "body.apiId",
                "not a member",
            ),
        ] {
            let p = parse(body).expect_err(body);
            assert_eq!(p.location, location, "{body}");
            assert!(p.message.contains(words), "{body}: {}", p.message);
            assert!(!p.fix.is_empty());
        }
        let p = parse_request(b"{\"key\": \"\xff\"}", None, 1).unwrap_err();
        assert!(p.message.contains("UTF-8"), "{}", p.message);
    }

    #[test]
    fn the_permission_pattern_is_what_the_parser_takes() {
        // Each printable ASCII byte alone: taken exactly when the pattern's class
        // `[!-'*-~]` has it.
        for b in 0x20u8..0x7f {
            let taken = permission(&(b as char).to_string()).is_ok();
            let in_class = (b'!'..=b'\'').contains(&b) || (b'*'..=b'~').contains(&b);
            assert_eq!(taken, in_class, "byte {b:#x}");
        }
        assert_eq!(PERMISSION_PATTERN, "^[!-'*-~]+$");
    }

    #[test]
    fn every_outcome_has_the_code_spec_7_lists() {
        let rate = RateLimit {
            count: 1,
            unit: RateUnit::Second,
        };
        for (outcome, code) in [
            (Outcome::Invalid, "NOT_FOUND"),
            (Outcome::Revoked, "NOT_FOUND"),
            (Outcome::Inactive, "DISABLED"),
            (Outcome::Expired, "EXPIRED"),
            (Outcome::IpBlocked, "FORBIDDEN"),
            (Outcome::IpNotAllowed, "FORBIDDEN"),
            (Outcome::ForbiddenDeployment, "FORBIDDEN"),
            (Outcome::ForbiddenModel, "FORBIDDEN"),
            (
                Outcome::ForbiddenScope("s".into()),
                "INSUFFICIENT_PERMISSIONS",
            ),
            (Outcome::RateLimited(rate), "RATE_LIMITED"),
            (Outcome::QuotaExceeded("daily"), "USAGE_EXCEEDED"),
            (Outcome::CreditsExhausted, "USAGE_EXCEEDED"),
            (Outcome::Valid, "VALID"),
        ] {
            assert_eq!(unkey_code(&outcome), Some(code), "{outcome:?}");
            let ask = parse(r#"{"key": "k"}"#).unwrap();
            let (status, body) = verdict_body("req_1", &ask, &verdict(outcome.clone(), None));
            assert_eq!(status, 200);
            let v = json(&body);
            assert_eq!(v["data"]["code"], code);
            assert_eq!(v["data"]["keyctlCode"], outcome.code());
            assert_eq!(v["data"]["valid"], outcome == Outcome::Valid);
            assert_eq!(v["meta"]["requestId"], "req_1");
        }
        assert_eq!(unkey_code(&Outcome::Unavailable), None);
        assert_eq!(unkey_code(&Outcome::BadRequest("x".into())), None);
    }

    #[test]
    fn a_valid_key_is_described_as_unkey_does() {
        let ask = parse(r#"{"key": "k", "permissions": "docs.read"}"#).unwrap();
        let (status, body) = verdict_body(
            "req_2",
            &ask,
            &verdict(Outcome::Valid, Some(key(State::Active))),
        );
        assert_eq!(status, 200);
        let d = &json(&body)["data"];
        assert_eq!(d["valid"], true);
        assert_eq!(d["code"], "VALID");
        assert_eq!(d["keyId"], "key_aaaaaaaaaaaa");
        assert_eq!(d["name"], "billing");
        assert_eq!(d["enabled"], true);
        assert_eq!(d["credits"], 41);
        assert_eq!(d["expires"], 1_800_000_000_000i64);
        assert_eq!(d["permissions"], serde_json::json!(["docs.read"]));
        assert_eq!(
            d["meta"],
            serde_json::json!({"owner": "ops", "group": "pro", "livemode": true})
        );
        assert_eq!(d["keyctlCode"], "valid");
        assert_eq!(d["keyctlMessage"], "OK");
    }

    #[test]
    fn the_keys_metadata_joins_data_meta_without_replacing_its_fields() {
        let ask = parse(r#"{"key": "k"}"#).unwrap();
        let mut k = key(State::Active);
        k.settings.meta = crate::core::meta::KeyMeta::from_stored(Some(
            r#"{"owner":"mallory","tenant":"acme"}"#.into(),
        ));
        let (_, body) = verdict_body("r", &ask, &verdict(Outcome::Valid, Some(k.clone())));
        assert_eq!(
            json(&body)["data"]["meta"],
            serde_json::json!({"owner": "ops", "group": "pro", "livemode": true, "tenant": "acme"})
        );
        // A key it did not find has no data.meta at all.
        let (_, body) = verdict_body("r", &ask, &verdict(Outcome::Revoked, Some(k)));
        assert!(json(&body)["data"].get("meta").is_none());
    }

    #[test]
    fn a_disabled_key_is_not_enabled_and_permissions_need_asking() {
        let ask = parse(r#"{"key": "k"}"#).unwrap();
        let (_, body) = verdict_body(
            "r",
            &ask,
            &verdict(Outcome::Inactive, Some(key(State::Disabled))),
        );
        let d = &json(&body)["data"];
        assert_eq!(d["code"], "DISABLED");
        assert_eq!(d["enabled"], false);
        assert!(d.get("permissions").is_none());
    }

    #[test]
    fn a_revoked_key_says_nothing_about_the_key() {
        let ask = parse(r#"{"key": "k"}"#).unwrap();
        let (_, body) = verdict_body(
            "r",
            &ask,
            &verdict(Outcome::Revoked, Some(key(State::Revoked))),
        );
        let d = json(&body)["data"].clone();
        assert_eq!(
            d,
            serde_json::json!({"valid": false, "code": "NOT_FOUND", "keyctlCode": "revoked",
                "keyctlMessage": "API key has been revoked"})
        );
    }

    #[test]
    fn errors_have_unkeys_shape() {
        let problem = Problem::new("body.key", "is required", "Send the key");
        let (status, body) = error_body("req_3", ErrorKind::BadRequest(vec![problem]));
        assert_eq!(status, 400);
        let v = json(&body);
        assert_eq!(v["meta"]["requestId"], "req_3");
        let e = &v["error"];
        assert_eq!(e["status"], 400);
        assert_eq!(e["title"], "Bad Request");
        assert_eq!(e["detail"], "body.key is required");
        assert!(e["type"]
            .as_str()
            .unwrap()
            .ends_with("/application/invalid_input"));
        assert_eq!(
            e["errors"],
            serde_json::json!([{"location": "body.key", "message": "is required", "fix": "Send the key"}])
        );
        assert!(v.get("data").is_none());
        for (kind, status) in [
            (ErrorKind::MissingToken, 401),
            (ErrorKind::WrongToken, 401),
            (ErrorKind::Unavailable, 503),
        ] {
            let (s, body) = error_body("r", kind);
            assert_eq!(s, status);
            let e = &json(&body)["error"];
            assert_eq!(e["status"], status);
            for member in ["title", "detail", "type"] {
                assert!(e[member].is_string(), "{member}");
            }
            assert!(e.get("errors").is_none());
        }
        let ask = parse(r#"{"key": "k"}"#).unwrap();
        assert_eq!(verdict_body("r", &ask, &Verdict::unavailable()).0, 503);
        assert_eq!(
            verdict_body("r", &ask, &Verdict::bad_request("x".into())).0,
            400
        );
    }

    #[test]
    fn a_secret_given_as_a_member_name_is_not_echoed() {
        let secret = "sk_live_4eC3aaaaaaaaaaaaaaaaaaaaaaaaaaaa000000";
        let p = parse(&format!(r#"{{"key": "k", "{secret}": 1}}"#)).unwrap_err();
        assert!(!p.location.contains(secret), "{}", p.location);
    }

    #[test]
    fn a_secret_sent_unquoted_is_not_echoed() {
        let secret = "sk_live_4eC3aaaaaaaaaaaaaaaaaaaaaaaaaaaa000000";
        let p = parse(&format!(r#"{{"key": {secret}}}"#)).unwrap_err();
        assert_eq!(p.location, "body");
        assert!(p.message.contains("not valid json"), "{}", p.message);
        assert!(!p.message.contains(secret), "{}", p.message);
    }

    #[test]
    fn request_ids_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert!(a.starts_with("req_") && a.len() == 20, "{a}");
    }
}
