//! SPEC §5 "Numbers": counts, costs and credits are whole numbers up to 2^53 - 1;
//! larger is exit 2 (`bad_request` in a stream), a larger stored value reads as 2^53 - 1,
//! counters saturate, and no stored value makes a later command fail. Also §5 "Rotated
//! pairs" (one credit balance, one set of quota windows, one rate limit per lineage)
//! and IPv6 blocking by network (`failed-auth-ipv6-prefix`).

use serde_json::{json, Value};

use crate::support::*;

/// 2^53 - 1: the largest count keyctl takes and prints.
const MAX: u64 = 9_007_199_254_740_991;
const MAX_TEXT: &str = "9007199254740991";
/// 2^53: the smallest number keyctl refuses.
const PAST: &str = "9007199254740992";

fn at(secs: i64) -> String {
    now_plus(secs)
}

/// Every reader of keys, requests and usage, in every format, succeeds.
fn every_reader_works(env: &TestEnv, keyref: &str) {
    for format in ["table", "json", "csv"] {
        for args in [
            vec!["show", keyref],
            vec!["list", "--all"],
            vec!["usage"],
            vec!["usage", keyref],
            vec!["logs"],
            vec!["logs", keyref],
        ] {
            let mut all = vec!["--format", format];
            all.extend(args);
            let out = env.run(&all);
            out.ok();
            assert_eq!(out.stderr, "", "{out}");
        }
    }
}

fn usage_totals(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["usage", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.ok();
    out.json()["totals"].clone()
}

#[test]
fn the_issue_cost_is_refused_and_the_key_keeps_working() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let out = env.verify(NOW, &k.secret, &["--cost", "9223372036854775807"]);
    let line = out.fails(2);
    assert!(line.contains("--cost") && line.contains(MAX_TEXT), "{line}");
    assert_eq!(env.count_rows("requests"), 0, "nothing recorded");
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    let total = usage_totals(&env, &[]);
    assert_eq!(total, json!({"accepted": 1, "rejected": 0, "credits": 1}));
}

#[test]
fn a_cost_at_the_ceiling_saturates_every_counter_and_every_reader_still_works() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let other = env.create("other", &[]);
    for t in [0, 1] {
        let v = env.expect_verify_json(&at(t), &k.secret, &["--cost", MAX_TEXT], "valid", "OK");
        assert_eq!(v["credits_remaining"], Value::Null, "unlimited");
    }
    env.expect_verify_json(&at(2), &other.secret, &["--cost", MAX_TEXT], "valid", "OK");
    // The counters stopped at the ceiling; later requests still verify and record.
    env.expect_verify(&at(3), &k.secret, &[], "valid", "OK");
    env.expect_verify(&at(4), &k.secret, &["--cost", "0"], "valid", "OK");

    let key = env.key_json_at(&at(5), "svc");
    assert_eq!(key["credits_used"], MAX, "{key}");
    let listed = env.list_json(&[]);
    let row = listed.iter().find(|r| r["name"] == "svc").unwrap();
    assert_eq!(row["credits_used"], MAX);
    let usage = env.usage_of(&at(5), "svc");
    assert_eq!(usage["last_24h"]["credits"], MAX, "{usage}");
    assert_eq!(usage["last_24h"]["accepted"], 4, "{usage}");
    // One key's day and all keys' days both stop at the ceiling.
    assert_eq!(
        usage_totals(&env, &["svc"]),
        json!({"accepted": 4, "rejected": 0, "credits": MAX})
    );
    assert_eq!(
        usage_totals(&env, &[]),
        json!({"accepted": 5, "rejected": 0, "credits": MAX})
    );
    let logs = env.logs_json(&["svc"]);
    assert_eq!(logs.len(), 4);
    assert_eq!(logs[3]["credits"], MAX, "each request keeps its own cost");
    every_reader_works(&env, "svc");
}

#[test]
fn a_cost_at_the_ceiling_spends_a_ceiling_credit_limit_exactly() {
    let env = TestEnv::initialized();
    let caps = [
        "--credits",
        MAX_TEXT,
        "--quota-total",
        MAX_TEXT,
        "--quota-daily",
        MAX_TEXT,
        "--quota-weekly",
        MAX_TEXT,
        "--quota-monthly",
        MAX_TEXT,
        "--rate-limit",
    ];
    let rate = format!("{MAX_TEXT}/s");
    let mut args = caps.to_vec();
    args.push(&rate);
    let k = env.create("capped", &args);
    for q in QUOTA_FIELDS {
        assert_eq!(k.details["quotas"][q], MAX);
    }
    assert_eq!(k.details["credit_limit"], MAX);
    assert_eq!(k.details["rate_limit"], rate.as_str());
    let v = env.expect_verify_json(NOW, &k.secret, &["--cost", MAX_TEXT], "valid", "OK");
    assert_eq!(v["credits_remaining"], 0);
    for q in QUOTA_FIELDS {
        assert_eq!(v["quota_remaining"][q], MAX - 1, "{v}");
    }
    env.expect_verify(
        &at(1),
        &k.secret,
        &[],
        "credits_exhausted",
        "Credit limit reached",
    );
    env.expect_verify_json(&at(2), &k.secret, &["--cost", "0"], "valid", "OK");
    assert_eq!(env.key_json_at(&at(3), "capped")["credits_used"], MAX);
    every_reader_works(&env, "capped");
}

#[test]
fn every_number_flag_refuses_past_the_ceiling_naming_itself_and_the_range() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let rate = format!("{PAST}/m");
    let create: &[&str] = &["create", "--name", "n"];
    let edit: &[&str] = &["edit", "svc"];
    let set: &[&str] = &["config", "set"];
    // (command, flag, value, what the error must say besides the flag)
    let mut cases: Vec<(&[&str], &str, &str, &str)> = Vec::new();
    for flag in [
        "--quota-total",
        "--quota-daily",
        "--quota-weekly",
        "--quota-monthly",
        "--credits",
    ] {
        cases.push((create, flag, PAST, MAX_TEXT));
        cases.push((edit, flag, PAST, MAX_TEXT));
    }
    cases.extend([
        (create, "--rate-limit", rate.as_str(), MAX_TEXT),
        (edit, "--rate-limit", rate.as_str(), MAX_TEXT),
        (&["logs"], "--limit", PAST, MAX_TEXT),
        (&["audit"], "--limit", PAST, MAX_TEXT),
        (set, "max-keys", PAST, MAX_TEXT),
        (set, "failed-auth-limit", PAST, MAX_TEXT),
        (set, "failed-auth-ipv6-prefix", "129", "1 to 128"),
        (&["usage"], "--days", "3661", "1 to 3660"),
        (&["verify"], "--cost", PAST, MAX_TEXT),
        (&["verify"], "--duration-ms", PAST, MAX_TEXT),
        (&["verify"], "--cost", "-1", "negative"),
        (create, "--quota-daily", "-5", "negative"),
        (set, "max-keys", "-1", "negative"),
    ]);
    let before = env.snapshot();
    for (command, flag, value, says) in cases {
        let args = [command, &[flag, value]].concat();
        let input = format!("{}\n", k.secret);
        let out = env.run_at_with_stdin(NOW, &args, input.as_bytes());
        let line = out.fails(2);
        assert!(line.contains(flag) && line.contains(says), "{line}\n{out}");
        assert!(!line.contains(&k.secret), "{line}");
        assert!(env.snapshot() == before, "the store changed\n{out}");
    }
    // A batch line is held to the same range, as a number or as text.
    for field in ["9007199254740992", "\"9007199254740992\"", "1e30"] {
        let line = format!("{{\"name\": \"b\", \"quota_daily\": {field}}}\n");
        let out = env.run_with_stdin(&["create", "--batch", "-"], line.as_bytes());
        let error = out.fails(2);
        assert!(
            error.contains("quota") && error.contains(MAX_TEXT),
            "{error}"
        );
        assert!(env.snapshot() == before, "the store changed\n{out}");
    }
    // The ceiling itself is taken everywhere.
    env.run(&[
        "edit",
        "svc",
        "--quota-daily",
        MAX_TEXT,
        "--credits",
        MAX_TEXT,
    ])
    .ok();
    env.run(&["config", "set", "max-keys", MAX_TEXT]).ok();
    env.run(&["logs", "--limit", MAX_TEXT]).ok();
    env.run(&["audit", "--limit", MAX_TEXT]).ok();
    env.verify(NOW, &k.secret, &["--duration-ms", MAX_TEXT])
        .ok();
    assert_eq!(env.logs_json(&[])[0]["duration_ms"], MAX);
}

#[test]
fn a_stream_refuses_numbers_past_the_ceiling_line_by_line_and_goes_on() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let line = |extra: Value| {
        let mut v = json!({"key": k.secret});
        for (name, value) in extra.as_object().unwrap() {
            v[name] = value.clone();
        }
        format!("{v}\n")
    };
    let input = [
        line(json!({"cost": MAX + 1})),
        line(json!({"cost": MAX})),
        line(json!({"cost": MAX})),
        line(json!({"duration_ms": MAX + 1})),
        line(json!({"cost": u64::MAX})),
        "{\"key\": \"x\", \"cost\": 1e30}\n".to_string(),
        line(json!({"cost": 1, "duration_ms": MAX})),
    ]
    .concat();
    let out = env.run_at_with_stdin(NOW, &["verify", "--stream"], input.as_bytes());
    out.ok();
    let results: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| assert_verdict_line(&out, l))
        .collect();
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "bad_request",
            "valid",
            "valid",
            "bad_request",
            "bad_request",
            "bad_request",
            "valid"
        ],
        "{out}"
    );
    for i in [0, 3] {
        let m = results[i]["message"].as_str().unwrap();
        assert!(m.contains(MAX_TEXT), "names the range: {m}");
    }
    assert!(results[0]["message"].as_str().unwrap().contains("cost"));
    assert!(results[3]["message"]
        .as_str()
        .unwrap()
        .contains("duration_ms"));
    assert_eq!(env.key_json("svc")["credits_used"], MAX);
    // A later stream on the saturated key still answers every line.
    let (_, v) = env.verify_json(&at(1), &k.secret, &[]);
    assert_eq!(v["code"], "valid");
}

/// Writes values out of range no command can store straight into the store, as
/// another writer (or a hand edit) could: plain SQL both backends take.
fn poke(env: &TestEnv, sql: &str) {
    env.tamper(sql);
}

#[test]
fn stored_values_out_of_range_read_as_the_ceiling_or_zero_and_break_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--quota-daily", "5", "--credits", "10"]);
    let neg = env.create("neg", &[]);
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    env.expect_verify(NOW, &neg.secret, &[], "valid", "OK");
    let big = i64::MAX;
    poke(
        &env,
        &format!(
            "UPDATE keys SET quota_total = {big}, credit_limit = {big}, rate_count = {big}, \
             rate_unit = 's', requests_total = {big}, events_total = {big}, credits_total = {big} \
             WHERE name = 'svc';
             UPDATE credit_pools SET credits_used = {big}, accepted_total = {big}
             WHERE id = (SELECT pool_id FROM keys WHERE name = 'svc');
             UPDATE keys SET credits_total = -7, requests_total = -7, events_total = -7,
             quota_daily = -3 WHERE name = 'neg';
             UPDATE key_events SET n = {big}, accepted_cum = {big}, credits_cum = {big}
             WHERE key_id = (SELECT id FROM keys WHERE name = 'svc');
             UPDATE key_events SET n = -7, accepted_cum = -7, credits_cum = -7
             WHERE key_id = (SELECT id FROM keys WHERE name = 'neg');
             UPDATE credit_pools SET credits_used = -9, accepted_total = -9
             WHERE id = (SELECT pool_id FROM keys WHERE name = 'neg');
             INSERT INTO usage_days (key_id, day, accepted, rejected, credits)
             SELECT id, 1000, {big}, {big}, {big} FROM keys;
             UPDATE usage_days SET accepted = {big}, rejected = {big}, credits = {big};
             UPDATE requests SET credits = {big}, duration_ms = {big} WHERE key_name = 'svc';
             UPDATE requests SET credits = -1, duration_ms = -1 WHERE key_name = 'neg';
             INSERT INTO settings (name, value) VALUES ('max-keys', '99999999999999999999999'),
             ('failed-auth-limit', '{big}'), ('failed-auth-ipv6-prefix', '999');"
        ),
    );
    let key = env.key_json("svc");
    assert_eq!(key["credits_used"], MAX);
    assert_eq!(key["credit_limit"], MAX);
    assert_eq!(key["quotas"]["total"], MAX);
    assert_eq!(key["rate_limit"], format!("{MAX_TEXT}/s"));
    let neg_key = env.key_json("neg");
    assert_eq!(neg_key["credits_used"], 0);
    assert_eq!(neg_key["quotas"]["daily"], 0);
    // All keys' figures on one day add up past i64: they stop at the ceiling.
    let totals = usage_totals(&env, &["--days", "3660"]);
    assert_eq!(
        totals,
        json!({"accepted": MAX, "rejected": MAX, "credits": MAX})
    );
    let logs = env.logs_json(&[]);
    let of = |name: &str| {
        logs.iter()
            .find(|r| r["key"]["name"] == name || r["key_name"] == name)
    };
    let svc_row = of("svc").unwrap_or_else(|| panic!("{logs:?}"));
    assert_eq!(svc_row["credits"], MAX);
    assert_eq!(svc_row["duration_ms"], MAX);
    let neg_row = of("neg").unwrap();
    assert_eq!(neg_row["credits"], 0);
    every_reader_works(&env, "svc");
    every_reader_works(&env, "neg");
    // Settings read as what is in force: the ceiling, and the widest IPv6 prefix.
    for (name, value) in [
        ("max-keys", MAX_TEXT),
        ("failed-auth-limit", MAX_TEXT),
        ("failed-auth-ipv6-prefix", "128"),
    ] {
        let out = env.run(&["config", "get", name]);
        out.ok();
        assert_eq!(out.stdout, format!("{value}\n"), "{out}");
    }
    let list = env.run(&["config", "list", "--json"]);
    list.ok();
    assert!(
        list.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "max-keys" && s["value"] == MAX_TEXT),
        "{list}"
    );

    // Verify still decides: the total quota (the ceiling) is reached, and a key whose
    // counters were negative counts from zero (its daily cap, read as 0, refuses).
    env.expect_verify(
        &at(1),
        &k.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
    env.expect_verify(
        &at(1),
        &neg.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    poke(
        &env,
        "UPDATE keys SET quota_total = NULL, quota_daily = NULL",
    );
    env.expect_verify(&at(2), &k.secret, &["--cost", "0"], "valid", "OK");
    env.expect_verify(
        &at(2),
        &k.secret,
        &[],
        "credits_exhausted",
        "Credit limit reached",
    );
    env.expect_verify(&at(3), &neg.secret, &[], "valid", "OK");
    let out = env.run_at_with_stdin(
        &at(4),
        &["verify", "--stream"],
        format!(
            "{{\"key\":\"{}\",\"cost\":0}}\n{{\"key\":\"{}\"}}\n",
            k.secret, neg.secret
        )
        .as_bytes(),
    );
    out.ok();
    assert_eq!(out.stdout_lines().len(), 2, "{out}");
    // Counters written at the stored extreme stay at the ceiling.
    let keys = keys_as_read();
    let events = env.query_i64(&format!(
        "SELECT events_total FROM {keys} k WHERE name = 'svc'"
    ));
    let accepted = env.query_i64(&format!(
        "SELECT requests_total FROM {keys} k WHERE name = 'svc'"
    ));
    assert_eq!((events, accepted), (MAX as i64, MAX as i64));
    assert_eq!(env.key_json_at(&at(5), "neg")["credits_used"], 2);
    every_reader_works(&env, "svc");
}

#[test]
fn a_real_cannot_reach_a_count_column() {
    // Every table is STRICT: SQLite itself refuses a REAL in a count column, which is
    // why counters must never overflow into one (the failure this issue reported).
    let env = TestEnv::initialized();
    env.create("svc", &[]);
    let db = or_skip!(env.sqlite_only("SQLite's STRICT tables refusing a REAL"));
    let err = db
        .execute_batch("UPDATE credit_pools SET credits_used = 1e300")
        .unwrap_err();
    assert!(err.to_string().contains("REAL"), "{err}");
    env.run(&["show", "svc"]).ok();
}

// ---- rotated pairs share quota windows and rate limits (SPEC §5) ----

/// `rotate --yes --json NAME ARGS` at `now`; returns the new secret.
fn rotate(env: &TestEnv, now: &str, name: &str, args: &[&str]) -> String {
    let mut all = vec!["rotate", "--yes", "--json", name];
    all.extend_from_slice(args);
    let out = env.run_at(now, &all);
    out.ok();
    out.json()["key"]
        .as_str()
        .expect("the new secret")
        .to_string()
}

#[test]
fn a_rotation_neither_resets_nor_doubles_the_daily_quota() {
    let env = TestEnv::initialized();
    let old = env.create("svc", &["--quota-daily", "3"]);
    env.expect_verify(&at(0), &old.secret, &[], "valid", "OK");
    env.expect_verify(&at(60), &old.secret, &[], "valid", "OK");
    let new = rotate(&env, &at(120), "svc", &["--grace", "1h"]);
    let refused = "Rate limit exceeded: quota daily";
    // Old and new together accept exactly one more in the window.
    let v = env.expect_verify_json(&at(180), &new, &[], "valid", "OK");
    assert_eq!(v["quota_remaining"]["daily"], 0, "{v}");
    env.expect_verify(&at(181), &new, &[], "quota_exceeded", refused);
    env.expect_verify(&at(182), &old.secret, &[], "quota_exceeded", refused);
    // The window rolls for both: 24 h after the first request one more is allowed.
    env.expect_verify(&at(DAY + 1), &new, &[], "valid", "OK");
    env.expect_verify(&at(DAY + 2), &new, &[], "quota_exceeded", refused);
    // show stays per key: the old key's own two requests, the new key's own one.
    assert_eq!(
        env.usage_of(&at(DAY + 3), old.id())["last_7d"]["accepted"],
        2
    );
}

#[test]
fn a_rotation_neither_resets_nor_doubles_the_rate_limit() {
    let env = TestEnv::initialized();
    let old = env.create("svc", &["--rate-limit", "2/m"]);
    env.expect_verify(&at(0), &old.secret, &[], "valid", "OK");
    let new = rotate(&env, &at(1), "svc", &["--grace", "1h"]);
    let refused = "Rate limit exceeded: 2 per minute";
    env.expect_verify(&at(2), &new, &[], "valid", "OK");
    env.expect_verify(&at(3), &new, &[], "rate_limited", refused);
    env.expect_verify(&at(4), &old.secret, &[], "rate_limited", refused);
    // A minute after the first request, one slot frees for either key.
    env.expect_verify(&at(61), &old.secret, &[], "valid", "OK");
    env.expect_verify(&at(61), &new, &[], "rate_limited", refused);
}

#[test]
fn a_rotation_neither_resets_nor_doubles_the_total_quota_even_without_grace() {
    let env = TestEnv::initialized();
    let old = env.create("svc", &["--quota-total", "3", "--credits", "10"]);
    env.expect_verify(&at(0), &old.secret, &["--cost", "4"], "valid", "OK");
    let mid = rotate(&env, &at(1), "svc", &["--grace", "1d"]);
    // (`mid` is disabled by the plain rotation below: only old and last answer after.)
    env.expect_verify(&at(2), &mid, &["--cost", "4"], "valid", "OK");
    // A second rotation (of the new key): the whole chain is one lineage.
    let last = rotate(&env, &at(3), "svc", &[]);
    let v = env.expect_verify_json(&at(4), &last, &["--cost", "2"], "valid", "OK");
    assert_eq!(v["quota_remaining"]["total"], 0, "{v}");
    assert_eq!(v["credits_remaining"], 0, "{v}");
    let refused = "Rate limit exceeded: quota total";
    env.expect_verify(&at(5), &old.secret, &[], "quota_exceeded", refused);
    env.expect_verify(&at(DAY * 40), &last, &[], "quota_exceeded", refused);
}

#[test]
fn a_deleted_predecessor_still_counts_toward_its_successor() {
    let env = TestEnv::initialized();
    let old = env.create("svc", &["--quota-daily", "2"]);
    env.expect_verify(&at(0), &old.secret, &[], "valid", "OK");
    let new = rotate(&env, &at(1), "svc", &[]);
    env.run_at(&at(2), &["delete", "--yes", "--force", old.id()])
        .ok();
    env.expect_verify(&at(3), &new, &[], "valid", "OK");
    env.expect_verify(
        &at(4),
        &new,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
}

const OLD_ID: &str = "key_aaaaaaaaaaaa";
const NEW_ID: &str = "key_bbbbbbbbbbbb";

/// A schema-2 store (the keyctl before shared limits) made from its own migrations,
/// with a rotated pair that has used its quotas and an unrelated key.
/// `None` (reported as skipped) on a backend other than SQLite.
fn v2_store(env: &TestEnv, old: &str, new: &str, other: &str) -> Option<()> {
    let ms = |secs: i64| NOW_MS + secs * 1000;
    let c = env.sqlite_only("a schema-2 store, which only an older keyctl made")?;
    c.execute_batch(include_str!(
        "../../src/store/sqlite/migrations/001_init.sql"
    ))
    .unwrap();
    c.execute_batch(include_str!(
        "../../src/store/sqlite/migrations/002_verification.sql"
    ))
    .unwrap();
    c.execute_batch("PRAGMA application_id = 1803117428; PRAGMA user_version = 2;")
        .unwrap();
    c.execute_batch("INSERT INTO credit_pools (id, credits_used) VALUES (1, 3), (2, 1);")
        .unwrap();
    let key = |seq: i64, id: &str, secret: &str, pool: i64, totals: (i64, i64), extra: &str| {
        c.execute(
            &format!(
                "INSERT INTO keys (seq, id, secret_hash, name, owner, key_prefix, livemode, \
                 quota_total, quota_daily, rate_count, rate_unit, pool_id, requests_total, \
                 events_total, credits_total, last_event_at, created_at, state{}) \
                 VALUES (?1, ?2, ?3, ?4, 'ops', ?5, 1, 5, 3, 10, 'm', ?6, ?7, ?8, ?7, ?9, ?10, \
                 'active'{})",
                if extra.is_empty() {
                    ""
                } else {
                    ", expires_at, rotated_from, rotated_to"
                },
                extra
            ),
            rusqlite::params![
                seq,
                id,
                sha256(secret.as_bytes()),
                if pool == 1 { "svc" } else { "other" },
                &secret[..12],
                pool,
                totals.0,
                totals.1,
                ms(-3600),
                ms(-3 * DAY),
            ],
        )
        .unwrap();
    };
    let (old_id, new_id, other_id) = (
        OLD_ID.to_string(),
        NEW_ID.to_string(),
        "key_cccccccccccc".to_string(),
    );
    let grace = ms(HOUR);
    key(
        1,
        &old_id,
        old,
        1,
        (2, 3),
        &format!(", {grace}, NULL, '{new_id}'"),
    );
    key(
        2,
        &new_id,
        new,
        1,
        (1, 1),
        &format!(", NULL, '{old_id}', NULL"),
    );
    key(3, &other_id, other, 2, (1, 1), "");
    // (key, at, n, accepted_cum, credits_cum, accepted, cost): the old key's first
    // request is two days old (outside the daily window), its third was rejected.
    for (k, t, n, acc, cr, a, cost) in [
        (&old_id, -2 * DAY, 1, 1, 1, 1, 1),
        (&old_id, -3 * HOUR, 2, 2, 2, 1, 1),
        (&old_id, -2 * HOUR, 3, 2, 2, 0, 0),
        (&new_id, -HOUR, 1, 1, 1, 1, 1),
        (&other_id, -HOUR, 1, 1, 1, 1, 1),
    ] {
        c.execute(
            "INSERT INTO key_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![k, ms(t), n, acc, cr, a, cost],
        )
        .unwrap();
    }
    Some(())
}

#[test]
fn a_schema_2_store_migrates_its_rotated_pairs_into_one_lineage() {
    let env = TestEnv::new();
    let old = forge_secret("sk", "live", "0123456789ABCDEFGHIJabcdefghij01");
    let new = forge_secret("sk", "live", "0123456789ABCDEFGHIJabcdefghij02");
    let other = forge_secret("sk", "live", "0123456789ABCDEFGHIJabcdefghij03");
    or_skip!(v2_store(&env, &old, &new, &other));
    // The pair has 3 accepted requests in all (quota total 5), 2 in the last day (quota
    // daily 3): one more today, from either key.
    let v = env.expect_verify_json(NOW, &new, &[], "valid", "OK");
    assert_eq!(
        v["quota_remaining"],
        json!({"total": 1, "daily": 0, "weekly": null, "monthly": null})
    );
    env.expect_verify(
        &at(1),
        &old,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    // The unrelated key keeps its own windows.
    let v = env.expect_verify_json(&at(1), &other, &[], "valid", "OK");
    assert_eq!(v["quota_remaining"]["daily"], 1, "{v}");
    // A day later the daily window has room, but the pair's total quota has one left
    // (the old key's grace is over by then).
    env.expect_verify(&at(DAY), &old, &[], "expired", "Expired API Key");
    env.expect_verify(&at(DAY), &new, &[], "valid", "OK");
    env.expect_verify(
        &at(DAY + 1),
        &new,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
    let db = or_skip!(env.sqlite_only("the SQLite file's user_version"));
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // The current schema: one version per migration file.
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/store/sqlite/migrations"
    ))
    .unwrap()
    .count() as i64;
    assert_eq!(version, migrations);
    every_reader_works(&env, NEW_ID);
    every_reader_works(&env, OLD_ID);
}

// ---- IPv6 blocking by network (failed-auth-ipv6-prefix) ----

fn block_after_three(env: &TestEnv) {
    env.run(&["config", "set", "failed-auth-limit", "3"]).ok();
}

/// One invalid key presented from each (seconds after NOW, address).
fn invalid_attempts(env: &TestEnv, attempts: &[(i64, &str)]) {
    for (t, ip) in attempts {
        env.expect_verify(
            &at(*t),
            "nonsense",
            &["--ip", ip],
            "invalid",
            "Invalid API Key",
        );
    }
}

#[test]
fn invalid_attempts_from_one_ipv6_64_block_the_whole_64() {
    let env = TestEnv::initialized();
    block_after_three(&env);
    let k = env.create("svc", &[]);
    invalid_attempts(
        &env,
        &[
            (0, "2001:db8:1:2::1"),
            (1, "2001:db8:1:2::2"),
            (2, "2001:db8:1:2:ffff:ffff:ffff:ffff"),
        ],
    );
    let blocked = "IP temporarily blocked";
    env.expect_verify(
        &at(3),
        &k.secret,
        &["--ip", "2001:db8:1:2::99"],
        "ip_blocked",
        blocked,
    );
    env.expect_verify(
        &at(3),
        &k.secret,
        &["--ip", "2001:db8:1:2::1"],
        "ip_blocked",
        blocked,
    );
    // The next /64 and IPv4 are another holder's.
    env.expect_verify(
        &at(3),
        &k.secret,
        &["--ip", "2001:db8:1:3::1"],
        "valid",
        "OK",
    );
    env.expect_verify(&at(3), &k.secret, &["--ip", "203.0.113.9"], "valid", "OK");
    // The log keeps each address as given.
    let rows = env.logs_json(&["--status", "ip_blocked"]);
    assert_eq!(rows[0]["ip"], "2001:db8:1:2::1");
    assert_eq!(rows[1]["ip"], "2001:db8:1:2::99");
}

#[test]
fn the_ipv6_prefix_is_a_setting() {
    let env = TestEnv::initialized();
    let out = env.run(&["config", "get", "failed-auth-ipv6-prefix"]);
    out.ok();
    assert_eq!(out.stdout, "64\n");
    for bad in ["0", "129", "none", "/64", "64.5"] {
        let line = env
            .run(&["config", "set", "failed-auth-ipv6-prefix", bad])
            .fails(2)
            .to_string();
        assert!(
            line.contains("failed-auth-ipv6-prefix") && line.contains("1 to 128"),
            "{line}"
        );
    }
    env.run(&["config", "set", "failed-auth-ipv6-prefix", "128"])
        .ok();
    let list = env.run(&["config", "list"]);
    list.ok();
    assert!(
        list.stdout.lines().any(|l| l
            .split_whitespace()
            .take(2)
            .eq(["failed-auth-ipv6-prefix", "128"])),
        "{list}"
    );
    // /128: each address alone, so three addresses of one /64 block none of them.
    block_after_three(&env);
    let k = env.create("svc", &[]);
    invalid_attempts(
        &env,
        &[(0, "2001:db8::1"), (1, "2001:db8::2"), (2, "2001:db8::3")],
    );
    env.expect_verify(&at(3), &k.secret, &["--ip", "2001:db8::1"], "valid", "OK");
    // /48: one wider network.
    env.run(&["config", "set", "failed-auth-ipv6-prefix", "48"])
        .ok();
    invalid_attempts(
        &env,
        &[
            (4, "2001:db8:0:1::1"),
            (5, "2001:db8:0:2::1"),
            (6, "2001:db8:0:3::1"),
        ],
    );
    env.expect_verify(
        &at(7),
        &k.secret,
        &["--ip", "2001:db8:0:ffff::1"],
        "ip_blocked",
        "IP temporarily blocked",
    );
}
