//! `keyctl serve` (SPEC §7): verification over HTTP, asserted through what a client
//! sees (status, headers, body, through curl too) and what the store holds.

use std::process::Command;

use serde_json::Value;

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

#[test]
fn serve_answers_verify_and_healthz_on_the_address_it_prints() {
    let env = TestEnv::initialized();
    let key = env.create("web", &[]);
    let server = env.serve(&[]);
    let health = server.get("/healthz", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["code"], "ok");

    let ok = server.verify(&format!(r#"{{"key": "{}"}}"#, key.secret));
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

    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    // Both verifications were recorded.
    assert_eq!(env.logs_json(&[]).len(), 2);
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
    let v = server.verify(&format!(r#"{{"key": "{}"}}"#, key.secret));
    assert_eq!(v.status, 200, "{}", v.text());
    assert_eq!(server.get("/healthz", &[]).status, 200);
    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    assert!(!socket.exists(), "the socket file is removed at exit");
}

#[test]
fn listening_beyond_loopback_without_a_caller_token_is_refused() {
    let env = TestEnv::initialized();
    let out = env.run(&["serve", "--listen", "0.0.0.0:0"]);
    let line = out.fails(2);
    assert!(
        line.contains("--caller-token-env") && line.contains("0.0.0.0:0"),
        "{line}"
    );
}
