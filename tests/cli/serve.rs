//! `keyctl serve` (SPEC §7): verification over HTTP, asserted through what a client
//! sees (status, headers, body; through curl too) and what the store holds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::group_commit::{sequence, state, twins, EVERY_CODE};
use crate::support::*;

/// `curl` against the server: status, headers (lower-case names) and body.
fn curl(server: &Server, args: &[&str], path: &str) -> Reply {
    let out = Command::new(require_tool("curl"))
        .args(["-sS", "-i", "--max-time", "30"])
        .args(args)
        .arg(format!("{}{path}", server.url()))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Reply::parse(&out.stdout)
}

fn key_body(secret: &str) -> String {
    json!({ "key": secret }).to_string()
}

/// The members of a json object, sorted.
fn members(v: &Value) -> Vec<String> {
    v.as_object()
        .expect("a json object")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn serve_answers_verify_and_healthz_on_the_address_it_prints() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    let health = server.get("/healthz", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["code"], "ok");

    let ok = server.verify(&key_body(&key.secret));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    let v = ok.json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["code"], "valid");
    assert_eq!(v["key_id"], Value::from(key.id()));

    let through_curl = curl(
        &server,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"key": "sk_nope"}"#,
        ],
        "/v1/verify",
    );
    assert_eq!(through_curl.status, 401);
    assert_eq!(through_curl.json()["code"], "invalid");
    let health = curl(&server, &[], "/healthz");
    assert_eq!(health.status, 200);

    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    assert!(!stopped.stderr.contains(&key.secret), "{}", stopped.stderr);
    // Both verifications were recorded.
    assert_eq!(env.logs_json(&[]).len(), 2);
}

#[test]
fn v1_verify_answers_every_verdict_with_the_stream_bytes_and_status() {
    let env = TestEnv::initialized();
    let plain = env.create("plain", &[]);
    let scoped = env.create("scoped", &["--scope", "read"]);
    let gone = env.create("gone", &[]);
    env.revoke("gone");
    let rate = env.create("rate", &["--rate-limit", "1/m"]);
    let lines = [
        json!({"key": plain.secret, "ip": "203.0.113.7", "endpoint": "GET /x"}),
        json!({"key": format!("Bearer {}", plain.secret)}),
        json!({"key": scoped.secret, "scope": "write"}),
        json!({"key": gone.secret}),
        json!({"key": "sk_live_nothing"}),
        json!({"key": rate.secret}),
        json!({"key": rate.secret}),
    ];
    let server = env.serve(&[]);
    let mut served = Vec::new();
    for line in &lines {
        let r = server.verify(&line.to_string());
        let v = r.json();
        assert_eq!(u64::from(r.status), v["status"].as_u64().unwrap(), "{v}");
        served.push(r.text());
    }
    let codes: Vec<Value> = served
        .iter()
        .map(|t| serde_json::from_str::<Value>(t).unwrap()["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            "valid",
            "valid",
            "forbidden_scope",
            "revoked",
            "invalid",
            "valid",
            "rate_limited"
        ]
    );
    assert_eq!(env.logs_json(&[]).len(), lines.len(), "one log row each");
    drop(server);
    // Checked only (nothing recorded), serve and the stream answer the same bytes.
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = env.run_with_stdin(&["verify", "--stream", "--no-record"], input.as_bytes());
    let streamed: Vec<String> = out
        .ok()
        .stdout_lines()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let server = env.serve(&["--no-record"]);
    let checked: Vec<String> = lines
        .iter()
        .map(|l| server.verify(&l.to_string()).text())
        .collect();
    assert_eq!(streamed, checked);
    assert_eq!(
        env.logs_json(&[]).len(),
        lines.len(),
        "--no-record logs nothing"
    );
}

#[test]
fn malformed_and_oversize_requests_are_json_errors_never_a_crash() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    let bad: [&[u8]; 8] = [
        b"not json",
        b"",
        b"{}",
        br#"{"key": 5}"#,
        br#"{"key": "x", "ip": "nope"}"#,
        br#"{"key": "x", "cost": -1}"#,
        b"\xff\xfe{\"key\"",
        b"[1, 2, 3]",
    ];
    for body in bad {
        let r = server.request("POST", "/v1/verify", &[], body);
        assert_eq!(
            r.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        let v = r.json();
        assert_eq!(v["code"], "bad_request");
        assert_eq!(v["status"], 400);
        assert!(
            v["message"].as_str().unwrap().starts_with("Bad request: "),
            "{v}"
        );
    }
    // A secret in a bad request is not echoed.
    let r = server.verify(&json!({"key": key.secret, "ip": key.secret}).to_string());
    assert_eq!(r.status, 400);
    assert!(!r.text().contains(&key.secret), "{}", r.text());

    // Over 16 KiB: 413, whether the length is declared or the body is chunked.
    let big = format!(
        r#"{{"key": "{}", "pad": "{}"}}"#,
        key.secret,
        "x".repeat(17_000)
    );
    let r = server.verify(&big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "payload_too_large");
    let mut conn = server.connect();
    let head = request_head("POST", "/v1/verify", &[("Transfer-Encoding", "chunked")], 0);
    conn.write_all(head.as_bytes()).unwrap();
    for _ in 0..20 {
        conn.write_all(format!("400\r\n{}\r\n", "y".repeat(0x400)).as_bytes())
            .unwrap();
    }
    conn.write_all(b"0\r\n\r\n").unwrap();
    let r = conn.reply();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "payload_too_large");
    let file = env.root().join("big.json");
    std::fs::write(&file, &big).unwrap();
    let r = curl(
        &server,
        &[
            "-X",
            "POST",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        "/v1/verify",
    );
    assert_eq!(r.status, 413);

    // More than 64 headers: refused before any handler (431).
    let many: Vec<(String, String)> = (0..70).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let r = server.request("GET", "/healthz", &many, b"");
    assert_eq!(r.status, 431);

    // Unknown routes and wrong methods: json, through curl too.
    let r = curl(&server, &[], "/nowhere/sk_live_secretish");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "not_found");
    assert!(!r.text().contains("secretish"));
    let r = curl(&server, &["-X", "GET"], "/v1/verify");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["code"], "method_not_allowed");
    let r = curl(&server, &["-X", "POST"], "/auth");
    assert_eq!(r.status, 405);

    // Still serving; nothing above was a verification.
    assert_eq!(server.get("/healthz", &[]).status, 200);
    assert_eq!(env.logs_json(&[]).len(), 0);
    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0));
    assert!(!stopped.stderr.contains(&key.secret), "{}", stopped.stderr);
}

#[test]
fn a_caller_token_is_required_on_v1_and_a_refusal_is_not_a_verification() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let token = "caller-token-0123456789";
    let server = env.serve_exactly(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--caller-token-env",
            "SERVE_TOKEN",
        ],
        |c| {
            c.env("SERVE_TOKEN", token);
        },
    );
    let Addr::Tcp(addr) = &server.addr else {
        panic!("a TCP server")
    };
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    let body = key_body(&key.secret);
    let none = server.verify(&body);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(none.json()["code"], "unauthorized");
    let wrong = server.request(
        "POST",
        "/v1/verify",
        &[("Authorization", "Bearer caller-token-0123456788")],
        body.as_bytes(),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(members(&wrong.json()), ["code", "message"]);
    let r = curl(
        &server,
        &[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer wrong",
            "--data",
            &body,
        ],
        "/v1/verify",
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        env.logs_json(&[]).len(),
        0,
        "a refused caller verifies nothing"
    );
    let right = curl(
        &server,
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "--data",
            &body,
        ],
        "/v1/verify",
    );
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(right.json()["code"], "valid");
    assert_eq!(env.logs_json(&[]).len(), 1);
    // /auth is for proxies: a loopback peer asks without the caller token.
    let r = server.get("/auth", &[("X-API-Key", &key.secret)]);
    assert_eq!(r.status, 204);
    let stopped = server.terminate();
    assert!(!stopped.stderr.contains(token), "{}", stopped.stderr);
}

#[test]
fn serve_refuses_what_it_cannot_do_safely_in_one_line() {
    let env = TestEnv::initialized();
    let line = env
        .run(&["serve", "--listen", "0.0.0.0:0"])
        .fails(2)
        .to_string();
    assert!(
        line.contains("--caller-token-env") && line.contains("0.0.0.0:0"),
        "{line}"
    );
    let line = env
        .run(&["serve", "--caller-token-env", "NOT_SET_HERE"])
        .fails(2)
        .to_string();
    assert!(line.contains("NOT_SET_HERE"), "{line}");
    let line = env
        .run(&["serve", "--listen", "localhost"])
        .fails(2)
        .to_string();
    assert!(line.contains("--listen"), "{line}");
    let line = env
        .run(&["serve", "--trust-proxy", "10.0.0.0/33"])
        .fails(2)
        .to_string();
    assert!(line.contains("--trust-proxy"), "{line}");
    // A port taken already: a runtime error, exit 1.
    let first = env.serve(&[]);
    let Addr::Tcp(addr) = &first.addr else {
        panic!("a TCP server")
    };
    let line = env.run(&["serve", "--listen", addr]).fails(1).to_string();
    assert!(line.contains("cannot listen on"), "{line}");
}

#[test]
fn a_unix_socket_serves_the_same_routes_and_is_owner_and_group_only() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let socket = env.root().join("keyctl.sock");
    let socket_arg = socket.to_str().expect("utf-8 path");
    let server = env.serve_exactly(&["serve", "--socket", socket_arg], |_| {});
    assert!(matches!(&server.addr, Addr::Unix(p) if *p == socket));
    assert_eq!(mode(&socket) & 0o777, 0o660);
    let v = server.verify(&key_body(&key.secret));
    assert_eq!(v.status, 200, "{}", v.text());
    assert_eq!(server.get("/healthz", &[]).status, 200);
    let out = Command::new(require_tool("curl"))
        .args(["-sS", "--unix-socket", socket_arg, "http://keyctl/healthz"])
        .output()
        .expect("run curl");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["code"],
        "ok"
    );
    // A second server on the same live socket is refused.
    let line = env
        .run(&["serve", "--socket", socket_arg])
        .fails(1)
        .to_string();
    assert!(line.contains("listening there already"), "{line}");
    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    assert!(!socket.exists(), "the socket file is removed at exit");
}

#[test]
fn auth_answers_only_204_401_403_with_the_documented_headers() {
    let env = TestEnv::initialized();
    let web = env.create("web", &["--scope", "read", "--quota-daily", "5"]);
    let rate = env.create("rate", &["--rate-limit", "1/m"]);
    let gone = env.create("gone", &[]);
    env.revoke("gone");
    let server = env.serve(&[]);

    let ok = curl(
        &server,
        &[
            "-H",
            &format!("Authorization: Bearer {}", web.secret),
            "-H",
            "X-Keyctl-Scope: read",
            "-H",
            "X-Original-Method: GET",
            "-H",
            "X-Original-URI: /items/7?token=abc",
        ],
        "/auth",
    );
    assert_eq!(ok.status, 204);
    assert_eq!(ok.body, b"");
    assert_eq!(ok.header("x-keyctl-code"), Some("valid"));
    assert_eq!(ok.header("x-keyctl-key-id"), Some(web.id()));
    assert_eq!(ok.header("x-keyctl-key-name"), Some("web"));
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("4"));

    let by_header = server.get(
        "/auth",
        &[
            ("X-API-Key", &web.secret),
            ("X-Keyctl-Scope", "read"),
            ("X-Forwarded-Method", "POST"),
            ("X-Forwarded-Uri", "/orders"),
        ],
    );
    assert_eq!(by_header.status, 204);
    assert_eq!(by_header.header("x-ratelimit-remaining"), Some("3"));

    let missing = server.get("/auth", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(missing.header("x-keyctl-code"), Some("invalid"));
    assert_eq!(
        missing.json(),
        json!({"code": "invalid", "message": "Invalid API Key"})
    );

    let scope = server.get(
        "/auth",
        &[("X-API-Key", &web.secret), ("X-Keyctl-Scope", "write")],
    );
    assert_eq!(scope.status, 403);
    assert_eq!(scope.header("x-keyctl-code"), Some("forbidden_scope"));
    assert_eq!(scope.header("www-authenticate"), None);
    assert_eq!(members(&scope.json()), ["code", "message"]);

    let revoked = server.get(
        "/auth",
        &[("Authorization", &format!("Bearer {}", gone.secret))],
    );
    assert_eq!(revoked.status, 403);
    assert_eq!(revoked.header("x-keyctl-code"), Some("revoked"));

    assert_eq!(
        server.get("/auth", &[("X-API-Key", &rate.secret)]).status,
        204
    );
    let limited = server.get("/auth", &[("X-API-Key", &rate.secret)]);
    assert_eq!(limited.status, 403);
    assert_eq!(limited.header("x-keyctl-code"), Some("rate_limited"));
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(
        limited.json()["message"],
        "Rate limit exceeded: 1 per minute"
    );

    // A name that is not ASCII is percent-encoded UTF-8.
    let cafe = env.create("café", &[]);
    let r = server.get("/auth", &[("X-API-Key", &cafe.secret)]);
    assert_eq!(r.header("x-keyctl-key-name"), Some("caf%C3%A9"));

    let bad_cost = server.get(
        "/auth",
        &[("X-API-Key", &web.secret), ("X-Keyctl-Cost", "-2")],
    );
    assert_eq!(bad_cost.status, 403);
    assert_eq!(bad_cost.header("x-keyctl-code"), Some("bad_request"));

    // What was recorded: the endpoint without its query, the peer's address.
    let logs = env.logs_json(&[]);
    let endpoints: BTreeSet<String> = logs
        .iter()
        .filter_map(|r| r["endpoint"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        endpoints,
        BTreeSet::from(["GET /items/7".to_string(), "POST /orders".to_string()])
    );
    assert!(logs.iter().all(|r| r["ip"] == "127.0.0.1"), "{logs:?}");
    // Every answer was 204, 401 or 403 (bad_request included), and /metrics counted it.
    let metric = |s: &str| server.metric(s).unwrap_or(0.0);
    assert_eq!(
        metric(r#"keyctl_http_requests_total{route="/auth",status="204",code="valid"}"#),
        4.0
    );
    assert_eq!(
        metric(r#"keyctl_http_requests_total{route="/auth",status="403",code="bad_request"}"#),
        1.0
    );
}

#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    let env = TestEnv::initialized();
    let key = env.create("office", &["--allow-ip", "198.51.100.0/24"]);
    let forged = [
        ("X-API-Key", key.secret.as_str()),
        ("X-Real-IP", "198.51.100.7"),
        ("X-Forwarded-For", "198.51.100.7"),
    ];
    // Not a trusted proxy: the headers are ignored, the peer (127.0.0.1) decides.
    let untrusted = env.serve(&["--trust-proxy", "10.0.0.0/8"]);
    let r = untrusted.get("/auth", &forged);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("x-keyctl-code"), Some("ip_not_allowed"));
    drop(untrusted);

    let trusted = env.serve(&["--trust-proxy", "127.0.0.1"]);
    assert_eq!(trusted.get("/auth", &forged).status, 204);
    let xff = trusted.get(
        "/auth",
        &[
            ("X-API-Key", &key.secret),
            ("X-Forwarded-For", "203.0.113.66, 198.51.100.8, 127.0.0.1"),
        ],
    );
    assert_eq!(xff.status, 204, "the rightmost untrusted hop is the client");
    let spoofed_left = trusted.get(
        "/auth",
        &[
            ("X-API-Key", &key.secret),
            ("X-Forwarded-For", "198.51.100.9, 203.0.113.66"),
        ],
    );
    assert_eq!(spoofed_left.status, 403);
    assert_eq!(spoofed_left.header("x-keyctl-code"), Some("ip_not_allowed"));
    let garbage = trusted.get(
        "/auth",
        &[("X-API-Key", &key.secret), ("X-Real-IP", "not-an-ip")],
    );
    assert_eq!(garbage.status, 403);
    assert_eq!(garbage.header("x-keyctl-code"), Some("bad_request"));
    let ips: Vec<String> = env
        .logs_json(&[])
        .iter()
        .rev()
        .map(|r| r["ip"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        ips,
        ["127.0.0.1", "198.51.100.7", "198.51.100.8", "203.0.113.66"]
    );
}

#[test]
fn metrics_count_requests_latency_and_group_sizes_in_prometheus_text() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    for _ in 0..3 {
        assert_eq!(server.verify(&key_body(&key.secret)).status, 200);
    }
    assert_eq!(server.verify("nope").status, 400);
    let r = curl(&server, &[], "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    for line in [
        r#"keyctl_http_requests_total{route="/v1/verify",status="200",code="valid"} 3"#,
        r#"keyctl_http_requests_total{route="/v1/verify",status="400",code="bad_request"} 1"#,
        r#"keyctl_http_request_duration_seconds_bucket{route="/v1/verify",le="+Inf"} 4"#,
        r#"keyctl_http_request_duration_seconds_count{route="/v1/verify"} 4"#,
        "keyctl_group_commit_size_count 3",
        "keyctl_group_commit_size_sum 3",
        r#"keyctl_group_commit_size_bucket{le="1"} 3"#,
        "# TYPE keyctl_http_request_duration_seconds histogram",
        "keyctl_verify_pending 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // Every sample line is `name{labels} number`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = l.rsplit_once(' ').expect("a sample");
        assert!(value.parse::<f64>().is_ok(), "{l}");
    }
}

#[test]
fn sigterm_answers_the_requests_in_flight_then_exits_0() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    // One request whose body is half sent, one waiting for the store (held locked).
    let body = json!({"key": key.secret, "endpoint": "POST /half"}).to_string();
    let (first, rest) = body.split_at(10);
    let mut half = server.connect();
    let head = request_head("POST", "/v1/verify", &[], body.len());
    half.write_all(head.as_bytes()).unwrap();
    half.write_all(first.as_bytes()).unwrap();
    half.flush().unwrap();
    let lock = env.lock_store();
    let mut queued = server.connect();
    queued.send(
        "POST",
        "/v1/verify",
        &[],
        json!({"key": key.secret, "endpoint": "POST /queued"})
            .to_string()
            .as_bytes(),
    );
    // Both requests are in (this /metrics request is the third).
    wait_for("two requests in flight", || {
        server.metric("keyctl_http_requests_in_flight") == Some(3.0)
    });
    server.signal(libc::SIGTERM);
    wait_for("the listener closed", || server.try_connect().is_err());
    lock.release();
    half.write_all(rest.as_bytes()).unwrap();
    let a = half.reply();
    let b = queued.reply();
    assert_eq!(
        (a.status, b.status),
        (200, 200),
        "{} {}",
        a.text(),
        b.text()
    );
    let stopped = server.stopped();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert_eq!(stopped.stderr, "", "nothing logged");
    let endpoints: BTreeSet<String> = env
        .logs_json(&[])
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        endpoints,
        BTreeSet::from(["POST /half".to_string(), "POST /queued".to_string()])
    );
}

/// Whether `line` is a request a server queues (the others are answered 400 at once).
fn is_request(line: &str) -> bool {
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) else {
        return false;
    };
    o.get("key").is_some_and(Value::is_string)
        && o.get("ip")
            .and_then(Value::as_str)
            .is_none_or(|ip| ip.parse::<std::net::IpAddr>().is_ok())
}

/// `line` with its endpoint naming request `i`, so a log row says which request it is.
fn tagged(line: &str, i: usize) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut o)) => {
            o.insert("endpoint".into(), json!(format!("POST /r/{i}")));
            Value::Object(o).to_string()
        }
        _ => line.to_string(),
    }
}

#[test]
fn concurrent_requests_give_what_one_at_a_time_in_log_order_gives() {
    let t = twins();
    let lines: Vec<String> = sequence(&t)
        .iter()
        .enumerate()
        .map(|(i, l)| tagged(l, i))
        .collect();
    let requests = lines.iter().filter(|l| is_request(l)).count();
    // Store A, concurrently: the store is held while every request arrives, so the
    // first group waits for it and all the others queue behind, to be decided in one
    // group.
    let a = t.pipelined.serve(&[]);
    let lock = t.pipelined.lock_store();
    let answers: Vec<(usize, Reply)> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let a = &a;
                s.spawn(move || (i, a.verify(l)))
            })
            .collect();
        a.wait_pending(requests);
        lock.release();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(a.metric("keyctl_group_commit_size_count"), Some(2.0));
    assert_eq!(
        a.metric("keyctl_group_commit_size_sum"),
        Some(requests as f64)
    );
    let answers: BTreeMap<usize, Reply> = answers.into_iter().collect();
    // A's log is the order the requests were read in: replay them in it, one at a
    // time, against twin B.
    let order: Vec<usize> = t
        .pipelined
        .logs_json(&["--limit", "10000"])
        .iter()
        .rev()
        .map(|r| {
            r["endpoint"].as_str().unwrap()["POST /r/".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(order.len(), requests, "one row per request");
    let b = t.one_at_a_time.serve(&[]);
    for &i in &order {
        let replayed = b.verify(&lines[i]);
        assert_eq!(replayed.status, answers[&i].status, "request {i}");
        assert_eq!(replayed.json(), answers[&i].json(), "request {i}");
    }
    for (i, l) in lines.iter().enumerate().filter(|(_, l)| !is_request(l)) {
        assert_eq!(answers[&i].status, 400, "{l}");
        assert_eq!(b.verify(l).json(), answers[&i].json());
    }
    let codes: BTreeSet<String> = answers
        .values()
        .map(|r| r.json()["code"].as_str().unwrap().to_string())
        .collect();
    for code in EVERY_CODE {
        assert!(codes.contains(code), "no {code} in {codes:?}");
    }
    assert_eq!(
        state(&t.pipelined, &t.keys),
        state(&t.one_at_a_time, &t.keys),
        "the same counters, credits, last use and log"
    );
}

#[test]
fn a_server_killed_under_load_keeps_every_answered_request_and_whole_groups() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--credits", "1000000"]);
    let unknown = forge_secret("sk", "live", "KilledKilledKilledKilledKilled00");
    let server = env.serve(&[]);
    const CLIENTS: usize = 8;
    const ANSWERS: usize = 400;
    let stop = AtomicBool::new(false);
    // (client, n, code) of every answer received.
    let answered: Mutex<Vec<(usize, usize, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (server, stop, answered) = (&server, &stop, &answered);
            let (secret, unknown) = (&k.secret, &unknown);
            s.spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let (key, ip) = if n % 10 == 9 {
                        (unknown, format!("10.{c}.{}.{}", n / 256 % 256, n % 256))
                    } else {
                        (secret, "10.0.0.1".to_string())
                    };
                    let body = json!({"key": key, "ip": ip, "cost": 1 + n % 3,
                                      "endpoint": format!("POST /r/{c}/{n}")});
                    // Connections refused or cut once it is killed.
                    let Ok(mut conn) = server.try_connect() else {
                        return;
                    };
                    let head = request_head("POST", "/v1/verify", &[], body.to_string().len());
                    if conn.write_all(head.as_bytes()).is_err()
                        || conn.write_all(body.to_string().as_bytes()).is_err()
                    {
                        return;
                    }
                    let mut bytes = Vec::new();
                    if std::io::Read::read_to_end(&mut conn, &mut bytes).is_err()
                        || bytes.is_empty()
                    {
                        return;
                    }
                    let reply = Reply::parse(&bytes);
                    let code = reply.json()["code"].as_str().unwrap().to_string();
                    let mut all = answered.lock().unwrap();
                    all.push((c, n, code));
                    if all.len() >= ANSWERS && !stop.swap(true, Ordering::Relaxed) {
                        server.signal(libc::SIGKILL);
                    }
                }
            });
        }
    });
    let logs = env.logs_json(&["--limit", "100000"]);
    let logged: BTreeMap<String, String> = logs
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap().to_string(),
                r["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let answered = answered.into_inner().unwrap();
    assert!(answered.len() >= ANSWERS);
    for (c, n, code) in &answered {
        let want = if n % 10 == 9 { "invalid" } else { "valid" };
        assert_eq!(code, want, "answer {c}/{n}");
        assert_eq!(
            logged.get(&format!("POST /r/{c}/{n}")).map(String::as_str),
            Some(want),
            "answered request {c}/{n} has its log row"
        );
    }
    // Counters and credits agree with the log: every group whole or not at all.
    let mut credits = 0;
    let mut valid = 0;
    for (endpoint, code) in &logged {
        if code == "valid" {
            let n: usize = endpoint.rsplit('/').next().unwrap().parse().unwrap();
            credits += 1 + n % 3;
            valid += 1;
        }
    }
    let shown = env.run(&["show", "--json", "svc"]).ok().json();
    assert_eq!(shown["credits_used"], json!(credits), "{shown}");
    assert_eq!(
        shown["usage"]["last_24h"]["accepted"],
        json!(valid),
        "{shown}"
    );
}

#[test]
fn servers_sharing_a_store_count_shared_limits_exactly() {
    let env = TestEnv::initialized();
    let quota = env.create("quota", &["--quota-total", "40"]);
    let credits = env.create("credits", &["--credits", "90"]);
    let servers = [env.serve(&[]), env.serve(&[])];
    const CLIENTS_PER_SERVER: usize = 4;
    const EACH: usize = 15;
    let codes: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for server in &servers {
            for _ in 0..CLIENTS_PER_SERVER {
                let (codes, quota, credits) = (&codes, &quota.secret, &credits.secret);
                s.spawn(move || {
                    for _ in 0..EACH {
                        let q = server.verify(&key_body(quota)).json();
                        let c = server
                            .verify(&json!({"key": credits, "cost": 3}).to_string())
                            .json();
                        let mut all = codes.lock().unwrap();
                        all.push(("quota".into(), q["code"].as_str().unwrap().into()));
                        all.push(("credits".into(), c["code"].as_str().unwrap().into()));
                    }
                });
            }
        }
    });
    let codes = codes.into_inner().unwrap();
    let count = |key: &str, code: &str| codes.iter().filter(|(k, c)| k == key && c == code).count();
    let total = 2 * CLIENTS_PER_SERVER * EACH;
    assert_eq!(count("quota", "valid"), 40);
    assert_eq!(count("quota", "quota_exceeded"), total - 40);
    assert_eq!(count("credits", "valid"), 30);
    assert_eq!(count("credits", "credits_exhausted"), total - 30);
    let shown = env.key_json("credits");
    assert_eq!(shown["credits_used"], json!(90), "{shown}");
    let shown = env.run(&["show", "--json", "quota"]).ok().json();
    assert_eq!(shown["usage"]["last_24h"]["accepted"], json!(40), "{shown}");
    assert_eq!(env.logs_json(&["--limit", "10000"]).len(), 2 * total);
}

#[test]
fn a_client_that_stalls_is_cut_off_while_others_are_served() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    // A head that never ends (slowloris), and a body that never comes.
    let mut head = server.connect();
    head.write_all(b"GET /healthz HTTP/1.1\r\nHost: keyctl.test\r\n")
        .unwrap();
    let mut body = server.connect();
    let line = key_body(&key.secret);
    body.write_all(request_head("POST", "/v1/verify", &[], line.len()).as_bytes())
        .unwrap();
    body.write_all(&line.as_bytes()[..5]).unwrap();
    // Meanwhile everyone else is served.
    assert_eq!(server.verify(&line).status, 200);
    // The stalled head: the connection is closed (with at most a 408, never a handler's
    // answer); the stalled body: 408 json. Both after the server's own time limits.
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut head, &mut rest);
    if !rest.is_empty() {
        assert_eq!(Reply::parse(&rest).status, 408);
    }
    let r = body.reply();
    assert_eq!(r.status, 408);
    assert_eq!(r.json()["code"], "request_timeout");
    assert_eq!(
        env.logs_json(&[]).len(),
        1,
        "only the whole request was verified"
    );
    // SIGINT stops it as SIGTERM does.
    server.signal(libc::SIGINT);
    assert_eq!(server.stopped().status.code(), Some(0));
}
