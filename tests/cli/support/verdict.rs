//! `keyctl verify` and the shape of its results (SPEC §3).

use serde_json::Value;

use super::{Ordered, Outcome, TestEnv, QUOTA_FIELDS};

/// The members of a `verify --json` result (SPEC §3), in order.
pub const VERDICT_FIELDS: [&str; 9] = [
    "valid",
    "code",
    "status",
    "message",
    "key_id",
    "key_name",
    "credits_remaining",
    "quota_remaining",
    "meta",
];

impl TestEnv {
    /// `keyctl verify ARGS` at `now`, the secret piped on stdin as one line.
    pub fn verify(&self, now: &str, secret: &str, args: &[&str]) -> Outcome {
        let mut all = vec!["verify"];
        all.extend_from_slice(args);
        self.run_at_with_stdin(now, &all, format!("{secret}\n").as_bytes())
    }

    /// `keyctl verify --json ARGS` at `now`: asserts the result's shape (members in
    /// order, one line, nothing on stderr, the exit code its outcome implies is left
    /// to the caller) and returns it parsed.
    pub fn verify_json(&self, now: &str, secret: &str, args: &[&str]) -> (Outcome, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.verify(now, secret, &all);
        let v = assert_verdict_line(&out, out.stdout.trim_end_matches('\n'));
        assert_eq!(out.stderr, "", "verify wrote to stderr\n{out}");
        (out, v)
    }

    /// One recorded `verify` (plain output) at `now` that must answer `code` with
    /// `message` and the matching exit code.
    pub fn expect_verify(&self, now: &str, secret: &str, args: &[&str], code: &str, message: &str) {
        let out = self.verify(now, secret, args);
        assert_says(&out, status_and_exit(code).1, message);
    }

    /// One recorded `verify --json` at `now` that must answer `code` with `message`;
    /// returns the verdict.
    pub fn expect_verify_json(
        &self,
        now: &str,
        secret: &str,
        args: &[&str],
        code: &str,
        message: &str,
    ) -> Value {
        let (out, v) = self.verify_json(now, secret, args);
        assert_eq!(out.code, Some(status_and_exit(code).1), "exit code\n{out}");
        assert_verdict(&v, code, message);
        v
    }
}

/// IP blocking after 3 invalid attempts within 10 minutes, for 15 minutes.
pub fn block_settings(env: &TestEnv) {
    for (name, value) in [
        ("failed-auth-limit", "3"),
        ("failed-auth-window", "10m"),
        ("block-duration", "15m"),
    ] {
        env.run(&["config", "set", name, value]).ok();
    }
}

/// members of SPEC §3 in order, and that it is one stdout line of `out`. Returns it.
pub fn assert_verdict_line(out: &Outcome, line: &str) -> Value {
    assert!(
        !line.contains('\n'),
        "a verdict is one line: {line:?}\n{out}"
    );
    let ordered = Ordered::parse(line);
    assert_eq!(ordered.keys(), VERDICT_FIELDS, "verdict members\n{out}");
    if let Ordered::Object(_) = ordered.get("quota_remaining") {
        assert_eq!(
            ordered.get("quota_remaining").keys(),
            QUOTA_FIELDS,
            "quota_remaining members\n{out}"
        );
    }
    serde_json::from_str(line).unwrap()
}

/// Asserts a plain `verify` answered `message` as its only stdout line, wrote nothing
/// to stderr and exited `exit`.
pub fn assert_says(out: &Outcome, exit: i32, message: &str) {
    out.no_panic();
    assert_eq!(out.code, Some(exit), "exit code\n{out}");
    assert_eq!(out.stdout, format!("{message}\n"), "stdout\n{out}");
    assert_eq!(out.stderr, "", "stderr\n{out}");
}

/// SPEC §3: the HTTP status and exit code of each verify outcome code.
pub fn status_and_exit(code: &str) -> (u64, i32) {
    match code {
        "ip_blocked" => (403, 17),
        "invalid" => (401, 10),
        "revoked" => (403, 13),
        "inactive" => (401, 11),
        "expired" => (401, 12),
        "ip_not_allowed" => (403, 16),
        "forbidden_deployment" => (403, 18),
        "forbidden_scope" => (403, 19),
        "forbidden_model" => (403, 20),
        "rate_limited" => (429, 21),
        "quota_exceeded" => (401, 14),
        "credits_exhausted" => (401, 15),
        "valid" => (200, 0),
        other => panic!("no such verify outcome: {other}"),
    }
}

/// Asserts a verdict object says `code` with `message` (and the status SPEC §3 gives
/// that code).
pub fn assert_verdict(v: &Value, code: &str, message: &str) {
    let (status, _) = status_and_exit(code);
    assert_eq!(v["valid"], Value::Bool(code == "valid"), "valid in {v}");
    assert_eq!(v["code"], code, "code in {v}");
    assert_eq!(v["status"], status, "status in {v}");
    assert_eq!(v["message"], message, "message in {v}");
}
