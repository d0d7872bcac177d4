//! SPEC §3 `verify`: every outcome with its exit code, one-line message and json
//! shape; the order of the checks; how the key is presented; rolling windows and IP
//! blocks across their edges (driven by `KEYCTL_NOW`); `--no-record`; what a recorded
//! verification changes; credits of a rotated pair; parallel verifications.

use serde_json::{json, Value};

use crate::support::*;

/// 32 base62 characters: the random part of forged, well-formed secrets.
const BODY: &str = "0123456789ABCDEFGHIJabcdefghij01";

fn nulls() -> Value {
    json!({"total": null, "daily": null, "weekly": null, "monthly": null})
}

fn at(secs: i64) -> String {
    now_plus(secs)
}

fn at_ms(ms: i64) -> String {
    now_plus_ms(ms)
}

/// The stored `last_used_at` of a key, as `show --json` prints it.
fn last_used(env: &TestEnv, id: &str) -> Value {
    env.key_json(id)["last_used_at"].clone()
}

/// A different base62 character than `c`.
fn other_char(c: u8) -> char {
    if c == b'a' {
        'b'
    } else {
        'a'
    }
}

/// `secret` with the character at `i` changed.
fn change_at(secret: &str, i: usize) -> String {
    let mut bytes = secret.as_bytes().to_vec();
    bytes[i] = other_char(bytes[i]) as u8;
    String::from_utf8(bytes).unwrap()
}

// ---- every outcome of the table ----

#[test]
fn a_valid_key_says_ok_exits_0_and_prints_the_json_shape() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    let v = env.expect_verify_json(NOW, &k.secret, &[], "valid", "OK");
    assert_eq!(
        v,
        json!({
            "valid": true, "code": "valid", "status": 200, "message": "OK",
            "key_id": k.id(), "key_name": "svc",
            "credits_remaining": null, "quota_remaining": nulls(), "meta": {},
        })
    );
    // A test-mode key verifies too.
    let t = env.create("sandbox", &["--test"]);
    assert!(t.secret.starts_with("sk_test_"));
    env.expect_verify(NOW, &t.secret, &[], "valid", "OK");
}

#[test]
fn json_reports_the_credits_and_quotas_left_after_the_request() {
    let env = TestEnv::initialized();
    let k = env.create(
        "metered",
        &[
            "--credits",
            "100",
            "--quota-total",
            "50",
            "--quota-daily",
            "10",
            "--quota-weekly",
            "20",
            "--quota-monthly",
            "30",
        ],
    );
    let v = env.expect_verify_json(NOW, &k.secret, &["--cost", "7"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 93);
    assert_eq!(
        v["quota_remaining"],
        json!({"total": 49, "daily": 9, "weekly": 19, "monthly": 29})
    );
    let v = env.expect_verify_json(&at(60), &k.secret, &["--cost", "3"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 90);
    assert_eq!(
        v["quota_remaining"],
        json!({"total": 48, "daily": 8, "weekly": 18, "monthly": 28})
    );
}

#[test]
fn malformed_keys_are_invalid() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let s = k.secret.as_str();
    let cases: Vec<String> = vec![
        String::new(),
        "hello".into(),
        "sk_live_".into(),
        s[..s.len() - 1].to_string(),
        format!("{s}0"),
        format!("{}{}", &s[..s.len() - 6], "!!!!!!"),
        s.replacen("_live_", "_prod_", 1),
        s.replacen("sk_", "sk-", 1),
        format!("{} {}", &s[..20], &s[20..]),
        s.to_uppercase(),
        k.prefix().to_string(),
        format!("{}...", k.prefix()),
    ];
    for bad in &cases {
        env.expect_verify(NOW, bad, &[], "invalid", "Invalid API Key");
        let v = env.expect_verify_json(NOW, bad, &[], "invalid", "Invalid API Key");
        assert_eq!(v["key_id"], Value::Null, "{bad:?}: {v}");
        assert_eq!(v["key_name"], Value::Null, "{bad:?}: {v}");
        assert_eq!(v["credits_remaining"], Value::Null, "{bad:?}: {v}");
    }
    env.expect_verify(NOW, s, &[], "valid", "OK");
}

#[test]
fn keys_keep_working_when_the_store_prefix_changes() {
    let env = TestEnv::initialized();
    let sk = env.create("sk-key", &[]);
    env.run(&["config", "set", "key-prefix", "acme"]).ok();
    let acme = env.create("acme-key", &[]);
    assert!(acme.secret.starts_with("acme_live_"));
    env.run(&["config", "set", "key-prefix", "abcdefghijklmnop"])
        .ok();
    let long = env.create("long-key", &[]);
    assert_secret(&long.secret, "abcdefghijklmnop", "live");
    for k in [&sk, &acme, &long] {
        let v = env.expect_verify_json(NOW, &k.secret, &[], "valid", "OK");
        assert_eq!(v["key_id"], k.id());
    }
}

#[test]
fn one_changed_character_fails_the_checksum() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let s = k.secret.as_str();
    assert_eq!(s.len(), 46);
    // First and last random characters, one in the middle, and the checksum's own.
    for i in [8, 9, 25, 39, 40, 45] {
        let typo = change_at(s, i);
        assert_ne!(typo, s);
        env.expect_verify(NOW, &typo, &[], "invalid", "Invalid API Key");
    }
    // A typo keeps the display prefix but is never attributed to the key.
    let rows = env.logs_json(&[]);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r["key_id"], Value::Null, "{r}");
        assert_eq!(r["code"], "invalid");
        assert_eq!(r["status"], 401);
    }
    assert_eq!(env.key_json(k.id())["last_used_at"], Value::Null);
}

#[test]
fn a_well_formed_key_the_store_does_not_hold_is_invalid() {
    let env = TestEnv::initialized();
    env.create("svc", &[]);
    for (prefix, mode) in [("sk", "live"), ("sk", "test"), ("acme", "live")] {
        let forged = forge_secret(prefix, mode, BODY);
        env.expect_verify(NOW, &forged, &[], "invalid", "Invalid API Key");
        let v = env.expect_verify_json(NOW, &forged, &[], "invalid", "Invalid API Key");
        assert_eq!(v["key_id"], Value::Null);
    }
    // A deleted key's secret matches nothing either.
    let gone = env.create("gone", &[]);
    env.run(&["delete", "--yes", "gone"]).ok();
    env.expect_verify(NOW, &gone.secret, &[], "invalid", "Invalid API Key");
}

#[test]
fn a_rejected_presented_key_is_not_stored_in_any_form() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let forged = forge_secret("sk", "live", BODY);
    let typo = change_at(&k.secret, 20);
    for bad in [&forged, &typo] {
        env.expect_verify(
            NOW,
            bad,
            &["--ip", "203.0.113.7"],
            "invalid",
            "Invalid API Key",
        );
    }
    for entry in std::fs::read_dir(env.root()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for bad in [&forged, &typo] {
            let hash = sha256(bad.as_bytes());
            assert!(
                !contains_bytes(&bytes, bad.as_bytes())
                    && !contains_bytes(&bytes, &hash)
                    && !contains_bytes(&bytes, hex(&hash).as_bytes())
                    && !contains_bytes(&bytes, &bad.as_bytes()[..20]),
                "{} holds a rejected key in some form",
                path.display()
            );
        }
    }
}

#[test]
fn a_revoked_key_is_refused() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    env.run(&["revoke", "--yes", "svc"]).ok();
    env.expect_verify(NOW, &k.secret, &[], "revoked", "API key has been revoked");
    let v = env.expect_verify_json(NOW, &k.secret, &[], "revoked", "API key has been revoked");
    assert_eq!(v["key_id"], k.id());
    assert_eq!(v["key_name"], "svc");
}

#[test]
fn a_disabled_key_is_inactive_until_enabled() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    env.run(&["disable", "svc"]).ok();
    env.expect_verify(NOW, &k.secret, &[], "inactive", "Inactive API Key");
    let v = env.expect_verify_json(NOW, &k.secret, &[], "inactive", "Inactive API Key");
    assert_eq!(v["key_id"], k.id());
    env.run(&["enable", "svc"]).ok();
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
}

#[test]
fn a_key_past_its_expiry_is_expired() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--expires", "1h"]);
    env.expect_verify(&at(HOUR - 1), &k.secret, &[], "valid", "OK");
    env.expect_verify(&at(HOUR + 1), &k.secret, &[], "expired", "Expired API Key");
    let v = env.expect_verify_json(&at(DAY), &k.secret, &[], "expired", "Expired API Key");
    assert_eq!(v["key_id"], k.id());
}

#[test]
fn the_ip_allowlist_takes_v4_v6_and_cidr_ranges() {
    let env = TestEnv::initialized();
    let k = env.create(
        "fenced",
        &[
            "--allow-ip",
            "10.0.0.0/8,192.168.1.5",
            "--allow-ip",
            "2001:db8::/32",
        ],
    );
    for ip in [
        "10.0.0.1",
        "10.255.255.254",
        "192.168.1.5",
        "2001:db8::1",
        "2001:db8:ffff::9",
        "::ffff:10.9.9.9",
    ] {
        env.expect_verify(NOW, &k.secret, &["--ip", ip], "valid", "OK");
    }
    let msg = "IP address not allowed for this key";
    for ip in ["11.0.0.1", "192.168.1.6", "2001:db9::1", "::1", "127.0.0.1"] {
        env.expect_verify(NOW, &k.secret, &["--ip", ip], "ip_not_allowed", msg);
    }
    // An allowlisted key with no --ip is refused.
    env.expect_verify(NOW, &k.secret, &[], "ip_not_allowed", msg);
    let v = env.expect_verify_json(NOW, &k.secret, &[], "ip_not_allowed", msg);
    assert_eq!(v["key_id"], k.id());
    // A key without an allowlist takes any address, or none.
    let open = env.create("open", &[]);
    env.expect_verify(NOW, &open.secret, &["--ip", "11.0.0.1"], "valid", "OK");
    env.expect_verify(NOW, &open.secret, &["--ip", "2001:db9::1"], "valid", "OK");
}

#[test]
fn a_key_bound_to_a_deployment_serves_only_that_deployment() {
    let env = TestEnv::initialized();
    let k = env.create("bound", &["--deployment", "prod"]);
    let msg = "API key is not authorized for this deployment.";
    env.expect_verify(NOW, &k.secret, &[], "forbidden_deployment", msg);
    env.expect_verify(
        NOW,
        &k.secret,
        &["--deployment", "staging"],
        "forbidden_deployment",
        msg,
    );
    env.expect_verify_json(
        NOW,
        &k.secret,
        &["--deployment", "dev"],
        "forbidden_deployment",
        msg,
    );
    env.expect_verify(NOW, &k.secret, &["--deployment", "prod"], "valid", "OK");
    let wide = env.create("wide", &[]);
    env.expect_verify(
        NOW,
        &wide.secret,
        &["--deployment", "anything"],
        "valid",
        "OK",
    );
}

#[test]
fn a_scoped_key_names_the_scope_it_lacks() {
    let env = TestEnv::initialized();
    let k = env.create("scoped", &["--scope", "read", "--scope", "write"]);
    env.expect_verify(
        NOW,
        &k.secret,
        &["--scope", "admin"],
        "forbidden_scope",
        "API key lacks scope: admin",
    );
    env.expect_verify_json(
        NOW,
        &k.secret,
        &["--scope", "billing:export"],
        "forbidden_scope",
        "API key lacks scope: billing:export",
    );
    env.expect_verify(NOW, &k.secret, &["--scope", "read"], "valid", "OK");
    env.expect_verify(NOW, &k.secret, &["--scope", "write"], "valid", "OK");
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    // No scopes means unrestricted.
    let any = env.create("any", &[]);
    env.expect_verify(NOW, &any.secret, &["--scope", "admin"], "valid", "OK");
}

#[test]
fn a_key_with_allowed_models_refuses_other_models() {
    let env = TestEnv::initialized();
    let k = env.create("models", &["--allow-model", "gpt-4o"]);
    let msg = "API key is not authorized for this model.";
    env.expect_verify(
        NOW,
        &k.secret,
        &["--model", "claude"],
        "forbidden_model",
        msg,
    );
    env.expect_verify_json(
        NOW,
        &k.secret,
        &["--model", "gpt-4"],
        "forbidden_model",
        msg,
    );
    env.expect_verify(NOW, &k.secret, &["--model", "gpt-4o"], "valid", "OK");
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
}

#[test]
fn rate_limits_per_second_and_per_minute() {
    let env = TestEnv::initialized();
    let s = env.create("fast", &["--rate-limit", "3/s"]);
    for _ in 0..3 {
        env.expect_verify(NOW, &s.secret, &[], "valid", "OK");
    }
    env.expect_verify(
        NOW,
        &s.secret,
        &[],
        "rate_limited",
        "Rate limit exceeded: 3 per second",
    );
    let v = env.expect_verify_json(
        NOW,
        &s.secret,
        &[],
        "rate_limited",
        "Rate limit exceeded: 3 per second",
    );
    assert_eq!(v["key_id"], s.id());

    let m = env.create("slow", &["--rate-limit", "2/m"]);
    env.expect_verify(NOW, &m.secret, &[], "valid", "OK");
    env.expect_verify(&at(30), &m.secret, &[], "valid", "OK");
    env.expect_verify(
        &at(45),
        &m.secret,
        &[],
        "rate_limited",
        "Rate limit exceeded: 2 per minute",
    );
}

#[test]
fn quotas_name_the_window_that_ran_out() {
    let env = TestEnv::initialized();
    for which in ["total", "daily", "weekly", "monthly"] {
        let flag = format!("--quota-{which}");
        let k = env.create(which, &[&flag, "2"]);
        env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
        env.expect_verify(&at(1), &k.secret, &[], "valid", "OK");
        let msg = format!("Rate limit exceeded: quota {which}");
        env.expect_verify(&at(2), &k.secret, &[], "quota_exceeded", &msg);
        let v = env.expect_verify_json(&at(3), &k.secret, &[], "quota_exceeded", &msg);
        assert_eq!(v["key_id"], k.id());
        assert_eq!(v["quota_remaining"][which], 0, "{v}");
    }
}

#[test]
fn credits_are_charged_by_cost_until_the_limit() {
    let env = TestEnv::initialized();
    let k = env.create("paid", &["--credits", "5"]);
    let v = env.expect_verify_json(NOW, &k.secret, &["--cost", "3"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 2);
    env.expect_verify(
        NOW,
        &k.secret,
        &["--cost", "3"],
        "credits_exhausted",
        "Credit limit reached",
    );
    let v = env.expect_verify_json(
        NOW,
        &k.secret,
        &["--cost", "3"],
        "credits_exhausted",
        "Credit limit reached",
    );
    assert_eq!(v["credits_remaining"], 2, "a rejection charges nothing");
    let v = env.expect_verify_json(NOW, &k.secret, &["--cost", "2"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 0);
    // The default cost is 1.
    env.expect_verify(
        NOW,
        &k.secret,
        &[],
        "credits_exhausted",
        "Credit limit reached",
    );
    assert_eq!(env.key_json("paid")["credits_used"], 5);
}

// ---- the order of the checks ----

#[test]
fn a_blocked_ip_is_refused_before_anything_else() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "failed-auth-limit", "1"]).ok();
    env.run(&["config", "set", "block-duration", "1d"]).ok();
    let good = env.create("good", &[]);
    let gone = env.create("gone", &["--expires", "1h"]);
    env.run(&["revoke", "--yes", "gone"]).ok();
    let ip = "203.0.113.9";
    env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    let msg = "IP temporarily blocked";
    // A revoked (and later expired) key, a malformed key, a valid key: all ip_blocked.
    env.expect_verify(&at(60), &gone.secret, &["--ip", ip], "ip_blocked", msg);
    env.expect_verify(
        &at(HOUR + 60),
        &gone.secret,
        &["--ip", ip],
        "ip_blocked",
        msg,
    );
    env.expect_verify(&at(60), "nonsense", &["--ip", ip], "ip_blocked", msg);
    env.expect_verify(&at(60), &good.secret, &["--ip", ip], "ip_blocked", msg);
    let v = env.expect_verify_json(&at(60), &good.secret, &["--ip", ip], "ip_blocked", msg);
    assert_eq!(v["valid"], false);
}

#[test]
fn key_state_checks_come_in_spec_order() {
    let env = TestEnv::initialized();
    // revoked + expired → revoked
    let r = env.create("r", &["--expires", "1h"]);
    env.run(&["revoke", "--yes", "r"]).ok();
    env.expect_verify(
        &at(DAY),
        &r.secret,
        &[],
        "revoked",
        "API key has been revoked",
    );
    // disabled + expired → inactive
    let d = env.create("d", &["--expires", "1h"]);
    env.run(&["disable", "d"]).ok();
    env.expect_verify(&at(DAY), &d.secret, &[], "inactive", "Inactive API Key");
    // revoked from an address outside its allowlist → revoked
    let f = env.create("f", &["--allow-ip", "10.0.0.0/8"]);
    env.run(&["revoke", "--yes", "f"]).ok();
    env.expect_verify(
        NOW,
        &f.secret,
        &["--ip", "11.0.0.1"],
        "revoked",
        "API key has been revoked",
    );
}

#[test]
fn request_checks_come_in_spec_order() {
    let env = TestEnv::initialized();
    let k = env.create(
        "strict",
        &[
            "--allow-ip",
            "10.0.0.0/8",
            "--deployment",
            "prod",
            "--scope",
            "read",
            "--allow-model",
            "m1",
            "--rate-limit",
            "1/m",
            "--quota-total",
            "1",
            "--credits",
            "1",
            "--expires",
            "1d",
        ],
    );
    let right = [
        "--ip",
        "10.0.0.1",
        "--deployment",
        "prod",
        "--scope",
        "read",
        "--model",
        "m1",
    ];
    env.expect_verify(NOW, &k.secret, &right, "valid", "OK");
    // Now the rate limit, the total quota and the credits are all used up.
    let mut args = vec![
        "--ip",
        "11.0.0.1",
        "--deployment",
        "dev",
        "--scope",
        "write",
        "--model",
        "m2",
    ];
    let t = at(1);
    let steps: [(usize, &str, &str); 5] = [
        (1, "ip_not_allowed", "IP address not allowed for this key"),
        (
            3,
            "forbidden_deployment",
            "API key is not authorized for this deployment.",
        ),
        (5, "forbidden_scope", "API key lacks scope: write"),
        (
            7,
            "forbidden_model",
            "API key is not authorized for this model.",
        ),
        (0, "rate_limited", "Rate limit exceeded: 1 per minute"),
    ];
    for (fix, code, msg) in steps {
        // Each step's failing check is the first in order; then fix it.
        env.expect_verify(&t, &k.secret, &args, code, msg);
        if fix > 0 {
            args[fix] = right[fix];
        }
    }
    // A minute later the rate limit allows it; the total quota comes before credits.
    env.expect_verify(
        &at(61),
        &k.secret,
        &right,
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
    // Expired comes before every request check.
    let wrong = [
        "--ip",
        "11.0.0.1",
        "--deployment",
        "dev",
        "--scope",
        "write",
    ];
    env.expect_verify(
        &at(2 * DAY),
        &k.secret,
        &wrong,
        "expired",
        "Expired API Key",
    );
    // Credits come last.
    let c = env.create("credits", &["--credits", "1", "--quota-daily", "5"]);
    env.expect_verify(NOW, &c.secret, &[], "valid", "OK");
    env.expect_verify(
        NOW,
        &c.secret,
        &[],
        "credits_exhausted",
        "Credit limit reached",
    );
}

#[test]
fn a_missing_scope_is_reported_before_an_exhausted_quota() {
    let env = TestEnv::initialized();
    let k = env.create("q", &["--scope", "read", "--quota-daily", "1"]);
    env.expect_verify(NOW, &k.secret, &["--scope", "read"], "valid", "OK");
    env.expect_verify(
        &at(1),
        &k.secret,
        &["--scope", "read"],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    let v = env.expect_verify_json(
        &at(2),
        &k.secret,
        &["--scope", "write"],
        "forbidden_scope",
        "API key lacks scope: write",
    );
    // Whatever it reports of the quota, it must not claim the spent quota is left.
    let daily = &v["quota_remaining"]["daily"];
    assert!(
        daily.is_null() || *daily == 0,
        "a rejection before the quota check reports daily quota {daily} left, but 0 is left: {v}"
    );
}

// ---- how the key is presented ----

#[test]
fn the_key_is_read_from_stdin_bare_or_in_a_bearer_header() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let s = &k.secret;
    let inputs = [
        format!("{s}\n"),
        s.to_string(),
        format!("  {s}  \r\n"),
        format!("Bearer {s}\n"),
        format!("bearer {s}\n"),
        format!("Bearer   {s}\n"),
        format!("Authorization: Bearer {s}\n"),
        format!("authorization: bearer {s}\r\n"),
        format!("AUTHORIZATION:Bearer {s}\n"),
        // Only the first line is the key.
        format!("{s}\nsomething else\n"),
    ];
    for input in &inputs {
        let out = env.run_at_with_stdin(NOW, &["verify"], input.as_bytes());
        assert_says(&out, 0, "OK");
    }
    let not = [
        "Bearer\n".to_string(),
        format!("Basic {s}\n"),
        format!("Bearer{s}\n"),
        format!("Authorization: Token {s}\n"),
        format!("\n{s}\n"),
    ];
    for input in &not {
        let out = env.run_at_with_stdin(NOW, &["verify"], input.as_bytes());
        assert_says(&out, 10, "Invalid API Key");
    }
}

#[test]
fn key_env_reads_the_named_variable() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let s = k.secret.clone();
    let run = |value: Option<String>, stdin: &str| {
        env.keyctl(&["verify", "--key-env", "API_KEY"])
            .at(NOW)
            .stdin(stdin.as_bytes())
            .with(|c| {
                if let Some(v) = value {
                    c.env("API_KEY", v);
                }
            })
            .run()
    };
    assert_says(&run(Some(s.clone()), ""), 0, "OK");
    assert_says(&run(Some(format!("Bearer {s}")), ""), 0, "OK");
    assert_says(
        &run(Some(format!("Authorization: Bearer {s}")), ""),
        0,
        "OK",
    );
    // The variable wins over stdin.
    assert_says(&run(Some(s.clone()), "nonsense\n"), 0, "OK");
    assert_says(
        &run(Some("nonsense".into()), &format!("{s}\n")),
        10,
        "Invalid API Key",
    );
    assert_says(&run(Some(String::new()), ""), 10, "Invalid API Key");
    let rows = env.count_rows("requests");

    // An unset variable is a usage error that records nothing.
    let out = run(None, &format!("{s}\n"));
    let line = out.fails(2);
    assert!(line.contains("API_KEY"), "{line}");
    assert_eq!(env.count_rows("requests"), rows);
}

#[test]
fn oversized_binary_and_empty_input_is_an_invalid_key() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let s = k.secret.as_bytes();
    // Empty stdin (the harness's default is /dev/null) and an empty pipe.
    assert_says(&env.run(&["verify"]), 10, "Invalid API Key");
    assert_says(
        &env.run_at_with_stdin(NOW, &["verify"], b""),
        10,
        "Invalid API Key",
    );
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![b'A'; 2000],
        [vec![b' '; 1100], s.to_vec(), b"\n".to_vec()].concat(),
        [s.to_vec(), vec![b'x'; 2000]].concat(),
        vec![0xff, 0xfe, 0x00, 0x01, 0x80, b'\n'],
        [s.to_vec(), b"\0\n".to_vec()].concat(),
        [
            b"Bearer ".to_vec(),
            s[..20].to_vec(),
            vec![0xc3],
            s[21..].to_vec(),
        ]
        .concat(),
    ];
    // A key straddling the first KiB: what lies past 1024 bytes is never read.
    inputs.push([vec![b' '; 1024 - 20], s.to_vec(), b"\n".to_vec()].concat());
    for input in &inputs {
        let out = env.run_at_with_stdin(NOW, &["verify"], input);
        assert_says(&out, 10, "Invalid API Key");
    }
    // A good first line followed by binary junk is still the key.
    let out = env.run_at_with_stdin(
        NOW,
        &["verify"],
        &[s.to_vec(), b"\n".to_vec(), vec![0xff; 5000]].concat(),
    );
    assert_says(&out, 0, "OK");
    // Padding that keeps the whole key inside the first KiB is fine.
    let out = env.run_at_with_stdin(
        NOW,
        &["verify"],
        &[vec![b' '; 1024 - s.len() - 1], s.to_vec(), b"\n".to_vec()].concat(),
    );
    assert_says(&out, 0, "OK");
}

#[test]
fn there_is_no_positional_key_argument() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let out = env.run(&["verify", &k.secret]);
    out.fails(2);
    let flag = format!("--key={}", k.secret);
    let out = env.run(&["verify", &flag]);
    out.fails(2);
    assert_eq!(env.count_rows("requests"), 0, "nothing was verified");
    assert_eq!(last_used(&env, k.id()), Value::Null);
}

/// SPEC §1/§4: a secret is never written to an error message. A secret pasted on the
/// command line by mistake must not be echoed into terminals, CI logs or log files.
#[test]
fn a_key_passed_as_an_argument_is_not_echoed_in_the_error() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    for args in [
        vec!["verify", k.secret.as_str()],
        vec!["verify", "--ip", "10.0.0.1", k.secret.as_str()],
    ] {
        let out = env.run(&args);
        out.fails(2);
        assert!(
            !out.stderr.contains(&k.secret) && !has_secret_shape(&out.stderr),
            "the usage error echoes the secret\n{out}"
        );
    }
}

// ---- rolling windows across their edges ----

#[test]
fn a_daily_quota_rolls_over_24_hours_after_the_first_request() {
    let env = TestEnv::initialized();
    let k = env.create("daily", &["--quota-daily", "2"]);
    let s = &k.secret;
    let msg = "Rate limit exceeded: quota daily";
    env.expect_verify(NOW, s, &[], "valid", "OK");
    env.expect_verify(&at(HOUR), s, &[], "valid", "OK");
    env.expect_verify(&at(2 * HOUR), s, &[], "quota_exceeded", msg);
    env.expect_verify(&at_ms(DAY * 1000 - 1), s, &[], "quota_exceeded", msg);
    env.expect_verify(&at_ms(DAY * 1000 + 1), s, &[], "valid", "OK");
    // Full again (the 1h request and this one) until the 1h request is a day old.
    env.expect_verify(&at_ms(DAY * 1000 + 2), s, &[], "quota_exceeded", msg);
    env.expect_verify(
        &at_ms((DAY + HOUR) * 1000 - 1),
        s,
        &[],
        "quota_exceeded",
        msg,
    );
    env.expect_verify(&at_ms((DAY + HOUR) * 1000 + 1), s, &[], "valid", "OK");
}

#[test]
fn a_per_second_rate_limit_frees_up_after_a_second() {
    let env = TestEnv::initialized();
    let k = env.create("rate", &["--rate-limit", "1/s"]);
    let s = &k.secret;
    let msg = "Rate limit exceeded: 1 per second";
    env.expect_verify(NOW, s, &[], "valid", "OK");
    env.expect_verify(NOW, s, &[], "rate_limited", msg);
    env.expect_verify(&at_ms(999), s, &[], "rate_limited", msg);
    env.expect_verify(&at_ms(1001), s, &[], "valid", "OK");
    env.expect_verify(&at_ms(1500), s, &[], "rate_limited", msg);
    env.expect_verify(&at_ms(2002), s, &[], "valid", "OK");
}

#[test]
fn a_per_minute_rate_limit_counts_the_last_minute() {
    let env = TestEnv::initialized();
    let k = env.create("rate", &["--rate-limit", "2/m"]);
    let s = &k.secret;
    let msg = "Rate limit exceeded: 2 per minute";
    env.expect_verify(NOW, s, &[], "valid", "OK");
    env.expect_verify(&at(30), s, &[], "valid", "OK");
    env.expect_verify(&at_ms(59_999), s, &[], "rate_limited", msg);
    env.expect_verify(&at_ms(60_001), s, &[], "valid", "OK");
    env.expect_verify(&at_ms(60_002), s, &[], "rate_limited", msg);
    env.expect_verify(&at_ms(90_001), s, &[], "valid", "OK");
}

#[test]
fn weekly_and_monthly_quotas_roll_over_at_their_edges() {
    let env = TestEnv::initialized();
    for (which, days) in [("weekly", 7), ("monthly", 30)] {
        let flag = format!("--quota-{which}");
        let k = env.create(which, &[&flag, "1"]);
        let s = &k.secret;
        let msg = format!("Rate limit exceeded: quota {which}");
        let span = days * DAY * 1000;
        env.expect_verify(NOW, s, &[], "valid", "OK");
        env.expect_verify(&at(HOUR), s, &[], "quota_exceeded", &msg);
        env.expect_verify(&at_ms(span - 1), s, &[], "quota_exceeded", &msg);
        env.expect_verify(&at_ms(span + 1), s, &[], "valid", "OK");
        env.expect_verify(&at_ms(span + 2), s, &[], "quota_exceeded", &msg);
    }
}

#[test]
fn a_total_quota_never_rolls_over() {
    let env = TestEnv::initialized();
    let k = env.create("total", &["--quota-total", "1"]);
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    env.expect_verify(
        &at(400 * DAY),
        &k.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
}

#[test]
fn rejected_requests_use_no_quota_rate_or_credits() {
    let env = TestEnv::initialized();
    let k = env.create(
        "k",
        &[
            "--scope",
            "read",
            "--quota-daily",
            "2",
            "--rate-limit",
            "2/m",
            "--credits",
            "2",
        ],
    );
    for _ in 0..5 {
        env.expect_verify(
            NOW,
            &k.secret,
            &["--scope", "write"],
            "forbidden_scope",
            "API key lacks scope: write",
        );
    }
    env.expect_verify(
        NOW,
        &k.secret,
        &["--cost", "3"],
        "credits_exhausted",
        "Credit limit reached",
    );
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    env.expect_verify(
        NOW,
        &k.secret,
        &[],
        "rate_limited",
        "Rate limit exceeded: 2 per minute",
    );
}

#[test]
fn limits_added_later_count_the_requests_already_made() {
    let env = TestEnv::initialized();
    let k = env.create("late", &[]);
    for t in [0, HOUR, 2 * HOUR] {
        env.expect_verify(&at(t), &k.secret, &[], "valid", "OK");
    }
    env.run_at(&at(3 * HOUR), &["edit", "late", "--quota-daily", "3"])
        .ok();
    env.expect_verify(
        &at(3 * HOUR),
        &k.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    env.run_at(
        &at(3 * HOUR),
        &[
            "edit",
            "late",
            "--quota-daily",
            "none",
            "--quota-total",
            "4",
        ],
    )
    .ok();
    env.expect_verify(&at(3 * HOUR), &k.secret, &[], "valid", "OK");
    env.expect_verify(
        &at(3 * HOUR),
        &k.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
}

// ---- IP blocking ----

#[test]
fn failed_attempts_block_an_ip_until_the_block_duration_passes() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &[]);
    let bad_ip = "203.0.113.7";
    let forged = forge_secret("sk", "live", BODY);
    for (t, bad) in [
        (0, "nonsense"),
        (MINUTE, forged.as_str()),
        (2 * MINUTE, "x"),
    ] {
        env.expect_verify(&at(t), bad, &["--ip", bad_ip], "invalid", "Invalid API Key");
    }
    let blocked = "IP temporarily blocked";
    env.expect_verify(
        &at(3 * MINUTE),
        &k.secret,
        &["--ip", bad_ip],
        "ip_blocked",
        blocked,
    );
    let v = env.expect_verify_json(
        &at(3 * MINUTE),
        &k.secret,
        &["--ip", bad_ip],
        "ip_blocked",
        blocked,
    );
    assert_eq!(v["status"], 403);
    // Another address, and a request without one, are unaffected.
    env.expect_verify(
        &at(3 * MINUTE),
        &k.secret,
        &["--ip", "198.51.100.9"],
        "valid",
        "OK",
    );
    env.expect_verify(&at(3 * MINUTE), &k.secret, &[], "valid", "OK");
    // Blocked for 15 minutes from the attempt that reached the limit.
    let end = 2 * MINUTE + 15 * MINUTE;
    env.expect_verify(
        &at(end - 1),
        &k.secret,
        &["--ip", bad_ip],
        "ip_blocked",
        blocked,
    );
    env.expect_verify(&at(end + 1), &k.secret, &["--ip", bad_ip], "valid", "OK");
    // The blocked attempts were logged with their code.
    let rows = env.logs_json(&["--status", "ip_blocked"]);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["ip"] == bad_ip && r["status"] == 403));
}

#[test]
fn attempts_spread_wider_than_the_window_do_not_block() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &[]);
    let ip = "203.0.113.8";
    for t in [0, MINUTE, 11 * MINUTE] {
        env.expect_verify(
            &at(t),
            "nonsense",
            &["--ip", ip],
            "invalid",
            "Invalid API Key",
        );
    }
    env.expect_verify(
        &at(11 * MINUTE + 1),
        &k.secret,
        &["--ip", ip],
        "valid",
        "OK",
    );
    // Two more within ten minutes of the 11m attempt: three in the window, blocked.
    for t in [12 * MINUTE, 13 * MINUTE] {
        env.expect_verify(
            &at(t),
            "nonsense",
            &["--ip", ip],
            "invalid",
            "Invalid API Key",
        );
    }
    env.expect_verify(
        &at(13 * MINUTE + 1),
        &k.secret,
        &["--ip", ip],
        "ip_blocked",
        "IP temporarily blocked",
    );
}

#[test]
fn only_recorded_invalid_attempts_count_towards_a_block() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &[]);
    let r = env.create("revoked", &[]);
    env.run(&["revoke", "--yes", "revoked"]).ok();
    let d = env.create("disabled", &[]);
    env.run(&["disable", "disabled"]).ok();
    let ip = "203.0.113.10";
    for _ in 0..3 {
        env.expect_verify(
            NOW,
            &r.secret,
            &["--ip", ip],
            "revoked",
            "API key has been revoked",
        );
        env.expect_verify(
            NOW,
            &d.secret,
            &["--ip", ip],
            "inactive",
            "Inactive API Key",
        );
        env.expect_verify(NOW, &k.secret, &["--ip", ip, "--scope", "x"], "valid", "OK");
        env.expect_verify(
            NOW,
            "nonsense",
            &["--ip", ip, "--no-record"],
            "invalid",
            "Invalid API Key",
        );
    }
    env.expect_verify(&at(1), &k.secret, &["--ip", ip], "valid", "OK");
    // The default limit is 10 attempts.
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    for _ in 0..9 {
        env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    }
    env.expect_verify(NOW, &k.secret, &["--ip", ip], "valid", "OK");
    env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    env.expect_verify(
        NOW,
        &k.secret,
        &["--ip", ip],
        "ip_blocked",
        "IP temporarily blocked",
    );
}

#[test]
fn one_ipv6_address_in_any_spelling_is_one_ip() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &[]);
    for ip in ["2001:db8::7", "2001:0DB8:0:0:0:0:0:7", "2001:db8:0::0:7"] {
        env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    }
    env.expect_verify(
        &at(1),
        &k.secret,
        &["--ip", "2001:DB8::7"],
        "ip_blocked",
        "IP temporarily blocked",
    );
}

/// An IPv4 client may reach a dual-stack service as `::ffff:a.b.c.d`; it is the same
/// IP (the allowlist already treats it so), so its failures add up across both forms.
#[test]
fn an_ipv4_address_and_its_ipv4_mapped_form_are_one_ip() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &[]);
    for ip in ["203.0.113.20", "::ffff:203.0.113.20", "203.0.113.20"] {
        env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    }
    for ip in ["203.0.113.20", "::ffff:203.0.113.20"] {
        env.expect_verify(
            &at(1),
            &k.secret,
            &["--ip", ip],
            "ip_blocked",
            "IP temporarily blocked",
        );
    }
}

// ---- what a verification writes ----

#[test]
fn no_record_writes_nothing() {
    let env = TestEnv::initialized();
    let k = env.create(
        "svc",
        &[
            "--quota-daily",
            "1",
            "--credits",
            "5",
            "--rate-limit",
            "1/m",
            "--scope",
            "read",
        ],
    );
    let before = env.snapshot();
    for _ in 0..3 {
        env.expect_verify(
            NOW,
            &k.secret,
            &["--no-record", "--ip", "10.0.0.1"],
            "valid",
            "OK",
        );
        let (out, v) = env.verify_json(NOW, &k.secret, &["--no-record"]);
        assert_eq!(out.code, Some(0));
        assert_verdict(&v, "valid", "OK");
    }
    env.expect_verify(
        NOW,
        &k.secret,
        &["--no-record", "--scope", "write"],
        "forbidden_scope",
        "API key lacks scope: write",
    );
    env.expect_verify(
        NOW,
        "nonsense",
        &["--no-record", "--ip", "203.0.113.1"],
        "invalid",
        "Invalid API Key",
    );
    assert_eq!(env.snapshot(), before, "--no-record changed the store");
    assert_eq!(env.count_rows("requests"), 0);
    let shown = env.key_json("svc");
    assert_eq!(shown["last_used_at"], Value::Null);
    assert_eq!(shown["credits_used"], 0);

    // One recorded request; --no-record then sees the limits it used up, and still
    // changes nothing.
    env.expect_verify(NOW, &k.secret, &["--cost", "2"], "valid", "OK");
    let before = env.snapshot();
    env.expect_verify(
        NOW,
        &k.secret,
        &["--no-record"],
        "rate_limited",
        "Rate limit exceeded: 1 per minute",
    );
    env.expect_verify(
        &at(MINUTE + 1),
        &k.secret,
        &["--no-record"],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    assert_eq!(env.snapshot(), before, "--no-record changed the store");
    assert_eq!(env.count_rows("requests"), 1);
}

#[test]
fn an_accepted_verification_updates_last_use_credits_and_usage() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--credits", "10"]);
    env.expect_verify(
        &at(HOUR),
        &k.secret,
        &["--ip", "198.51.100.4", "--cost", "3"],
        "valid",
        "OK",
    );
    let shown = env.key_json_at(&at(HOUR), "svc");
    assert_eq!(shown["last_used_at"], at(HOUR));
    assert_eq!(shown["last_used_ip"], "198.51.100.4");
    assert_eq!(shown["credits_used"], 3);
    let one = json!({"requests": 1, "accepted": 1, "rejected": 0, "credits": 3});
    assert_eq!(
        env.usage_of(&at(HOUR), "svc"),
        json!({"last_24h": one, "last_7d": one, "last_30d": one})
    );
    // `list` shows the last use too.
    let listed = env.list_json_at(&at(HOUR), &[]);
    assert_eq!(listed[0]["last_used_at"], at(HOUR));
}

#[test]
fn a_rejected_verification_is_logged_but_is_not_a_use() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--credits", "10", "--scope", "read"]);
    env.expect_verify(
        &at(HOUR),
        &k.secret,
        &["--ip", "198.51.100.4"],
        "valid",
        "OK",
    );
    env.expect_verify(
        &at(2 * HOUR),
        &k.secret,
        &[
            "--ip",
            "198.51.100.5",
            "--scope",
            "admin",
            "--endpoint",
            "DELETE /v1/x",
        ],
        "forbidden_scope",
        "API key lacks scope: admin",
    );
    env.expect_verify(
        &at(3 * HOUR),
        &k.secret,
        &["--ip", "198.51.100.6", "--cost", "50"],
        "credits_exhausted",
        "Credit limit reached",
    );
    let shown = env.key_json_at(&at(3 * HOUR), "svc");
    assert_eq!(shown["last_used_at"], at(HOUR));
    assert_eq!(shown["last_used_ip"], "198.51.100.4");
    assert_eq!(shown["credits_used"], 1);
    let usage = env.usage_of(&at(3 * HOUR), "svc");
    assert_eq!(
        usage["last_24h"],
        json!({"requests": 3, "accepted": 1, "rejected": 2, "credits": 1})
    );
    let rows = env.logs_json(&[]);
    let codes: Vec<&str> = rows.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["credits_exhausted", "forbidden_scope", "valid"]);
    assert_eq!(rows[1]["key_id"], k.id());
    assert_eq!(rows[1]["key_name"], "svc");
    assert_eq!(rows[1]["status"], 403);
    assert_eq!(rows[1]["endpoint"], "DELETE /v1/x");
    assert_eq!(rows[1]["ip"], "198.51.100.5");
    assert_eq!(rows[1]["credits"], 0);
    assert_eq!(rows[0]["status"], 401);
    assert_eq!(rows[0]["credits"], 0);
}

#[test]
fn a_rotated_pair_draws_on_one_credit_balance() {
    let env = TestEnv::initialized();
    let old = env.create("pay", &["--credits", "10"]);
    let out = env.run(&["rotate", "--yes", "--grace", "1h", "--json", "pay"]);
    out.ok();
    let rotated = out.json();
    let new_secret = rotated["key"].as_str().unwrap().to_string();
    let new_id = rotated["key_details"]["id"].as_str().unwrap().to_string();

    let v = env.expect_verify_json(&at(60), &old.secret, &["--cost", "2"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 8);
    let v = env.expect_verify_json(&at(120), &new_secret, &["--cost", "3"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 5);
    assert_eq!(v["key_id"], new_id.as_str());
    for id in [old.id(), new_id.as_str()] {
        assert_eq!(env.key_json_at(&at(180), id)["credits_used"], 5, "{id}");
    }
    env.expect_verify(
        &at(180),
        &new_secret,
        &["--cost", "6"],
        "credits_exhausted",
        "Credit limit reached",
    );
    env.expect_verify(&at(180), &old.secret, &["--cost", "5"], "valid", "OK");
    env.expect_verify(
        &at(190),
        &new_secret,
        &[],
        "credits_exhausted",
        "Credit limit reached",
    );
    for id in [old.id(), new_id.as_str()] {
        assert_eq!(env.key_json_at(&at(200), id)["credits_used"], 10, "{id}");
    }
    // After the grace period the old key is expired.
    env.expect_verify(
        &at(2 * HOUR),
        &old.secret,
        &["--cost", "0"],
        "expired",
        "Expired API Key",
    );
}

#[test]
fn delete_refuses_a_key_that_was_verified_unless_forced() {
    let env = TestEnv::initialized();
    let used = env.create("used", &[]);
    let refused = env.create("refused", &[]);
    env.run(&["disable", "refused"]).ok();
    env.create("unused", &[]);
    env.expect_verify(NOW, &used.secret, &[], "valid", "OK");
    // A rejected request is request history too.
    env.expect_verify(NOW, &refused.secret, &[], "inactive", "Inactive API Key");
    for name in ["used", "refused"] {
        let before = env.snapshot();
        let out = env.run(&["delete", "--yes", name]);
        let line = out.fails(4);
        assert!(
            line.contains("request history") && line.contains("--force"),
            "{line}"
        );
        assert_eq!(env.snapshot(), before);
    }
    env.run(&["delete", "--yes", "unused"]).ok();
    env.run(&["delete", "--yes", "--force", "used", "refused"])
        .ok();
    assert!(env.list_names(&["--all"]).is_empty());
    // The log keeps the deleted keys' ids; their secrets are now invalid.
    let rows = env.logs_json(&[used.id()]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key_name"], "used");
    env.expect_verify(NOW, &used.secret, &[], "invalid", "Invalid API Key");
}

/// The exit code is the verdict (SPEC §3): a service that checks only the exit status
/// must never see 0 for a refused key, even when nobody reads stdout.
#[test]
fn a_closed_stdout_does_not_turn_a_refusal_into_success() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    env.run(&["revoke", "--yes", "svc"]).ok();
    for (input, args, exit) in [
        ("nonsense", &[][..], 10),
        ("nonsense", &["--json"][..], 10),
        (k.secret.as_str(), &[][..], 13),
        (k.secret.as_str(), &["--no-record"][..], 13),
    ] {
        let mut all = vec!["verify"];
        all.extend_from_slice(args);
        let out = env
            .keyctl(&all)
            .at(NOW)
            .stdin(format!("{input}\n").as_bytes())
            .with(|c| {
                c.stdout(closed_pipe());
            })
            .run();
        out.no_panic();
        assert_eq!(
            out.code,
            Some(exit),
            "a refused key must not exit 0 when stdout is closed\n{out}"
        );
    }
}

// ---- bad input ----

#[test]
fn bad_request_context_is_a_usage_error_that_records_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    for args in [
        &["--ip", "not-an-ip"][..],
        &["--ip", "10.0.0.0/8"],
        &["--ip", "300.1.1.1"],
        &["--cost", "-1"],
        &["--cost", "abc"],
        &["--cost", "99999999999999999999"],
        &["--duration-ms", "soon"],
    ] {
        let out = env.verify(NOW, &k.secret, args);
        out.fails(2);
        assert!(!out.stderr.contains(&k.secret), "{out}");
    }
    assert_eq!(env.count_rows("requests"), 0);
}

#[test]
fn verify_on_a_missing_store_fails_and_creates_nothing() {
    let env = TestEnv::new();
    let forged = forge_secret("sk", "live", BODY);
    let out = env.verify(NOW, &forged, &[]);
    assert_eq!(out.fails(1), env.no_store_error());
    assert!(!env.store_exists());
}

// ---- many processes at once ----

/// Issue 5: 8 processes × 100 recorded verifications of one key in parallel give
/// exactly 800 log rows, no error and no "database is locked".
#[test]
fn eight_processes_verifying_one_key_at_once_lose_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("hot", &["--quota-total", "800", "--credits", "800"]);
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let env = &env;
                let secret = k.secret.as_str();
                scope.spawn(move || {
                    (0..100)
                        .map(|_| env.verify(NOW, secret, &[]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker thread"))
            .collect()
    });
    assert_eq!(outcomes.len(), 800);
    for out in &outcomes {
        assert!(!out.stderr.contains("locked"), "{out}");
        assert_says(out, 0, "OK");
    }
    assert_eq!(env.count_rows("requests"), 800);
    let shown = env.key_json("hot");
    assert_eq!(shown["credits_used"], 800);
    assert_eq!(shown["last_used_at"], NOW);
    let all = json!({"requests": 800, "accepted": 800, "rejected": 0, "credits": 800});
    assert_eq!(
        env.usage_of(NOW, "hot"),
        json!({"last_24h": all, "last_7d": all, "last_30d": all})
    );
    // The quota saw every one of them.
    env.expect_verify(
        &at(1),
        &k.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
}
