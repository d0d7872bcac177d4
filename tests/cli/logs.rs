//! `keyctl logs`: the request log newest first, its filters and shapes, `--follow`;
//! `logs prune` and the `log-retention` setting, which never change quota counts,
//! credits, usage figures or last use.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;

use serde_json::{json, Value};

use crate::support::*;

const ROW_FIELDS: [&str; 10] = [
    "seq",
    "at",
    "key_id",
    "key_name",
    "endpoint",
    "status",
    "code",
    "ip",
    "duration_ms",
    "credits",
];

fn at(secs: i64) -> String {
    now_plus(secs)
}

/// The values of one member of each row.
fn column<'a>(rows: &'a [Value], member: &str) -> Vec<&'a Value> {
    rows.iter().map(|r| &r[member]).collect()
}

fn codes(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["code"].as_str().unwrap()).collect()
}

fn times(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["at"].as_str().unwrap().to_string())
        .collect()
}

/// A store with two keys and four requests, one an hour, the last at `NOW`:
/// -3h svc valid (10.0.0.1, GET /v1/a, 12 ms, 2 credits), -2h svc forbidden_scope
/// (10.0.0.2), -1h a forged key: invalid (10.0.0.3), 0h other valid (2001:db8::5).
struct Fixture {
    env: TestEnv,
    svc: Created,
    other: Created,
}

fn fixture() -> Fixture {
    let env = TestEnv::initialized();
    let svc = env.create_at(&at(-DAY), "svc", &["--scope", "read"]);
    let other = env.create_at(&at(-DAY), "other", &[]);
    env.expect_verify(
        &at(-3 * HOUR),
        &svc.secret,
        &[
            "--ip",
            "10.0.0.1",
            "--endpoint",
            "GET /v1/a",
            "--duration-ms",
            "12",
            "--cost",
            "2",
        ],
        "valid",
        "OK",
    );
    env.expect_verify(
        &at(-2 * HOUR),
        &svc.secret,
        &["--ip", "10.0.0.2", "--scope", "write"],
        "forbidden_scope",
        "API key lacks scope: write",
    );
    let forged = forge_secret("sk", "live", "abcdefghijABCDEFGHIJ0123456789xy");
    env.expect_verify(
        &at(-HOUR),
        &forged,
        &["--ip", "10.0.0.3"],
        "invalid",
        "Invalid API Key",
    );
    env.expect_verify(NOW, &other.secret, &["--ip", "2001:db8::5"], "valid", "OK");
    Fixture { env, svc, other }
}

#[test]
fn json_rows_are_newest_first_with_every_member() {
    let f = fixture();
    let out = f.env.run(&["logs", "--json"]);
    out.ok();
    let ordered = Ordered::parse(&out.stdout);
    for row in ordered.items() {
        assert_eq!(row.keys(), ROW_FIELDS);
    }
    let rows = f.env.logs_json(&[]);
    assert_eq!(
        times(&rows),
        [at(0), at(-HOUR), at(-2 * HOUR), at(-3 * HOUR)]
    );
    assert_eq!(
        codes(&rows),
        ["valid", "invalid", "forbidden_scope", "valid"]
    );
    let mut oldest = rows[3].clone();
    assert!(oldest["seq"].is_i64());
    oldest.as_object_mut().unwrap().remove("seq");
    assert_eq!(
        oldest,
        json!({
            "at": at(-3 * HOUR), "key_id": f.svc.id(), "key_name": "svc",
            "endpoint": "GET /v1/a", "status": 200, "code": "valid", "ip": "10.0.0.1",
            "duration_ms": 12, "credits": 2,
        })
    );
    assert_eq!(rows[1]["key_id"], Value::Null);
    assert_eq!(rows[1]["key_name"], Value::Null);
    assert_eq!(rows[1]["status"], 401);
    assert_eq!(rows[2]["status"], 403);
    assert_eq!(rows[2]["credits"], 0);
    assert_eq!(rows[2]["endpoint"], Value::Null);
    assert_eq!(rows[2]["duration_ms"], Value::Null);
    assert_eq!(rows[0]["ip"], "2001:db8::5");
    let seqs: Vec<i64> = rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
}

#[test]
fn csv_has_a_header_and_one_row_per_request() {
    let f = fixture();
    let out = f.env.run(&["logs", "--format", "csv"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], ROW_FIELDS.join(","));
    assert_eq!(lines.len(), 5);
    let rows = f.env.logs_json(&[]);
    let oldest_seq = rows[3]["seq"].as_i64().unwrap();
    assert_eq!(
        lines[4],
        format!(
            "{oldest_seq},{},{},svc,GET /v1/a,200,valid,10.0.0.1,12,2",
            at(-3 * HOUR),
            f.svc.id()
        )
    );
    assert!(
        lines[2].ends_with(",,,,401,invalid,10.0.0.3,,0"),
        "{}",
        lines[2]
    );
}

#[test]
fn the_table_shows_time_key_endpoint_status_reason_ip_duration_credits() {
    let f = fixture();
    let out = f.env.run(&["logs"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 5, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["Time", "Key", "Endpoint", "Status", "Reason", "IP", "Duration", "Credits"]
    );
    // Newest first; times in local time (TZ=UTC here).
    assert!(lines[1].starts_with("2026-11-23 12:00:00"), "{out}");
    assert!(lines[4].starts_with("2026-11-23 09:00:00"), "{out}");
    let oldest = lines[4];
    for part in [
        "svc",
        f.svc.id(),
        "GET /v1/a",
        "200",
        "valid",
        "10.0.0.1",
        "12 ms",
    ] {
        assert!(oldest.contains(part), "{part:?} missing from {oldest:?}");
    }
    assert!(lines[3].contains("forbidden_scope") && lines[3].contains("403"));
    assert!(lines[2].contains("invalid") && lines[2].contains("401"));
    assert!(lines[1].contains("other") && lines[1].contains(f.other.id()));
}

#[test]
fn an_empty_log_is_an_empty_list() {
    let env = TestEnv::initialized();
    let out = env.run(&["logs", "--json"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    let out = env.run(&["logs", "--format", "csv"]);
    out.ok();
    assert_eq!(out.stdout, format!("{}\n", ROW_FIELDS.join(",")));
    let out = env.run(&["logs"]);
    out.ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn limit_keeps_the_newest_rows() {
    let f = fixture();
    assert_eq!(
        times(&f.env.logs_json(&["--limit", "2"])),
        [at(0), at(-HOUR)]
    );
    assert_eq!(f.env.logs_json(&["--limit", "1"]).len(), 1);
    assert_eq!(f.env.logs_json(&["--limit", "100"]).len(), 4);
    for bad in ["0", "-1", "many"] {
        f.env.run(&["logs", "--limit", bad]).fails(2);
    }
}

#[test]
fn the_default_limit_is_100_rows() {
    let env = TestEnv::initialized();
    let k = env.create("busy", &[]);
    let input = format!("{}\n", json!({"key": k.secret})).repeat(105);
    env.run_at_with_stdin(NOW, &["verify", "--stream"], input.as_bytes())
        .ok();
    assert_eq!(env.logs_json(&[]).len(), 100);
    assert_eq!(env.logs_json(&["--limit", "1000"]).len(), 105);
}

#[test]
fn since_and_until_take_durations_and_dates() {
    let f = fixture();
    let env = &f.env;
    assert_eq!(
        times(&env.logs_json(&["--since", "2h"])),
        [at(0), at(-HOUR), at(-2 * HOUR)]
    );
    assert_eq!(
        times(&env.logs_json(&["--until", "1h"])),
        [at(-2 * HOUR), at(-3 * HOUR)]
    );
    assert_eq!(
        times(&env.logs_json(&["--since", "150m", "--until", "30m"])),
        [at(-HOUR), at(-2 * HOUR)]
    );
    assert_eq!(
        times(&env.logs_json(&[
            "--since",
            "2026-11-23T10:00:00Z",
            "--until",
            "2026-11-23T11:30:00Z"
        ])),
        [at(-HOUR), at(-2 * HOUR)]
    );
    assert_eq!(env.logs_json(&["--since", "2026-11-23"]).len(), 4);
    assert!(env.logs_json(&["--until", "2026-11-23"]).is_empty());
    for bad in [
        &["--since", "yesterday"][..],
        &["--until", "soon"],
        &["--since", "never"],
    ] {
        let mut args = vec!["logs"];
        args.extend_from_slice(bad);
        env.run(&args).fails(2);
    }
}

#[test]
fn status_takes_an_http_status_or_a_result_code() {
    let f = fixture();
    let env = &f.env;
    let k = env.create("tiny", &["--quota-daily", "1"]);
    env.expect_verify(NOW, &k.secret, &[], "valid", "OK");
    env.expect_verify(
        NOW,
        &k.secret,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    assert_eq!(
        codes(&env.logs_json(&["--status", "401"])),
        ["quota_exceeded", "invalid"]
    );
    assert_eq!(
        codes(&env.logs_json(&["--status", "quota_exceeded"])),
        ["quota_exceeded"]
    );
    assert_eq!(
        codes(&env.logs_json(&["--status", "403"])),
        ["forbidden_scope"]
    );
    assert_eq!(env.logs_json(&["--status", "200"]).len(), 3);
    assert_eq!(env.logs_json(&["--status", "valid"]).len(), 3);
    assert!(env.logs_json(&["--status", "429"]).is_empty());
    assert!(env.logs_json(&["--status", "revoked"]).is_empty());
    for bad in ["999", "4O1", "nope", ""] {
        env.run(&["logs", "--status", bad]).fails(2);
    }
}

#[test]
fn ip_selects_one_address_in_any_spelling() {
    let f = fixture();
    let env = &f.env;
    let rows = env.logs_json(&["--ip", "10.0.0.2"]);
    assert_eq!(codes(&rows), ["forbidden_scope"]);
    let rows = env.logs_json(&["--ip", "2001:DB8:0:0::5"]);
    assert_eq!(column(&rows, "key_name"), [&json!("other")]);
    assert!(env.logs_json(&["--ip", "10.0.0.9"]).is_empty());
    env.run(&["logs", "--ip", "10.0.0"]).fails(2);
}

#[test]
fn a_keyref_selects_one_keys_requests_even_after_delete() {
    let f = fixture();
    let env = &f.env;
    let svc_rows = [at(-2 * HOUR), at(-3 * HOUR)];
    for r in [
        "svc",
        f.svc.id(),
        f.svc.prefix(),
        &format!("{}...", f.svc.prefix()),
    ] {
        assert_eq!(times(&env.logs_json(&[r])), svc_rows, "logs {r}");
    }
    assert_eq!(times(&env.logs_json(&["other"])), [at(0)]);
    // Filters combine.
    assert_eq!(
        codes(&env.logs_json(&["svc", "--status", "403"])),
        ["forbidden_scope"]
    );
    env.run(&["logs", "nosuch"]).fails(3);

    env.run(&["delete", "--yes", "--force", "svc"]).ok();
    let rows = env.logs_json(&[f.svc.id()]);
    assert_eq!(times(&rows), svc_rows);
    assert!(rows.iter().all(|r| r["key_name"] == "svc"));
    // The name no longer names a key.
    env.run(&["logs", "svc"]).fails(3);
}

/// Issue 11: at a 130-column terminal the table keeps one line per request; a long
/// key name is cut with `…`, its id stays whole. Through a pipe nothing is cut.
#[test]
fn the_table_fits_a_130_column_terminal() {
    let env = TestEnv::initialized();
    let name = "production-eu-west-billing-service-deploy";
    let k = env.create(name, &["--scope", "read"]);
    let endpoint = ["--endpoint", "POST /v1/chat/completions"];
    let mut args = vec!["--ip", "10.100.200.201", "--duration-ms", "12345"];
    args.extend(endpoint);
    env.expect_verify(NOW, &k.secret, &args, "valid", "OK");
    args.extend(["--scope", "write"]);
    env.expect_verify(
        NOW,
        &k.secret,
        &args,
        "forbidden_scope",
        "API key lacks scope: write",
    );
    let out = run_on_tty(env.command(), &["--no-color", "logs"], 130);
    out.ok();
    let text = out.stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and one line per request:\n{text}");
    for line in &lines[1..] {
        assert!(line.starts_with("2026-11-23 12:00:00"), "{text}");
        assert!(line.contains(&format!("… ({})", k.id())), "{text}");
        assert!(
            line.contains("10.100.200.201") && line.contains("12345 ms"),
            "{text}"
        );
    }
    assert!(lines.iter().all(|l| l.chars().count() <= 130), "{text}");
    let piped = env.run(&["logs"]);
    assert!(
        piped.stdout.contains(&format!("{name} ({})", k.id())),
        "{piped}"
    );
    assert!(
        piped.stdout.contains("POST /v1/chat/completions"),
        "{piped}"
    );
}

// ---- --follow ----

fn spawn_follow(env: &TestEnv, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = env
        .command()
        .args(["logs", "--follow"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn keyctl logs --follow");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn next_line(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(WAIT_LIMIT)
        .unwrap_or_else(|_| panic!("logs --follow printed no line within {WAIT_LIMIT:?}"))
}

fn next_row(rx: &mpsc::Receiver<String>) -> Value {
    let line = next_line(rx);
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not json ({e}): {line}"))
}

fn stop(mut child: Child) {
    child.kill().expect("kill logs --follow");
    child.wait().expect("reap logs --follow");
}

#[test]
fn follow_prints_new_rows_as_they_arrive() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    env.expect_verify(NOW, &a.secret, &["--endpoint", "GET /first"], "valid", "OK");
    env.expect_verify(
        NOW,
        &a.secret,
        &["--endpoint", "GET /second"],
        "valid",
        "OK",
    );
    let (child, rx) = spawn_follow(&env, &["--json", "a"]);
    let mut shown = vec![next_row(&rx), next_row(&rx)];
    shown.sort_by_key(|r| r["seq"].as_i64());
    assert_eq!(
        column(&shown, "endpoint"),
        [&json!("GET /first"), &json!("GET /second")]
    );
    // Another key's request is not shown; the next request of `a` is.
    env.expect_verify(NOW, &b.secret, &["--endpoint", "GET /other"], "valid", "OK");
    env.expect_verify(NOW, &a.secret, &["--endpoint", "GET /third"], "valid", "OK");
    let row = next_row(&rx);
    stop(child);
    assert_eq!(row["endpoint"], "GET /third", "{row}");
    assert_eq!(row["key_id"], a.id());
    assert!(rx.try_recv().is_err(), "nothing else was printed");
}

#[test]
fn follow_on_an_empty_selection_waits_for_matching_rows() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    env.expect_verify(NOW, &a.secret, &[], "valid", "OK");
    let (child, rx) = spawn_follow(&env, &["--json", "--status", "invalid"]);
    // Once it sleeps between polls, its first read is done: the rows below are new to
    // it, so only following (not the first read) can show them.
    let pid = child.id();
    wait_for(
        "logs --follow polling (asleep in nanosleep, /proc/PID/wchan)",
        || in_timed_sleep(pid),
    );
    assert!(rx.try_recv().is_err(), "an empty selection printed a row");
    env.expect_verify(NOW, &a.secret, &[], "valid", "OK");
    env.expect_verify(
        NOW,
        "nonsense",
        &["--ip", "192.0.2.1"],
        "invalid",
        "Invalid API Key",
    );
    let row = next_row(&rx);
    stop(child);
    assert_eq!(row["code"], "invalid", "{row}");
    assert_eq!(row["ip"], "192.0.2.1");
}

/// Issue 11: `--follow`'s table starts with a header and every row keeps its columns
/// under it, however long a value is.
#[test]
fn follow_table_rows_line_up_under_a_header() {
    let env = TestEnv::initialized();
    let short = env.create("a", &[]);
    let long = env.create("a-key-name-far-longer-than-its-column", &[]);
    let every_cell = ["--ip", "10.0.0.2", "--duration-ms", "5"];
    let mut args = vec!["--endpoint", "GET /"];
    args.extend(every_cell);
    env.expect_verify(NOW, &short.secret, &args, "valid", "OK");
    let (child, rx) = spawn_follow(&env, &[]);
    let mut lines = vec![next_line(&rx), next_line(&rx)];
    env.expect_verify(
        NOW,
        &long.secret,
        &[
            "--endpoint",
            "POST /v1/a/very/long/endpoint/path",
            "--ip",
            "10.0.0.1",
            "--duration-ms",
            "12345",
        ],
        "valid",
        "OK",
    );
    lines.push(next_line(&rx));
    stop(child);
    let header = &lines[0];
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["Time", "Key", "Endpoint", "Status", "Reason", "IP", "Duration", "Credits"]
    );
    assert!(
        lines[1].contains(&format!("a ({})", short.id())),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains(&format!("a-key-name-far-… ({})", long.id())),
        "{lines:#?}"
    );
    for column in [
        "Key", "Endpoint", "Status", "Reason", "IP", "Duration", "Credits",
    ] {
        let at = header.find(column).unwrap();
        for row in &lines[1..] {
            let before: String = row.chars().take(at).collect();
            let here = row.chars().nth(at);
            assert!(
                before.ends_with("  ") && here.is_some_and(|c| c != ' '),
                "{column} does not line up in {row:?} under {header:?}"
            );
        }
    }
}

/// A store with key `a` and its requests GET /1, /2, /3, followed with `args`.
fn follow_after_three_requests(args: &[&str]) -> (TestEnv, Created, Child, mpsc::Receiver<String>) {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    for endpoint in ["GET /1", "GET /2", "GET /3"] {
        env.expect_verify(NOW, &a.secret, &["--endpoint", endpoint], "valid", "OK");
    }
    let (child, rx) = spawn_follow(&env, args);
    (env, a, child, rx)
}

/// The first read shows only the newest `--limit` rows, but following starts after
/// the newest row of the whole log: every later row is shown, once, oldest first.
#[test]
fn follow_with_a_limit_shows_the_newest_rows_then_every_new_one() {
    let (env, a, child, rx) = follow_after_three_requests(&["--json", "--limit", "1"]);
    assert_eq!(next_row(&rx)["endpoint"], "GET /3");
    for endpoint in ["GET /4", "GET /5"] {
        env.expect_verify(NOW, &a.secret, &["--endpoint", endpoint], "valid", "OK");
    }
    let rows = [next_row(&rx), next_row(&rx)];
    stop(child);
    assert_eq!(
        column(&rows, "endpoint"),
        [&json!("GET /4"), &json!("GET /5")]
    );
    assert!(rx.try_recv().is_err(), "a row was shown twice");
}

/// A log pruned empty while it is followed numbers its next rows from the start
/// again; the follower still shows them.
#[test]
fn follow_shows_new_rows_after_the_log_is_pruned_empty() {
    let (env, a, child, rx) = follow_after_three_requests(&["--json"]);
    let _ = [next_row(&rx), next_row(&rx), next_row(&rx)];
    env.run(&["logs", "prune", "--before", "2026-11-24"]).ok();
    assert_eq!(env.run(&["logs", "--json"]).stdout.trim(), "[]");
    env.expect_verify(NOW, &a.secret, &["--endpoint", "GET /new"], "valid", "OK");
    let row = next_row(&rx);
    stop(child);
    assert_eq!(row["endpoint"], "GET /new", "{row}");
}

// ---- prune and retention ----

/// Everything that must survive a prune: the key object with usage, per-day usage,
/// and a view of the quotas.
fn figures(env: &TestEnv, now: &str, keyref: &str) -> (Value, Value) {
    let out = env.run_at(now, &["show", "--json", keyref]);
    out.ok();
    let usage = env.run_at(now, &["usage", "--json", "--days", "10", keyref]);
    usage.ok();
    (out.json(), usage.json())
}

#[test]
fn prune_deletes_old_rows_but_no_counts_credits_usage_or_last_use() {
    let env = TestEnv::initialized();
    let k = env.create_at(
        &at(-10 * DAY),
        "q",
        &[
            "--quota-daily",
            "2",
            "--quota-weekly",
            "3",
            "--quota-total",
            "4",
            "--credits",
            "100",
        ],
    );
    let s = &k.secret;
    env.expect_verify(
        &at(-2 * DAY),
        s,
        &["--cost", "5", "--ip", "10.0.0.1"],
        "valid",
        "OK",
    );
    env.expect_verify(&at(-2 * HOUR), s, &[], "valid", "OK");
    env.expect_verify(&at(-HOUR), s, &["--ip", "10.0.0.2"], "valid", "OK");
    env.expect_verify(
        &at(-HOUR),
        s,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    let before = figures(&env, NOW, "q");
    assert_eq!(before.0["credits_used"], 7);
    assert_eq!(before.0["last_used_at"], at(-HOUR));

    let out = env.run(&["logs", "prune", "--before", "1d"]);
    out.ok();
    assert!(out.stderr.contains("deleted 1 request-log row"), "{out}");
    assert_eq!(
        times(&env.logs_json(&[])),
        [at(-HOUR), at(-HOUR), at(-2 * HOUR)]
    );
    assert_eq!(figures(&env, NOW, "q"), before, "prune changed the figures");

    // Prune everything: still the same figures, and the limits still hold.
    let out = env.run(&["logs", "prune", "--before", "2026-11-24"]);
    out.ok();
    assert_eq!(env.count_rows("requests"), 0);
    assert_eq!(figures(&env, NOW, "q"), before, "prune changed the figures");
    env.expect_verify(
        NOW,
        s,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    // A day on, the daily window is free but the weekly one (which counts the pruned
    // request of two days ago) is full.
    env.expect_verify(
        &at(DAY),
        s,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota weekly",
    );
    // And once the weekly window has passed, the total quota still counts them all.
    env.expect_verify(&at(6 * DAY), s, &[], "valid", "OK");
    env.expect_verify(
        &at(7 * DAY),
        s,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
    assert_eq!(env.key_json_at(&at(7 * DAY), "q")["credits_used"], 8);
}

#[test]
fn prune_needs_a_time_in_the_past_or_a_date() {
    let env = TestEnv::initialized();
    for args in [
        &["logs", "prune"][..],
        &["logs", "prune", "--before", "never"],
        &["logs", "prune", "--before", "sometime"],
    ] {
        let before = env.snapshot();
        let out = env.run(args);
        assert_eq!(out.code, Some(2), "{out}");
        assert_eq!(env.snapshot(), before);
    }
}

#[test]
fn log_retention_prunes_old_rows_on_each_recorded_request() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "log-retention", "1d"]).ok();
    let k = env.create_at(
        &at(-10 * DAY),
        "r",
        &["--quota-weekly", "3", "--credits", "10"],
    );
    let s = &k.secret;
    env.expect_verify(&at(-3 * DAY), s, &["--cost", "4"], "valid", "OK");
    env.expect_verify(&at(-2 * DAY + HOUR), s, &[], "valid", "OK");
    // The first write more than a day later pruned what was older than a day.
    assert_eq!(times(&env.logs_json(&[])), [at(-2 * DAY + HOUR)]);
    env.expect_verify(&at(-HOUR), s, &[], "valid", "OK");
    assert_eq!(times(&env.logs_json(&[])), [at(-HOUR)]);
    // Counts, credits, usage and last use are untouched.
    env.expect_verify(
        NOW,
        s,
        &[],
        "quota_exceeded",
        "Rate limit exceeded: quota weekly",
    );
    let shown = env.key_json("r");
    assert_eq!(shown["credits_used"], 6);
    assert_eq!(shown["last_used_at"], at(-HOUR));
    let usage = env.usage_of(NOW, "r");
    assert_eq!(
        usage["last_7d"],
        json!({"requests": 4, "accepted": 3, "rejected": 1, "credits": 6})
    );
    let out = env.run(&["usage", "--json", "--days", "4", "r"]);
    out.ok();
    let accepted: Vec<u64> = out.json()["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["accepted"].as_u64().unwrap())
        .collect();
    assert_eq!(accepted, [1, 1, 0, 1]);
    // With the setting back at `never`, writes prune nothing.
    env.run(&["config", "set", "log-retention", "never"]).ok();
    env.expect_verify(&at(4 * DAY + HOUR), s, &[], "valid", "OK");
    assert_eq!(
        times(&env.logs_json(&[])),
        [at(4 * DAY + HOUR), at(0), at(-HOUR)]
    );
}
