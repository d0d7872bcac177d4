//! The example clients of docs/integration.md (`examples/clients/`), run as a service
//! author would run them — Python's and Node's standard library, no packages —
//! against a real store through `verify --stream`, and against a real `keyctl serve`.
//! What they print is the verdict they got: `STATUS CODE KEY_ID`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;

/// A file of the repository.
pub(crate) fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The system's `tool` (python3, node): /usr/bin first, where Debian installs it and
/// `scripts/test.sh` puts it when missing, so a version manager's shim (which needs
/// its own environment) is never picked up.
fn system_tool(tool: &str) -> PathBuf {
    let usr = PathBuf::from("/usr/bin").join(tool);
    if usr.is_file() {
        usr
    } else {
        require_tool(tool)
    }
}

/// `TOOL examples/clients/SCRIPT` with `API_KEY` holding `key` (see `runtime`).
fn client(env: &TestEnv, tool: &str, script: &str, key: &str) -> Command {
    let mut c = runtime(env, tool);
    c.arg(repo_file(&format!("examples/clients/{script}")))
        .env("API_KEY", key);
    c
}

/// `TOOL` (python3, node) with keyctl (the binary under test) first in PATH as
/// `keyctl`, and the store and clock of `env`.
fn runtime(env: &TestEnv, tool: &str) -> Command {
    let keyctl_dir = PathBuf::from(env!("CARGO_BIN_EXE_keyctl"))
        .parent()
        .expect("the binary's folder")
        .to_path_buf();
    let mut c = Command::new(system_tool(tool));
    c.env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", keyctl_dir.display()))
        .env("HOME", env.home())
        .env("KEYCTL_DB", env.location())
        .env("KEYCTL_NOW", NOW)
        .env("KEYCTL_ACTOR", ACTOR)
        .env("TZ", "UTC")
        .current_dir(env.root());
    c
}

/// Runs the client; its one output line.
fn verdict_of(command: Command) -> String {
    let out = Run::new(command).run();
    out.ok();
    out.stdout.trim_end().to_string()
}

/// A store with a valid key, a revoked key and an IP-allowlisted one.
struct Keys {
    env: TestEnv,
    valid: Created,
    revoked: Created,
    allowlisted: Created,
}

fn keys() -> Keys {
    let env = TestEnv::initialized();
    let valid = env.create("svc", &[]);
    let revoked = env.create("gone", &[]);
    env.revoke(revoked.id());
    let allowlisted = env.create("office", &["--allow-ip", "192.0.2.0/24"]);
    Keys {
        env,
        valid,
        revoked,
        allowlisted,
    }
}

/// The verdicts every client must report: valid, revoked, invalid, and the
/// allowlisted key from inside and outside its range. `run(key, client_ip)` runs the
/// client and returns what it printed.
fn each_verdict(k: &Keys, script: &str, run: impl Fn(&str, Option<&str>) -> String) {
    let cases = [
        (&k.valid.secret, None, format!("200 valid {}", k.valid.id())),
        (
            &k.revoked.secret,
            None,
            format!("403 revoked {}", k.revoked.id()),
        ),
        (
            &"sk_live_notakey".to_string(),
            None,
            "401 invalid -".to_string(),
        ),
        (
            &k.allowlisted.secret,
            Some("192.0.2.10"),
            format!("200 valid {}", k.allowlisted.id()),
        ),
        (
            &k.allowlisted.secret,
            Some("198.51.100.1"),
            format!("403 ip_not_allowed {}", k.allowlisted.id()),
        ),
    ];
    for (key, ip, want) in cases {
        assert_eq!(run(key, ip), want, "{script} from {ip:?}");
    }
}

#[test]
fn stream_clients_get_each_verdict_and_record_it() {
    let k = keys();
    for (tool, script) in [
        ("python3", "stream_client.py"),
        ("node", "stream_client.mjs"),
    ] {
        each_verdict(&k, script, |key, ip| {
            let mut c = client(&k.env, tool, script, key);
            if let Some(ip) = ip {
                c.env("CLIENT_IP", ip);
            }
            verdict_of(c)
        });
    }
    // Every request was recorded, with the endpoint the clients send.
    let logs = k.env.logs_json(&["--limit", "100"]);
    assert_eq!(logs.len(), 10, "{logs:?}");
    assert!(
        logs.iter().all(|row| row["endpoint"] == "GET /demo"),
        "{logs:?}"
    );
}

/// The Node client pipelines: many calls in flight at once, answers matched to
/// requests by order (the stream answers in line order).
#[test]
fn node_stream_client_matches_pipelined_answers_by_order() {
    let k = keys();
    let script = format!(
        "import {{ verifier }} from {module:?};\n\
         const v = verifier();\n\
         const keys = [process.env.VALID, 'sk_live_nope', process.env.REVOKED];\n\
         const asked = Array.from({{ length: 30 }}, (_, i) => keys[i % 3]);\n\
         const verdicts = await Promise.all(asked.map((key) => v.verify(key)));\n\
         v.close();\n\
         console.log(verdicts.map((x) => x.code).join(' '));\n",
        module = repo_file("examples/clients/stream_client.mjs")
            .display()
            .to_string(),
    );
    let mut node = runtime(&k.env, "node");
    node.args(["--input-type=module", "-e", &script])
        .env("VALID", &k.valid.secret)
        .env("REVOKED", &k.revoked.secret);
    let out = Run::new(node).run();
    out.ok();
    let want: Vec<&str> = (0..30)
        .map(|i| ["valid", "invalid", "revoked"][i % 3])
        .collect();
    assert_eq!(out.stdout.trim_end(), want.join(" "));
}

/// The `POST /v1/verify` clients against a real `keyctl serve`: every verdict, 401,
/// 403 and 429 included, reaches the caller as a verdict, never as an exception.
#[test]
fn serve_clients_get_each_verdict() {
    let k = keys();
    let limited = k.env.create("bursty", &["--rate-limit", "1/s"]);
    let server = k.env.serve(&[]);
    for (tool, script) in [("python3", "serve_client.py"), ("node", "serve_client.mjs")] {
        each_verdict(&k, script, |key, ip| {
            let mut c = client(&k.env, tool, script, key);
            c.env("KEYCTL_URL", server.url());
            if let Some(ip) = ip {
                c.env("CLIENT_IP", ip);
            }
            verdict_of(c)
        });
    }
    // Rate limited (the clock is fixed): the second call in the second is a 429.
    let mut first = client(&k.env, "python3", "serve_client.py", &limited.secret);
    first.env("KEYCTL_URL", server.url());
    assert_eq!(verdict_of(first), format!("200 valid {}", limited.id()));
    let mut second = client(&k.env, "node", "serve_client.mjs", &limited.secret);
    second.env("KEYCTL_URL", server.url());
    assert_eq!(
        verdict_of(second),
        format!("429 rate_limited {}", limited.id())
    );
}

/// A server with a caller token (required beyond loopback, checked once configured):
/// the clients send it as a bearer token from KEYCTL_CALLER_TOKEN.
#[test]
fn serve_clients_send_the_caller_token() {
    let k = keys();
    let server = k.env.serve_exactly(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--caller-token-env",
            "CALLER",
        ],
        |c| {
            c.env("CALLER", "s3cret-caller-token-for-tests");
        },
    );
    for (tool, script) in [("python3", "serve_client.py"), ("node", "serve_client.mjs")] {
        let mut with_token = client(&k.env, tool, script, &k.valid.secret);
        with_token
            .env("KEYCTL_URL", server.url())
            .env("KEYCTL_CALLER_TOKEN", "s3cret-caller-token-for-tests");
        assert_eq!(
            verdict_of(with_token),
            format!("200 valid {}", k.valid.id()),
            "{script}"
        );
        // Without it: an error naming the token, never a verdict.
        let mut without = client(&k.env, tool, script, &k.valid.secret);
        without.env("KEYCTL_URL", server.url());
        let out = Run::new(without).run();
        assert_ne!(out.code, Some(0), "{out}");
        assert!(!out.stdout.contains("valid"), "{out}");
        assert!(
            out.stderr.contains("missing or wrong caller token"),
            "{out}"
        );
    }
}
