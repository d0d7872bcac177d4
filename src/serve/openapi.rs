//! `GET /openapi.json`: an OpenAPI 3.0 description of every route `keyctl serve`
//! answers (SPEC §7), with every status and body it can give, so a generic client
//! (schemathesis, a code generator) can hold the server to it. OpenAPI 3.0.3, the
//! version schemathesis and most generators handle best.
//!
//! Built with serde_json from the same constants the handlers use (bounds, codes,
//! Unkey's permission pattern), so the document cannot drift from them. With a caller
//! token configured, `/v1/verify` and `/v2/keys.verifyKey` declare bearer security and
//! their 401; without one they have neither.

use serde_json::{json, Value};

use super::unkey;
use crate::core::limits::MAX_COUNT;
use crate::core::text::MAX_TEXT;

/// The route of this document.
pub const PATH: &str = "/openapi.json";

/// Every verdict code (SPEC §3): the codes the request log knows, and the two
/// answers that decide nothing.
fn codes() -> Vec<&'static str> {
    let mut all = crate::commands::logs::CODES.to_vec();
    all.extend(["bad_request", "unavailable"]);
    all
}

/// Unkey's verification codes (SPEC §7).
const UNKEY_CODES: [&str; 8] = [
    "VALID",
    "NOT_FOUND",
    "FORBIDDEN",
    "INSUFFICIENT_PERMISSIONS",
    "USAGE_EXCEEDED",
    "RATE_LIMITED",
    "DISABLED",
    "EXPIRED",
];

/// The document, as served. `caller_token`: whether `--caller-token-env` is set.
pub fn document(caller_token: bool) -> Value {
    let guarded = |mut op: Value, unauthorized: Value| {
        if caller_token {
            op["security"] = json!([{"callerToken": []}]);
            op["responses"]["401"] = unauthorized;
        }
        op
    };
    let mut components = json!({"schemas": schemas()});
    if caller_token {
        components["securitySchemes"] = json!({
            "callerToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The token named by --caller-token-env (Unkey's root-key position)."
            }
        });
    }
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "keyctl serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Verification of keyctl API keys over HTTP (SPEC §7). Every JSON answer names its keyctl code."
        },
        "paths": {
            "/v1/verify": {"post": guarded(v1_verify(), json!({
                "description": "invalid, inactive, expired, quota_exceeded, credits_exhausted; or no caller token, or a wrong one (code unauthorized: nothing verified, nothing recorded).",
                "content": json_content(json!({"anyOf": [schema("Verdict"), schema("Error")]})),
            }))},
            "/auth": {"get": auth()},
            (unkey::PATH): {"post": guarded(v2_verify(), unkey_error(
                "No caller token, or a wrong one, in Authorization (Unkey's root-key position).",
            ))},
            "/healthz": {"get": healthz()},
            "/metrics": {"get": metrics()},
            (PATH): {"get": openapi()},
        },
        "components": components,
    });
    // Refused before any route: too many header lines or too long a head.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|ops| ops.values_mut())
        {
            op["responses"]["431"] = json!({
                "description": format!(
                    "More than {} header lines, or a head over {} bytes: refused before any route, with no body.",
                    crate::serve::limits::MAX_HEADERS,
                    crate::serve::limits::MAX_HEAD
                )
            });
        }
    }
    doc
}

/// The document as bytes, as `GET /openapi.json` sends it.
pub fn document_bytes(caller_token: bool) -> Vec<u8> {
    crate::ui::json::to_vec(&document(caller_token)).unwrap_or_default()
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// A `{code, message}` answer (serve's non-verdict answers).
fn error_response(description: &str, headers: &[(&str, bool)]) -> Value {
    let mut r = json!({"description": description, "content": json_content(schema("Error"))});
    for (name, required) in headers {
        r["headers"][*name] = json!({"required": required, "schema": {"type": "string"}});
    }
    r
}

fn unkey_error(description: &str) -> Value {
    json!({"description": description, "content": json_content(schema("UnkeyError"))})
}

fn method_not_allowed() -> Value {
    error_response("The route does not take this method.", &[("Allow", true)])
}

fn too_large() -> Value {
    error_response(
        &format!(
            "The body is larger than {} bytes.",
            crate::serve::limits::MAX_BODY
        ),
        &[],
    )
}

fn timeout() -> Value {
    error_response("The body did not arrive in time.", &[])
}

fn v1_verify() -> Value {
    let verdict = |d: &str| json!({"description": d, "content": json_content(schema("Verdict"))});
    json!({
        "operationId": "verifyV1",
        "summary": "Verify a key: a stream request (SPEC §3) in, the --json verdict out",
        "requestBody": {
            "required": true,
            "content": json_content(schema("StreamRequest")),
        },
        "responses": {
            "200": verdict("valid"),
            "400": {
                "description": "A malformed request (code bad_request), or a body that could not be read.",
                "content": json_content(json!({"anyOf": [schema("Verdict"), schema("Error")]})),
            },
            "401": verdict("invalid, inactive, expired, quota_exceeded, credits_exhausted"),
            "403": verdict("ip_blocked, revoked, ip_not_allowed, forbidden_deployment, forbidden_scope, forbidden_model"),
            "405": method_not_allowed(),
            "408": timeout(),
            "413": too_large(),
            "429": verdict("rate_limited"),
            "503": verdict("unavailable: the key store cannot answer; nothing was decided or recorded"),
        }
    })
}

fn auth() -> Value {
    let header = |name: &str, description: &str| {
        json!({"name": name, "in": "header", "required": false,
               "description": description, "schema": {"type": "string"}})
    };
    let code = json!({"required": true, "description": "The keyctl code of the answer.",
                      "schema": {"type": "string"}});
    let optional =
        |d: &str| json!({"required": false, "description": d, "schema": {"type": "string"}});
    json!({
        "operationId": "forwardAuth",
        "summary": "Forward authentication for nginx auth_request, Traefik ForwardAuth and Caddy forward_auth: only 204, 401 and 403",
        "parameters": [
            header("Authorization", "Bearer KEY: the presented key."),
            header("X-API-Key", "The presented key, when Authorization has none."),
            header("X-Real-IP", "The client address (believed only from a --trust-proxy peer)."),
            header("X-Forwarded-For", "The client address chain (believed only from a --trust-proxy peer)."),
            header("X-Original-Method", "The method of the request being authorized."),
            header("X-Original-URI", "The URI of the request being authorized."),
            header("X-Forwarded-Method", "As X-Original-Method (Traefik, Caddy)."),
            header("X-Forwarded-Uri", "As X-Original-URI (Traefik, Caddy)."),
            header("X-Keyctl-Scope", "The scope the request needs."),
            header("X-Keyctl-Deployment", "The deployment the request is for."),
            header("X-Keyctl-Model", "The model the request is for."),
            header("X-Keyctl-Cost", "Credits the request costs (a whole number)."),
        ],
        "responses": {
            "204": {
                "description": "The key is valid; the request was recorded.",
                "headers": {
                    "X-Keyctl-Code": code,
                    "X-Keyctl-Key-Id": optional("The key's id."),
                    "X-Keyctl-Key-Name": optional("The key's name (percent-encoded beyond printable ASCII)."),
                    "X-RateLimit-Remaining": optional("The least of the key's remaining quotas, where it has one."),
                }
            },
            "401": {
                "description": "A missing or invalid key.",
                "headers": {
                    "X-Keyctl-Code": code,
                    "WWW-Authenticate": {"required": true, "schema": {"type": "string"}},
                },
                "content": json_content(schema("Error")),
            },
            "403": {
                "description": "Every other refusal, a malformed header (bad_request), a store that cannot answer (unavailable: fail closed), or a peer that is neither loopback nor in --trust-proxy.",
                "headers": {
                    "X-Keyctl-Code": code,
                    "X-Keyctl-Key-Id": optional("The key's id, when one was found."),
                    "X-Keyctl-Key-Name": optional("The key's name, when one was found."),
                    "X-RateLimit-Remaining": optional("The least of the key's remaining quotas, where it has one."),
                    "Retry-After": optional("Seconds until the rate-limit window ends (code rate_limited)."),
                },
                "content": json_content(schema("Error")),
            },
            "405": method_not_allowed(),
        }
    })
}

fn v2_verify() -> Value {
    json!({
        "operationId": "keys.verifyKey",
        "summary": "Unkey's verify API: every verification outcome is a 200 with data.valid and data.code",
        "requestBody": {
            "required": true,
            "content": json_content(schema("V2KeysVerifyKeyRequestBody")),
        },
        "responses": {
            "200": {
                "description": "The verification outcome (valid or not).",
                "content": json_content(schema("V2KeysVerifyKeyResponseBody")),
            },
            "400": unkey_error("A malformed request, in Unkey's error shape."),
            "405": method_not_allowed(),
            "408": unkey_error("The body did not arrive in time."),
            "413": unkey_error("The body is too large."),
            "503": unkey_error("The key store cannot answer; nothing was decided or recorded."),
        }
    })
}

fn healthz() -> Value {
    json!({
        "operationId": "healthz",
        "summary": "Whether the key store answers",
        "responses": {
            "200": {"description": "The store answers (code ok).", "content": json_content(schema("Error"))},
            "405": method_not_allowed(),
            "503": {"description": "The store does not answer (code unavailable).", "content": json_content(schema("Error"))},
        }
    })
}

fn metrics() -> Value {
    json!({
        "operationId": "metrics",
        "summary": "Prometheus text format: requests by route, status and code; latency; group-commit sizes",
        "responses": {
            "200": {
                "description": "The metrics.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "405": method_not_allowed(),
        }
    })
}

fn openapi() -> Value {
    json!({
        "operationId": "openapi",
        "summary": "This document",
        "responses": {
            "200": {
                "description": "The OpenAPI 3.0 description of every route.",
                "content": json_content(json!({"type": "object"})),
            },
            "405": method_not_allowed(),
        }
    })
}

/// A regular expression for text without the characters keyctl refuses in free text
/// (`core::text::is_hidden`): one negated class listing them as literal characters,
/// derived from the same predicate the server applies. Only those of the Basic
/// Multilingual Plane: schemathesis cannot generate from a class that names
/// characters beyond it, so the ~100 astral format characters (tags, musical
/// formatting) are refused by the server without being named here.
fn visible_text_pattern() -> String {
    let mut class = String::from("^[^");
    let mut run: Option<(char, char)> = None;
    let close = |class: &mut String, (lo, hi): (char, char)| {
        class.push(lo);
        if hi != lo {
            class.push('-');
            class.push(hi);
        }
    };
    for c in (0..=0xFFFFu32).filter_map(char::from_u32) {
        if !crate::core::text::is_hidden(c) {
            continue;
        }
        run = match run {
            Some((lo, hi)) if u32::from(hi) + 1 == u32::from(c) => Some((lo, c)),
            Some(done) => {
                close(&mut class, done);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some(done) = run {
        close(&mut class, done);
    }
    class.push_str("]*$");
    class
}

fn schemas() -> Value {
    let count = json!({"type": "integer", "minimum": 0, "maximum": MAX_COUNT});
    let nullable_count =
        json!({"type": "integer", "minimum": 0, "maximum": MAX_COUNT, "nullable": true});
    // keyctl's free text (SPEC §5): no control, format or separator characters.
    let text = json!({"type": "string", "nullable": true, "maxLength": MAX_TEXT,
                      "pattern": visible_text_pattern()});
    json!({
        "StreamRequest": {
            "type": "object",
            "description": "A verify --stream request line (SPEC §3); only key is required; other members are ignored.",
            "required": ["key"],
            "properties": {
                "key": {"type": "string"},
                "ip": {
                    "description": "An IPv4 or IPv6 address.",
                    "anyOf": [
                        {"type": "string", "format": "ipv4", "nullable": true},
                        {"type": "string", "format": "ipv6"},
                    ]
                },
                "scope": text,
                "deployment": text,
                "model": text,
                "endpoint": text,
                "cost": {"anyOf": [nullable_count, {"type": "string", "pattern": "^[0-9]{1,15}$"}]},
                "duration_ms": {"anyOf": [nullable_count, {"type": "string", "pattern": "^[0-9]{1,15}$"}]},
            }
        },
        "Verdict": {
            "type": "object",
            "additionalProperties": false,
            "required": ["valid", "code", "status", "message", "key_id", "key_name",
                         "credits_remaining", "quota_remaining", "meta"],
            "properties": {
                "valid": {"type": "boolean"},
                "code": {"type": "string", "enum": codes()},
                "status": {"type": "integer", "enum": [200, 400, 401, 403, 429, 503]},
                "message": {"type": "string"},
                "key_id": {"type": "string", "nullable": true},
                "key_name": {"type": "string", "nullable": true},
                "credits_remaining": nullable_count,
                "quota_remaining": {
                    "type": "object",
                    "nullable": true,
                    "additionalProperties": false,
                    "required": ["total", "daily", "weekly", "monthly"],
                    "properties": {
                        "total": nullable_count,
                        "daily": nullable_count,
                        "weekly": nullable_count,
                        "monthly": nullable_count,
                    }
                },
                "meta": {
                    "type": "object",
                    "nullable": true,
                    "description": "The key's metadata (keyctl create/edit --meta): {} when it has none; null when no key is named.",
                    "additionalProperties": {"type": "string"},
                },
            }
        },
        "Error": {
            "type": "object",
            "description": "An answer that is not a verdict: its keyctl code and a message.",
            "additionalProperties": false,
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
            }
        },
        "V2KeysVerifyKeyRequestBody": {
            "type": "object",
            "description": "Unkey's verify request. keyctl takes key, tags (ignored), permissions (one permission name: one keyctl scope) and credits; Unkey's ratelimits and migrationId are refused.",
            "additionalProperties": false,
            "required": ["key"],
            "properties": {
                "key": {"type": "string", "minLength": 1},
                "tags": {"type": "array", "items": {"type": "string"}},
                "permissions": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": unkey::PERMISSION_MAX,
                    "pattern": unkey::PERMISSION_PATTERN,
                },
                "credits": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["cost"],
                    "properties": {"cost": count},
                },
            }
        },
        "UnkeyMeta": {
            "type": "object",
            "required": ["requestId"],
            "additionalProperties": false,
            "properties": {"requestId": {"type": "string"}},
        },
        "V2KeysVerifyKeyResponseBody": {
            "type": "object",
            "additionalProperties": false,
            "required": ["meta", "data"],
            "properties": {
                "meta": schema("UnkeyMeta"),
                "data": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["valid", "code", "keyctlCode", "keyctlMessage"],
                    "properties": {
                        "valid": {"type": "boolean"},
                        "code": {"type": "string", "enum": UNKEY_CODES},
                        "keyId": {"type": "string"},
                        "name": {"type": "string"},
                        "meta": {
                            "type": "object",
                            "description": "owner, category, group, livemode, and the key's metadata entries (keyctl --meta); a field above wins over an entry of the same name.",
                        },
                        "expires": {"type": "integer", "description": "Unix milliseconds."},
                        "credits": count,
                        "enabled": {"type": "boolean"},
                        "permissions": {"type": "array", "items": {"type": "string"}},
                        "keyctlCode": {"type": "string", "enum": codes()},
                        "keyctlMessage": {"type": "string"},
                    }
                }
            }
        },
        "UnkeyError": {
            "type": "object",
            "additionalProperties": false,
            "required": ["meta", "error"],
            "properties": {
                "meta": schema("UnkeyMeta"),
                "error": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["title", "detail", "status", "type"],
                    "properties": {
                        "title": {"type": "string"},
                        "detail": {"type": "string"},
                        "status": {"type": "integer"},
                        "type": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["location", "message"],
                                "properties": {
                                    "location": {"type": "string"},
                                    "message": {"type": "string"},
                                    "fix": {"type": "string"},
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes the router serves, read from its source: each `.route("PATH",
    /// METHOD(...))` line, as (path, method). A path given by a constant is resolved
    /// by name.
    fn routed() -> Vec<(String, String)> {
        let source = include_str!("routes.rs");
        let mut routes = Vec::new();
        for line in source.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix(".route(") else {
                continue;
            };
            let (path, handler) = rest
                .split_once(',')
                .expect("a route line has a path and a handler");
            let path = match path.trim() {
                p if p.starts_with('"') => p.trim_matches('"').to_string(),
                "unkey::PATH" => unkey::PATH.to_string(),
                "openapi::PATH" => PATH.to_string(),
                other => panic!("unknown route path constant {other}"),
            };
            let method = handler
                .trim()
                .split('(')
                .next()
                .unwrap_or_default()
                .to_string();
            routes.push((path, method));
        }
        routes
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_router_serves() {
        let routes = routed();
        assert!(routes.len() >= 6, "{routes:?}");
        for caller_token in [false, true] {
            let doc = document(caller_token);
            let paths = doc["paths"].as_object().unwrap();
            let mut documented: Vec<(String, String)> = paths
                .iter()
                .flat_map(|(p, ops)| {
                    ops.as_object()
                        .unwrap()
                        .keys()
                        .map(move |m| (p.clone(), m.clone()))
                })
                .collect();
            documented.sort();
            let mut served = routes.clone();
            served.sort();
            assert_eq!(documented, served);
        }
    }

    #[test]
    fn every_reference_resolves_and_every_operation_has_its_statuses() {
        let doc = document(true);
        let text = serde_json::to_string(&doc).unwrap();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("405"), "{method} {path}");
                assert!(op["operationId"].is_string());
            }
        }
        for (path, statuses) in [
            (
                "/v1/verify",
                &["200", "400", "401", "403", "413", "429", "503"][..],
            ),
            (
                "/v2/keys.verifyKey",
                &["200", "400", "401", "413", "503"][..],
            ),
            ("/auth", &["204", "401", "403"][..]),
            ("/healthz", &["200", "503"][..]),
        ] {
            let op = doc["paths"][path]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap();
            for s in statuses {
                assert!(op["responses"][*s].is_object(), "{path} {s}");
            }
        }
    }

    #[test]
    fn security_and_its_401_only_with_a_caller_token() {
        for (token, expect) in [(false, false), (true, true)] {
            let doc = document(token);
            for path in ["/v1/verify", unkey::PATH] {
                let op = &doc["paths"][path]["post"];
                assert_eq!(op["security"].is_array(), expect, "{path}");
                assert_eq!(
                    op["responses"]["401"].is_object(),
                    expect || path == "/v1/verify"
                );
            }
            assert_eq!(doc["components"]["securitySchemes"].is_object(), expect);
            assert!(doc["paths"]["/auth"]["get"].get("security").is_none());
        }
    }

    #[test]
    fn the_served_bytes_parse_as_openapi_3() {
        let doc: Value = serde_json::from_slice(&document_bytes(false)).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_text_pattern_refuses_exactly_the_hidden_characters_of_the_bmp() {
        let pattern = visible_text_pattern();
        // Every hidden character is in the class (as itself or inside a range), and
        // every range is in order.
        let class: Vec<char> = pattern["^[^".len()..pattern.len() - "]*$".len()]
            .chars()
            .collect();
        let mut listed = Vec::new();
        let mut i = 0;
        while i < class.len() {
            if i + 2 < class.len() && class[i + 1] == '-' {
                assert!(class[i] < class[i + 2]);
                listed.push((class[i], class[i + 2]));
                i += 3;
            } else {
                listed.push((class[i], class[i]));
                i += 1;
            }
        }
        for c in (0..=0xFFFFu32).filter_map(char::from_u32) {
            let in_class = listed.iter().any(|&(lo, hi)| lo <= c && c <= hi);
            assert_eq!(
                in_class,
                crate::core::text::is_hidden(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
        assert!(listed.iter().all(|&(_, hi)| u32::from(hi) <= 0xFFFF));
    }

    #[test]
    fn every_code_is_in_the_enums() {
        use crate::core::policy::Outcome;
        let all = [
            Outcome::IpBlocked,
            Outcome::Invalid,
            Outcome::Revoked,
            Outcome::Inactive,
            Outcome::Expired,
            Outcome::IpNotAllowed,
            Outcome::ForbiddenDeployment,
            Outcome::ForbiddenScope("s".into()),
            Outcome::ForbiddenModel,
            Outcome::QuotaExceeded("total"),
            Outcome::CreditsExhausted,
            Outcome::Valid,
            Outcome::BadRequest("x".into()),
            Outcome::Unavailable,
        ];
        for o in &all {
            assert!(codes().contains(&o.code()), "{o:?}");
            if let Some(c) = unkey::unkey_code(o) {
                assert!(UNKEY_CODES.contains(&c), "{o:?}");
            }
        }
        assert!(codes().contains(&"rate_limited"));
    }
}
