//! SPEC §7 group commit in `verify --stream`: the lines already waiting on stdin are
//! decided and recorded in one transaction, with exactly the verdicts, counters and
//! log rows one transaction per line gives, in line order; a verdict is written only
//! after the commit that holds its record. Checked through what a user sees: the
//! answers, `show --json` and `logs --json`, the same whether a client waits for each
//! answer (groups of one) or writes every line up front (groups of many).

use serde_json::{json, Value};

use crate::support::*;

/// Two stores with the same keys (ids, secrets, settings): the second a `copy` of the
/// first, so the same request lines mean the same to both.
pub(crate) struct Twins {
    pub one_at_a_time: TestEnv,
    pub pipelined: TestEnv,
    /// (name, secret) of every key, in creation order.
    pub keys: Vec<(String, String)>,
}

pub(crate) fn twins() -> Twins {
    let a = TestEnv::initialized();
    a.run(&["config", "set", "failed-auth-limit", "3"]).ok();
    let mut keys = Vec::new();
    let mut add = |name: &str, flags: &[&str]| {
        keys.push((name.to_string(), a.create(name, flags).secret.clone()));
    };
    add("plain", &[]);
    add("total", &["--quota-total", "3"]);
    add("daily", &["--quota-daily", "2"]);
    add("rate", &["--rate-limit", "2/s"]);
    add("credits", &["--credits", "5"]);
    add("ips", &["--allow-ip", "10.0.0.0/8"]);
    add("scoped", &["--scope", "read"]);
    add("models", &["--allow-model", "gpt-x"]);
    add("deployed", &["--deployment", "prod"]);
    add("off", &[]);
    add("gone", &[]);
    a.disable("off");
    a.revoke("gone");
    // Created an hour ago with a 30-minute life: expired now.
    let expired = a.create_at(&now_plus(-3600), "expired", &["--expires", "30m"]);
    keys.push(("expired".to_string(), expired.secret.clone()));
    let b = TestEnv::new();
    let to = b.location();
    a.run(&["copy", "--to", to.to_str().expect("utf-8 location")])
        .ok();
    Twins {
        one_at_a_time: a,
        pipelined: b,
        keys,
    }
}

impl Twins {
    fn secret(&self, name: &str) -> &str {
        &self.keys.iter().find(|(n, _)| n == name).expect("a key").1
    }
}

/// The request sequence: valid and invalid keys, every limit reached, an IP blocked
/// by repeated failures (then refused even with a good key), lines that are not
/// requests in between.
pub(crate) fn sequence(t: &Twins) -> Vec<String> {
    let unknown = forge_secret("sk", "live", "GroupGroupGroupGroupGroupGroup00");
    let req = |name: &str, extra: Value| -> String {
        let mut v = json!({"key": t.secret(name), "ip": "10.1.2.3", "endpoint": "POST /v1/x"});
        if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in more {
                obj.insert(k.clone(), x.clone());
            }
        }
        v.to_string()
    };
    let mut lines = Vec::new();
    for i in 0..4 {
        lines.push(req("plain", json!({"duration_ms": i})));
        lines.push(req("total", json!({})));
        lines.push(req("daily", json!({})));
        lines.push(req("rate", json!({})));
        lines.push(req("credits", json!({"cost": 2})));
    }
    lines.push("not json".to_string());
    lines.push(req("ips", json!({})));
    lines.push(req("ips", json!({"ip": "192.0.2.1"})));
    lines.push(json!({"key": t.secret("ips")}).to_string());
    lines.push(String::new());
    lines.push(req("scoped", json!({"scope": "read"})));
    lines.push(req("scoped", json!({"scope": "write"})));
    lines.push(req("models", json!({"model": "gpt-x"})));
    lines.push(req("models", json!({"model": "gpt-z"})));
    lines.push(req("deployed", json!({"deployment": "prod"})));
    lines.push(req("deployed", json!({"deployment": "dev"})));
    lines.push(req("off", json!({})));
    lines.push(req("gone", json!({})));
    lines.push(req("expired", json!({})));
    lines.push(json!({"key": "sk_live_short", "ip": "10.9.9.9"}).to_string());
    lines.push(json!({"ip": "10.9.9.9"}).to_string());
    lines.push(json!({"key": t.secret("plain"), "ip": "not-an-ip"}).to_string());
    // Three invalid attempts from one address block it (failed-auth-limit 3).
    for _ in 0..4 {
        lines.push(json!({"key": unknown, "ip": "198.51.100.7"}).to_string());
    }
    lines.push(json!({"key": t.secret("plain"), "ip": "198.51.100.7"}).to_string());
    lines.push(req("plain", json!({"cost": 0})));
    lines
}

/// Every code `sequence` reaches, in the order SPEC §3 gives.
pub(crate) const EVERY_CODE: [&str; 14] = [
    "valid",
    "quota_exceeded",
    "rate_limited",
    "credits_exhausted",
    "ip_not_allowed",
    "forbidden_scope",
    "forbidden_model",
    "forbidden_deployment",
    "inactive",
    "revoked",
    "expired",
    "invalid",
    "ip_blocked",
    "bad_request",
];

/// The state a user can see after the requests: every key as `show --json` shows it
/// and the whole request log.
pub(crate) fn state(env: &TestEnv, names: &[(String, String)]) -> (Vec<Value>, Vec<Value>) {
    let keys = names.iter().map(|(n, _)| env.key_json(n)).collect();
    let logs = env.logs_json(&["--limit", "10000"]);
    (keys, logs)
}

/// The answers to `lines` from `verify --stream` on `one_at_a_time`, each answer read
/// before the next line is written (groups of one), and on `pipelined`, every line
/// written up front so they wait in the pipe together (groups of many): asserted the
/// same, one per line, in line order; returned.
pub(crate) fn answers_both_ways(
    one_at_a_time: &TestEnv,
    pipelined: &TestEnv,
    lines: &[String],
) -> Vec<Value> {
    let mut live = LiveProcess::spawn({
        let mut c = one_at_a_time.command();
        c.args(["verify", "--stream"]);
        c
    });
    let stepped: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(&live.ask(l)).expect("a json answer"))
        .collect();
    assert_eq!(live.finish(), Some(0));
    let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let out = pipelined.run_with_stdin(&["verify", "--stream"], input.as_bytes());
    out.ok();
    let piped: Vec<Value> = out
        .stdout_lines()
        .iter()
        .map(|l| assert_verdict_line(&out, l))
        .collect();
    assert_eq!(piped.len(), lines.len(), "one answer per line\n{out}");
    assert_eq!(stepped, piped, "the same answers, in line order");
    piped
}

#[test]
fn one_at_a_time_and_pipelined_give_the_same_verdicts_counters_and_log() {
    let t = twins();
    let lines = sequence(&t);
    let piped = answers_both_ways(&t.one_at_a_time, &t.pipelined, &lines);
    // The sequence really reached every outcome, in the order SPEC §3 gives.
    let codes: Vec<&str> = piped.iter().map(|v| v["code"].as_str().unwrap()).collect();
    for code in EVERY_CODE {
        assert!(codes.contains(&code), "no {code} in {codes:?}");
    }
    let blocked = lines.len() - 2;
    assert_eq!(codes[blocked], "ip_blocked", "a good key from a blocked IP");
    let (keys_a, logs_a) = state(&t.one_at_a_time, &t.keys);
    let (keys_b, logs_b) = state(&t.pipelined, &t.keys);
    assert_eq!(keys_a, keys_b, "the same counters, credits and last use");
    assert_eq!(logs_a, logs_b, "the same request log, row for row");
    let requests = codes.iter().filter(|c| **c != "bad_request").count();
    assert_eq!(
        logs_b.len(),
        requests,
        "one log row per request, none per bad line"
    );
}

/// keyctl without a fixed clock, as a service runs it.
fn service(env: &TestEnv) -> std::process::Command {
    let mut c = env.command();
    c.env_remove("KEYCTL_NOW");
    c
}

#[test]
fn a_stream_killed_mid_group_keeps_every_answered_request_and_whole_groups() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--credits", "1000000"]);
    let unknown = forge_secret("sk", "live", "KilledKilledKilledKilledKilled00");
    // Many lines written up front: big groups, and the kill lands inside one.
    const LINES: usize = 30_000;
    let mut input = String::new();
    for i in 0..LINES {
        let (key, ip) = if i % 10 == 9 {
            (
                unknown.as_str(),
                format!("10.{}.{}.1", i / 256 % 256, i % 256),
            )
        } else {
            (k.secret.as_str(), "10.0.0.1".to_string())
        };
        input.push_str(&json!({"key": key, "ip": ip, "cost": 1 + i % 3}).to_string());
        input.push('\n');
    }
    let mut live = LiveProcess::spawn({
        let mut c = service(&env);
        c.args(["verify", "--stream"]);
        c
    });
    let writer = {
        let mut stdin = live.take_stdin();
        std::thread::spawn(move || {
            use std::io::Write;
            // The pipe breaks when the process is killed: expected.
            let _ = stdin.write_all(input.as_bytes());
        })
    };
    // Some verdicts are out, many lines still waiting: kill it.
    let mut answered = Vec::new();
    while answered.len() < 500 {
        answered.push(live.next_line());
    }
    live.kill();
    let _ = writer.join();
    let out = Run::new(service(&env))
        .args(&["logs", "--json", "--limit", "100000"])
        .run();
    let logs: Vec<Value> = out.ok().json().as_array().cloned().expect("a json array");
    assert!(
        logs.len() >= answered.len(),
        "{} answers were printed but only {} requests are in the log",
        answered.len(),
        logs.len()
    );
    assert!(
        logs.len() < LINES,
        "the kill came after the last request: nothing was tested"
    );
    // The log is the first requests, in order (newest first in `logs`): no group was
    // half recorded, and every printed verdict matches its row.
    let oldest_first: Vec<&Value> = logs.iter().rev().collect();
    for (i, row) in oldest_first.iter().enumerate() {
        let want = if i % 10 == 9 { "invalid" } else { "valid" };
        assert_eq!(row["code"], want, "log row {i}: {row}");
        if let Some(line) = answered.get(i) {
            let v: Value = serde_json::from_str(line).expect("a json answer");
            assert_eq!(v["code"], want, "answer {i}");
        }
    }
    // Counters and credits agree with the log: whole groups or nothing.
    let valid = oldest_first.iter().filter(|r| r["code"] == "valid").count();
    let credits: usize = (0..oldest_first.len())
        .filter(|i| i % 10 != 9)
        .map(|i| 1 + i % 3)
        .sum();
    let out = Run::new(service(&env))
        .args(&["show", "--json", "svc"])
        .run();
    let shown = out.ok().json();
    assert_eq!(shown["credits_used"], json!(credits), "{shown}");
    let last_day = &shown["usage"]["last_24h"];
    assert_eq!(last_day["accepted"], json!(valid), "{shown}");
    assert_eq!(last_day["requests"], json!(valid), "{shown}");
}
