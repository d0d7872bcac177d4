//! SPEC §8 "Credit refill": `--refill N/day|N/month` and `--refill-mode add|set` on
//! create, edit and batch lines; the remaining credits set to N (`set`) or raised by N
//! per boundary passed up to the limit (`add`) at UTC midnight or the 1st; computed by
//! every reader as of now (KEYCTL_NOW), a rotated pair refilling once.

use serde_json::{json, Value};

use crate::support::*;

/// The first UTC midnight after `NOW` (2026-11-23T12:00:00Z), and the ones after it.
const MIDNIGHT: &str = "2026-11-24T00:00:00Z";
const JUST_BEFORE_MIDNIGHT: &str = "2026-11-23T23:59:59Z";
const DAY_3: &str = "2026-11-26T08:00:00Z";
const LONG_AFTER: &str = "2027-02-10T08:00:00Z";

/// `verify --json --cost COST` of `secret` at `now`: the exit code and the verdict.
fn verify(env: &TestEnv, now: &str, secret: &str, cost: u64) -> (i32, Value) {
    let cost = cost.to_string();
    let out = env.run_at_with_stdin(
        now,
        &["verify", "--json", "--cost", &cost],
        secret.as_bytes(),
    );
    out.no_panic();
    (out.code.unwrap_or(-1), out.json())
}

/// What is left of `secret`'s credits after a request of `cost` at `now`, which must
/// be accepted.
fn spend(env: &TestEnv, now: &str, secret: &str, cost: u64) -> u64 {
    let (code, v) = verify(env, now, secret, cost);
    assert_eq!((code, &v["code"]), (0, &json!("valid")), "{v}");
    v["credits_remaining"].as_u64().expect("a credit limit")
}

fn remaining_shown(env: &TestEnv, now: &str, keyref: &str) -> u64 {
    let k = env.key_json_at(now, keyref);
    k["credit_limit"].as_u64().unwrap() - k["credits_used"].as_u64().unwrap()
}

/// `topped`: 100 credits, 30 added every midnight.
fn topped(env: &TestEnv) -> Created {
    env.create(
        "topped",
        &[
            "--credits",
            "100",
            "--refill",
            "30/day",
            "--refill-mode",
            "add",
        ],
    )
}

// ---- flags, fields and what is shown ----

#[test]
fn a_refill_is_shown_in_the_key_object_list_csv_and_show() {
    let env = TestEnv::initialized();
    let k = env.create("metered", &["--credits", "100", "--refill", "30/day"]);
    let want = json!({"amount": 30, "interval": "day", "mode": "set"});
    assert_eq!(k.details["refill"], want, "set is the default mode");
    assert_eq!(k.details["next_refill_at"], json!(MIDNIGHT));
    let listed = Ordered::parse(&env.run(&["list", "--json"]).stdout);
    assert_key_field_order(&listed.items()[0]);
    let listed = env.list_json(&[]);
    assert_eq!(listed[0]["refill"], want);
    assert_eq!(listed[0]["next_refill_at"], json!(MIDNIGHT));
    // A key without a refill says null for both.
    let plain = env.create("plain", &["--credits", "5"]);
    assert_eq!(plain.details["refill"], Value::Null);
    assert_eq!(plain.details["next_refill_at"], Value::Null);

    let monthly = env.create(
        "monthly",
        &[
            "--credits",
            "9",
            "--refill",
            "9/month",
            "--refill-mode",
            "add",
        ],
    );
    assert_eq!(
        monthly.details["refill"],
        json!({"amount": 9, "interval": "month", "mode": "add"})
    );
    assert_eq!(
        monthly.details["next_refill_at"],
        json!("2026-12-01T00:00:00Z")
    );

    let shown = env.run(&["show", "metered"]);
    shown.ok();
    let line = shown
        .stdout
        .lines()
        .find(|l| l.contains("Refill"))
        .unwrap_or_else(|| panic!("no Refill line\n{shown}"));
    assert!(
        line.contains("set to 30 every day at 00:00 UTC; next "),
        "{line}"
    );
    let shown = env.run(&["show", "monthly"]);
    assert!(
        shown
            .stdout
            .contains("add 9 every month on the 1st at 00:00 UTC (up to the limit)"),
        "{shown}"
    );
    let csv = env.run(&["list", "--format", "csv", "--sort", "name"]);
    csv.ok();
    let header: Vec<&str> = csv.stdout.lines().next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == "refill")
        .expect("a refill column");
    assert_eq!(header[at + 1], "next_refill_at");
    let metered: Vec<&str> = csv
        .stdout
        .lines()
        .find(|l| l.contains(",metered,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!((metered[at], metered[at + 1]), ("30/day set", MIDNIGHT));
}

#[test]
fn bad_refill_input_is_exit_2_and_changes_nothing() {
    let env = TestEnv::initialized();
    env.create("limited", &["--credits", "10"]);
    env.create("unlimited", &[]);
    let before = env.store_contents();
    let cases: &[(&[&str], &str)] = &[
        (
            &["create", "--name", "x", "--refill", "5/day"],
            "--refill needs a credit limit: add --credits N",
        ),
        (
            &["create", "--name", "x", "--credits", "5", "--refill-mode", "add"],
            "--refill-mode needs a credit refill",
        ),
        (
            &["create", "--name", "x", "--credits", "5", "--refill", "5/week"],
            "invalid --refill '5/week': unknown interval 'week'; use N/day or N/month",
        ),
        (
            &["create", "--name", "x", "--credits", "5", "--refill", "0/day"],
            "invalid --refill '0/day': the amount must be a whole number from 1 to 9007199254740991",
        ),
        (
            &["create", "--name", "x", "--credits", "5", "--refill", "9007199254740992/day"],
            "the amount must be a whole number from 1 to 9007199254740991",
        ),
        (
            &["create", "--name", "x", "--credits", "5", "--refill", "lots"],
            "invalid --refill 'lots': use N/day or N/month",
        ),
        (
            &["create", "--name", "x", "--credits", "5", "--refill", "5/day", "--refill-mode", "reset"],
            "invalid --refill-mode 'reset': use add or set",
        ),
        (
            &["edit", "unlimited", "--refill", "5/day"],
            "--refill needs a credit limit: add --credits N",
        ),
        (
            &["edit", "limited", "--refill-mode", "add"],
            "--refill-mode needs a credit refill",
        ),
        (
            &["edit", "limited", "--refill", "-1/day"],
            "invalid --refill '-1/day'",
        ),
        (&["edit", "limited", "--unlimited", "--refill", "5/day"], "--unlimited"),
    ];
    for (args, message) in cases {
        let out = env.run(args);
        let line = out.fails(2);
        assert!(line.contains(message), "{line}\n{out}");
    }
    // A batch line: named with its number and field, and no key of the batch made.
    let batch = concat!(
        r#"{"name": "b1", "credits": 5, "refill": "5/day"}"#,
        "\n",
        r#"{"name": "b2", "credits": 5, "refill": "5/fortnight"}"#,
        "\n",
    );
    let out = env.run_with_stdin(&["create", "--batch", "-"], batch.as_bytes());
    let line = out.fails(2);
    assert!(
        line.contains("line 2: invalid field `refill` '5/fortnight'"),
        "{line}"
    );
    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        br#"{"name": "b3", "credits": 5, "refill_mode": "add"}"#,
    );
    assert!(
        out.fails(2)
            .contains("line 1: field `refill_mode` needs a credit refill"),
        "{out}"
    );
    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        br#"{"name": "b4", "refill": "5/day"}"#,
    );
    assert!(
        out.fails(2)
            .contains("line 1: field `refill` needs a credit limit"),
        "{out}"
    );
    assert_eq!(env.store_contents(), before, "nothing changed");
}

#[test]
fn batch_lines_take_refill_and_refill_mode() {
    let env = TestEnv::initialized();
    let batch = concat!(
        r#"{"name": "daily", "credits": 100, "refill": "100/day"}"#,
        "\n",
        r#"{"name": "topped", "credits": 1000, "refill": "250/month", "refill_mode": "add"}"#,
        "\n",
    );
    let out = env.run_with_stdin(&["create", "--batch", "-"], batch.as_bytes());
    out.ok();
    let lines: Vec<Value> = out
        .stdout_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["key_details"]["refill"],
        json!({"amount": 100, "interval": "day", "mode": "set"})
    );
    assert_eq!(
        env.key_json("topped")["refill"],
        json!({"amount": 250, "interval": "month", "mode": "add"})
    );
    assert_eq!(
        env.key_json("topped")["next_refill_at"],
        json!("2026-12-01T00:00:00Z")
    );
}

// ---- the arithmetic, as verify and show see it ----

#[test]
fn set_makes_the_remaining_credits_n_at_midnight_once_whatever_the_days_passed() {
    let env = TestEnv::initialized();
    let k = env.create("metered", &["--credits", "100", "--refill", "30/day"]);
    assert_eq!(spend(&env, NOW, &k.secret, 90), 10);
    // Exhausted: refused with its exit code, nothing charged.
    let (code, v) = verify(&env, JUST_BEFORE_MIDNIGHT, &k.secret, 20);
    assert_eq!((code, &v["code"]), (15, &json!("credits_exhausted")), "{v}");
    assert_eq!(v["credits_remaining"], 10);
    assert_eq!(remaining_shown(&env, JUST_BEFORE_MIDNIGHT, "metered"), 10);
    // Midnight: 30 remaining, read by show before any verify wrote it.
    assert_eq!(remaining_shown(&env, MIDNIGHT, "metered"), 30);
    assert_eq!(
        env.key_json_at(MIDNIGHT, "metered")["next_refill_at"],
        json!("2026-11-25T00:00:00Z")
    );
    assert_eq!(spend(&env, MIDNIGHT, &k.secret, 20), 10);
    // Later the same day: no second refill.
    assert_eq!(remaining_shown(&env, "2026-11-24T23:00:00Z", "metered"), 10);
    // Two more midnights passed: still 30, not 60 (set, not add).
    assert_eq!(remaining_shown(&env, DAY_3, "metered"), 30);
    assert_eq!(spend(&env, DAY_3, &k.secret, 30), 0);
    // A set refill also lowers a balance above N.
    let fresh = env.create("fresh", &["--credits", "100", "--refill", "30/day"]);
    assert_eq!(remaining_shown(&env, MIDNIGHT, "fresh"), 30);
    assert_eq!(spend(&env, MIDNIGHT, &fresh.secret, 0), 30);
    // N above the limit: the remaining credits are the limit.
    let big = env.create("big", &["--credits", "10", "--refill", "500/day"]);
    assert_eq!(spend(&env, NOW, &big.secret, 10), 0);
    assert_eq!(spend(&env, MIDNIGHT, &big.secret, 1), 9);
}

#[test]
fn add_adds_n_per_midnight_passed_and_never_above_the_limit() {
    let env = TestEnv::initialized();
    let k = topped(&env);
    assert_eq!(spend(&env, NOW, &k.secret, 100), 0);
    let (code, _) = verify(&env, JUST_BEFORE_MIDNIGHT, &k.secret, 1);
    assert_eq!(code, 15);
    assert_eq!(spend(&env, MIDNIGHT, &k.secret, 5), 25);
    // Two more midnights: +60.
    assert_eq!(remaining_shown(&env, DAY_3, "topped"), 85);
    // Many midnights: the limit, not more.
    assert_eq!(remaining_shown(&env, LONG_AFTER, "topped"), 100);
    assert_eq!(spend(&env, LONG_AFTER, &k.secret, 1), 99);
}

#[test]
fn a_monthly_refill_comes_on_the_first_across_month_lengths_and_years() {
    let env = TestEnv::initialized();
    let k = env.create(
        "monthly",
        &[
            "--credits",
            "100",
            "--refill",
            "40/month",
            "--refill-mode",
            "add",
        ],
    );
    assert_eq!(spend(&env, NOW, &k.secret, 100), 0);
    assert_eq!(remaining_shown(&env, "2026-11-30T23:59:59Z", "monthly"), 0);
    assert_eq!(remaining_shown(&env, "2026-12-01T00:00:00Z", "monthly"), 40);
    assert_eq!(spend(&env, "2026-12-31T23:59:59Z", &k.secret, 40), 0);
    // Across a year end, then February's 28 days to March.
    assert_eq!(spend(&env, "2027-01-01T00:00:00Z", &k.secret, 40), 0);
    assert_eq!(remaining_shown(&env, "2027-02-28T23:59:59Z", "monthly"), 40);
    assert_eq!(remaining_shown(&env, "2027-03-01T00:00:00Z", "monthly"), 80);
    assert_eq!(
        env.key_json_at("2027-02-28T23:59:59Z", "monthly")["next_refill_at"],
        json!("2027-03-01T00:00:00Z")
    );
}

#[test]
fn a_rotated_pair_refills_once() {
    let env = TestEnv::initialized();
    let old = env.create(
        "pair",
        &[
            "--credits",
            "100",
            "--refill",
            "40/day",
            "--refill-mode",
            "add",
        ],
    );
    assert_eq!(spend(&env, NOW, &old.secret, 100), 0);
    let out = env.run(&["rotate", "--yes", "--json", "--grace", "48h", "pair"]);
    out.ok();
    let new_secret = out.json()["key"].as_str().unwrap().to_string();
    let new_id = out.json()["key_details"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        out.json()["key_details"]["refill"],
        json!({"amount": 40, "interval": "day", "mode": "add"}),
        "a rotation keeps the refill"
    );
    // After midnight each key sees one refill of 40, and spending through one is
    // seen by the other: one balance, refilled once.
    assert_eq!(spend(&env, MIDNIGHT, &old.secret, 10), 30);
    assert_eq!(spend(&env, MIDNIGHT, &new_secret, 10), 20);
    assert_eq!(remaining_shown(&env, MIDNIGHT, old.id()), 20);
    assert_eq!(remaining_shown(&env, MIDNIGHT, &new_id), 20);
    // Editing the refill on either key changes the pair's.
    env.run_at(MIDNIGHT, &["edit", old.id(), "--refill", "5/day"])
        .ok();
    assert_eq!(
        env.key_json_at(MIDNIGHT, &new_id)["refill"],
        json!({"amount": 5, "interval": "day", "mode": "add"})
    );
    assert_eq!(remaining_shown(&env, "2026-11-25T00:00:00Z", &new_id), 25);
    assert_eq!(remaining_shown(&env, "2026-11-25T00:00:00Z", old.id()), 25);
}

// ---- edit ----

#[test]
fn edit_adds_changes_and_removes_a_refill_from_the_next_boundary_on() {
    let env = TestEnv::initialized();
    let k = env.create("k", &["--credits", "100"]);
    assert_eq!(spend(&env, NOW, &k.secret, 100), 0);
    let out = env.run(&["edit", "k", "--refill", "30/day"]);
    out.ok();
    assert!(out.stderr.contains("refill: none → 30/day set"), "{out}");
    // Added today: the first refill is at the next midnight, not at once.
    assert_eq!(remaining_shown(&env, JUST_BEFORE_MIDNIGHT, "k"), 0);
    assert_eq!(remaining_shown(&env, MIDNIGHT, "k"), 30);
    // An edit after a midnight that nobody has read yet keeps that refill (30) and
    // the new amount starts at the next one.
    env.run_at(
        MIDNIGHT,
        &["edit", "k", "--refill", "50/day", "--refill-mode", "add"],
    )
    .ok();
    assert_eq!(remaining_shown(&env, "2026-11-24T10:00:00Z", "k"), 30);
    assert_eq!(remaining_shown(&env, "2026-11-25T00:00:00Z", "k"), 80);
    // The audit trail has the changes; the refills themselves are not events.
    let events = env.audit_json(&["k"]);
    let edits: Vec<&Value> = events.iter().filter(|e| e["action"] == "edited").collect();
    assert_eq!(edits.len(), 2);
    assert_eq!(
        edits[0]["details"]["changes"]["refill"],
        json!({"old": "30/day set", "new": "50/day add"})
    );
    // none removes it; what was refilled stays.
    env.run_at("2026-11-25T00:00:00Z", &["edit", "k", "--refill", "none"])
        .ok();
    let shown = env.key_json_at("2026-11-27T00:00:00Z", "k");
    assert_eq!(
        (&shown["refill"], &shown["next_refill_at"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(remaining_shown(&env, "2026-11-27T00:00:00Z", "k"), 80);
    // --unlimited drops a refill with the limit (a refill added anew is `set`).
    env.run(&["edit", "k", "--refill", "1/day"]).ok();
    let out = env.run(&["edit", "k", "--unlimited"]);
    out.ok();
    assert!(out.stderr.contains("refill: 1/day set → none"), "{out}");
    assert_eq!(env.key_json("k")["refill"], Value::Null);
    // A refill-mode alone changes the mode of the refill there is.
    env.run(&["edit", "k", "--credits", "10", "--refill", "2/month"])
        .ok();
    env.run(&["edit", "k", "--refill-mode", "set"]).ok();
    assert_eq!(
        env.key_json("k")["refill"],
        json!({"amount": 2, "interval": "month", "mode": "set"})
    );
}

// ---- explain, stream, copy ----

#[test]
fn explain_shows_the_credits_as_of_now_with_the_refill() {
    let env = TestEnv::initialized();
    let k = env.create("metered", &["--credits", "100", "--refill", "30/day"]);
    assert_eq!(spend(&env, NOW, &k.secret, 100), 0);
    let explain = |now: &str| {
        let out = env.run_at_with_stdin(
            now,
            &["verify", "--explain", "--json", "--cost", "5"],
            k.secret.as_bytes(),
        );
        out.no_panic();
        let v = out.json();
        let credits = v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["check"] == "credits_exhausted")
            .cloned()
            .expect("a credits check");
        (out.code, credits)
    };
    let (code, before) = explain(JUST_BEFORE_MIDNIGHT);
    assert_eq!(code, Some(15));
    assert_eq!(before["result"], "fail");
    assert_eq!(before["credits_remaining"], 0);
    assert_eq!(before["refill"], "30/day set");
    assert_eq!(before["next_refill_at"], MIDNIGHT);
    let (code, after) = explain(MIDNIGHT);
    assert_eq!(code, Some(0));
    assert_eq!(after["result"], "pass");
    assert_eq!(after["credits_remaining"], 30);
    // explain records nothing: show still computes the refill, nothing stored changed.
    assert_eq!(remaining_shown(&env, MIDNIGHT, "metered"), 30);
    let text = env.run_at_with_stdin(MIDNIGHT, &["verify", "--explain"], k.secret.as_bytes());
    assert!(
        text.stdout
            .contains("30 of 100 credits left; this request costs 1; refill 30/day set, next "),
        "{text}"
    );
}

#[test]
fn a_stream_gives_one_at_a_time_and_pipelined_the_same_answers_across_a_midnight() {
    let a = TestEnv::initialized();
    let set = a.create("set", &["--credits", "10", "--refill", "4/day"]);
    let add = a.create(
        "add",
        &[
            "--credits",
            "10",
            "--refill",
            "3/day",
            "--refill-mode",
            "add",
        ],
    );
    let b = TestEnv::new();
    a.run(&["copy", "--to", b.location().to_str().unwrap()])
        .ok();
    let line = |secret: &str, cost: u64| json!({"key": secret, "cost": cost}).to_string();
    let mut lines = Vec::new();
    for _ in 0..4 {
        lines.push(line(&set.secret, 3));
        lines.push(line(&add.secret, 4));
    }
    let mut answers = Vec::new();
    for now in [NOW, MIDNIGHT, DAY_3] {
        // One at a time on `a`, all lines up front on `b`.
        let stepped: Vec<Value> = lines
            .iter()
            .map(|l| {
                let out =
                    a.run_at_with_stdin(now, &["verify", "--stream"], format!("{l}\n").as_bytes());
                out.ok();
                out.json()
            })
            .collect();
        let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let out = b.run_at_with_stdin(now, &["verify", "--stream"], input.as_bytes());
        out.ok();
        let piped: Vec<Value> = out
            .stdout_lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(stepped, piped, "at {now}");
        answers.push(piped);
    }
    let left = |v: &Vec<Value>| -> Vec<Value> {
        v.iter().map(|x| x["credits_remaining"].clone()).collect()
    };
    // Day one: 10 → 7 → 4 → 1 (then refused), and 10 → 6 → 2 (then refused).
    assert_eq!(
        Value::Array(left(&answers[0])),
        json!([7, 6, 4, 2, 1, 2, 1, 2])
    );
    // Midnight: set 4 → 1 then refused; add 2 + 3 = 5 → 1 then refused.
    assert_eq!(
        Value::Array(left(&answers[1])),
        json!([1, 1, 1, 1, 1, 1, 1, 1])
    );
    // Two midnights later: set 4 again; add 1 + 6 = 7 → 3.
    assert_eq!(
        Value::Array(left(&answers[2])),
        json!([1, 3, 1, 3, 1, 3, 1, 3])
    );
    for now in [NOW, MIDNIGHT, DAY_3] {
        assert_eq!(
            a.list_json_at(now, &[]),
            b.list_json_at(now, &[]),
            "at {now}"
        );
    }
}

#[test]
fn copy_keeps_refills_and_their_balance() {
    let env = TestEnv::initialized();
    let k = topped(&env);
    assert_eq!(spend(&env, NOW, &k.secret, 100), 0);
    assert_eq!(spend(&env, MIDNIGHT, &k.secret, 10), 20);
    let target = env.root().join("copied.db");
    env.run(&["copy", "--to", target.to_str().unwrap()]).ok();
    let there = |args: &[&str], now: &str| {
        let mut all = vec!["--db", target.to_str().unwrap()];
        all.extend_from_slice(args);
        env.run_at(now, &all)
    };
    for now in [MIDNIGHT, DAY_3, LONG_AFTER] {
        assert_eq!(
            env.run_at(now, &["list", "--json"]).stdout,
            there(&["list", "--json"], now).stdout,
            "at {now}"
        );
    }
    assert_eq!(remaining_shown(&env, DAY_3, "topped"), 80);
}
