//! `POST /v2/keys.verifyKey`: Unkey's verify API over keyctl's verification
//! (`unkey` holds the shapes). Every verification outcome is a 200; what is not a
//! verification is an Unkey-shaped error: 400 malformed, 401 caller token, 503 store.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State as Shared};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::client_ip::client_ip;
use super::limits::read_body;
use super::reply::json_response;
use super::unkey::{self, ErrorKind, Problem};
use super::{caller_token, Peer, State};
use crate::app::verify::Pending;

pub async fn verify(
    Shared(state): Shared<Arc<State>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = unkey::new_request_id();
    let refuse = |kind: ErrorKind, code: &'static str| {
        let (status, body) = unkey::error_body(&request_id, kind);
        reply(status, code, body)
    };
    // The same check as /v1 (constant-time), answered in Unkey's shape.
    if caller_token::check(state.config.caller_token.as_deref(), &headers).is_some() {
        let kind = if headers.contains_key(header::AUTHORIZATION) {
            ErrorKind::WrongToken
        } else {
            ErrorKind::MissingToken
        };
        let mut r = refuse(kind, "unauthorized");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(refused) => {
            let status = refused.status().as_u16();
            // The metrics code serve gives the same refusal on /v1.
            let (code, detail) = match status {
                413 => (
                    "payload_too_large",
                    format!(
                        "the request body is larger than {} bytes",
                        super::limits::MAX_BODY
                    ),
                ),
                408 => (
                    "request_timeout",
                    "the request body did not arrive in time".into(),
                ),
                _ => ("bad_request", "the request body could not be read".into()),
            };
            return refuse(ErrorKind::Refused { status, detail }, code);
        }
    };
    let ip = match client_ip(peer, &state.config.trusted, &headers) {
        Ok(ip) => ip,
        Err(why) => {
            let problem = Problem {
                location: "header".into(),
                message: why,
                fix: "Send one IP address in X-Real-IP, or a list in X-Forwarded-For".into(),
            };
            return refuse(ErrorKind::BadRequest(vec![problem]), "bad_request");
        }
    };
    let ask = match unkey::parse_request(&bytes, ip, state.config.cost) {
        Ok(ask) => ask,
        Err(problem) => return refuse(ErrorKind::BadRequest(vec![problem]), "bad_request"),
    };
    // Queued now that the request is fully read: the order of the group.
    let verdict = state
        .committer
        .verify(Pending {
            presented: ask.presented.clone(),
            req: ask.req.clone(),
            meta: ask.meta.clone(),
            clock: state.arrival(),
        })
        .await;
    let (status, body) = unkey::verdict_body(&request_id, &ask, &verdict);
    reply(status, verdict.outcome.code(), body)
}

fn reply(status: u16, code: &'static str, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, code, body)
}
