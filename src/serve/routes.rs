//! Every route of `keyctl serve`, in one place: a route is one line here.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State as Shared};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::reply::{error_json, Code};
use super::{forward_auth, openapi, unkey, verify_v1, verify_v2, State};

/// The application: routes, the JSON answers for unknown routes and methods, and the
/// metrics of every answer.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/verify", post(verify_v1::verify))
        .route("/auth", get(forward_auth::auth))
        .route(unkey::PATH, post(verify_v2::verify))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(openapi::PATH, get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), measured))
        .with_state(state)
}

/// Counts every answer by route, status and code, and times it.
async fn measured(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // A shared pointer to the pattern: nothing copied per request.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    let flying = InFlight::new(&state.metrics);
    let response = next.run(req).await;
    drop(flying);
    let code = response.extensions().get::<Code>().map_or("", |c| c.0);
    state
        .metrics
        .request(route, response.status().as_u16(), code, start.elapsed());
    response
}

/// One request in flight until dropped, also when its client goes away mid-request.
struct InFlight<'a>(&'a super::Metrics);

impl<'a> InFlight<'a> {
    fn new(metrics: &'a super::Metrics) -> InFlight<'a> {
        metrics.in_flight(1);
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight(-1);
    }
}

async fn healthz(Shared(state): Shared<Arc<State>>) -> Response {
    if state.committer.healthy().await {
        error_json(StatusCode::OK, "ok", "the key store answers")
    } else {
        error_json(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Key store unavailable",
        )
    }
}

async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    let mut r = Response::new(Body::from(state.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r.extensions_mut().insert(Code("ok"));
    r
}

// The path asked for is never echoed: it may hold anything, a secret too.
async fn not_found() -> Response {
    error_json(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route: keyctl serve answers POST /v1/verify, GET /auth, POST /v2/keys.verifyKey, GET /healthz, GET /metrics and GET /openapi.json",
    )
}

async fn method_not_allowed() -> Response {
    error_json(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// The OpenAPI document of these routes, as this server is configured.
async fn openapi_json(Shared(state): Shared<Arc<State>>) -> Response {
    let body = openapi::document_bytes(state.config.caller_token.is_some());
    super::reply::json_response(StatusCode::OK, "ok", body)
}
