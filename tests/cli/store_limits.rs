//! SPEC §8 store-wide limits and group multipliers: `config set rate-limit`,
//! `credit-limit` and `group-multiplier.GROUP`, their place in SPEC §3's order, the
//! cost charged, exactness with many processes at once, serve, stream and copy.

use serde_json::{json, Value};

use crate::group_commit::{answers_both_ways, state};
use crate::support::*;

fn set(env: &TestEnv, name: &str, value: &str) {
    env.run(&["config", "set", name, value]).ok();
}

fn get(env: &TestEnv, name: &str) -> String {
    let out = env.run(&["config", "get", name]);
    out.ok();
    out.stdout.trim_end().to_string()
}

/// The credits the store-wide counter holds: PostgreSQL's counter row, SQLite's
/// ledger's last row.
fn store_credits(env: &TestEnv) -> i64 {
    env.query_i64(if env.database().is_some() {
        "SELECT coalesce(max(credits_used), 0) FROM store_usage"
    } else {
        "SELECT coalesce((SELECT credits FROM store_events ORDER BY at DESC, n DESC LIMIT 1), 0)"
    })
}

#[test]
fn settings_are_validated_shown_and_audited() {
    let env = TestEnv::initialized();
    assert_eq!(get(&env, "rate-limit"), "none");
    assert_eq!(get(&env, "credit-limit"), "none");
    assert_eq!(get(&env, "group-multiplier.pro"), "1");
    for (name, input, shown) in [
        ("rate-limit", "10/s", "10/s"),
        ("rate-limit", " 600/minute ", "600/m"),
        ("credit-limit", "1000", "1000"),
        ("group-multiplier.pro", "1.50", "1.5"),
        ("group-multiplier.free tier", "0.0001", "0.0001"),
        ("group-multiplier.big", "10000", "10000"),
    ] {
        let out = env.run(&["config", "set", name, input]);
        out.ok();
        assert_eq!(out.stderr, format!("{name} = {shown}\n"));
        assert_eq!(get(&env, name), shown);
    }
    let out = env.run(&["config", "get", "--json", "group-multiplier.pro"]);
    assert_eq!(
        out.json(),
        json!({"name": "group-multiplier.pro", "value": "1.5", "default": "1", "is_default": false})
    );
    // Bad values: exit 2, one line naming the problem, nothing changed.
    for (name, bad, says) in [
        ("rate-limit", "0/s", "invalid rate-limit '0/s'"),
        ("rate-limit", "10/h", "unknown unit 'h'"),
        ("rate-limit", "ten", "invalid rate-limit 'ten'"),
        ("credit-limit", "0", "invalid credit-limit '0'"),
        ("credit-limit", "-5", "negative values are not allowed"),
        ("credit-limit", "9007199254740992", "too large"),
        ("group-multiplier.pro", "0", "must be more than 0"),
        (
            "group-multiplier.pro",
            "1.00001",
            "more than 4 decimal places",
        ),
        ("group-multiplier.pro", "10000.0001", "too large"),
        (
            "group-multiplier.pro",
            "-1",
            "negative values are not allowed",
        ),
        ("group-multiplier.pro", "1e3", "not a decimal number"),
    ] {
        let before = env.store_contents();
        let out = env.run(&["config", "set", name, bad]);
        let line = out.fails(2);
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains(says), "{name} {bad}: {line}");
        assert_eq!(
            env.store_contents(),
            before,
            "{name} {bad} changed the store"
        );
    }
    assert_eq!(get(&env, "group-multiplier.pro"), "1.5");
    // A group name that is no group: an unknown setting (exit 3).
    for name in ["group-multiplier.", "group-multiplier. pro", "rate-limits"] {
        let out = env.run(&["config", "set", name, "2"]);
        assert!(out.fails(3).contains("unknown setting"), "{out}");
    }

    // list: the fixed settings, then each multiplier that is set, by name.
    let out = env.run(&["config", "list", "--json"]);
    let rows = out.json();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[names.len() - 5..],
        [
            "rate-limit",
            "credit-limit",
            "group-multiplier.big",
            "group-multiplier.free tier",
            "group-multiplier.pro"
        ]
    );
    let table = env.run(&["config", "list"]);
    let pro = table
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("group-multiplier.pro"))
        .expect("a row for pro")
        .to_string();
    assert!(pro.contains("1.5") && pro.contains("(set)"), "{pro}");

    // none: back to no limit / a multiplier of 1 (not listed any more).
    set(&env, "group-multiplier.pro", "none");
    set(&env, "rate-limit", "none");
    assert_eq!(get(&env, "group-multiplier.pro"), "1");
    assert_eq!(get(&env, "rate-limit"), "none");
    let listed = env.run(&["config", "list"]);
    assert!(!listed.stdout.contains("group-multiplier.pro"), "{listed}");

    let events = env.audit_json(&["--action", "config"]);
    let settings: Vec<&str> = events
        .iter()
        .filter_map(|e| e["details"]["setting"].as_str())
        .collect();
    for name in ["rate-limit", "credit-limit", "group-multiplier.pro"] {
        assert!(settings.contains(&name), "{name} not audited: {settings:?}");
    }
}

#[test]
fn a_store_rate_limit_counts_every_key_and_answers_in_its_own_words() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    set(&env, "rate-limit", "3/s");
    for secret in [&a.secret, &b.secret, &a.secret] {
        env.expect_verify(NOW, secret, &[], "valid", "OK");
    }
    let message = "exceeded the 3 per second rate limit on your subscription";
    env.expect_verify(NOW, &b.secret, &[], "rate_limited", message);
    let v = env.expect_verify_json(NOW, &a.secret, &[], "rate_limited", message);
    assert_eq!(v["status"], 429);
    // Refusals do not count; checking only changes nothing.
    env.expect_verify(NOW, &a.secret, &["--no-record"], "rate_limited", message);
    // The next second is a new window.
    env.expect_verify(&now_plus(1), &b.secret, &[], "valid", "OK");
    set(&env, "rate-limit", "4/m");
    env.expect_verify(
        &now_plus(2),
        &a.secret,
        &[],
        "rate_limited",
        "exceeded the 4 per minute rate limit on your subscription",
    );
    env.expect_verify(&now_plus(61), &a.secret, &[], "valid", "OK");
}

#[test]
fn a_rate_limit_set_mid_traffic_counts_the_last_minute_from_the_log() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    for _ in 0..2 {
        env.expect_verify(NOW, &a.secret, &[], "valid", "OK");
    }
    env.expect_verify(&now_plus(-61), &a.secret, &[], "valid", "OK");
    env.run_at(NOW, &["config", "set", "rate-limit", "3/m"])
        .ok();
    env.expect_verify(NOW, &a.secret, &[], "valid", "OK");
    env.expect_verify(
        NOW,
        &a.secret,
        &[],
        "rate_limited",
        "exceeded the 3 per minute rate limit on your subscription",
    );
}

#[test]
fn a_store_credit_limit_counts_every_key_and_what_was_spent_before_it() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    env.expect_verify(NOW, &a.secret, &["--cost", "4"], "valid", "OK");
    set(&env, "credit-limit", "10");
    assert_eq!(store_credits(&env), 4, "spent before the limit counts");
    env.expect_verify(NOW, &b.secret, &["--cost", "5"], "valid", "OK");
    env.expect_verify(
        NOW,
        &a.secret,
        &["--cost", "2"],
        "credits_exhausted",
        "Credit limit reached",
    );
    env.expect_verify(NOW, &a.secret, &["--cost", "1"], "valid", "OK");
    env.expect_verify(NOW, &b.secret, &["--cost", "0"], "valid", "OK");
    env.expect_verify(
        NOW,
        &b.secret,
        &["--cost", "1"],
        "credits_exhausted",
        "Credit limit reached",
    );
    assert_eq!(store_credits(&env), 10);
    // Raising it lets requests through again; the spend so far stays counted.
    set(&env, "credit-limit", "11");
    env.expect_verify(NOW, &b.secret, &["--cost", "1"], "valid", "OK");
    env.expect_verify(
        NOW,
        &b.secret,
        &["--cost", "1"],
        "credits_exhausted",
        "Credit limit reached",
    );
}

#[test]
fn a_group_multiplier_charges_the_rounded_up_cost_to_the_key_and_the_log() {
    let env = TestEnv::initialized();
    let pro = env.create("pro", &["--group", "pro", "--credits", "100"]);
    let plain = env.create("plain", &["--credits", "100"]);
    set(&env, "group-multiplier.pro", "1.1");
    set(&env, "credit-limit", "1000");
    let v = env.expect_verify_json(NOW, &pro.secret, &["--cost", "50"], "valid", "OK");
    assert_eq!(v["credits_remaining"], 45, "50 x 1.1 = 55 charged");
    let v = env.expect_verify_json(NOW, &plain.secret, &["--cost", "50"], "valid", "OK");
    assert_eq!(
        v["credits_remaining"], 50,
        "no multiplier for another group"
    );
    assert_eq!(env.key_json("pro")["credits_used"], 55);
    let logs = env.logs_json(&["--limit", "10"]);
    let charged: Vec<u64> = logs
        .iter()
        .map(|r| r["credits"].as_u64().unwrap())
        .collect();
    assert_eq!(charged, [50, 55], "the log shows the charged cost");
    assert_eq!(store_credits(&env), 105);
    // 45 left: 41 x 1.1 = 45.1 rounds up to 46, too many; checked without a
    // record too.
    for extra in [&["--no-record"][..], &[]] {
        let mut args = vec!["--cost", "41"];
        args.extend_from_slice(extra);
        env.expect_verify(
            NOW,
            &pro.secret,
            &args,
            "credits_exhausted",
            "Credit limit reached",
        );
    }
    env.expect_verify(NOW, &pro.secret, &["--cost", "40"], "valid", "OK");
    assert_eq!(env.key_json("pro")["credits_used"], 99);
    let usage = env.usage_of(NOW, "pro");
    assert_eq!(usage["last_30d"]["credits"], 99, "{usage}");
}

/// The row of a check in `verify --explain --json`.
fn explained(env: &TestEnv, now: &str, secret: &str, args: &[&str]) -> (Value, Vec<Value>) {
    let mut all = vec!["verify", "--explain", "--json"];
    all.extend_from_slice(args);
    let out = env.run_at_with_stdin(now, &all, format!("{secret}\n").as_bytes());
    let v = out.json();
    let checks = v["checks"].as_array().cloned().unwrap_or_default();
    (v["verdict"].clone(), checks)
}

fn result_of<'a>(checks: &'a [Value], check: &str) -> &'a str {
    checks
        .iter()
        .find(|c| c["check"] == check)
        .and_then(|c| c["result"].as_str())
        .unwrap_or("missing")
}

#[test]
fn the_order_is_key_rate_store_rate_quotas_key_credits_store_credits() {
    let env = TestEnv::initialized();
    let k = env.create(
        "k",
        &[
            "--rate-limit",
            "1/s",
            "--quota-total",
            "3",
            "--credits",
            "4",
        ],
    );
    let l = env.create("l", &[]);
    let m = env.create("m", &["--credits", "3"]);
    set(&env, "rate-limit", "2/s");
    set(&env, "credit-limit", "7");
    let (_, checks) = explained(&env, NOW, &k.secret, &[]);
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, crate::explain::CHECKS);
    assert_eq!(
        names[9..12],
        ["rate_limited", "store_rate_limited", "quota_total"]
    );
    assert_eq!(
        names[15..],
        ["credits_exhausted", "store_credits_exhausted"]
    );
    let store_rate = &checks[10];
    assert_eq!(store_rate["code"], "rate_limited");
    assert_eq!(
        (store_rate["count"].clone(), store_rate["limit"].clone()),
        (json!(0), json!(2))
    );
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    env.expect_verify(NOW, &l.secret, &[], "valid", "OK");
    // Both rate limits reached: the key's decides.
    let (verdict, checks) = explained(&env, NOW, &k.secret, &[]);
    assert_eq!(result_of(&checks, "rate_limited"), "fail");
    assert_eq!(result_of(&checks, "store_rate_limited"), "fail");
    assert_eq!(verdict["message"], "Rate limit exceeded: 1 per second");
    env.expect_verify(
        NOW,
        &k.secret,
        &[],
        "rate_limited",
        "Rate limit exceeded: 1 per second",
    );
    env.expect_verify(
        NOW,
        &l.secret,
        &[],
        "rate_limited",
        "exceeded the 2 per second rate limit on your subscription",
    );
    env.expect_verify(&now_plus(1), &k.secret, &[], "valid", "OK");
    env.expect_verify(&now_plus(2), &k.secret, &[], "valid", "OK");
    // The store rate limit and the quota reached (a new second for the key, the
    // store's two taken by l): the store's rate limit decides.
    env.expect_verify(&now_plus(3), &l.secret, &[], "valid", "OK");
    env.expect_verify(&now_plus(3), &l.secret, &[], "valid", "OK");
    let (verdict, checks) = explained(&env, &now_plus(3), &k.secret, &["--cost", "2"]);
    assert_eq!(result_of(&checks, "rate_limited"), "pass");
    assert_eq!(result_of(&checks, "store_rate_limited"), "fail");
    assert_eq!(result_of(&checks, "quota_total"), "fail");
    assert_eq!(result_of(&checks, "credits_exhausted"), "fail");
    assert_eq!(
        verdict["message"],
        "exceeded the 2 per second rate limit on your subscription"
    );
    // The quota and the key's credits reached: the quota decides.
    let (verdict, checks) = explained(&env, &now_plus(4), &k.secret, &["--cost", "2"]);
    assert_eq!(result_of(&checks, "store_rate_limited"), "pass");
    assert_eq!(verdict["code"], "quota_exceeded");
    env.expect_verify(
        &now_plus(4),
        &k.secret,
        &["--cost", "2"],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
    // Store credits: k 3 and l 3, at cost 1 each: 6 spent of 7.
    assert_eq!(store_credits(&env), 6);
    // m's own 3 credits would do; the store's 1 left does not.
    let (verdict, checks) = explained(&env, &now_plus(5), &m.secret, &["--cost", "2"]);
    assert_eq!(result_of(&checks, "credits_exhausted"), "pass");
    assert_eq!(result_of(&checks, "store_credits_exhausted"), "fail");
    assert_eq!(verdict["code"], "credits_exhausted");
    let store = checks
        .iter()
        .find(|c| c["check"] == "store_credits_exhausted")
        .unwrap();
    assert_eq!(
        (
            store["credit_limit"].clone(),
            store["credits_used"].clone(),
            store["credits_remaining"].clone(),
            store["cost"].clone()
        ),
        (json!(7), json!(6), json!(1), json!(2))
    );
    // Both credit checks failing: the key's is the first failure.
    let (_, checks) = explained(&env, &now_plus(5), &m.secret, &["--cost", "4"]);
    let first = checks.iter().find(|c| c["result"] == "fail").unwrap();
    assert_eq!(first["check"], "credits_exhausted");
    env.expect_verify(
        &now_plus(5),
        &m.secret,
        &["--cost", "2"],
        "credits_exhausted",
        "Credit limit reached",
    );
    // The table says which is the store's.
    let out = env.run_at_with_stdin(
        &now_plus(5),
        &["verify", "--explain", "--cost", "2"],
        format!("{}\n", m.secret).as_bytes(),
    );
    assert!(
        out.stdout
            .contains("1 of 7 store-wide credits left; this request costs 2"),
        "{out}"
    );
}

/// A key whose credits refill is charged from its balance as of the request, and the
/// same charge goes to the store-wide counter and its rate ledger (on PostgreSQL both
/// in the request's own statement).
#[test]
fn a_refilled_key_is_charged_store_wide_as_any_other() {
    let env = TestEnv::initialized();
    set(&env, "credit-limit", "100");
    set(&env, "rate-limit", "50/m");
    let key = env.create("refilled", &["--credits", "10", "--refill", "10/day"]);
    for _ in 0..3 {
        env.verify(NOW, &key.secret, &["--cost", "2"]).ok();
    }
    assert_eq!(store_credits(&env), 6);
    assert_eq!(env.key_json("refilled")["credits_used"], 6);
    let out = env.verify(NOW, &key.secret, &["--cost", "5"]);
    assert_eq!(out.code, Some(15), "{out}");
    assert_eq!(store_credits(&env), 6);
    assert_eq!(
        env.logs_json(&["--limit", "10", "--status", "valid"]).len(),
        3
    );
}

/// Runs `verify ARGS` in `procs` processes at once, each again and again until it
/// is refused: the accepted count of each, and every refusal's exit code. A process
/// stops unrefused (None) once it alone was accepted `most` times, more than the
/// limit under test allows all of them: a limit that never refuses fails the test
/// instead of hanging it.
fn verify_until_refused(
    env: &TestEnv,
    secrets: &[String],
    args: &[&str],
    most: u64,
) -> (Vec<u64>, Vec<Option<i32>>) {
    std::thread::scope(|s| {
        let runs: Vec<_> = secrets
            .iter()
            .map(|secret| {
                s.spawn(move || {
                    let mut accepted = 0;
                    loop {
                        let out = env.verify(NOW, secret, args);
                        out.no_panic();
                        if out.code != Some(0) {
                            return (accepted, out.code);
                        }
                        accepted += 1;
                        if accepted == most {
                            return (accepted, None);
                        }
                    }
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a verifying thread"))
            .unzip()
    })
}

fn four_keys(env: &TestEnv) -> Vec<String> {
    (0..4)
        .map(|i| env.create(&format!("k{i}"), &[]).secret)
        .collect()
}

#[test]
fn four_processes_at_once_spend_exactly_the_store_credit_limit() {
    let env = TestEnv::initialized();
    let secrets = four_keys(&env);
    set(&env, "credit-limit", "30");
    let (accepted, refusals) = verify_until_refused(&env, &secrets, &["--cost", "1"], 31);
    assert_eq!(accepted.iter().sum::<u64>(), 30, "{accepted:?}");
    assert_eq!(refusals, [Some(15); 4]);
    assert_eq!(store_credits(&env), 30);
    let valid = env.logs_json(&["--limit", "1000", "--status", "valid"]);
    assert_eq!(valid.len(), 30);
    let spent: u64 = (0..4)
        .map(|i| {
            env.key_json(&format!("k{i}"))["credits_used"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(spent, 30);
}

#[test]
fn four_processes_at_once_get_exactly_the_store_rate_limit_in_one_window() {
    let env = TestEnv::initialized();
    let secrets = four_keys(&env);
    set(&env, "rate-limit", "25/m");
    // KEYCTL_NOW is fixed: every request falls in one window.
    let (accepted, refusals) = verify_until_refused(&env, &secrets, &[], 26);
    assert_eq!(accepted.iter().sum::<u64>(), 25, "{accepted:?}");
    assert_eq!(refusals, [Some(21); 4]);
    let valid = env.logs_json(&["--limit", "1000", "--status", "valid"]);
    assert_eq!(valid.len(), 25);
}

#[test]
fn four_streams_at_once_spend_exactly_the_store_credit_limit() {
    // Group commit under contention: groups that meet a held row fall back to one
    // transaction per request, and the total stays exact.
    let env = TestEnv::initialized();
    let secrets = four_keys(&env);
    set(&env, "credit-limit", "40");
    set(&env, "rate-limit", "1000/m");
    let codes: Vec<Vec<String>> = std::thread::scope(|s| {
        let runs: Vec<_> = secrets
            .iter()
            .map(|secret| {
                let env = &env;
                s.spawn(move || {
                    let input: String = (0..20)
                        .map(|_| format!("{}\n", json!({"key": secret, "cost": 1})))
                        .collect();
                    let out = env.run_with_stdin(&["verify", "--stream"], input.as_bytes());
                    out.ok();
                    out.stdout_lines()
                        .iter()
                        .map(|l| {
                            assert_verdict_line(&out, l)["code"]
                                .as_str()
                                .unwrap()
                                .to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a stream"))
            .collect()
    });
    let all: Vec<&String> = codes.iter().flatten().collect();
    assert_eq!(all.len(), 80);
    assert_eq!(all.iter().filter(|c| **c == "valid").count(), 40);
    assert_eq!(
        all.iter().filter(|c| **c == "credits_exhausted").count(),
        40
    );
    assert_eq!(store_credits(&env), 40);
}

/// Two stores alike (the second a copy of the first) with store-wide limits: the
/// same stream lines one at a time and all written up front give the same answers,
/// counters and log (group commit, SPEC §7).
fn stream_twins_agree(settings: &[(&str, &str)], lines_per_key: usize) -> Vec<String> {
    let a = TestEnv::initialized();
    let mut keys = Vec::new();
    for (name, flags) in [
        ("pro", &["--group", "pro"][..]),
        ("capped", &["--credits", "7"][..]),
        ("rated", &["--rate-limit", "2/m"][..]),
        ("plain", &[][..]),
    ] {
        keys.push((name.to_string(), a.create(name, flags).secret));
    }
    for (name, value) in settings {
        set(&a, name, value);
    }
    let b = TestEnv::new();
    let to = b.location();
    a.run(&["copy", "--to", to.to_str().expect("utf-8 location")])
        .ok();
    let mut lines = Vec::new();
    for i in 0..lines_per_key {
        for (_, secret) in &keys {
            lines.push(json!({"key": secret, "cost": 1 + i % 3}).to_string());
        }
    }
    let piped = answers_both_ways(&a, &b, &lines);
    assert_eq!(
        state(&a, &keys),
        state(&b, &keys),
        "the same counters and log"
    );
    assert_eq!(store_credits(&a), store_credits(&b));
    piped
        .iter()
        .map(|v| v["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_stream_with_a_store_rate_limit_gives_what_one_request_at_a_time_gives() {
    let messages = stream_twins_agree(&[("rate-limit", "10/m")], 5);
    let refused = "exceeded the 10 per minute rate limit on your subscription";
    assert_eq!(messages.iter().filter(|m| *m == "OK").count(), 10);
    assert!(messages.iter().any(|m| m == refused), "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m == "Rate limit exceeded: 2 per minute"),
        "{messages:?}"
    );
}

#[test]
fn a_stream_with_a_store_credit_limit_and_a_multiplier_gives_what_one_at_a_time_gives() {
    let messages = stream_twins_agree(
        &[("credit-limit", "25"), ("group-multiplier.pro", "2.5")],
        6,
    );
    assert!(
        messages.iter().any(|m| m == "Credit limit reached"),
        "{messages:?}"
    );
}

#[test]
fn serve_answers_a_store_rate_limit_429_on_v1_and_rate_limited_on_v2() {
    let env = TestEnv::initialized();
    let key = env.create("svc", &[]);
    set(&env, "rate-limit", "1/m");
    let server = env.serve(&[]);
    let body = json!({"key": key.secret}).to_string();
    assert_eq!(server.verify(&body).status, 200);
    let r = server.verify(&body);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_eq!(v["code"], "rate_limited");
    assert_eq!(
        v["message"],
        "exceeded the 1 per minute rate limit on your subscription"
    );
    let r = server.request(
        "POST",
        "/v2/keys.verifyKey",
        &[("Content-Type", "application/json")],
        json!({"key": key.secret}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["code"], "RATE_LIMITED");
    server.terminate();
}

/// A store with a store-wide `credit-limit` and a `3/m` rate limit, whose one key has
/// spent 4 credits in two accepted requests (the copy tests' starting point).
fn four_credits_spent_of(credit_limit: &str) -> (TestEnv, Created) {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    set(&env, "credit-limit", credit_limit);
    set(&env, "rate-limit", "3/m");
    env.expect_verify(NOW, &a.secret, &["--cost", "2"], "valid", "OK");
    env.expect_verify(NOW, &a.secret, &["--cost", "2"], "valid", "OK");
    (env, a)
}

/// The counter is a row of its own on PostgreSQL and the ledger's last row on SQLite:
/// `copy` from the suite's store into a file and from the file into a fresh store
/// (PostgreSQL to SQLite and back on the PostgreSQL run) carries the credits and the
/// rate window both ways.
#[test]
fn copy_carries_the_store_wide_counter_between_backends_both_ways() {
    let (env, a) = four_credits_spent_of("6");
    let file = env.root().join("moved.db");
    let file = file.to_str().expect("utf-8 path");
    env.run(&["copy", "--to", file]).ok();
    let back = TestEnv::new();
    let to = back.location();
    env.run(&[
        "--db",
        file,
        "copy",
        "--to",
        to.to_str().expect("utf-8 location"),
    ])
    .ok();
    assert_eq!(store_credits(&back), 4);
    for args in [&["--db", file][..], &[]] {
        let on = |cost: &'static str| {
            let mut all = args.to_vec();
            all.extend(["--cost", cost]);
            all
        };
        let there = if args.is_empty() { &back } else { &env };
        there.expect_verify(
            NOW,
            &a.secret,
            &on("3"),
            "credits_exhausted",
            "Credit limit reached",
        );
        there.expect_verify(NOW, &a.secret, &on("2"), "valid", "OK");
        there.expect_verify(
            NOW,
            &a.secret,
            &on("0"),
            "rate_limited",
            "exceeded the 3 per minute rate limit on your subscription",
        );
    }
    assert_eq!(store_credits(&back), 6);
}

#[test]
fn copy_carries_the_store_wide_counter_and_ledger() {
    let (env, a) = four_credits_spent_of("5");
    let copy = TestEnv::new();
    let to = copy.location();
    env.run(&["copy", "--to", to.to_str().expect("utf-8 location")])
        .ok();
    assert_eq!(store_credits(&copy), 4);
    copy.expect_verify(
        NOW,
        &a.secret,
        &["--cost", "2"],
        "credits_exhausted",
        "Credit limit reached",
    );
    copy.expect_verify(NOW, &a.secret, &["--cost", "1"], "valid", "OK");
    copy.expect_verify(
        NOW,
        &a.secret,
        &["--cost", "0"],
        "rate_limited",
        "exceeded the 3 per minute rate limit on your subscription",
    );
}
