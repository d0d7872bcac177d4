//! The caller token of `/v1` (`--caller-token-env`), sent as `Authorization: Bearer`.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::reply::error_json;

/// None when the request may go on; else the 401 that refuses it (nothing verified,
/// nothing recorded).
pub fn check(expected: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    let expected = expected?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    if presented.is_some_and(|p| same(p, expected)) {
        return None;
    }
    let mut refused = error_json(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong caller token: send 'Authorization: Bearer TOKEN' with the token of --caller-token-env",
    );
    refused
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(refused)
}

/// Compares digests in constant time: neither the length nor the first differing
/// byte of the token shows in the time taken.
fn same(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn only_the_exact_token_passes() {
        assert!(check(None, &HeaderMap::new()).is_none());
        assert!(check(Some("t0k"), &with("Bearer t0k")).is_none());
        assert!(check(Some("t0k"), &with("bearer  t0k ")).is_none());
        assert!(check(Some("t0k"), &with("Bearer t0K")).is_some());
        assert!(check(Some("t0k"), &with("Basic t0k")).is_some());
        assert!(check(Some("t0k"), &with("t0k")).is_some());
        assert!(check(Some("t0k"), &HeaderMap::new()).is_some());
    }
}
