//! `GET /auth` (SPEC §7): forward auth for nginx `auth_request`, Traefik ForwardAuth
//! and Caddy `forward_auth`. The request is described by headers; the answer is only
//! ever 204, 401 or 403 (nginx turns anything else into a 500), with the code in
//! `X-Keyctl-Code`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State as Shared};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use super::client_ip::client_ip;
use super::reply::{error_json, Code};
use super::{Peer, State};
use crate::app::verify::{Meta, Pending, Verdict};
use crate::core::inputs;
use crate::core::key::strip_bearer;
use crate::core::names::validate_text;
use crate::core::policy::{Outcome, Request};

pub async fn auth(
    Shared(state): Shared<Arc<State>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    // Only proxies ask here: a peer beyond loopback outside --trust-proxy could
    // otherwise probe keys without the caller token.
    if let Some(ip) = peer.0 {
        let ip = ip.to_canonical();
        if !ip.is_loopback() && !state.config.trusted.iter().any(|n| n.contains(&ip)) {
            return error_json(
                StatusCode::FORBIDDEN,
                "untrusted_peer",
                "/auth answers only loopback peers and the proxies of --trust-proxy",
            )
            .with_code_header("untrusted_peer");
        }
    }
    let verdict = match describe(&state, peer, &headers) {
        Err(why) => Verdict::bad_request(why),
        Ok(pending) => state.committer.verify(pending).await,
    };
    answer(&verdict)
}

/// The request the headers describe.
fn describe(state: &State, peer: Peer, headers: &HeaderMap) -> Result<Pending, String> {
    let ip = client_ip(peer, &state.config.trusted, headers)?;
    let text = |name: &str| -> Result<Option<String>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => {
                let field = format!("header {name}");
                let t = v
                    .to_str()
                    .map_err(|_| format!("{field} is not text"))?
                    .trim();
                if t.is_empty() {
                    return Ok(None);
                }
                validate_text(&field, t).map(|_| Some(t.to_string()))
            }
        }
    };
    let cost = match text("x-keyctl-cost")? {
        Some(t) => inputs::amount("header X-Keyctl-Cost", &t)?,
        None => state.config.cost,
    };
    let req = Request {
        ip,
        scope: text("x-keyctl-scope")?,
        deployment: text("x-keyctl-deployment")?,
        model: text("x-keyctl-model")?,
        cost,
    };
    let meta = Meta {
        ip_text: ip.map(|i| i.to_string()),
        endpoint: endpoint(headers),
        duration_ms: None,
    };
    Ok(Pending {
        presented: presented_key(headers),
        req,
        meta,
        clock: state.arrival(),
    })
}

/// `Authorization: Bearer KEY`, else `X-API-Key`; empty (an invalid key) when neither.
fn presented_key(headers: &HeaderMap) -> String {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let bearer = value(header::AUTHORIZATION.as_str())
        .map(strip_bearer)
        .filter(|k| !k.is_empty());
    bearer
        .or_else(|| value("x-api-key").map(str::trim))
        .unwrap_or_default()
        .to_string()
}

/// "METHOD /path" of the proxied request, recorded in the request log. The query is
/// left out (it may carry tokens); an endpoint that cannot be recorded (hidden
/// characters, something shaped like a secret, too long) is left out rather than
/// refusing the request.
fn endpoint(headers: &HeaderMap) -> Option<String> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let (method, uri) = match value("x-original-uri") {
        Some(uri) => (value("x-original-method"), uri),
        None => (value("x-forwarded-method"), value("x-forwarded-uri")?),
    };
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let text = match method {
        Some(m) => format!("{m} {path}"),
        None => path.to_string(),
    };
    validate_text("endpoint", &text).ok().map(|_| text)
}

/// 204 when valid, 401 for an invalid (or missing) key, 403 for every other refusal,
/// a store outage included (fail closed).
fn answer(verdict: &Verdict) -> Response {
    let code = verdict.outcome.code();
    let mut response = match &verdict.outcome {
        Outcome::Valid => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r.extensions_mut().insert(Code(code));
            r
        }
        Outcome::Invalid => {
            let mut r = error_json(StatusCode::UNAUTHORIZED, code, &verdict.outcome.message());
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        other => error_json(StatusCode::FORBIDDEN, code, &other.message()),
    };
    let h = response.headers_mut();
    if let Some(key) = &verdict.key {
        put(h, "x-keyctl-key-id", &key.id);
        put(h, "x-keyctl-key-name", &key.settings.name);
    }
    if let Some(q) = &verdict.quota_remaining {
        let least = [q.total, q.daily, q.weekly, q.monthly]
            .into_iter()
            .flatten()
            .min();
        if let Some(n) = least {
            put(h, "x-ratelimit-remaining", &n.to_string());
        }
    }
    if let Outcome::RateLimited(limit) | Outcome::StoreRateLimited(limit) = &verdict.outcome {
        // The window's length: by then every request that filled it has left it.
        let secs = limit.unit.millis() / 1000;
        put(h, "retry-after", &secs.to_string());
    }
    response.with_code_header(code)
}

/// Sets a header; a value that is not visible ASCII (a name in another script) is
/// percent-encoded as UTF-8.
fn put(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let encoded: String = value
        .bytes()
        .map(|b| {
            if (0x20..0x7f).contains(&b) && b != b'%' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

trait WithCode {
    fn with_code_header(self, code: &'static str) -> Self;
}

impl WithCode for Response {
    /// `X-Keyctl-Code`, on every `/auth` answer.
    fn with_code_header(mut self, code: &'static str) -> Response {
        self.headers_mut()
            .insert("x-keyctl-code", HeaderValue::from_static(code));
        self
    }
}
