//! `POST /v2/keys.verifyKey` and `GET /openapi.json` of `keyctl serve` (SPEC §7), over
//! plain HTTP: what Unkey's own SDK does not exercise (raw malformed bodies, sizes,
//! methods, proxies, the document as configured). The SDK itself runs in
//! `serve_clients.rs`.

use serde_json::{json, Value};

use crate::serve_clients::{serve_with_token, TOKEN};
use crate::support::*;

const PATH: &str = "/v2/keys.verifyKey";

fn post(server: &Server, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    server.request("POST", PATH, headers, body)
}

/// The members Unkey's SDK requires of an error answer, and its request id.
fn assert_unkey_error(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert!(
        v["meta"]["requestId"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_")),
        "{v}"
    );
    let e = &v["error"];
    assert_eq!(e["status"], status, "{v}");
    for member in ["title", "detail", "type"] {
        assert!(e[member].is_string(), "{member}: {v}");
    }
    assert!(v.get("data").is_none(), "{v}");
    v
}

#[test]
fn v2_answers_every_outcome_200_in_unkeys_shape_and_records_it() {
    let env = TestEnv::initialized();
    let key = env.create(
        "orders",
        &["--credits", "10", "--scope", "docs.read", "--group", "pro"],
    );
    let disabled = env.create("paused", &[]);
    env.disable(disabled.id());
    let server = env.serve(&[]);

    let r = post(
        &server,
        &[("Content-Type", "application/json")],
        json!({"key": key.secret, "credits": {"cost": 4}, "permissions": "docs.read"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["data"],
        json!({
            "valid": true, "code": "VALID", "keyId": key.id(), "name": "orders",
            "meta": {"owner": ACTOR, "group": "pro", "livemode": true},
            "credits": 6, "enabled": true, "permissions": ["docs.read"],
            "keyctlCode": "valid", "keyctlMessage": "OK",
        })
    );
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let r = post(
                &server,
                &[],
                json!({"key": key.secret}).to_string().as_bytes(),
            );
            r.json()["meta"]["requestId"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");

    for (body, code, keyctl) in [
        (json!({"key": disabled.secret}), "DISABLED", "inactive"),
        (json!({"key": "sk_live_nothing"}), "NOT_FOUND", "invalid"),
        (
            json!({"key": key.secret, "permissions": "docs.write"}),
            "INSUFFICIENT_PERMISSIONS",
            "forbidden_scope",
        ),
        (
            json!({"key": key.secret, "credits": {"cost": 100}}),
            "USAGE_EXCEEDED",
            "credits_exhausted",
        ),
    ] {
        let r = post(&server, &[], body.to_string().as_bytes());
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        let d = &r.json()["data"];
        assert_eq!(
            (&d["valid"], &d["code"], &d["keyctlCode"]),
            (&json!(false), &json!(code), &json!(keyctl)),
            "{body}: {d}"
        );
    }
    let disabled_answer = post(
        &server,
        &[],
        json!({"key": disabled.secret}).to_string().as_bytes(),
    );
    assert_eq!(disabled_answer.json()["data"]["enabled"], false);

    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    assert!(!stopped.stderr.contains(&key.secret));
    // Each verification recorded under the route's endpoint, with its credits.
    let logs = env.logs_json(&[]);
    assert_eq!(logs.len(), 9, "{logs:?}");
    assert!(logs
        .iter()
        .all(|l| l["endpoint"] == "POST /v2/keys.verifyKey"));
    assert_eq!(env.key_json(key.id())["credits_used"], 7);
}

#[test]
fn malformed_v2_requests_are_400_in_unkeys_shape_and_decide_nothing() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    let k = key.secret.as_str();
    for (body, location) in [
        ("not json".to_string(), "body"),
        (String::new(), "body"),
        ("[1]".into(), "body"),
        ("{}".into(), "body.key"),
        (json!({"key": 5}).to_string(), "body.key"),
        (json!({"key": ""}).to_string(), "body.key"),
        (
            json!({"key": k, "credits": {"cost": -1}}).to_string(),
            "body.credits.cost",
        ),
        (
            json!({"key": k, "credits": {"cost": 1.5}}).to_string(),
            "body.credits.cost",
        ),
        (json!({"key": k, "credits": 2}).to_string(), "body.credits"),
        (
            json!({"key": k, "permissions": "a OR b"}).to_string(),
            "body.permissions",
        ),
        (
            json!({"key": k, "ratelimits": [{"name": "r"}]}).to_string(),
            "body.ratelimits",
        ),
        (
            json!({"key": k, "apiId": "api_1"}).to_string(),
            "body.apiId",
        ),
        ("{\"key\": \"\u{0}\u{ff}".into(), "body"),
    ] {
        let r = post(&server, &[], body.as_bytes());
        let v = assert_unkey_error(&r, 400);
        assert_eq!(v["error"]["title"], "Bad Request");
        let errors = v["error"]["errors"].as_array().expect("errors listed");
        assert_eq!(errors[0]["location"], location, "{body}: {v}");
        assert!(errors[0]["fix"].is_string());
        // Never the secret, whatever member it was in.
        assert!(!r.text().contains(k), "{}", r.text());
    }
    // Too large: 413 in the same shape.
    let big = json!({"key": k, "tags": ["x".repeat(17_000)]}).to_string();
    assert_unkey_error(&post(&server, &[], big.as_bytes()), 413);
    // Other methods: 405 with Allow.
    let r = server.get(PATH, &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(server.get("/healthz", &[]).status, 200);
    assert_eq!(env.logs_json(&[]).len(), 0, "nothing was a verification");
}

#[test]
fn v2_requires_the_caller_token_where_unkeys_root_key_goes() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let token = TOKEN;
    let server = serve_with_token(&env);
    let body = json!({"key": key.secret}).to_string();
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token")],
        vec![("Authorization", token)],
        vec![("X-API-Key", token)],
    ] {
        let r = post(&server, &headers, body.as_bytes());
        assert_unkey_error(&r, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert!(!r.text().contains(token));
    }
    let bearer = format!("Bearer {token}");
    let r = post(&server, &[("Authorization", &bearer)], body.as_bytes());
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["code"], "VALID");

    // The document says so: bearer security and the 401, only when configured.
    let doc = server.get("/openapi.json", &[]).json();
    assert_eq!(
        doc["paths"][PATH]["post"]["security"],
        json!([{"callerToken": []}])
    );
    assert!(doc["paths"][PATH]["post"]["responses"]["401"].is_object());
    let stopped = server.terminate();
    assert!(!stopped.stderr.contains(token), "{}", stopped.stderr);
    assert_eq!(
        env.logs_json(&[]).len(),
        1,
        "refusals are not verifications"
    );
}

#[test]
fn v2_checks_ip_allowlists_against_the_caller_and_trusts_only_its_proxies() {
    let env = TestEnv::initialized();
    let key = env.create("office", &["--allow-ip", "198.51.100.0/24"]);
    let body = json!({"key": key.secret}).to_string();
    let forged = [
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Real-IP", "198.51.100.7"),
    ];

    // Not a trusted proxy: the forged headers are ignored, the peer (127.0.0.1) is
    // checked, and it is not allowed.
    let server = env.serve(&[]);
    let r = post(&server, &forged, body.as_bytes());
    let d = &r.json()["data"];
    assert_eq!(
        (&d["code"], &d["keyctlCode"]),
        (&json!("FORBIDDEN"), &json!("ip_not_allowed")),
        "{d}"
    );
    server.terminate();

    // Loopback as a trusted proxy: the address it reports is the caller's.
    let server = env.serve(&["--trust-proxy", "127.0.0.0/8"]);
    let r = post(&server, &forged, body.as_bytes());
    assert_eq!(r.json()["data"]["code"], "VALID", "{}", r.text());
    // A proxy header that is not an address is the caller's mistake: 400.
    let r = post(&server, &[("X-Real-IP", "not-an-ip")], body.as_bytes());
    assert_unkey_error(&r, 400);
    server.terminate();
    let ips: Vec<Value> = env.logs_json(&[]).iter().map(|l| l["ip"].clone()).collect();
    assert_eq!(ips, [json!("198.51.100.7"), json!("127.0.0.1")]);
}

#[test]
fn the_openapi_document_describes_every_route_as_configured() {
    let env = TestEnv::initialized();
    let server = env.serve(&[]);
    let r = server.get("/openapi.json", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut routes: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "GET /auth",
            "GET /healthz",
            "GET /metrics",
            "GET /openapi.json",
            "POST /v1/verify",
            "POST /v2/keys.verifyKey",
        ]
    );
    // Without a caller token nothing asks for one.
    assert!(doc["components"].get("securitySchemes").is_none());
    assert!(doc["paths"][PATH]["post"]["responses"].get("401").is_none());
    // Every route the document names answers (none is a 404).
    for route in &routes {
        let (method, path) = route.split_once(' ').unwrap();
        let r = server.request(
            method,
            path,
            &[],
            if method == "POST" { b"{}" } else { b"" },
        );
        assert_ne!(r.status, 404, "{route}");
    }
}
