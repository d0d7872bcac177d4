//! SPEC §3 stream mode (`verify --stream`): one json request per stdin line, exactly
//! one flushed `--json`-shaped result line per request line, in order; a malformed
//! line gets `bad_request` and the stream goes on; each request its own transaction.

use serde_json::{json, Value};

use keyctl::core::limits::MAX_COUNT;

use crate::support::*;

/// Runs `keyctl verify --stream ARGS` at `now` on `input`; asserts exit 0 and a
/// quiet stderr, and returns the result lines parsed (each checked for its shape).
fn stream(env: &TestEnv, now: &str, args: &[&str], input: &[u8]) -> (Outcome, Vec<Value>) {
    let mut all = vec!["verify", "--stream"];
    all.extend_from_slice(args);
    let out = env.run_at_with_stdin(now, &all, input);
    out.ok();
    assert_eq!(out.stderr, "", "stream mode wrote to stderr\n{out}");
    assert!(
        out.stdout.is_empty() || out.stdout.ends_with('\n'),
        "every result line is terminated\n{out}"
    );
    let results = out
        .stdout
        .lines()
        .map(|line| assert_verdict_line(&out, line))
        .collect();
    (out, results)
}

/// The first word of a parser's internals in `text`, if any: messages must speak of
/// the input, not of Rust types (`untagged enum List`, `expected ident`).
pub(crate) fn parser_word(text: &str) -> Option<&'static str> {
    [
        "serde",
        "untagged",
        "variant",
        "expected struct",
        "ident",
        "expected u64",
        "invalid type",
        "EOF",
    ]
    .into_iter()
    .find(|w| text.contains(w))
}

/// Values of the wrong type for a string field, with how the answer describes each.
pub(crate) const NOT_A_STRING: [(&str, &str); 4] = [
    ("5", "5"),
    ("true", "true"),
    ("[\"a\"]", "a list"),
    ("{\"nested\": \"x\"}", "an object"),
];

/// One line per wrong value of `field` (the `required` field given a good value
/// unless it is the one under test), each with the message it must get:
/// ``field `F` must be MUST_BE, got GOT``.
pub(crate) fn wrong_values(
    required: &str,
    field: &str,
    values: &[(&str, &str)],
    must_be: &str,
) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(value, got)| {
            let line = if field == required {
                format!("{{\"{field}\": {value}}}")
            } else {
                format!("{{\"{required}\": \"b\", \"{field}\": {value}}}")
            };
            (
                line,
                format!("field `{field}` must be {must_be}, got {got}"),
            )
        })
        .collect()
}

fn req(v: Value) -> String {
    format!("{v}\n")
}

fn codes(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|r| r["code"].as_str().expect("code is a string"))
        .collect()
}

fn assert_bad_request(r: &Value) {
    assert_eq!(r["valid"], false, "{r}");
    assert_eq!(r["code"], "bad_request", "{r}");
    assert_eq!(r["status"], 400, "{r}");
    assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
    assert_eq!(r["key_id"], Value::Null, "{r}");
}

#[test]
fn every_request_line_gets_one_result_line_in_order() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--scope", "read"]);
    let r = env.create("old", &[]);
    env.run(&["revoke", "--yes", "old"]).ok();
    let forged = forge_secret("sk", "live", "0123456789ABCDEFGHIJabcdefghij01");
    let mut input = Vec::new();
    input.extend(req(json!({"key": k.secret})).bytes());
    input.extend(b"\n");
    input.extend(req(json!({"key": forged})).bytes());
    input.extend(b"not json\n");
    input.extend(b"   \t \r\n");
    input.extend(b"{\"key\": 5}\n");
    input.extend(b"{\"ip\": \"10.0.0.1\"}\n");
    input.extend(req(json!({"key": k.secret, "ip": "bad"})).bytes());
    input.extend([0xff, 0xfe, b'{', b'}', b'\n']);
    input.extend(b"[1, 2]\n");
    input.extend(b"{\"key\": \"x\"\n");
    input.extend(req(json!({"key": format!("Bearer {}", k.secret), "scope": "admin"})).bytes());
    input.extend(b"\n\n");
    input.extend(req(json!({"key": r.secret})).bytes());
    input.extend(req(json!({"key": format!("Authorization: Bearer {}", k.secret)})).bytes());
    // The last line has no newline: it is still a request.
    input.extend(
        json!({"key": k.secret, "scope": "read"})
            .to_string()
            .bytes(),
    );

    let (out, results) = stream(&env, NOW, &[], &input);
    assert_eq!(
        codes(&results),
        [
            "valid",
            "bad_request",
            "invalid",
            "bad_request",
            "bad_request",
            "bad_request",
            "bad_request",
            "bad_request",
            "bad_request",
            "bad_request",
            "bad_request",
            "forbidden_scope",
            "bad_request",
            "bad_request",
            "revoked",
            "valid",
            "valid",
        ],
        "{out}"
    );
    for r in results.iter().filter(|r| r["code"] == "bad_request") {
        assert_bad_request(r);
    }
    assert_verdict(&results[0], "valid", "OK");
    assert_eq!(results[0]["key_id"], k.id());
    assert_eq!(results[0]["key_name"], "svc");
    assert_eq!(
        results[0]["quota_remaining"],
        json!({"total": null, "daily": null, "weekly": null, "monthly": null})
    );
    let empty = "Bad request: the line is empty; send one json object like {\"key\": \"...\"}";
    for blank in [1, 4, 12, 13] {
        assert_eq!(results[blank]["message"], empty, "{out}");
    }
    assert_verdict(&results[2], "invalid", "Invalid API Key");
    assert_verdict(
        &results[11],
        "forbidden_scope",
        "API key lacks scope: admin",
    );
    assert_verdict(&results[14], "revoked", "API key has been revoked");
    // The verifications were recorded like single ones.
    let logged = env.logs_json(&[]);
    let logged: Vec<&str> = logged.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(
        logged,
        [
            "valid",
            "valid",
            "revoked",
            "forbidden_scope",
            "invalid",
            "valid"
        ]
    );
}

/// No input, no answer; but every line, a blank one included, gets exactly one.
#[test]
fn empty_input_gives_no_output_and_blank_lines_each_get_an_answer() {
    let env = TestEnv::initialized();
    let (out, results) = stream(&env, NOW, &[], b"");
    assert!(results.is_empty());
    assert_eq!(out.stdout, "");
    let (out, results) = stream(&env, NOW, &[], b"\n\r\n   \n\t");
    assert_eq!(codes(&results), ["bad_request"; 4], "{out}");
    assert_eq!(
        env.count_rows("requests"),
        0,
        "a blank line is not a request"
    );
}

#[test]
fn request_fields_are_checked_and_recorded() {
    let env = TestEnv::initialized();
    let k = env.create(
        "ctx",
        &[
            "--allow-ip",
            "10.0.0.0/8",
            "--deployment",
            "prod",
            "--scope",
            "read",
            "--allow-model",
            "m1",
            "--credits",
            "10",
        ],
    );
    let s = &k.secret;
    let good = json!({
        "key": s, "ip": "10.1.2.3", "deployment": "prod", "scope": "read", "model": "m1",
        "endpoint": "POST /v1/chat", "cost": 4, "duration_ms": 37, "trace_id": "ignored",
    });
    let mut lines = vec![req(good.clone())];
    // The same request with one field wrong.
    for (field, value) in [
        ("ip", json!("11.0.0.1")),
        ("deployment", json!("dev")),
        ("scope", json!("write")),
        ("model", json!("m2")),
        ("cost", json!(7)),
    ] {
        let mut v = good.clone();
        v[field] = value;
        lines.push(req(v));
    }
    let mut no_ip = good.clone();
    no_ip.as_object_mut().unwrap().remove("ip");
    lines.push(req(no_ip));
    let (_, results) = stream(&env, NOW, &[], lines.concat().as_bytes());
    assert_eq!(
        codes(&results),
        [
            "valid",
            "ip_not_allowed",
            "forbidden_deployment",
            "forbidden_scope",
            "forbidden_model",
            "credits_exhausted",
            "ip_not_allowed",
        ]
    );
    assert_eq!(results[0]["credits_remaining"], 6);
    assert_verdict(
        &results[2],
        "forbidden_deployment",
        "API key is not authorized for this deployment.",
    );
    assert_verdict(&results[5], "credits_exhausted", "Credit limit reached");
    let rows = env.logs_json(&["--status", "valid"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["endpoint"], "POST /v1/chat");
    assert_eq!(rows[0]["duration_ms"], 37);
    assert_eq!(rows[0]["credits"], 4);
    assert_eq!(rows[0]["ip"], "10.1.2.3");
    let shown = env.key_json("ctx");
    assert_eq!(shown["credits_used"], 4);
    assert_eq!(shown["last_used_ip"], "10.1.2.3");
}

#[test]
fn the_cost_flag_is_the_default_cost_of_stream_requests() {
    let env = TestEnv::initialized();
    let k = env.create("paid", &["--credits", "10"]);
    let input = [
        req(json!({"key": k.secret})),
        req(json!({"key": k.secret, "cost": 1})),
    ]
    .concat();
    let (_, results) = stream(&env, NOW, &["--cost", "3"], input.as_bytes());
    assert_eq!(results[0]["credits_remaining"], 7);
    assert_eq!(results[1]["credits_remaining"], 6);
}

#[test]
fn limits_apply_across_the_lines_of_one_stream() {
    let env = TestEnv::initialized();
    let q = env.create("quota", &["--quota-daily", "2"]);
    let r = env.create("rate", &["--rate-limit", "1/s"]);
    let input = [
        req(json!({"key": q.secret})),
        req(json!({"key": r.secret})),
        req(json!({"key": q.secret})),
        req(json!({"key": r.secret})),
        req(json!({"key": q.secret})),
    ]
    .concat();
    let (_, results) = stream(&env, NOW, &[], input.as_bytes());
    assert_eq!(
        codes(&results),
        ["valid", "valid", "valid", "rate_limited", "quota_exceeded"]
    );
    assert_verdict(
        &results[3],
        "rate_limited",
        "Rate limit exceeded: 1 per second",
    );
    assert_verdict(
        &results[4],
        "quota_exceeded",
        "Rate limit exceeded: quota daily",
    );
    assert_eq!(results[2]["quota_remaining"]["daily"], 0);
}

#[test]
fn invalid_stream_requests_from_one_ip_block_it() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "failed-auth-limit", "3"]).ok();
    let k = env.create("svc", &[]);
    let ip = "203.0.113.50";
    let mut lines: Vec<String> = (0..3)
        .map(|i| req(json!({"key": format!("bogus{i}"), "ip": ip})))
        .collect();
    lines.push(req(json!({"key": k.secret, "ip": ip})));
    lines.push(req(json!({"key": k.secret, "ip": "198.51.100.1"})));
    let (_, results) = stream(&env, NOW, &[], lines.concat().as_bytes());
    assert_eq!(
        codes(&results),
        ["invalid", "invalid", "invalid", "ip_blocked", "valid"]
    );
    assert_verdict(&results[3], "ip_blocked", "IP temporarily blocked");
}

/// Each malformed line gets one `bad_request` whose message names the field and the
/// problem in plain words (never a parser's internals), and the stream goes on: a
/// good request after each bad one is answered `valid`.
#[test]
fn each_malformed_line_is_told_its_problem_in_plain_words() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let over = (MAX_COUNT + 1).to_string();
    let object = "the line must be one json object like {\"key\": \"...\"}, got";
    let mut cases: Vec<(Vec<u8>, String)> = vec![
        (
            b"".to_vec(),
            "the line is empty; send one json object like {\"key\": \"...\"}".into(),
        ),
        (
            b"{not json".to_vec(),
            "the line is not valid json: unexpected character `n` at column 2".into(),
        ),
        (
            b"{\"key\": \"x\", }".to_vec(),
            "the line is not valid json: unexpected character `}` at column 14".into(),
        ),
        (
            b"{\"key\": \"x\"".to_vec(),
            "the line is not valid json: it ends at column 11 before the object is complete".into(),
        ),
        (
            b"{\"key\": \"x\"} trailing".to_vec(),
            "the line is not valid json: unexpected character `t` at column 14".into(),
        ),
        (
            b"{\"key\": tru}".to_vec(),
            "the line is not valid json: `tru` at column 9 is not a json value".into(),
        ),
        (b"[{\"key\": \"x\"}]".to_vec(), format!("{object} a list")),
        (b"null".to_vec(), format!("{object} null")),
        (b"12".to_vec(), format!("{object} a number")),
        (b"\"sk_live_abc\"".to_vec(), format!("{object} a string")),
        (
            b"{}".to_vec(),
            "field `key` is missing; it is required".into(),
        ),
        (
            b"{\"key\": null}".to_vec(),
            "field `key` is missing; it is required".into(),
        ),
        (
            b"{\"key\": \"a\", \"key\": \"b\"}".to_vec(),
            "field `key` is given twice; give each field once".into(),
        ),
        (
            b"{\"key\": \"\xff\xfe\"}".to_vec(),
            "the line is not UTF-8 text (invalid byte at column 10)".into(),
        ),
        (
            b"{\"key\": \"x\", \"ip\": \"10.0.0.0/8\"}".to_vec(),
            "field `ip`: invalid IP address '10.0.0.0/8'".into(),
        ),
        (
            b"{\"key\": \"x\", \"scope\": \"a\\u0007b\"}".to_vec(),
            "invalid field `scope`: it contains a control character (U+0007)".into(),
        ),
        (
            format!("{{\"key\": \"{}\"}}", "x".repeat(70_000)).into_bytes(),
            "the line is longer than 65536 bytes".into(),
        ),
    ];
    for field in ["key", "ip", "scope", "deployment", "model", "endpoint"] {
        let wrong = wrong_values("key", field, &NOT_A_STRING, "a string");
        cases.extend(
            wrong
                .into_iter()
                .map(|(line, says)| (line.into_bytes(), says)),
        );
    }
    let not_a_count = [
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("\"ten\"", "a string"),
        ("\"-3\"", "\"-3\""),
        (over.as_str(), over.as_str()),
        ("1e300", "1e+300"),
        ("false", "false"),
        ("[1]", "a list"),
        ("{\"n\": 1}", "an object"),
    ];
    for field in ["cost", "duration_ms"] {
        let must_be = format!("a whole number from 0 to {MAX_COUNT}");
        let wrong = wrong_values("key", field, &not_a_count, &must_be);
        cases.extend(
            wrong
                .into_iter()
                .map(|(line, says)| (line.into_bytes(), says)),
        );
    }
    let good = req(json!({"key": k.secret}));
    let mut input = Vec::new();
    for (line, _) in &cases {
        input.extend_from_slice(line);
        input.push(b'\n');
        input.extend_from_slice(good.as_bytes());
    }
    let (out, results) = stream(&env, NOW, &["--no-record"], &input);
    assert_eq!(results.len(), 2 * cases.len(), "one answer per line\n{out}");
    let mut problems = Vec::new();
    for (i, (line, says)) in cases.iter().enumerate() {
        let (bad, after) = (&results[2 * i], &results[2 * i + 1]);
        let message = bad["message"].as_str().unwrap_or_default();
        let shown = String::from_utf8_lossy(&line[..line.len().min(60)]);
        if bad["code"] != "bad_request"
            || message != format!("Bad request: {says}")
                && !message.starts_with(&format!("Bad request: {says}"))
        {
            problems.push(format!("{shown:?}: answered {bad}, want {says:?}"));
        }
        if let Some(word) = parser_word(message) {
            problems.push(format!("{shown:?}: shows the parser's {word:?}: {message}"));
        }
        if after["code"] != "valid" {
            problems.push(format!("{shown:?}: the next good request got {after}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The examples of issue 10, answered in plain words.
#[test]
fn the_issue_examples_get_plain_answers() {
    let env = TestEnv::initialized();
    let input = b"{not json\n{\"key\": \"x\", \"cost\": -1}\n{\"key\": \"x\", \"ip\": 5}\n\n";
    let (out, results) = stream(&env, NOW, &[], input);
    let messages: Vec<&str> = results
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "Bad request: the line is not valid json: unexpected character `n` at column 2; field names take double quotes",
            &format!(
                "Bad request: field `cost` must be a whole number from 0 to {MAX_COUNT}, got -1"
            ),
            "Bad request: field `ip` must be a string, got 5",
            "Bad request: the line is empty; send one json object like {\"key\": \"...\"}",
        ],
        "{out}"
    );
}

#[test]
fn an_overlong_line_is_a_bad_request_and_the_stream_goes_on() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let long = format!("{{\"key\": \"{}\"}}\n", "x".repeat(100_000));
    let input = [long, req(json!({"key": k.secret}))].concat();
    let (_, results) = stream(&env, NOW, &[], input.as_bytes());
    assert_eq!(codes(&results), ["bad_request", "valid"]);
    assert_bad_request(&results[0]);
}

/// Pipelined input longer than one read of stdin: lines of many lengths end up split
/// across reads, and each still gets its own answer, in order, with its record.
#[test]
fn lines_split_across_reads_are_each_answered_in_order() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let unknown = forge_secret("sk", "live", "SplitSplitSplitSplitSplitSplit00");
    const LINES: usize = 3000;
    let mut input = String::new();
    let mut want = Vec::new();
    for i in 0..LINES {
        // 0 to 997 bytes of padding: the line ends fall anywhere in a read.
        let endpoint = format!("GET /{}", "p".repeat(i * 37 % 998));
        if i % 7 == 3 {
            input.push_str(&format!("{{\"key\": \"{}\", \"endpoint\": 5}}\n", k.secret));
            want.push("bad_request");
        } else if i % 10 == 9 {
            // Each from an address of its own: no address reaches the failure limit.
            let ip = format!("10.{}.{}.1", i / 256 % 256, i % 256);
            input.push_str(&req(
                json!({"key": unknown, "ip": ip, "endpoint": endpoint}),
            ));
            want.push("invalid");
        } else {
            input.push_str(&req(json!({"key": k.secret, "endpoint": endpoint})));
            want.push("valid");
        }
    }
    assert!(input.len() > 8 * 64 * 1024, "{} bytes", input.len());
    let (_, results) = stream(&env, NOW, &[], input.as_bytes());
    assert_eq!(codes(&results), want);
    let recorded = want.iter().filter(|c| **c != "bad_request").count();
    assert_eq!(env.count_rows("requests"), recorded as i64);
}

#[test]
fn no_record_in_stream_mode_writes_nothing() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "failed-auth-limit", "1"]).ok();
    let k = env.create("svc", &["--quota-daily", "1", "--credits", "2"]);
    let before = env.snapshot();
    let input = [
        req(json!({"key": k.secret, "ip": "10.0.0.1"})),
        req(json!({"key": k.secret, "cost": 2})),
        req(json!({"key": "bogus", "ip": "203.0.113.1"})),
        "garbage\n".to_string(),
        req(json!({"key": k.secret, "ip": "203.0.113.1"})),
    ]
    .concat();
    let (_, results) = stream(&env, NOW, &["--no-record"], input.as_bytes());
    assert_eq!(
        codes(&results),
        ["valid", "valid", "invalid", "bad_request", "valid"]
    );
    assert_eq!(env.snapshot(), before, "--no-record changed the store");
    assert_eq!(env.count_rows("requests"), 0);
    assert_eq!(env.key_json("svc")["last_used_at"], Value::Null);
}

#[test]
fn stream_mode_takes_no_single_request_flags() {
    let env = TestEnv::initialized();
    for flag in [
        &["--ip", "10.0.0.1"][..],
        &["--key-env", "K"],
        &["--scope", "s"],
        &["--deployment", "d"],
        &["--model", "m"],
        &["--endpoint", "GET /"],
        &["--duration-ms", "5"],
    ] {
        let mut args = vec!["verify", "--stream"];
        args.extend_from_slice(flag);
        env.run_at_with_stdin(NOW, &args, b"").fails(2);
    }
}

/// A `verify --stream` process on `env`'s store, left running for a test to talk to.
fn running_stream(env: &TestEnv) -> LiveProcess {
    LiveProcess::spawn({
        let mut c = env.command();
        c.args(["verify", "--stream"]);
        c
    })
}

/// Writes `line` to a running stream and reads its answer, which must be json.
fn answer(stream: &mut LiveProcess, line: &str) -> Value {
    stream.write_raw(line.as_bytes()).unwrap();
    let answer = stream.next_line();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not json ({e}): {answer}"))
}

/// A coprocess gets each answer before it sends the next request (results are
/// flushed), and each request sees the store as it is then (its own transaction).
#[test]
fn a_coprocess_gets_each_answer_before_sending_the_next_request() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let mut stream = running_stream(&env);
    let mut ask = |line: String| -> Value { answer(&mut stream, &line) };
    assert_eq!(ask(req(json!({"key": k.secret})))["code"], "valid");
    // Another process disables the key while the stream runs.
    env.run(&["disable", "svc"]).ok();
    assert_eq!(ask(req(json!({"key": k.secret})))["code"], "inactive");
    assert_eq!(ask("{oops\n".to_string())["code"], "bad_request");
    // A blank line is answered too: this client would otherwise wait forever.
    assert_eq!(ask("\n".to_string())["code"], "bad_request");
    env.run(&["enable", "svc"]).ok();
    assert_eq!(ask(req(json!({"key": k.secret})))["code"], "valid");
    // End of input: every line it printed was read above.
    let ended = stream.end();
    assert_eq!(ended.code, Some(0), "exit 0 at end of input");
    assert_eq!(ended.stderr, "");
    assert!(ended.rest.is_empty(), "no extra line: {:?}", ended.rest);
    assert_eq!(env.count_rows("requests"), 3);
}

/// Each answer comes only after its request's record is in the store, where any other
/// process reads it at once, while the stream goes on running and writing (SPEC §7:
/// a verdict is written after the commit that holds its record).
#[test]
fn every_answered_request_is_in_the_store_for_other_processes_at_once() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let mut stream = running_stream(&env);
    for n in 1..=40u64 {
        assert_eq!(
            answer(&mut stream, &req(json!({"key": k.secret})))["code"],
            "valid"
        );
        assert_eq!(env.count_rows("requests"), n as i64, "after answer {n}");
        if n % 10 == 0 {
            let shown = env.run(&["show", "--json", "svc"]).ok().json();
            assert_eq!(shown["usage"]["last_24h"]["accepted"], json!(n), "{shown}");
        }
    }
    let ended = stream.end();
    assert_eq!(ended.code, Some(0), "exit 0 at end of input");
}

/// A running stream decides each request on the settings as they are then: a store-wide
/// rate limit another process sets applies from the next line, and so does its removal
/// (the stream keeps the settings it read only while nothing else wrote the store).
#[test]
fn a_stream_applies_settings_another_process_changes_while_it_runs() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let mut stream = running_stream(&env);
    let mut ask = || -> String {
        let v = answer(&mut stream, &req(json!({"key": k.secret})));
        v["code"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(ask(), "valid");
    assert_eq!(ask(), "valid");
    // Two accepted in this minute already: a limit of 3 a minute leaves one.
    env.run(&["config", "set", "rate-limit", "3/m"]).ok();
    assert_eq!(ask(), "valid");
    assert_eq!(ask(), "rate_limited");
    env.run(&["config", "set", "rate-limit", "none"]).ok();
    assert_eq!(ask(), "valid");
    let ended = stream.end();
    assert_eq!(ended.code, Some(0), "exit 0 at end of input");
}

/// Issue 5, the stream form: 8 `--stream` processes × 100 lines of one key at once.
#[test]
fn eight_streams_verifying_one_key_at_once_lose_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("hot", &["--quota-total", "800"]);
    let input = req(json!({"key": k.secret})).repeat(100);
    // Start all eight (each fed from its own thread), then wait, so they run at once.
    let started: Vec<Running> = (0..8)
        .map(|_| {
            env.keyctl(&["verify", "--stream"])
                .stdin(input.as_bytes())
                .spawn()
        })
        .collect();
    let outs: Vec<std::process::Output> = started.into_iter().map(Running::output).collect();
    for out in &outs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("locked"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(stderr, "");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 100);
        for line in stdout.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["code"], "valid", "{line}");
        }
    }
    assert_eq!(env.count_rows("requests"), 800);
    assert_eq!(env.usage_of(NOW, "hot")["last_24h"]["accepted"], 800);
    let (_, results) = stream(&env, NOW, &[], req(json!({"key": k.secret})).as_bytes());
    assert_verdict(
        &results[0],
        "quota_exceeded",
        "Rate limit exceeded: quota total",
    );
}
