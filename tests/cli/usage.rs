//! `keyctl usage [KEYREF] [--days N]`: requests per UTC day (accepted, rejected) and
//! credits, as json, csv, a table, or a bar chart in a terminal; and the 24 h / 7 d /
//! 30 d figures and the 30-day sparkline of `show`.

use serde_json::{json, Value};

use crate::support::*;

fn at(secs: i64) -> String {
    now_plus(secs)
}

fn day(date: &str, accepted: u64, rejected: u64, credits: u64) -> Value {
    json!({"date": date, "accepted": accepted, "rejected": rejected, "credits": credits})
}

fn usage_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["usage", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.ok();
    let ordered = Ordered::parse(&out.stdout);
    assert_eq!(ordered.keys(), ["key_id", "key_name", "days", "totals"]);
    for d in ordered.get("days").items() {
        assert_eq!(d.keys(), ["date", "accepted", "rejected", "credits"]);
    }
    assert_eq!(
        ordered.get("totals").keys(),
        ["accepted", "rejected", "credits"]
    );
    out.json()
}

/// Keys `a` (scope read) and `b`, and requests on both sides of UTC midnights:
/// 2026-10-10 a valid (outside 30 days); 11-21 08:00 a valid, 3 credits; 11-21 09:00
/// a forbidden_scope; 11-22 23:59:59.999 a valid; 11-23 00:00 b valid, 2 credits;
/// 11-23 12:00 (NOW) a forged key: invalid.
struct Fixture {
    env: TestEnv,
    a: Created,
    b: Created,
}

fn fixture() -> Fixture {
    let env = TestEnv::initialized();
    let a = env.create_at("2026-09-01T00:00:00Z", "a", &["--scope", "read"]);
    let b = env.create_at("2026-09-01T00:00:00Z", "b", &[]);
    env.expect_verify("2026-10-10T10:00:00Z", &a.secret, &[], "valid", "OK");
    env.expect_verify(
        "2026-11-21T08:00:00Z",
        &a.secret,
        &["--cost", "3"],
        "valid",
        "OK",
    );
    env.expect_verify(
        "2026-11-21T09:00:00Z",
        &a.secret,
        &["--scope", "write"],
        "forbidden_scope",
        "API key lacks scope: write",
    );
    env.expect_verify("2026-11-22T23:59:59.999Z", &a.secret, &[], "valid", "OK");
    env.expect_verify(
        "2026-11-23T00:00:00Z",
        &b.secret,
        &["--cost", "2"],
        "valid",
        "OK",
    );
    let forged = forge_secret("sk", "live", "ZYXWVUTSRQzyxwvutsrq987654321012");
    env.expect_verify(NOW, &forged, &[], "invalid", "Invalid API Key");
    Fixture { env, a, b }
}

#[test]
fn all_keys_usage_counts_every_request_including_invalid_keys() {
    let f = fixture();
    let v = usage_json(&f.env, &["--days", "4"]);
    assert_eq!(
        v,
        json!({
            "key_id": null,
            "key_name": null,
            "days": [
                day("2026-11-20", 0, 0, 0),
                day("2026-11-21", 1, 1, 3),
                day("2026-11-22", 1, 0, 1),
                day("2026-11-23", 1, 1, 2),
            ],
            "totals": {"accepted": 3, "rejected": 2, "credits": 6},
        })
    );
}

#[test]
fn one_keys_usage_counts_only_its_requests() {
    let f = fixture();
    for r in ["a", f.a.id(), f.a.prefix()] {
        let v = usage_json(&f.env, &["--days", "4", r]);
        assert_eq!(
            v,
            json!({
                "key_id": f.a.id(),
                "key_name": "a",
                "days": [
                    day("2026-11-20", 0, 0, 0),
                    day("2026-11-21", 1, 1, 3),
                    day("2026-11-22", 1, 0, 1),
                    day("2026-11-23", 0, 0, 0),
                ],
                "totals": {"accepted": 2, "rejected": 1, "credits": 4},
            }),
            "usage {r}"
        );
    }
    let v = usage_json(&f.env, &["b", "--days", "2"]);
    assert_eq!(
        v["days"],
        json!([day("2026-11-22", 0, 0, 0), day("2026-11-23", 1, 0, 2)])
    );
}

#[test]
fn days_defaults_to_30_ending_today_with_every_day_present() {
    let f = fixture();
    let v = usage_json(&f.env, &[]);
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[0]["date"], "2026-10-25");
    assert_eq!(days[29]["date"], "2026-11-23");
    let zero_days = days
        .iter()
        .filter(|d| d["accepted"] == 0 && d["rejected"] == 0 && d["credits"] == 0)
        .count();
    assert_eq!(zero_days, 27);
    // The 2026-10-10 request is outside the default 30 days, inside 45.
    assert_eq!(v["totals"]["accepted"], 3);
    let v = usage_json(&f.env, &["--days", "45", "a"]);
    assert_eq!(v["days"].as_array().unwrap().len(), 45);
    assert_eq!(v["days"][0]["date"], "2026-10-10");
    assert_eq!(v["days"][0]["accepted"], 1);
    assert_eq!(v["totals"]["accepted"], 3);
    // One day is today alone.
    let v = usage_json(&f.env, &["--days", "1"]);
    assert_eq!(v["days"], json!([day("2026-11-23", 1, 1, 2)]));
}

#[test]
fn csv_and_table_have_one_row_per_day() {
    let f = fixture();
    let out = f.env.run(&["usage", "--format", "csv", "--days", "3"]);
    out.ok();
    assert_eq!(
        out.stdout,
        "date,accepted,rejected,credits\n\
         2026-11-21,1,1,3\n\
         2026-11-22,1,0,1\n\
         2026-11-23,1,1,2\n"
    );
    let out = f.env.run(&["usage", "--days", "3", "a"]);
    out.ok();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["Date", "Accepted", "Rejected", "Credits"],
            vec!["2026-11-21", "1", "1", "3"],
            vec!["2026-11-22", "1", "0", "1"],
            vec!["2026-11-23", "0", "0", "0"],
        ]
    );
}

#[test]
fn usage_in_a_terminal_is_a_bar_chart_with_totals() {
    let f = fixture();
    let out = run_on_tty(f.env.command(), &["usage", "--days", "3"], 120);
    out.ok();
    assert!(
        out.stdout.contains("Requests per day, all keys, UTC"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("total: 3 accepted, 2 rejected, 6 credits"),
        "{out}"
    );
    for date in ["2026-11-21", "2026-11-22", "2026-11-23"] {
        assert!(out.stdout.contains(date), "{date} missing\n{out}");
    }
    assert!(
        out.stdout.contains('█') && out.stdout.contains('░'),
        "{out}"
    );
    let out = run_on_tty(
        f.env.command(),
        &["usage", "--days", "3", "--no-color", "b"],
        120,
    );
    out.ok();
    assert!(
        out.stdout
            .contains(&format!("Requests per day for b ({}), UTC", f.b.id())),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("total: 1 accepted, 0 rejected, 2 credits"),
        "{out}"
    );
    // --json in a terminal is still json.
    let out = run_on_tty(f.env.command(), &["usage", "--json", "--days", "2"], 120);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("json on a terminal");
    assert_eq!(v["totals"]["accepted"], 2);
}

#[test]
fn a_deleted_keys_usage_is_still_there_by_id() {
    let f = fixture();
    f.env.run(&["delete", "--yes", "--force", "a"]).ok();
    let v = usage_json(&f.env, &["--days", "4", f.a.id()]);
    assert_eq!(v["key_id"], f.a.id());
    assert_eq!(
        v["totals"],
        json!({"accepted": 2, "rejected": 1, "credits": 4})
    );
    // The all-keys figures keep it too.
    let v = usage_json(&f.env, &["--days", "4"]);
    assert_eq!(v["totals"]["accepted"], 3);
}

#[test]
fn bad_days_or_an_unknown_key_is_refused() {
    let f = fixture();
    for bad in ["0", "-1", "x", "3661", ""] {
        f.env.run(&["usage", "--days", bad]).fails(2);
    }
    f.env.run(&["usage", "nosuch"]).fails(3);
    f.env.run(&["usage", "--days", "3660"]).ok();
}

// ---- `show` usage figures ----

/// Requests of one key (created 60 days ago), oldest first: -40d valid; -20d valid
/// (2 credits); 7d+1s ago rejected; 7d-1s ago valid; 24h+1s ago valid; 24h-1s ago
/// rejected; 1h ago valid (3 credits).
fn windows_fixture() -> (TestEnv, Created) {
    let env = TestEnv::initialized();
    let k = env.create_at(&at(-60 * DAY), "w", &["--scope", "read"]);
    let s = &k.secret;
    let reject = ["--scope", "write"];
    let lacks = "API key lacks scope: write";
    env.expect_verify(&at(-40 * DAY), s, &[], "valid", "OK");
    env.expect_verify(&at(-20 * DAY), s, &["--cost", "2"], "valid", "OK");
    env.expect_verify(&at(-7 * DAY - 1), s, &reject, "forbidden_scope", lacks);
    env.expect_verify(&at(-7 * DAY + 1), s, &[], "valid", "OK");
    env.expect_verify(&at(-DAY - 1), s, &[], "valid", "OK");
    env.expect_verify(&at(-DAY + 1), s, &reject, "forbidden_scope", lacks);
    env.expect_verify(&at(-HOUR), s, &["--cost", "3"], "valid", "OK");
    (env, k)
}

fn figures(requests: u64, accepted: u64, rejected: u64, credits: u64) -> Value {
    json!({"requests": requests, "accepted": accepted, "rejected": rejected, "credits": credits})
}

#[test]
fn show_json_reports_usage_for_the_last_24h_7d_and_30d() {
    let (env, _) = windows_fixture();
    let out = env.run(&["show", "--json", "w"]);
    out.ok();
    let ordered = Ordered::parse(&out.stdout);
    assert_eq!(
        ordered.get("usage").keys(),
        ["last_24h", "last_7d", "last_30d"]
    );
    for w in ["last_24h", "last_7d", "last_30d"] {
        assert_eq!(
            ordered.get("usage").get(w).keys(),
            ["requests", "accepted", "rejected", "credits"]
        );
    }
    assert_eq!(
        out.json()["usage"],
        json!({
            "last_24h": figures(2, 1, 1, 3),
            "last_7d": figures(4, 3, 1, 5),
            "last_30d": figures(6, 4, 2, 7),
        })
    );
    // Two seconds on, the requests of 24h-1s and 7d-1s ago have left their windows.
    assert_eq!(
        env.usage_of(&at(2), "w"),
        json!({
            "last_24h": figures(1, 1, 0, 3),
            "last_7d": figures(3, 2, 1, 4),
            "last_30d": figures(6, 4, 2, 7),
        })
    );
    // Thirty days on, nothing is left in any window.
    let zero = figures(0, 0, 0, 0);
    assert_eq!(
        env.usage_of(&at(31 * DAY), "w"),
        json!({"last_24h": zero, "last_7d": zero, "last_30d": zero})
    );
}

#[test]
fn show_table_reports_the_same_figures() {
    let (env, _) = windows_fixture();
    let out = env.run(&["show", "w"]);
    out.ok();
    for (label, text) in [
        (
            "Usage 24h",
            "2 requests (1 accepted, 1 rejected), 3 credits",
        ),
        ("Usage 7d", "4 requests (3 accepted, 1 rejected), 5 credits"),
        (
            "Usage 30d",
            "6 requests (4 accepted, 2 rejected), 7 credits",
        ),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label} line\n{out}"));
        assert!(line.contains(text), "{line:?} lacks {text:?}");
    }
    // No sparkline off a terminal.
    assert!(!out.stdout.contains("Last 30 days"), "{out}");
}

#[test]
fn show_in_a_terminal_adds_a_30_day_sparkline() {
    let (env, _) = windows_fixture();
    let out = run_on_tty(env.command(), &["show", "--no-color", "w"], 200);
    out.ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Last 30 days"))
        .unwrap_or_else(|| panic!("no sparkline\n{out}"));
    // UTC days 2026-10-25 .. 2026-11-23: every request but the one 40 days ago.
    assert!(line.ends_with("(6 requests)"), "{line:?}");
    let sparks = line
        .chars()
        .filter(|c| ('\u{2581}'..='\u{2588}').contains(c))
        .count();
    assert_eq!(sparks, 4, "four days with requests: {line:?}");
}
