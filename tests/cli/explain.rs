//! SPEC §8 `verify --explain`: every check of SPEC §3 in order, each pass / fail /
//! n.a. with its figure; the verdict and exit code are those of `verify --no-record`;
//! nothing is recorded and no failed attempt counts against an IP; `--key-env`; the
//! json shape and the table; bad input.

use serde_json::Value;

use crate::support::*;

/// The rows of `verify --explain`, in order.
pub(crate) const CHECKS: [&str; 17] = [
    "ip_blocked",
    "invalid",
    "revoked",
    "inactive",
    "expired",
    "ip_not_allowed",
    "forbidden_deployment",
    "forbidden_scope",
    "forbidden_model",
    "rate_limited",
    "store_rate_limited",
    "quota_total",
    "quota_daily",
    "quota_weekly",
    "quota_monthly",
    "credits_exhausted",
    "store_credits_exhausted",
];

/// The top-level members of `verify --explain --json`, in order.
const MEMBERS: [&str; 7] = [
    "verdict",
    "exit",
    "presented",
    "key",
    "request",
    "now",
    "checks",
];

fn at(secs: i64) -> String {
    now_plus(secs)
}

/// `keyctl verify --explain --json ARGS` at `now` with `secret` on stdin: asserts the
/// shape (members in order, one row per check in order, each row's first members,
/// nothing on stderr, the secret not printed, the exit code the verdict's) and returns
/// the outcome and the parsed object.
fn explain_at(env: &TestEnv, now: &str, secret: &str, args: &[&str]) -> (Outcome, Value) {
    let mut all = vec!["--explain", "--json"];
    all.extend_from_slice(args);
    let out = env.verify(now, secret, &all);
    out.no_panic();
    assert_eq!(out.stderr, "", "explain wrote to stderr\n{out}");
    if secret.len() > 12 {
        assert!(
            !out.stdout.contains(secret),
            "the secret was printed\n{out}"
        );
    }
    let ordered = Ordered::parse(&out.stdout);
    assert_eq!(ordered.keys(), MEMBERS, "members\n{out}");
    assert_eq!(
        ordered.get("verdict").keys(),
        VERDICT_FIELDS,
        "verdict members\n{out}"
    );
    let rows = ordered.get("checks").items();
    assert_eq!(rows.len(), CHECKS.len(), "one row per check\n{out}");
    for (row, name) in rows.iter().zip(CHECKS) {
        let keys = row.keys();
        assert_eq!(&keys[..3], ["check", "code", "result"], "{name}\n{out}");
        assert_eq!(keys.last(), Some(&"detail"), "{name}\n{out}");
    }
    let v = out.json();
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS, "rows in SPEC §3 order\n{out}");
    for row in v["checks"].as_array().unwrap() {
        let result = row["result"].as_str().unwrap();
        assert!(
            ["pass", "fail", "n.a."].contains(&result),
            "result {result}\n{out}"
        );
    }
    let code = v["verdict"]["code"].as_str().unwrap();
    let exit = status_and_exit(code).1;
    assert_eq!(out.code, Some(exit), "exit code of {code}\n{out}");
    assert_eq!(v["exit"], exit, "exit member\n{out}");
    (out, v)
}

fn explain(env: &TestEnv, secret: &str, args: &[&str]) -> Value {
    explain_at(env, NOW, secret, args).1
}

/// The row of `check`.
fn row<'a>(v: &'a Value, check: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no row {check} in {v}"))
}

/// The rows that failed, in order.
fn failed(v: &Value) -> Vec<&str> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "fail")
        .map(|r| r["check"].as_str().unwrap())
        .collect()
}

/// Asserts the verdict says `code` with `message`, exactly `fails` failed, and
/// returns the first failing row.
fn expect<'a>(v: &'a Value, code: &str, message: &str, fails: &[&str]) -> &'a Value {
    assert_verdict(&v["verdict"], code, message);
    assert_eq!(failed(v), fails, "failed rows in {v:#}");
    row(v, fails[0])
}

// ---- a valid key ----

#[test]
fn a_valid_key_passes_every_check_it_has_and_the_rest_are_not_applicable() {
    let env = TestEnv::initialized();
    let k = env.create(
        "svc",
        &[
            "--scope",
            "read",
            "--deployment",
            "eu",
            "--allow-model",
            "m1",
            "--allow-ip",
            "192.0.2.0/24,10.0.0.0/8",
            "--rate-limit",
            "10/s",
            "--quota-total",
            "100",
            "--quota-daily",
            "50",
            "--quota-weekly",
            "70",
            "--quota-monthly",
            "90",
            "--credits",
            "20",
            "--expires",
            "30d",
        ],
    );
    let v = explain(
        &env,
        &k.secret,
        &[
            "--ip",
            "10.9.8.7",
            "--scope",
            "read",
            "--deployment",
            "eu",
            "--model",
            "m1",
            "--cost",
            "4",
            "--endpoint",
            "POST /v1/chat",
        ],
    );
    assert_verdict(&v["verdict"], "valid", "OK");
    assert_eq!(v["verdict"]["key_id"], k.id());
    assert_eq!(v["verdict"]["credits_remaining"], 16);
    for r in v["checks"].as_array().unwrap() {
        // No store-wide limit is set: those rows do not apply.
        let store = r["check"].as_str().is_some_and(|c| c.starts_with("store_"));
        assert_eq!(r["result"], if store { "n.a." } else { "pass" }, "{r}");
    }
    assert_eq!(row(&v, "ip_not_allowed")["matched"], "10.0.0.0/8");
    assert_eq!(row(&v, "expired")["expires_at"], at(30 * DAY));
    assert_eq!(row(&v, "credits_exhausted")["credits_remaining"], 20);
    assert_eq!(row(&v, "quota_weekly")["cap"], 70);
    assert_eq!(row(&v, "quota_weekly")["used"], 0);
    assert_eq!(v["key"]["id"], k.id());
    assert_eq!(v["presented"]["key_prefix"], k.prefix());
    assert_eq!(v["presented"]["format"], "ok");
    assert_eq!(v["request"]["endpoint"], "POST /v1/chat");
    assert_eq!(v["request"]["cost"], 4);
    assert_eq!(v["now"], NOW);

    // An unrestricted key asked nothing: the key checks pass, the rest do not apply.
    let plain = env.create("plain", &[]);
    let v = explain(&env, &plain.secret, &[]);
    assert_verdict(&v["verdict"], "valid", "OK");
    let results: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    let mut expected = vec!["n.a.", "pass", "pass", "pass"];
    expected.extend(["n.a."; 13]);
    assert_eq!(results, expected, "{v:#}");
    assert_eq!(row(&v, "ip_blocked")["detail"], "no --ip given");
    assert_eq!(row(&v, "rate_limited")["count"], Value::Null);
}

// ---- every check failing in turn ----

#[test]
fn a_blocked_ip_fails_the_first_row_with_the_blocks_end_and_the_key_is_still_checked() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &["--scope", "read"]);
    let ip = "203.0.113.9";
    for _ in 0..3 {
        env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    }
    let v = explain_at(&env, &at(60), &k.secret, &["--ip", ip, "--scope", "write"]).1;
    let r = expect(
        &v,
        "ip_blocked",
        "IP temporarily blocked",
        &["ip_blocked", "forbidden_scope"],
    );
    assert_eq!(r["blocked_until"], at(15 * MINUTE));
    assert_eq!(r["ip"], ip);
    assert_eq!(r["failed_attempts"], 3);
    assert_eq!(r["failed_auth_limit"], 3);
    // As verify: a blocked IP's verdict names no key; the explanation does.
    assert_eq!(v["verdict"]["key_id"], Value::Null);
    assert_eq!(row(&v, "invalid")["result"], "pass");
    assert_eq!(v["key"]["id"], k.id());
    // After the block (and the failures' window) the key is valid from that IP.
    let v = explain_at(&env, &at(16 * MINUTE), &k.secret, &["--ip", ip]).1;
    assert_verdict(&v["verdict"], "valid", "OK");
    assert_eq!(row(&v, "ip_blocked")["result"], "pass");
    assert_eq!(row(&v, "ip_blocked")["failed_attempts"], 0);
}

#[test]
fn an_invalid_key_says_why_and_leaves_the_key_checks_not_applicable() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let mut typo = k.secret.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let unknown = forge_secret("sk", "live", "0123456789ABCDEFGHIJabcdefghij01");
    for (presented, format, prefix) in [
        // A printable word may be a key of another format, imported: looked up by
        // its hash alone (SPEC §8); text with a space is no key at all.
        ("nonsense", "hash_only", None),
        ("not a key", "malformed", None),
        (typo.as_str(), "bad_checksum", Some(k.prefix())),
        (unknown.as_str(), "ok", Some("sk_live_0123")),
    ] {
        let v = explain(&env, presented, &[]);
        let r = expect(&v, "invalid", "Invalid API Key", &["invalid"]);
        assert_eq!(r["format"], format, "{v:#}");
        assert_eq!(r["key_id"], Value::Null);
        assert_eq!(v["presented"]["format"], format);
        assert_eq!(v["presented"]["key_prefix"], json_str(prefix));
        assert_eq!(v["key"], Value::Null);
        for name in &CHECKS[2..] {
            assert_eq!(row(&v, name)["result"], "n.a.", "{name}: {v:#}");
        }
    }
}

fn json_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.into()))
}

#[test]
fn a_revoked_a_disabled_and_an_expired_key_each_fail_their_row() {
    let env = TestEnv::initialized();
    let r = env.create("gone", &[]);
    env.run(&["revoke", "--yes", "gone", "--reason", "leaked"])
        .ok();
    let v = explain(&env, &r.secret, &[]);
    let row_ = expect(&v, "revoked", "API key has been revoked", &["revoked"]);
    assert_eq!(row_["state"], "revoked");
    assert_eq!(row_["revoke_reason"], "leaked");
    assert_eq!(row(&v, "inactive")["result"], "pass");

    let d = env.create("off", &[]);
    env.disable("off");
    let v = explain(&env, &d.secret, &[]);
    assert_eq!(
        expect(&v, "inactive", "Inactive API Key", &["inactive"])["state"],
        "disabled"
    );

    let e = env.create("short", &["--expires", "1h", "--scope", "read"]);
    let v = explain_at(&env, &at(2 * HOUR), &e.secret, &["--scope", "write"]).1;
    let row_ = expect(
        &v,
        "expired",
        "Expired API Key",
        &["expired", "forbidden_scope"],
    );
    assert_eq!(row_["expires_at"], at(HOUR));
    assert_eq!(row_["now"], at(2 * HOUR));
}

#[test]
fn the_allowlist_row_names_the_entry_that_matched_or_the_list_and_the_ip() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--allow-ip", "10.0.0.0/8,192.0.2.7"]);
    let v = explain(&env, &k.secret, &["--ip", "192.0.2.7"]);
    assert_verdict(&v["verdict"], "valid", "OK");
    assert_eq!(row(&v, "ip_not_allowed")["matched"], "192.0.2.7");
    for args in [&["--ip", "11.0.0.1"][..], &[]] {
        let v = explain(&env, &k.secret, args);
        let r = expect(
            &v,
            "ip_not_allowed",
            "IP address not allowed for this key",
            &["ip_not_allowed"],
        );
        assert_eq!(r["matched"], Value::Null);
        assert_eq!(
            r["allowed_ips"],
            serde_json::json!(["10.0.0.0/8", "192.0.2.7"])
        );
        assert_eq!(r["ip"], json_str(args.get(1).copied()));
    }
}

#[test]
fn deployment_scope_and_model_rows_show_what_the_key_allows_and_what_was_asked() {
    let env = TestEnv::initialized();
    let k = env.create(
        "svc",
        &[
            "--deployment",
            "eu",
            "--scope",
            "read",
            "--allow-model",
            "m1",
        ],
    );
    let v = explain(&env, &k.secret, &["--deployment", "us"]);
    let r = expect(
        &v,
        "forbidden_deployment",
        "API key is not authorized for this deployment.",
        &["forbidden_deployment"],
    );
    assert_eq!(
        (&r["deployment"], &r["requested"]),
        (&"eu".into(), &"us".into())
    );

    let v = explain(
        &env,
        &k.secret,
        &["--deployment", "eu", "--scope", "write", "--model", "m2"],
    );
    let r = expect(
        &v,
        "forbidden_scope",
        "API key lacks scope: write",
        &["forbidden_scope", "forbidden_model"],
    );
    assert_eq!(r["scopes"], serde_json::json!(["read"]));
    assert_eq!(r["requested"], "write");
    assert_eq!(
        row(&v, "forbidden_model")["allowed_models"],
        serde_json::json!(["m1"])
    );

    let v = explain(&env, &k.secret, &["--deployment", "eu", "--model", "m2"]);
    expect(
        &v,
        "forbidden_model",
        "API key is not authorized for this model.",
        &["forbidden_model"],
    );
    // No --scope asked: nothing to check.
    assert_eq!(row(&v, "forbidden_scope")["result"], "n.a.");
}

#[test]
fn rate_quota_and_credit_rows_show_the_window_counts_against_their_caps() {
    let env = TestEnv::initialized();
    let rate = env.create("rate", &["--rate-limit", "2/m", "--quota-daily", "2"]);
    for _ in 0..2 {
        env.expect_verify(NOW, &rate.secret, &[], "valid", "OK");
    }
    let v = explain(&env, &rate.secret, &[]);
    let r = expect(
        &v,
        "rate_limited",
        "Rate limit exceeded: 2 per minute",
        &["rate_limited", "quota_daily"],
    );
    assert_eq!(
        (&r["count"], &r["limit"], &r["rate_limit"]),
        (&2.into(), &2.into(), &"2/m".into())
    );
    assert_eq!(row(&v, "quota_daily")["used"], 2);

    for (window, flag, later) in [
        ("total", "--quota-total", 40 * DAY),
        ("daily", "--quota-daily", HOUR),
        ("weekly", "--quota-weekly", 2 * DAY),
        ("monthly", "--quota-monthly", 8 * DAY),
    ] {
        let k = env.create(&format!("q-{window}"), &[flag, "1"]);
        env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
        let v = explain_at(&env, &at(later), &k.secret, &[]).1;
        let name = format!("quota_{window}");
        let r = expect(
            &v,
            "quota_exceeded",
            &format!("Rate limit exceeded: quota {window}"),
            &[name.as_str()],
        );
        assert_eq!(
            (&r["cap"], &r["used"], &r["window"]),
            (&1.into(), &1.into(), &window.into())
        );
    }

    let c = env.create("metered", &["--credits", "5"]);
    env.expect_verify(NOW, &c.secret, &["--cost", "3"], "valid", "OK");
    let v = explain(&env, &c.secret, &["--cost", "3"]);
    let r = expect(
        &v,
        "credits_exhausted",
        "Credit limit reached",
        &["credits_exhausted"],
    );
    assert_eq!(
        (
            &r["credit_limit"],
            &r["credits_used"],
            &r["credits_remaining"],
            &r["cost"]
        ),
        (&5.into(), &3.into(), &2.into(), &3.into())
    );
    let v = explain(&env, &c.secret, &["--cost", "2"]);
    assert_verdict(&v["verdict"], "valid", "OK");
}

#[test]
fn a_rotated_keys_grace_period_is_its_expiry_and_names_its_successor() {
    let env = TestEnv::initialized();
    let old = env.create("web", &[]);
    let out = env.run(&["rotate", "--yes", "web", "--grace", "1h"]);
    out.ok();
    let new_secret = out.stdout.trim().to_string();
    let new = explain(&env, &new_secret, &[]);
    let new_id = new["key"]["id"].as_str().unwrap().to_string();

    let v = explain(&env, &old.secret, &[]);
    assert_verdict(&v["verdict"], "valid", "OK");
    let r = row(&v, "expired");
    assert_eq!(
        (&r["result"], &r["expires_at"]),
        (&"pass".into(), &at(HOUR).into())
    );
    assert_eq!(r["rotated_to"], new_id);
    assert!(r["detail"].as_str().unwrap().contains("grace"), "{r}");

    let v = explain_at(&env, &at(HOUR + 1), &old.secret, &[]).1;
    assert_eq!(
        expect(&v, "expired", "Expired API Key", &["expired"])["rotated_to"],
        new_id
    );
}

// ---- what --explain leaves alone ----

#[test]
fn explain_records_nothing_and_changes_no_counter_log_usage_or_audit() {
    let env = TestEnv::initialized();
    let k = env.create(
        "svc",
        &[
            "--quota-daily",
            "5",
            "--credits",
            "5",
            "--rate-limit",
            "3/m",
        ],
    );
    env.expect_verify(NOW, &k.secret, &["--ip", "10.0.0.1"], "valid", "OK");
    let before = env.snapshot();
    let logs = env.logs_json(&[]);
    let usage = env.usage_of(NOW, "svc");
    let audit = env.audit_json(&[]);
    let key = env.key_json("svc");
    for args in [
        &["--ip", "10.0.0.1"][..],
        &["--ip", "10.0.0.1", "--cost", "2", "--no-record"],
        &["--scope", "x", "--endpoint", "GET /x", "--duration-ms", "7"],
    ] {
        explain(&env, &k.secret, args);
    }
    explain(&env, "nonsense", &["--ip", "203.0.113.1"]);
    assert_eq!(env.snapshot(), before, "--explain changed the store");
    assert_eq!(env.logs_json(&[]), logs);
    assert_eq!(env.usage_of(NOW, "svc"), usage);
    assert_eq!(env.audit_json(&[]), audit);
    assert_eq!(env.key_json("svc"), key);
    assert_eq!(env.count_rows("requests"), 1);
    assert_eq!(env.count_rows("auth_failures"), 0);
}

#[test]
fn invalid_keys_under_explain_never_block_an_ip() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let k = env.create("svc", &[]);
    let ip = "198.51.100.4";
    for _ in 0..6 {
        let v = explain(&env, "nonsense", &["--ip", ip]);
        assert_eq!(row(&v, "ip_blocked")["result"], "pass");
        assert_eq!(row(&v, "ip_blocked")["failed_attempts"], 0);
    }
    env.expect_verify(NOW, &k.secret, &["--ip", ip], "valid", "OK");
    assert_eq!(env.count_rows("auth_failures"), 0);
    // Recorded failures are what count, and explain shows them as they add up.
    env.expect_verify(NOW, "nonsense", &["--ip", ip], "invalid", "Invalid API Key");
    let v = explain(&env, &k.secret, &["--ip", ip]);
    assert_eq!(row(&v, "ip_blocked")["failed_attempts"], 1);
}

// ---- input ----

#[test]
fn the_key_comes_from_key_env_too() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--scope", "read"]);
    let out = env
        .keyctl(&[
            "verify",
            "--explain",
            "--json",
            "--key-env",
            "API_KEY",
            "--scope",
            "write",
        ])
        .at(NOW)
        .with(|c| {
            c.env("API_KEY", format!("Bearer {}", k.secret));
        })
        .run();
    assert_eq!(out.code, Some(19), "{out}");
    assert!(!out.stdout.contains(&k.secret));
    let v = out.json();
    assert_eq!(v["key"]["id"], k.id());
    assert_eq!(failed(&v), ["forbidden_scope"]);
    // An unset variable is a usage error.
    let out = env
        .keyctl(&["verify", "--explain", "--key-env", "NOT_SET"])
        .run();
    out.fails(2);
}

#[test]
fn explain_with_stream_or_csv_is_a_one_line_usage_error() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    for args in [
        &["verify", "--explain", "--stream"][..],
        &["verify", "--stream", "--explain"],
        &["verify", "--explain", "--format", "csv"],
    ] {
        let out = env.run_with_stdin(args, format!("{}\n", k.secret).as_bytes());
        let line = out.fails(2);
        assert!(line.contains("--explain"), "{line}");
    }
    assert_eq!(env.count_rows("requests"), 0);
}

#[test]
fn the_table_shows_each_row_the_verdict_and_never_the_secret() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--scope", "read", "--credits", "2"]);
    let out = env.verify(
        NOW,
        &k.secret,
        &[
            "--explain",
            "--format",
            "table",
            "--scope",
            "write",
            "--cost",
            "3",
        ],
    );
    assert_eq!(out.code, Some(19), "{out}");
    assert!(!out.stdout.contains(&k.secret), "{out}");
    let lines = out.stdout_lines();
    assert_eq!(
        lines[0],
        format!("Key: svc ({}), {}...", k.id(), k.prefix())
    );
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(header, ["Check", "Result", "Detail"]);
    let rows = &lines[2..2 + CHECKS.len()];
    for (line, name) in rows.iter().zip(CHECKS) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], name, "{out}");
        let expected = match name {
            "forbidden_scope" | "credits_exhausted" => "fail",
            "invalid" | "revoked" | "inactive" => "pass",
            _ => "n.a.",
        };
        assert_eq!(words[1], expected, "{name}\n{out}");
    }
    assert!(rows[7].contains("write is not in [read]"), "{out}");
    assert!(
        rows[15].contains("2 of 2 credits left; this request costs 3"),
        "{out}"
    );
    assert_eq!(
        lines[2 + CHECKS.len()],
        "Verdict: forbidden_scope (403, exit 19): API key lacks scope: write"
    );
    assert_eq!(lines.len(), 3 + CHECKS.len(), "{out}");
    // Through a pipe without a format: json.
    let out = env.verify(NOW, &k.secret, &["--explain"]);
    assert_eq!(out.json()["verdict"]["code"], "valid");
}

#[test]
fn at_a_terminal_the_table_is_the_default() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--scope", "read"]);
    let mut command = env.command();
    command.env("API_KEY", &k.secret);
    let out = run_on_tty(
        command,
        &[
            "verify",
            "--explain",
            "--key-env",
            "API_KEY",
            "--scope",
            "write",
        ],
        120,
    );
    assert_eq!(out.code, Some(19), "{out}");
    assert!(!out.stdout.contains(&k.secret), "{out}");
    assert!(!out.stdout.contains('{'), "json at a terminal\n{out}");
    assert!(out.stdout.contains("Check"), "{out}");
    assert!(out.stdout.contains("write is not in [read]"), "{out}");
    assert!(
        out.stdout
            .contains("Verdict: forbidden_scope (403, exit 19): API key lacks scope: write"),
        "{out}"
    );
    // --json still prints json there.
    let mut command = env.command();
    command.env("API_KEY", &k.secret);
    let out = run_on_tty(
        command,
        &["verify", "--explain", "--json", "--key-env", "API_KEY"],
        120,
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.trim_start().starts_with('{'), "{out}");
}

// ---- the verdict is verify's ----

/// Over many keys and requests (a seeded mix of every restriction, times, IPs,
/// scopes, costs, blocked and unknown keys), explain's verdict object and exit code
/// are exactly those of `verify --no-record --json`.
#[test]
fn the_verdict_always_equals_that_of_verify_no_record() {
    let env = TestEnv::initialized();
    block_settings(&env);
    let blocked_ip = "203.0.113.66";
    for _ in 0..3 {
        env.expect_verify(
            NOW,
            "nonsense",
            &["--ip", blocked_ip],
            "invalid",
            "Invalid API Key",
        );
    }
    let options: [&[&str]; 8] = [
        &["--scope", "read"],
        &["--deployment", "eu"],
        &["--allow-model", "m1"],
        &["--allow-ip", "10.0.0.0/8"],
        &["--rate-limit", "2/m"],
        &["--quota-daily", "3"],
        &["--credits", "4"],
        &["--expires", "1h"],
    ];
    let mut rng = SplitMix64::new(16);
    let mut secrets = vec![
        "nonsense".to_string(),
        forge_secret("sk", "live", "0123456789ABCDEFGHIJabcdefghij01"),
    ];
    for i in 0..8 {
        let mut args: Vec<&str> = Vec::new();
        for (bit, opt) in options.iter().enumerate() {
            if (i == 0 && bit == 0) || rng.below(2) == 1 {
                args.extend_from_slice(opt);
            }
        }
        let k = env.create(&format!("k{i}"), &args);
        // Some history, so windows and credits have figures.
        for _ in 0..rng.below(4) {
            env.verify(NOW, &k.secret, &["--ip", "10.0.0.1", "--scope", "read"]);
        }
        match i {
            6 => env.disable(&format!("k{i}")),
            7 => env.revoke(&format!("k{i}")),
            _ => {}
        }
        secrets.push(k.secret);
    }
    let ips = [None, Some("10.1.1.1"), Some("192.0.2.1"), Some(blocked_ip)];
    let scopes = [None, Some("read"), Some("write")];
    let deployments = [None, Some("eu"), Some("us")];
    let models = [None, Some("m1"), Some("m2")];
    let times = [at(1), at(30 * MINUTE), at(2 * HOUR)];
    let mut codes = std::collections::BTreeSet::new();
    for round in 0..60 {
        let secret = &secrets[rng.below(secrets.len() as u64) as usize];
        let mut args: Vec<String> = Vec::new();
        let mut add = |flag: &str, value: Option<&str>| {
            if let Some(v) = value {
                args.push(flag.into());
                args.push(v.into());
            }
        };
        add("--ip", ips[rng.below(4) as usize]);
        add("--scope", scopes[rng.below(3) as usize]);
        add("--deployment", deployments[rng.below(3) as usize]);
        add("--model", models[rng.below(3) as usize]);
        let cost = rng.below(4).to_string();
        add("--cost", Some(&cost));
        let now = &times[rng.below(3) as usize];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut plain = vec!["--no-record"];
        plain.extend_from_slice(&args);
        let (out, verdict) = env.verify_json(now, secret, &plain);
        let (explained, v) = explain_at(&env, now, secret, &args);
        assert_eq!(
            v["verdict"], verdict,
            "round {round}: {args:?}\n{explained}"
        );
        assert_eq!(explained.code, out.code, "round {round}: {args:?}");
        // The first failing row is the verdict.
        let code = verdict["code"].as_str().unwrap().to_string();
        match failed(&v).first() {
            Some(first) => assert_eq!(row(&v, first)["code"], code, "round {round}"),
            None => assert_eq!(code, "valid", "round {round}"),
        }
        codes.insert(code);
    }
    // The mix reached many outcomes, not one.
    assert!(codes.len() >= 6, "outcomes reached: {codes:?}");
}
