//! Answers that are not verdicts: `{"code", "message"}` bodies, and the code every
//! answer carries for the metrics.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

/// The keyctl code of an answer (`valid`, `invalid`, `not_found`...), for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str);

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

/// `{"code": ..., "message": ...}` with `status`.
pub fn error_json(status: StatusCode, code: &'static str, message: &str) -> Response {
    let mut body = crate::ui::json::to_vec(&ErrorBody { code, message }).unwrap_or_default();
    body.push(b'\n');
    json_response(status, code, body)
}

/// A json body with `status`, tagged with `code`.
pub fn json_response(status: StatusCode, code: &'static str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(Code(code));
    response
}
