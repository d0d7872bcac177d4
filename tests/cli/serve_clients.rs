//! `keyctl serve` held to account by clients no one here wrote (SPEC §7):
//! schemathesis (PyPI) fuzzing every route against the server's own
//! `/openapi.json`, and Unkey's TypeScript SDK (`@unkey/api` from npm) verifying
//! keys through `/v2/keys.verifyKey`. `scripts/test.sh` installs both; a missing one
//! fails the test with what to run, never skips it. On both backends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

/// The caller token the servers here require (`--caller-token-env`), through the
/// environment only: never an argument of keyctl, schemathesis or node.
const TOKEN_VAR: &str = "KEYCTL_TEST_CALLER_TOKEN";
pub const TOKEN: &str = "caller-token-for-tests-7f3a";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool installed by `scripts/test.sh`, or a failure saying to run it.
pub(crate) fn installed(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is not installed at {}: run `bash scripts/test.sh`, which installs it and then runs every test",
        path.display()
    );
    path
}

/// `keyctl serve` on a free loopback port, requiring [`TOKEN`].
pub fn serve_with_token(env: &TestEnv) -> Server {
    env.serve_exactly(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--caller-token-env",
            TOKEN_VAR,
        ],
        |c| {
            c.env(TOKEN_VAR, TOKEN);
        },
    )
}

/// The output of a finished client, for a failure message.
fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let schemathesis = installed(
        repo().join("target/test-tools/venv/bin/schemathesis"),
        "schemathesis",
    );
    let env = TestEnv::initialized();
    // Keys of every kind, given to schemathesis as examples (below), so answers about
    // real keys, with every member, are held to the document too, not only `invalid`.
    let full = env.create(
        "full",
        &[
            "--credits",
            "100",
            "--expires",
            "30d",
            "--scope",
            "docs.read",
            "--group",
            "pro",
            "--category",
            "production",
            "--quota-daily",
            "50",
        ],
    );
    let limited = env.create("limited", &["--rate-limit", "1/m"]);
    let revoked = env.create("revoked", &[]);
    env.revoke(revoked.id());
    let disabled = env.create("disabled", &[]);
    env.disable(disabled.id());
    let server = serve_with_token(&env);
    // The token reaches schemathesis through its config file's `${VAR}`, not argv, and
    // only on the routes that take it (/auth reads the presented key from
    // Authorization).
    let config = env.root().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[[operations]]\ninclude-path-regex = \"^/v[12]/\"\nheaders = {{ Authorization = \"Bearer ${{{TOKEN_VAR}}}\" }}\n"
        ),
    )
    .expect("write schemathesis.toml");
    // The document from the server itself, handed over as a file: schemathesis leaves
    // out the operation its schema was loaded from, and /openapi.json is one to test.
    let doc = server.get("/openapi.json", &[]);
    assert_eq!(doc.status, 200);
    let mut doc = doc.json();
    let secrets = [&full, &limited, &revoked, &disabled].map(|k| k.secret.clone());
    with_examples(&mut doc, &secrets);
    let spec = env.root().join("openapi.json");
    std::fs::write(&spec, doc.to_string()).expect("write openapi.json");
    let reports = env.root().join("reports");
    let out = Command::new(&schemathesis)
        .current_dir(env.root())
        .env(TOKEN_VAR, TOKEN)
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&spec)
        .args(["--url", &server.url()])
        .args([
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--workers",
            "2",
            "--seed",
            "15",
            "--request-timeout",
            "20",
            "--report",
            "junit",
            "--report-dir",
        ])
        .arg(&reports)
        .output()
        .expect("run schemathesis");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{}",
        shown(&out)
    );
    // It really tested every route (not an empty run): one junit test case each.
    let junit: String = std::fs::read_dir(&reports)
        .expect("schemathesis wrote its report folder")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    for route in [
        "POST /v1/verify",
        "GET /auth",
        "POST /v2/keys.verifyKey",
        "GET /healthz",
        "GET /metrics",
        "GET /openapi.json",
    ] {
        assert!(
            junit.contains(&format!("<testcase name=\"{route}\"")),
            "schemathesis did not test {route}:\n{junit}\n{}",
            shown(&out)
        );
    }
    assert!(
        junit.contains(r#"failures="0""#) && junit.contains(r#"errors="0""#),
        "{junit}"
    );
    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    assert!(
        !stopped.stderr.contains(TOKEN),
        "the caller token was logged"
    );
}

/// Adds request examples naming real keys to the document (a test's copy only: the
/// served document holds no secret), for schemathesis' examples phase.
fn with_examples(doc: &mut Value, secrets: &[String]) {
    let named = |f: &dyn Fn(&String) -> Value| -> Value {
        secrets
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("key{i}"), serde_json::json!({ "value": f(s) })))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    doc["paths"]["/v1/verify"]["post"]["requestBody"]["content"]["application/json"]["examples"] =
        named(
            &|s| serde_json::json!({"key": s, "scope": "docs.read", "ip": "192.0.2.1", "cost": 2}),
        );
    doc["paths"]["/v2/keys.verifyKey"]["post"]["requestBody"]["content"]["application/json"]
        ["examples"] = named(
        &|s| serde_json::json!({"key": s, "permissions": "docs.read", "credits": {"cost": 3}, "tags": ["a=b"]}),
    );
    let auth = doc["paths"]["/auth"]["get"]["parameters"]
        .as_array_mut()
        .expect("/auth has parameters");
    for p in auth.iter_mut().filter(|p| p["name"] == "Authorization") {
        p["examples"] = named(&|s| Value::from(format!("Bearer {s}")));
    }
}

/// Runs tests/node/verify.mjs (Unkey's SDK) against `server`: one json line per case.
fn unkey_sdk(server: &Server, keys: &[(&str, &str)]) -> HashMap<String, Value> {
    let script = repo().join("tests/node/verify.mjs");
    installed(
        repo().join("tests/node/node_modules/@unkey/api/package.json"),
        "Unkey's SDK (tests/node, npm ci)",
    );
    let mut node = Command::new(require_tool("node"));
    node.arg(&script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYCTL_SERVE_URL", server.url())
        .env("KEYCTL_CALLER_TOKEN", TOKEN);
    for (var, secret) in keys {
        node.env(var, secret);
    }
    let out = node.output().expect("run node");
    assert!(
        out.status.success(),
        "the SDK script failed:\n{}",
        shown(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a json line ({e}): {l}\n{}", shown(&out)));
            (v["case"].as_str().unwrap_or_default().to_string(), v)
        })
        .collect()
}

#[test]
fn unkeys_own_sdk_verifies_keys_against_serve() {
    let env = TestEnv::initialized();
    let valid = env.create("orders", &["--credits", "10"]);
    let revoked = env.create("gone", &[]);
    env.revoke(revoked.id());
    let limited = env.create("limited", &["--rate-limit", "1/m"]);
    let scoped = env.create("docs", &["--scope", "docs.read"]);
    let server = serve_with_token(&env);
    let cases = unkey_sdk(
        &server,
        &[
            ("KEYCTL_VALID_KEY", &valid.secret),
            ("KEYCTL_REVOKED_KEY", &revoked.secret),
            ("KEYCTL_LIMITED_KEY", &limited.secret),
            ("KEYCTL_SCOPED_KEY", &scoped.secret),
        ],
    );
    let case = |name: &str| -> &Value {
        cases
            .get(name)
            .unwrap_or_else(|| panic!("the SDK script printed no {name} case: {cases:?}"))
    };

    // Every answer passed the SDK's own response validation (no error thrown).
    let v = case("valid");
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["keyId"], Value::from(valid.id()));
    assert_eq!(v["name"], "orders");
    assert_eq!(v["enabled"], true);
    // 10 credits, the request cost 2.
    assert_eq!(v["credits"], 8);
    assert!(
        v["requestId"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_")),
        "{v}"
    );

    let r = case("revoked");
    assert_eq!(
        (&r["valid"], &r["code"]),
        (&Value::from(false), &Value::from("NOT_FOUND")),
        "{r}"
    );
    assert_eq!(
        r["keyId"],
        Value::Null,
        "a revoked key is not described: {r}"
    );

    assert_eq!(case("limited_first")["code"], "VALID");
    let l = case("limited_second");
    assert_eq!(
        (&l["valid"], &l["code"]),
        (&Value::from(false), &Value::from("RATE_LIMITED")),
        "{l}"
    );
    assert_eq!(l["keyId"], Value::from(limited.id()));

    let p = case("permitted");
    assert_eq!(p["code"], "VALID", "{p}");
    assert_eq!(p["permissions"], serde_json::json!(["docs.read"]));
    let n = case("not_permitted");
    assert_eq!(
        (&n["valid"], &n["code"]),
        (
            &Value::from(false),
            &Value::from("INSUFFICIENT_PERMISSIONS")
        ),
        "{n}"
    );

    // Refusals reach the SDK as its own typed errors.
    let b = case("bad_request");
    assert_eq!(b["error"], "BadRequestErrorResponse", "{b}");
    assert_eq!(b["status"], 400);
    assert_eq!(b["locations"], serde_json::json!(["body.key"]));
    let q = case("bad_query");
    assert_eq!(q["error"], "BadRequestErrorResponse", "{q}");
    assert_eq!(q["locations"], serde_json::json!(["body.permissions"]));
    let w = case("wrong_token");
    assert_eq!(w["error"], "UnauthorizedErrorResponse", "{w}");
    assert_eq!(w["status"], 401);

    let stopped = server.terminate();
    assert_eq!(stopped.status.code(), Some(0), "stderr: {}", stopped.stderr);
    // What the SDK verified was recorded like any verification: valid, revoked, two
    // rate-limited tries, two scope checks (the refused requests decided nothing).
    // Newest first; each recorded under the route it came through.
    let logs = env.logs_json(&[]);
    let mut codes: Vec<&str> = logs.iter().filter_map(|l| l["code"].as_str()).collect();
    codes.reverse();
    assert_eq!(
        codes,
        [
            "valid",
            "revoked",
            "valid",
            "rate_limited",
            "valid",
            "forbidden_scope"
        ],
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .all(|l| l["endpoint"] == "POST /v2/keys.verifyKey"),
        "{logs:?}"
    );
    assert_eq!(env.key_json(valid.id())["credits_used"], 2);
}
