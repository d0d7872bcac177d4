//! `keyctl create --batch FILE|-`: one json object of create fields per line, one
//! `{"key", "key_details"}` line out per key in input order, all in one transaction;
//! any bad line fails the whole batch naming its line and creates nothing.

use std::fs;
use std::process::Stdio;

use serde_json::{json, Value};

use keyctl::core::limits::MAX_COUNT;

use crate::stream::{parser_word, wrong_values, NOT_A_STRING};
use crate::support::*;

/// Writes `text` to `name` in the test's folder and returns its path.
fn input_file(env: &TestEnv, name: &str, text: &str) -> String {
    let path = env.root().join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The output lines of a successful batch, parsed.
fn reveals(out: &Outcome) -> Vec<Value> {
    out.stdout_lines()
        .iter()
        .map(|line| {
            let o = Ordered::parse(line);
            assert_eq!(o.keys(), ["key", "key_details"], "{line}");
            assert_key_field_order(o.get("key_details"));
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

#[test]
fn a_batch_file_creates_one_key_per_line_in_order() {
    let env = TestEnv::initialized();
    // Blank and whitespace-only lines are skipped but still counted.
    let text = "{\"name\": \"first\"}\n\n{\"name\": \"second\", \"test\": true}\n   \n\t\n{\"name\": \"third\"}";
    let file = input_file(&env, "keys.jsonl", text);
    let out = env.run(&["create", "--batch", &file]);
    out.ok();
    assert_eq!(out.stderr, "created 3 keys\n");
    let got = reveals(&out);
    assert_eq!(got.len(), 3);
    let names: Vec<&str> = got
        .iter()
        .map(|v| v["key_details"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second", "third"]);
    for (v, mode) in got.iter().zip(["live", "test", "live"]) {
        let secret = v["key"].as_str().unwrap();
        assert_secret(secret, "sk", mode);
        let d = &v["key_details"];
        assert_eq!(d["key_prefix"], &secret[..12]);
        assert_eq!(d["status"], "active");
        assert_eq!(d["owner"], ACTOR);
        assert_eq!(d["created_at"], NOW);
        let id = d["id"].as_str().unwrap();
        assert_eq!(
            &env.key_json(id),
            d,
            "the stored key matches the printed one"
        );
        assert_eq!(env.secret_hash(id), sha256(secret.as_bytes()));
    }
    // One created event per key, naming its input line.
    let mut ev = env.audit_json(&["--action", "created"]);
    ev.reverse();
    let lines: Vec<i64> = ev
        .iter()
        .map(|e| e["details"]["batch_line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [1, 3, 6]);
    // No secret in the store.
    let stored = env.stored_bytes();
    for v in &got {
        let secret = v["key"].as_str().unwrap();
        for (place, bytes) in &stored {
            assert!(!contains_bytes(bytes, &secret.as_bytes()[8..]), "{place}");
        }
    }
}

#[test]
fn a_batch_from_stdin() {
    let env = TestEnv::initialized();
    let input = b"{\"name\": \"s1\"}\r\n{\"name\": \"s2\"}\n";
    let out = env.run_with_stdin(&["create", "--batch", "-"], input);
    out.ok();
    let got = reveals(&out);
    let names: Vec<&str> = got
        .iter()
        .map(|v| v["key_details"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    assert_eq!(env.list_names(&["--sort", "name"]), ["s1", "s2"]);
    // --quiet silences the note; --json changes nothing (the lines are json anyway).
    let out = env.run_with_stdin(
        &["-q", "--json", "create", "--batch", "-"],
        b"{\"name\": \"s3\"}\n",
    );
    out.ok();
    assert_eq!(out.stderr, "");
    assert_eq!(reveals(&out).len(), 1);
}

#[test]
fn every_create_field_is_accepted_as_json() {
    let env = TestEnv::initialized();
    let line = json!({
        "name": "full",
        "description": "all of it",
        "owner": "ops",
        "category": "staging",
        "group": "paid",
        "scopes": ["write", "read"],
        "deployment": "eu-1",
        "allowed_models": "small, large",
        "allowed_ips": ["10.0.0.0/8,2001:db8::/32", "203.0.113.7"],
        "expires": "30d",
        "quota_total": 1000,
        "quota_daily": "10",
        "quota_weekly": 50,
        "quota_monthly": 100,
        "rate_limit": "5/s",
        "credits": 500,
        "refill": "250/month",
        "refill_mode": "add",
        "test": true,
    });
    let out = env.run_with_stdin(&["create", "--batch", "-"], format!("{line}\n").as_bytes());
    out.ok();
    let v = &reveals(&out)[0];
    let d = &v["key_details"];
    assert_secret(v["key"].as_str().unwrap(), "sk", "test");
    let expected = json!({
        "id": d["id"],
        "name": "full",
        "description": "all of it",
        "owner": "ops",
        "key_prefix": d["key_prefix"],
        "status": "active",
        "is_active": true,
        "livemode": false,
        "category": "staging",
        "group": "paid",
        "scopes": ["read", "write"],
        "deployment": "eu-1",
        "allowed_models": ["large", "small"],
        "allowed_ips": ["10.0.0.0/8", "2001:db8::/32", "203.0.113.7"],
        "quotas": {"total": 1000, "daily": 10, "weekly": 50, "monthly": 100},
        "rate_limit": "5/s",
        "credit_limit": 500,
        "credits_used": 0,
        "refill": {"amount": 250, "interval": "month", "mode": "add"},
        "next_refill_at": "2026-12-01T00:00:00Z",
        "created_at": NOW,
        "expires_at": now_plus(30 * DAY),
        "last_used_at": null,
        "last_used_ip": null,
        "rotated_from": null,
        "rotated_to": null,
        "meta": {},
    });
    assert_eq!(d, &expected);
    // The same key made with flags looks the same.
    let flags = env.create(
        "flags",
        &[
            "--description",
            "all of it",
            "--owner",
            "ops",
            "--category",
            "staging",
            "--group",
            "paid",
            "--scope",
            "write",
            "--scope",
            "read",
            "--deployment",
            "eu-1",
            "--allow-model",
            "small",
            "--allow-model",
            "large",
            "--allow-ip",
            "10.0.0.0/8,2001:db8::/32",
            "--allow-ip",
            "203.0.113.7",
            "--expires",
            "30d",
            "--quota-total",
            "1000",
            "--quota-daily",
            "10",
            "--quota-weekly",
            "50",
            "--quota-monthly",
            "100",
            "--rate-limit",
            "5/s",
            "--credits",
            "500",
            "--refill",
            "250/month",
            "--refill-mode",
            "add",
            "--test",
        ],
    );
    for field in KEY_FIELDS {
        if !["id", "name", "key_prefix"].contains(&field) {
            assert_eq!(flags.details[field], d[field], "{field}");
        }
    }
}

struct BadBatch {
    what: &'static str,
    lines: &'static str,
    code: i32,
    /// The error line starts with `error: line N: `.
    line: usize,
    says: &'static str,
}

const BAD: &[BadBatch] = &[
    BadBatch {
        what: "malformed json",
        lines: "{\"name\": \"a\"}\n{\"name\": \"b\"}\n{\"name\": \"c\"\n",
        code: 2,
        line: 3,
        says: "json",
    },
    BadBatch {
        what: "not an object",
        lines: "{\"name\": \"a\"}\n[\"b\"]\n",
        code: 2,
        line: 2,
        says: "the line must be one json object like {\"name\": ",
    },
    BadBatch {
        what: "unknown field",
        lines: "{\"name\": \"a\"}\n{\"name\": \"b\", \"nmae\": \"x\"}\n",
        code: 2,
        line: 2,
        says: "unknown field `nmae`; fields are name, description, owner, ",
    },
    BadBatch {
        what: "missing name",
        lines: "{\"name\": \"a\"}\n\n{\"description\": \"no name\"}\n",
        code: 2,
        line: 3,
        says: "name",
    },
    BadBatch {
        what: "zero quota",
        lines: "{\"name\": \"a\"}\n{\"name\": \"b\", \"quota_daily\": 0}\n",
        code: 2,
        line: 2,
        says: "field `quota_daily` must be a whole number from 1 to ",
    },
    BadBatch {
        what: "bad expiry",
        lines: "{\"name\": \"a\", \"expires\": \"2020-01-01\"}\n",
        code: 2,
        line: 1,
        says: "in the past",
    },
    BadBatch {
        what: "bad ip range",
        lines: "{\"name\": \"a\"}\n{\"name\": \"b\", \"allowed_ips\": \"10.0.0.5/8\"}\n",
        code: 2,
        line: 2,
        says: "10.0.0.0/8",
    },
    BadBatch {
        what: "bad rate limit",
        lines: "{\"name\": \"a\", \"rate_limit\": \"5/h\"}\n",
        code: 2,
        line: 1,
        says: "invalid field `rate_limit` '5/h'",
    },
    BadBatch {
        what: "wrong type",
        lines: "{\"name\": \"a\"}\n{\"name\": \"b\", \"test\": \"yes\"}\n",
        code: 2,
        line: 2,
        says: "field `test` must be true or false, got a string",
    },
    BadBatch {
        what: "empty name",
        lines: "{\"name\": \"\"}\n",
        code: 2,
        line: 1,
        says: "name",
    },
    BadBatch {
        what: "name already taken in the store",
        lines: "{\"name\": \"a\"}\n{\"name\": \"taken\"}\n",
        code: 4,
        line: 2,
        says: "'taken'",
    },
];

#[test]
fn any_bad_line_fails_the_whole_batch_naming_it_and_creates_nothing() {
    let env = TestEnv::initialized();
    env.create("taken", &[]);
    let mut problems = Vec::new();
    for case in BAD {
        let before = env.snapshot();
        for from_stdin in [false, true] {
            let out = if from_stdin {
                env.run_with_stdin(&["create", "--batch", "-"], case.lines.as_bytes())
            } else {
                let file = env.root().join("bad.jsonl");
                fs::write(&file, case.lines).unwrap();
                let before = env.snapshot();
                let out = env.run(&["create", "--batch", file.to_str().unwrap()]);
                if env.snapshot() != before {
                    problems.push(format!("{}: the store changed", case.what));
                }
                fs::remove_file(&file).unwrap();
                out
            };
            let prefix = format!("error: line {}: ", case.line);
            let mut wrong = Vec::new();
            if out.code != Some(case.code) {
                wrong.push(format!("exit {:?}, want {}", out.code, case.code));
            }
            if !out.stdout.is_empty() {
                wrong.push("printed to stdout".to_string());
            }
            if out.stderr.lines().count() != 1 || !out.stderr.starts_with(&prefix) {
                wrong.push(format!("stderr is not one line starting {prefix:?}"));
            }
            if !out.stderr.contains(case.says) {
                wrong.push(format!("does not say {:?}", case.says));
            }
            if out.stderr.contains("panicked") {
                wrong.push("panicked".to_string());
            }
            if let Some(word) = parser_word(&out.stderr) {
                wrong.push(format!("shows the parser's {word:?}"));
            }
            if !wrong.is_empty() {
                problems.push(format!(
                    "{} ({}): {}\n{out}",
                    case.what,
                    if from_stdin { "stdin" } else { "file" },
                    wrong.join("; ")
                ));
            }
        }
        if env.snapshot() != before {
            problems.push(format!("{}: the store changed", case.what));
        }
    }
    assert!(
        problems.is_empty(),
        "{} bad batch case(s) misbehave:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    assert_eq!(env.list_names(&["--all"]), ["taken"]);
}

/// Runs a batch of a good first line and `bad` as line 2: it must fail with exit 2
/// and one error line starting `error: line 2: ` that contains `says` and no parser
/// internals, and create nothing. Returns a description of what went wrong, if any.
fn refused_as_line_2(env: &TestEnv, bad: &[u8], says: &str) -> Option<String> {
    let mut input = b"{\"name\": \"good\"}\n".to_vec();
    input.extend_from_slice(bad);
    input.push(b'\n');
    let out = env.run_with_stdin(&["create", "--batch", "-"], &input);
    let line = out.stderr.trim_end();
    let ok = out.code == Some(2)
        && out.stdout.is_empty()
        && out.stderr.lines().count() == 1
        && line.starts_with("error: line 2: ")
        && line.contains(says)
        && parser_word(line).is_none()
        && env.list_names(&["--all"]).is_empty();
    (!ok).then(|| {
        format!(
            "{:?} should say {says:?}\n{out}",
            String::from_utf8_lossy(bad)
        )
    })
}

/// Every field given a value of the wrong type is named, with what it must be and
/// what it was, never in a parser's words (`untagged enum List`, `expected u64`).
#[test]
fn a_field_of_the_wrong_type_names_the_line_and_the_field() {
    let env = TestEnv::initialized();
    let strings = [
        "name",
        "description",
        "owner",
        "category",
        "group",
        "deployment",
        "expires",
        "rate_limit",
    ];
    let lists = ["scopes", "allowed_models", "allowed_ips"];
    let counts = [
        "quota_total",
        "quota_daily",
        "quota_weekly",
        "quota_monthly",
        "credits",
    ];
    let over = (MAX_COUNT + 1).to_string();
    let mut cases: Vec<(String, String)> = Vec::new();
    for field in strings {
        cases.extend(wrong_values("name", field, &NOT_A_STRING, "a string"));
    }
    let not_a_list = [
        ("5", "5"),
        ("{\"a\": \"b\"}", "an object"),
        ("[\"a\", 2]", "2 as item 2"),
        ("[[\"a\"]]", "a list as item 1"),
    ];
    let must_be = "a list of strings or a comma-separated string";
    for field in lists {
        cases.extend(wrong_values("name", field, &not_a_list, must_be));
    }
    let not_a_count = [
        ("-1", "-1"),
        ("0", "0"),
        ("1.5", "1.5"),
        ("\"-1\"", "\"-1\""),
        ("\"ten\"", "a string"),
        (&over, &over),
        ("true", "true"),
        ("[1]", "a list"),
    ];
    let must_be = format!("a whole number from 1 to {MAX_COUNT}");
    for field in counts {
        cases.extend(wrong_values("name", field, &not_a_count, &must_be));
    }
    let not_a_flag = [("\"yes\"", "a string"), ("1", "1")];
    cases.extend(wrong_values("name", "test", &not_a_flag, "true or false"));
    let problems: Vec<String> = cases
        .iter()
        .filter_map(|(line, says)| refused_as_line_2(&env, line.as_bytes(), says))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A line that is not one object of fields says what it is instead, in plain words.
#[test]
fn a_line_that_is_not_an_object_of_fields_says_what_it_is() {
    let env = TestEnv::initialized();
    let object = "the line must be one json object like {\"name\": ";
    let long = format!("{{\"name\": \"{}\"}}", "x".repeat(70_000));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"null", "got null"),
        (b"42", "got a number"),
        (b"\"a string\"", "got a string"),
        (b"[{\"name\": \"b\"}]", object),
        (
            b"{not json",
            "the line is not valid json: unexpected character `n` at column 2",
        ),
        (
            b"{\"name\": \"b\"",
            "the line is not valid json: it ends at column 12",
        ),
        (b"{\"name\": \"b\"} {}", "the line is not valid json"),
        (
            b"{\"name\": \"b\", \"name\": \"c\"}",
            "field `name` is given twice",
        ),
        (
            b"{\"nmae\": \"b\"}",
            "unknown field `nmae`; fields are name, description,",
        ),
        (
            b"{\"name\": \"\xff\"}",
            "the line is not UTF-8 text (invalid byte at column 11)",
        ),
        (long.as_bytes(), "the line is longer than 65536 bytes"),
    ];
    let problems: Vec<String> = cases
        .iter()
        .filter_map(|(line, says)| refused_as_line_2(&env, line, says))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The count in the closing note agrees with its noun.
#[test]
fn the_closing_note_counts_keys_in_words() {
    let env = TestEnv::initialized();
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"one\"}\n");
    out.ok();
    assert_eq!(out.stderr, "created 1 key\n");
    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        b"{\"name\": \"two\"}\n{\"name\": \"three\"}\n",
    );
    out.ok();
    assert_eq!(out.stderr, "created 2 keys\n");
}

/// Every count keyctl says agrees with its noun: `1 request`, `1 credit`, `1 event`,
/// `1 request-log row`, as `created 1 key` does.
#[test]
fn counts_in_messages_agree_with_their_nouns() {
    let env = TestEnv::initialized();
    let k = env.create("one", &[]);
    env.verify(NOW, &k.secret, &[]).ok();
    let show = env.run(&["show", "one"]);
    show.ok();
    assert!(
        show.stdout
            .contains("1 request (1 accepted, 0 rejected), 1 credit\n"),
        "{show}"
    );
    let chart = run_on_tty(env.command(), &["usage", "one", "--days", "1"], 100);
    chart.ok();
    assert!(
        chart
            .stdout
            .contains("total: 1 accepted, 0 rejected, 1 credit\n")
            && chart.stdout.contains(" 1 credit\ntotal"),
        "{chart}"
    );
    let out = env.run(&["audit", "verify"]);
    out.ok();
    assert!(
        out.stdout.starts_with("audit trail intact: 1 event, head "),
        "{out}"
    );
    let later = now_plus(2 * 86_400);
    let out = env.run_at(&later, &["logs", "prune", "--before", "1d"]);
    out.ok();
    assert!(
        out.stderr
            .starts_with("deleted 1 request-log row older than "),
        "{out}"
    );
}

/// Two lines of one batch naming the same key: the input contradicts itself, which
/// is bad input (exit 2) naming the later line, like any other bad line. The error
/// must not cite the id of a key from this batch: that key never came to exist.
#[test]
fn a_name_repeated_inside_the_batch_is_a_bad_line() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    let lines = "{\"name\": \"a\"}\n{\"name\": \"b\"}\n\n{\"name\": \"a\"}\n";
    let out = env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes());
    let line = out.fails(2);
    assert!(line.starts_with("error: line 4: "), "{line}");
    assert!(line.contains("'a'"), "{line}");
    assert!(
        !line.contains("key_"),
        "names the id of a key that was never created: {line}"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.list_names(&["--all"]), Vec::<String>::new());
}

#[test]
fn the_key_limit_holds_across_the_batch() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "max-keys", "3"]).ok();
    env.create("existing", &[]);
    let before = env.snapshot();
    let lines = "{\"name\": \"n1\"}\n{\"name\": \"n2\"}\n\n{\"name\": \"n3\"}\n";
    let out = env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes());
    assert_eq!(
        out.fails(4),
        "error: line 4: key limit reached (3/3): revoke or delete an unused key first"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.list_names(&[]), ["existing"]);
    // Exactly up to the limit is fine.
    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        b"{\"name\": \"n1\"}\n{\"name\": \"n2\"}\n",
    );
    out.ok();
    assert_eq!(env.list_names(&[]).len(), 3);
    env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"n4\"}\n")
        .fails(4);
}

/// Lines are checked as the keys before them are inserted, yet a bad line fails the
/// batch as if every line had been checked first: its error (exit 2) comes before the
/// key limit's, a taken name's or the store's own, wherever the lines are, and
/// however far the inserts got before the error.
#[test]
fn a_bad_line_is_reported_before_any_problem_of_the_store() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "max-keys", "2"]).ok();
    env.create("taken", &[]);
    let before = env.snapshot();
    let good = |from: usize, to: usize| -> String {
        (from..to)
            .map(|i| format!("{{\"name\": \"n{i}\"}}\n"))
            .collect()
    };
    let bad = "{\"name\": \"last\", \"quota_daily\": \"many\"}\n";
    // The limit is reached at line 2, the store's name is taken on line 1, each with
    // a bad last line: after a few lines, and after thousands (more than are handed
    // to the inserting thread before it fails).
    for (what, lines) in [
        ("limit, 3 lines", good(1, 3) + bad),
        ("limit, 6000 lines", good(1, 6000) + bad),
        (
            "taken name, 3 lines",
            "{\"name\": \"taken\"}\n".to_string() + &good(2, 3) + bad,
        ),
        (
            "taken name, 6000 lines",
            "{\"name\": \"taken\"}\n".to_string() + &good(2, 6000) + bad,
        ),
    ] {
        let last = lines.lines().count();
        let out = env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes());
        let line = out.fails(2);
        assert!(
            line.starts_with(&format!("error: line {last}: ")) && line.contains("quota"),
            "{what}: {line}"
        );
        assert!(out.stdout.is_empty(), "{what}");
        assert_eq!(env.snapshot(), before, "{what}");
    }
    // Without the bad line, the store's problems are the ones told.
    let out = env.run_with_stdin(&["create", "--batch", "-"], good(1, 6000).as_bytes());
    assert!(out.fails(4).starts_with("error: line 2: key limit reached"));
    assert_eq!(env.snapshot(), before);
}

/// A batch with a bad line does not create the store it names, as it creates no key.
#[test]
fn a_bad_batch_creates_no_store() {
    sqlite_only!("a write command creates a missing store only on SQLite (on PostgreSQL only init and copy do)");
    let env = TestEnv::new();
    let lines = b"{\"name\": \"a\"}\n{\"name\": \"b\", \"x\": 1}\n";
    let out = env.run_with_stdin(&["create", "--batch", "-"], lines);
    assert!(out.fails(2).starts_with("error: line 2: unknown field `x`"));
    assert!(!env.db_file().exists(), "the store was created");
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"a\"}\n");
    out.ok();
    assert!(env.db_file().exists());
}

/// A file that is not a store is reported only when every line is good.
#[test]
fn a_bad_line_is_reported_before_a_store_that_cannot_open() {
    sqlite_only!("a foreign file as the store");
    let env = TestEnv::new();
    fs::write(env.db_file(), "not a database\n").unwrap();
    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        b"{\"name\": \"a\"}\n{\"name\": \"b\", \"x\": 1}\n",
    );
    assert!(out.fails(2).starts_with("error: line 2: unknown field `x`"));
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"a\"}\n");
    assert!(
        out.fails(1).contains("not an SQLite database"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(env.db_file()).unwrap(), b"not a database\n");
}

#[test]
fn batch_names_may_reuse_a_revoked_keys_name() {
    let env = TestEnv::initialized();
    let old = env.create("reused", &[]);
    env.run(&["revoke", "--yes", "reused"]).ok();
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"reused\"}\n");
    out.ok();
    let id = reveals(&out)[0]["key_details"]["id"].clone();
    assert_ne!(id, old.id());
    assert_eq!(env.key_json("reused")["id"], id);
}

#[test]
fn batch_with_other_create_flags_is_refused() {
    let env = TestEnv::initialized();
    let file = input_file(&env, "k.jsonl", "{\"name\": \"a\"}\n");
    let before = env.snapshot();
    for extra in [
        &["--name", "x"][..],
        &["--test"],
        &["--description", "d"],
        &["--scope", "read"],
        &["--credits", "5"],
    ] {
        let mut args = vec!["create", "--batch", &file];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        assert_eq!(
            out.fails(2),
            "error: --batch takes every key's fields from its input: drop the other create flags",
            "{extra:?}"
        );
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn empty_or_unreadable_input_is_refused() {
    let env = TestEnv::initialized();
    let empty = input_file(&env, "empty.jsonl", "\n  \n\n");
    let missing = env.root().join("missing.jsonl").display().to_string();
    let before = env.snapshot();
    let out = env.run(&["create", "--batch", &empty]);
    assert!(out.fails(2).contains("no lines"), "{out}");
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"");
    assert!(out.fails(2).contains("no lines"), "{out}");
    let out = env.run(&["create", "--batch", &missing]);
    assert!(out.fails(2).contains(&missing), "{out}");
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"\xff\"}\n");
    assert!(out.fails(2).starts_with("error: line 1: "), "{out}");
    assert_eq!(env.snapshot(), before);
}

/// SPEC §4 for a batch: if stdout cannot take the secrets, no key is kept.
#[test]
fn a_closed_stdout_creates_nothing() {
    let env = TestEnv::initialized();
    let file = input_file(&env, "k.jsonl", "{\"name\": \"a\"}\n{\"name\": \"b\"}\n");
    let before = env.snapshot();
    let out = env
        .keyctl(&["create", "--batch", &file])
        .with(|c| {
            c.stdout(Stdio::from(closed_pipe()));
        })
        .run();
    let line = out.fails(1);
    assert!(line.contains("nothing was created"), "{line}");
    assert!(!has_secret_shape(&out.stderr), "{out}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_batch_is_one_transaction_with_a_whole_audit_chain() {
    let env = TestEnv::initialized();
    let lines: String = (0..200)
        .map(|i| {
            format!(
                "{{\"name\": \"bulk-{i:03}\", \"quota_daily\": {}}}\n",
                i + 1
            )
        })
        .collect();
    let out = env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes());
    out.ok();
    let got = reveals(&out);
    assert_eq!(got.len(), 200);
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["key_details"]["name"], format!("bulk-{i:03}"));
        assert_eq!(v["key_details"]["quotas"]["daily"], i as u64 + 1);
    }
    assert_eq!(env.list_json(&[]).len(), 200);
    assert_eq!(env.audit_head().0, 200);
}

/// The store's indexes as `sqlite_master` holds them (SQLite only).
fn index_sql(env: &TestEnv) -> Option<Vec<(String, String)>> {
    let db = env.sqlite_only("reads the schema's indexes from sqlite_master")?;
    let mut stmt = db
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    Some(rows)
}

#[test]
fn a_batch_into_an_empty_store_finds_its_keys_by_name_prefix_and_audit() {
    // Into an empty store SQLite builds the name, prefix and audit indexes once after
    // the rows: afterwards the schema is as before and every lookup works.
    let env = TestEnv::initialized();
    let before = index_sql(&env);
    let lines: String = (0..600)
        .map(|i| format!("{{\"name\": \"k{i:04}\"}}\n"))
        .collect();
    let out = env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes());
    let made = reveals(out.ok());
    assert_eq!(made.len(), 600);
    assert_eq!(index_sql(&env), before);
    let key = &made[577]["key_details"];
    for keyref in [&key["name"], &key["key_prefix"], &key["id"]] {
        let shown = env
            .run(&["show", keyref.as_str().unwrap(), "--json"])
            .json();
        assert_eq!(shown["id"], key["id"], "show {keyref}");
    }
    let trail = env
        .run(&["audit", key["id"].as_str().unwrap(), "--json"])
        .json();
    let events = trail.as_array().unwrap();
    assert_eq!(events.len(), 1, "{trail}");
    assert_eq!(events[0]["key_id"], key["id"]);
    env.run(&["audit", "verify"]).ok();
}

#[test]
fn a_batch_that_fails_after_its_first_rows_leaves_the_schema_as_it_was() {
    // Past the first chunk of inserts (512 keys), so the rows and the dropped indexes
    // are both in the transaction that rolls back.
    let env = TestEnv::initialized();
    env.run(&["config", "set", "max-keys", "550"]).ok();
    let before = env.snapshot();
    let schema = index_sql(&env);
    let lines: String = (0..600)
        .map(|i| format!("{{\"name\": \"k{i:04}\"}}\n"))
        .collect();
    let out = env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes());
    assert_eq!(
        out.fails(4),
        "error: line 551: key limit reached (550/550): revoke or delete an unused key first"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(index_sql(&env), schema);
    env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"after\"}\n")
        .ok();
    env.run(&["show", "after"]).ok();
}
