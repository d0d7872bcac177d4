//! SPEC §5 "Closed stdout": a reader that went away (`keyctl list --json | head -1`)
//! ends every command and format quietly with exit 0, except `create`/`rotate` (exit
//! 1, nothing created) and the commands whose exit code is their answer (`verify`,
//! `audit verify`), which keep it. Never a panic, never death by SIGPIPE.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::*;

/// What a closed stdout may do to the store.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Store {
    /// Keys, audit trail and request log exactly as before.
    Same,
    /// The command's change is made (only its printing failed).
    Changed,
    /// Recording commands (verify): counted, not compared.
    Any,
}

/// What is on stdin.
#[derive(Clone, Copy)]
enum Input {
    Nothing,
    /// The secret of key `k1`, one line.
    Secret,
    Text(&'static str),
}

struct Case {
    args: &'static [&'static str],
    input: Input,
    exit: i32,
    /// Empty: stderr must be empty. Else stderr is one line starting with this (the
    /// command's usual note, or the create/rotate error).
    stderr: &'static str,
    store: Store,
}

const fn quiet(args: &'static [&'static str]) -> Case {
    Case {
        args,
        input: Input::Nothing,
        exit: 0,
        stderr: "",
        store: Store::Same,
    }
}

const NOT_CREATED: &str = "error: could not write the new key";

const CASES: &[Case] = &[
    quiet(&["list"]),
    quiet(&["list", "--json"]),
    quiet(&["list", "--format", "csv"]),
    quiet(&["list", "--all", "--sort", "name"]),
    quiet(&["show", "k1"]),
    quiet(&["show", "--json", "k1"]),
    quiet(&["show", "--format", "csv", "k1"]),
    quiet(&["logs"]),
    quiet(&["logs", "--json"]),
    quiet(&["logs", "--format", "csv"]),
    quiet(&["logs", "k1", "--json"]),
    // Rows exist, so the first write finds the reader gone at once.
    quiet(&["logs", "--follow"]),
    quiet(&["logs", "--follow", "--json"]),
    quiet(&["usage"]),
    quiet(&["usage", "--json"]),
    quiet(&["usage", "--format", "csv"]),
    quiet(&["usage", "k1", "--json"]),
    quiet(&["audit"]),
    quiet(&["audit", "--json"]),
    quiet(&["audit", "--format", "csv"]),
    quiet(&["audit", "k1", "--json"]),
    quiet(&["audit", "verify"]),
    quiet(&["audit", "verify", "--json"]),
    quiet(&["config", "get", "max-keys"]),
    quiet(&["config", "get", "--json", "key-prefix"]),
    quiet(&["config", "list"]),
    quiet(&["config", "list", "--json"]),
    quiet(&["config", "list", "--format", "csv"]),
    quiet(&["completions", "bash"]),
    quiet(&["completions", "zsh"]),
    quiet(&["completions", "fish"]),
    quiet(&["completions", "powershell"]),
    quiet(&["completions", "elvish"]),
    quiet(&["--version"]),
    quiet(&["--help"]),
    quiet(&["list", "--help"]),
    // verify: the exit code is the answer and is kept.
    Case {
        args: &["verify"],
        input: Input::Secret,
        exit: 0,
        stderr: "",
        store: Store::Any,
    },
    Case {
        args: &["verify", "--json"],
        input: Input::Secret,
        exit: 0,
        stderr: "",
        store: Store::Any,
    },
    Case {
        args: &["verify", "--no-record", "--json"],
        input: Input::Text("sk_live_nonsense\n"),
        exit: 10,
        stderr: "",
        store: Store::Same,
    },
    Case {
        args: &["verify", "--no-record", "--scope", "admin"],
        input: Input::Secret,
        exit: 19,
        stderr: "",
        store: Store::Same,
    },
    Case {
        args: &["verify", "--stream", "--no-record"],
        input: Input::Text("{\"key\": \"x\"}\n\n{oops\n"),
        exit: 0,
        stderr: "",
        store: Store::Same,
    },
    Case {
        args: &["verify", "--stream"],
        input: Input::Text("{\"key\": \"x\"}\n"),
        exit: 0,
        stderr: "",
        store: Store::Any,
    },
    // Changes are made; only their printing failed.
    Case {
        args: &["edit", "k2", "--description", "piped", "--json"],
        input: Input::Nothing,
        exit: 0,
        stderr: "updated key \"k2\"",
        store: Store::Changed,
    },
    Case {
        args: &["edit", "k2", "--owner", "someone"],
        input: Input::Nothing,
        exit: 0,
        stderr: "updated key \"k2\"",
        store: Store::Changed,
    },
    Case {
        args: &["disable", "k2"],
        input: Input::Nothing,
        exit: 0,
        stderr: "disabled key \"k2\"",
        store: Store::Changed,
    },
    Case {
        args: &["enable", "--json", "k2"],
        input: Input::Nothing,
        exit: 0,
        stderr: "enabled key \"k2\"",
        store: Store::Changed,
    },
    Case {
        args: &["config", "set", "max-keys", "40"],
        input: Input::Nothing,
        exit: 0,
        stderr: "max-keys = 40",
        store: Store::Changed,
    },
    Case {
        args: &["backup", "copy.db"],
        input: Input::Nothing,
        exit: 0,
        stderr: "backed up ",
        store: Store::Same,
    },
    Case {
        args: &["logs", "prune", "--before", "30d"],
        input: Input::Nothing,
        exit: 0,
        stderr: "deleted 0 request-log rows older than ",
        store: Store::Same,
    },
    // A secret that cannot be delivered is never created (SPEC §4).
    Case {
        args: &["create", "--name", "new", "--no-copy"],
        input: Input::Nothing,
        exit: 1,
        stderr: NOT_CREATED,
        store: Store::Same,
    },
    Case {
        args: &["create", "--name", "new", "--json", "--no-copy"],
        input: Input::Nothing,
        exit: 1,
        stderr: NOT_CREATED,
        store: Store::Same,
    },
    Case {
        args: &["create", "--batch", "-"],
        input: Input::Text("{\"name\": \"b1\"}\n{\"name\": \"b2\"}\n"),
        exit: 1,
        stderr: "error: could not write the new keys",
        store: Store::Same,
    },
    Case {
        args: &["rotate", "k3", "--yes", "--no-copy"],
        input: Input::Nothing,
        exit: 1,
        stderr: NOT_CREATED,
        store: Store::Same,
    },
    Case {
        args: &[
            "rotate",
            "k3",
            "--yes",
            "--json",
            "--grace",
            "1h",
            "--no-copy",
        ],
        input: Input::Nothing,
        exit: 1,
        stderr: NOT_CREATED,
        store: Store::Same,
    },
];

/// What a user could notice of the store: every key object, the audit trail, and
/// the request log.
fn state(env: &TestEnv) -> (String, i64, i64) {
    let keys = env.run(&["list", "--json", "--all"]);
    keys.ok();
    (
        keys.stdout,
        env.count_rows("audit_events"),
        env.count_rows("requests"),
    )
}

/// Runs `keyctl ARGS` with stdout a pipe nobody reads (its read end already closed)
/// and SIGPIPE at its default, as a shell leaves it: dying by the signal would fail.
pub(crate) fn run_closed(env: &TestEnv, args: &[&str], input: &[u8]) -> Outcome {
    env.keyctl(args)
        .at(NOW)
        .stdin(input)
        .with(stdout_closed)
        .run()
}

#[test]
fn a_closed_stdout_ends_every_command_and_format_as_the_spec_says() {
    let env = TestEnv::initialized();
    let k1 = env.create("k1", &["--scope", "read"]);
    env.create("k2", &[]);
    env.create("k3", &[]);
    env.verify(NOW, &k1.secret, &[]).ok();
    env.verify(NOW, "sk_live_wrong", &["--ip", "203.0.113.9"]);
    let secret = format!("{}\n", k1.secret);
    let mut problems = Vec::new();
    for case in CASES {
        let before = state(&env);
        let input = match case.input {
            Input::Nothing => &b""[..],
            Input::Secret => secret.as_bytes(),
            Input::Text(t) => t.as_bytes(),
        };
        let out = run_closed(&env, case.args, input);
        let mut wrong = Vec::new();
        if out.code != Some(case.exit) {
            wrong.push(format!("exit {:?}, want {}", out.code, case.exit));
        }
        if case.stderr.is_empty() {
            if !out.stderr.is_empty() {
                wrong.push("stderr is not empty".to_string());
            }
        } else if out.stderr.lines().count() != 1 || !out.stderr.starts_with(case.stderr) {
            wrong.push(format!("stderr is not one line starting {:?}", case.stderr));
        }
        for bad in ["Broken pipe", "panicked", "os error"] {
            if out.stderr.contains(bad) && !case.stderr.starts_with("error:") {
                wrong.push(format!("stderr says {bad:?}"));
            }
        }
        let after = state(&env);
        match case.store {
            Store::Same if after != before => wrong.push("the store changed".into()),
            Store::Changed if after == before => wrong.push("the change was not made".into()),
            _ => {}
        }
        if !wrong.is_empty() {
            problems.push(format!("{}\n{out}", wrong.join("; ")));
        }
    }
    assert!(
        problems.is_empty(),
        "{} case(s) misbehave on a closed stdout:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    assert!(env.root().join("copy.db").is_file(), "backup was made");
    assert_eq!(
        env.list_names(&["--all", "--sort", "name"]),
        ["k1", "k2", "k3"]
    );
}

/// `audit verify` keeps its answer: a broken chain is exit 8 even when nobody reads.
#[test]
fn a_closed_stdout_keeps_a_broken_audit_chains_exit_code() {
    let env = TestEnv::initialized();
    env.create("a", &[]);
    env.run(&["edit", "a", "--description", "x"]).ok();
    env.tamper("UPDATE audit_events SET details = '{}' WHERE seq = 2");
    for args in [&["audit", "verify"][..], &["audit", "verify", "--json"]] {
        let out = run_closed(&env, args, b"");
        assert_eq!(out.code, Some(8), "{out}");
        assert!(out
            .one_error_line()
            .starts_with("error: audit trail broken at event 2"));
    }
}

/// `logs --follow | head -1` with nothing new to print: the follower notices the gone
/// reader while it waits, instead of running until a request that may never come.
#[test]
fn a_follower_with_nothing_to_print_ends_when_its_reader_goes() {
    let env = TestEnv::initialized();
    for args in [&["logs", "--follow"][..], &["logs", "--follow", "--json"]] {
        let mut child = env
            .command()
            .args(args)
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyctl logs --follow");
        // A bound on how long to wait for the exit, not a timing assertion.
        let status = wait_within(&mut child, WAIT_LIMIT);
        if status.is_none() {
            let _ = child.kill();
        }
        let out = Outcome::new(args, child.wait_with_output().unwrap());
        assert!(status.is_some(), "still following a closed stdout\n{out}");
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stderr, "", "{out}");
    }
}

/// The real `| head -1`: the reader takes one line of a long output and goes away
/// while keyctl is still writing.
#[test]
fn a_reader_that_stops_after_one_line_ends_a_long_output_quietly() {
    let env = TestEnv::initialized();
    let lines: String = (0..300)
        .map(|i| {
            format!(
                "{{\"name\": \"key-{i}\", \"description\": \"{}\"}}\n",
                "d".repeat(200)
            )
        })
        .collect();
    env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes())
        .ok();
    for args in [
        &["list", "--json"][..],
        &["list", "--format", "csv"],
        &["list"],
        &["audit", "--json"],
        &["audit"],
    ] {
        let mut c: Command = env.command();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn keyctl");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{args:?} printed nothing");
        drop(reader);
        let out = Outcome::new(args, child.wait_with_output().unwrap());
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stderr, "", "{out}");
    }
}
