//! `POST /v1/verify`: a stream request (SPEC §3) as the body, the `--json` verdict
//! back with the verdict's HTTP status.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::caller_token;
use super::limits::read_body;
use super::reply::json_response;
use super::State;
use crate::app::verify::{Pending, Verdict};
use crate::commands::verify::parse_stream_line;
use crate::ui::verdict::verdict_json;

pub async fn verify(Shared(state): Shared<Arc<State>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refused) = caller_token::check(state.config.caller_token.as_deref(), &headers) {
        return refused;
    }
    let bytes = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let verdict = match parse_stream_line(&bytes, state.config.cost) {
        Err(why) => Verdict::bad_request(why),
        Ok((presented, req, meta)) => {
            // Queued now that the request is fully read: the order of the group.
            let clock = state.arrival();
            state
                .committer
                .verify(Pending {
                    presented,
                    req,
                    meta,
                    clock,
                })
                .await
        }
    };
    verdict_response(&verdict)
}

/// The verdict's json with its HTTP status.
pub fn verdict_response(verdict: &Verdict) -> Response {
    let status = StatusCode::from_u16(verdict.outcome.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, verdict.outcome.code(), verdict_json(verdict))
}
