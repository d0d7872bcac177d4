//! What one client may hold of the server: bytes, headers, connections, time.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::reply::error_json;

/// Most bytes of a request body: a stream request is well under 1 KiB (SPEC §3
/// bounds the key to 1 KiB); larger is answered 413 unread.
pub const MAX_BODY: usize = 16 * 1024;
/// Most header lines of a request (hyper refuses more with 431).
pub const MAX_HEADERS: usize = 64;
/// Most bytes of a request's head, request line and headers (hyper's buffer; its
/// smallest allowed value is 8 KiB).
pub const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; beyond them new connections wait in the kernel's
/// accept queue until one closes.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time for a client to send a request's head (slowloris): the connection is closed.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a client to send a request's body once its head arrived: 408.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole body, or the answer that refuses it: 413 when it is (or says it is)
/// larger than [`MAX_BODY`], 408 when it does not arrive within [`BODY_TIMEOUT`], 400
/// when the connection breaks first.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err(error_json(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            &format!(
                "the request body did not arrive within {} seconds",
                BODY_TIMEOUT.as_secs()
            ),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
        Ok(Err(_)) => Err(error_json(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request: the request body could not be read",
        )),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn too_large() -> Response {
    error_json(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("the request body is larger than {MAX_BODY} bytes"),
    )
}
