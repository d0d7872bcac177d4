//! Bad input of every kind: one line on stderr naming the value, the documented exit
//! code, and no change at all — to an existing store, or, when there was none, no
//! store created.

use crate::support::*;

struct Case {
    args: &'static [&'static str],
    /// Extra environment for the run.
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// Text the error line must contain (the bad value, what would work).
    says: &'static [&'static str],
    /// The case only makes sense against an existing store (a name that is taken,
    /// a KEYREF to resolve).
    needs_store: bool,
}

const fn case(args: &'static [&'static str], code: i32, says: &'static [&'static str]) -> Case {
    Case {
        args,
        env: &[],
        code,
        says,
        needs_store: false,
    }
}

const CASES: &[Case] = &[
    // time
    case(
        &["create", "--name", "x", "--expires", "tomorrowish"],
        2,
        &["'tomorrowish'", "30d", "2027-01-31", "never"],
    ),
    case(
        &["create", "--name", "x", "--expires", "2020-01-01"],
        2,
        &["'2020-01-01'", "past"],
    ),
    case(
        &["create", "--name", "x", "--expires", "2026-11-23T12:00:00Z"],
        2,
        &["past"],
    ),
    case(
        &["create", "--name", "x", "--expires", "0d"],
        2,
        &["'0d'", "past"],
    ),
    case(
        &["create", "--name", "x", "--expires", "2027-02-30"],
        2,
        &["'2027-02-30'"],
    ),
    case(
        &["create", "--name", "x", "--expires", "2027-01-31T25:00:00Z"],
        2,
        &["'2027-01-31T25:00:00Z'"],
    ),
    case(
        &["create", "--name", "x", "--expires", "10x"],
        2,
        &["'10x'"],
    ),
    case(
        &["create", "--name", "x", "--expires", "99999999w"],
        2,
        &["'99999999w'"],
    ),
    // IP addresses and ranges
    case(
        &["create", "--name", "x", "--allow-ip", "10.0.0.300"],
        2,
        &["'10.0.0.300'", "--allow-ip"],
    ),
    case(
        &["create", "--name", "x", "--allow-ip", "10.0.0.5/8"],
        2,
        &["'10.0.0.5/8'", "host bits", "10.0.0.0/8"],
    ),
    case(
        &["create", "--name", "x", "--allow-ip", "2001:db8::1/32"],
        2,
        &["'2001:db8::1/32'", "2001:db8::/32"],
    ),
    case(
        &["create", "--name", "x", "--allow-ip", "10.0.0.0/33"],
        2,
        &["'10.0.0.0/33'"],
    ),
    case(
        &["create", "--name", "x", "--allow-ip", "10.0.0.1,,10.0.0.2"],
        2,
        &["--allow-ip"],
    ),
    case(
        &["create", "--name", "x", "--allow-ip", "localhost"],
        2,
        &["'localhost'"],
    ),
    // numbers
    case(
        &["create", "--name", "x", "--quota-total=-5"],
        2,
        &["--quota-total", "'-5'", "negative"],
    ),
    case(
        &["create", "--name", "x", "--quota-total", "-5"],
        2,
        &["'-5'"],
    ),
    case(
        &["create", "--name", "x", "--quota-daily", "0"],
        2,
        &["--quota-daily", "'0'", "at least 1"],
    ),
    case(
        &[
            "create",
            "--name",
            "x",
            "--quota-weekly",
            "9223372036854775808",
        ],
        2,
        &["--quota-weekly", "'9223372036854775808'", "too large"],
    ),
    case(
        &[
            "create",
            "--name",
            "x",
            "--quota-monthly",
            "99999999999999999999999",
        ],
        2,
        &["--quota-monthly", "'99999999999999999999999'"],
    ),
    case(
        &["create", "--name", "x", "--quota-total", "1.5"],
        2,
        &["--quota-total", "'1.5'"],
    ),
    case(
        &["create", "--name", "x", "--quota-total", "lots"],
        2,
        &["--quota-total", "'lots'"],
    ),
    case(
        &["create", "--name", "x", "--credits", "0"],
        2,
        &["--credits", "'0'"],
    ),
    case(
        &["create", "--name", "x", "--credits=-1"],
        2,
        &["--credits", "'-1'"],
    ),
    case(
        &["create", "--name", "x", "--rate-limit", "10/h"],
        2,
        &["'10/h'", "N/s"],
    ),
    case(
        &["create", "--name", "x", "--rate-limit", "0/s"],
        2,
        &["'0/s'"],
    ),
    case(
        &["create", "--name", "x", "--rate-limit", "10"],
        2,
        &["'10'", "N/m"],
    ),
    // names and other text
    case(&["create", "--name", ""], 2, &["empty"]),
    case(&["create", "--name", "   "], 2, &["empty"]),
    case(&["create", "--name", " padded"], 2, &["' padded'"]),
    case(
        &["create", "--name", "key_abcdefghijkl"],
        2,
        &["'key_abcdefghijkl'"],
    ),
    case(&["create", "--name", "two\nlines"], 2, &["name"]),
    case(&["create"], 2, &["--name"]),
    case(
        &["create", "--name", "x", "--scope", "a b"],
        2,
        &["--scope", "'a b'"],
    ),
    case(
        &["create", "--name", "x", "--allow-model", ""],
        2,
        &["--allow-model"],
    ),
    case(
        &["create", "--name", "x", "--description", "line\nbreak"],
        2,
        &["--description"],
    ),
    case(
        &["--actor", "a\tb", "create", "--name", "x"],
        2,
        &["--actor"],
    ),
    // formats, sorts, statuses, flags
    case(&["--format", "xml", "list"], 2, &["'xml'"]),
    case(&["list", "--format", "yaml"], 2, &["'yaml'"]),
    case(&["create", "--name", "x", "--format", "csv"], 2, &["csv"]),
    case(&["list", "--sort", "size"], 2, &["'size'"]),
    case(&["list", "--status", "bogus"], 2, &["'bogus'"]),
    case(&["list", "--bogus"], 2, &["'--bogus'"]),
    case(&["frobnicate"], 2, &["'frobnicate'"]),
    case(&["create", "--name", "x", "--nmae", "y"], 2, &["'--nmae'"]),
    case(&["init", "--prefix", "Nope"], 2, &["'Nope'"]),
    // settings
    case(&["config", "get", "nosuch"], 3, &["'nosuch'", "max-keys"]),
    case(
        &["config", "set", "nosuch", "1"],
        3,
        &["'nosuch'", "max-keys"],
    ),
    case(
        &["config", "set", "max-keys", "lots"],
        2,
        &["max-keys", "'lots'"],
    ),
    case(&["config", "set", "max-keys", "0"], 2, &["max-keys", "'0'"]),
    case(
        &["config", "set", "max-keys", "--", "-1"],
        2,
        &["max-keys", "'-1'"],
    ),
    case(
        &["config", "set", "block-duration", "soon"],
        2,
        &["block-duration", "'soon'"],
    ),
    // KEYREFs
    Case {
        args: &["show", "no-such-key"],
        env: &[],
        code: 3,
        says: &["'no-such-key'"],
        needs_store: true,
    },
    Case {
        args: &["show", ""],
        env: &[],
        code: 2,
        says: &["empty"],
        needs_store: true,
    },
    Case {
        args: &["create", "--name", "taken"],
        env: &[],
        code: 4,
        says: &["'taken'"],
        needs_store: true,
    },
    // negative numbers reach the value check (not taken for flags)
    case(
        &["create", "--name", "x", "--credits", "-1"],
        2,
        &["--credits", "'-1'", "negative"],
    ),
    case(
        &["create", "--name", "x", "--rate-limit", "-1/s"],
        2,
        &["--rate-limit", "'-1/s'"],
    ),
    case(&["logs", "--limit", "-5"], 2, &["--limit", "'-5'"]),
    case(&["audit", "--limit", "-5"], 2, &["--limit", "'-5'"]),
    case(&["usage", "--days", "-3"], 2, &["--days", "'-3'"]),
    case(
        &["config", "set", "max-keys", "-1"],
        2,
        &["max-keys", "'-1'"],
    ),
    case(
        &["config", "set", "block-duration", "-5m"],
        2,
        &["block-duration", "'-5m'"],
    ),
    case(&["verify", "--cost", "-1"], 2, &["--cost", "'-1'"]),
    case(
        &["verify", "--duration-ms", "-1"],
        2,
        &["--duration-ms", "'-1'"],
    ),
    // the clock
    Case {
        args: &["list"],
        env: &[("KEYCTL_NOW", "yesterday")],
        code: 2,
        says: &["KEYCTL_NOW", "'yesterday'"],
        needs_store: false,
    },
    Case {
        args: &["create", "--name", "x"],
        env: &[("KEYCTL_NOW", "2026-13-01T00:00:00Z")],
        code: 2,
        says: &["KEYCTL_NOW"],
        needs_store: false,
    },
    Case {
        args: &["config", "set", "max-keys", "5"],
        env: &[("KEYCTL_NOW", "now")],
        code: 2,
        says: &["KEYCTL_NOW"],
        needs_store: false,
    },
];

/// Runs every case and collects every problem, so one report shows them all.
fn check_all(with_store: bool) {
    let mut problems = Vec::new();
    // One store for every case: each must leave it exactly as it found it.
    let shared = with_store.then(|| {
        let env = TestEnv::initialized();
        env.create("taken", &["--expires", "30d", "--quota-daily", "5"]);
        env.run(&["config", "set", "max-keys", "20"]).ok();
        env
    });
    for case in CASES {
        if case.needs_store && !with_store {
            continue;
        }
        let fresh;
        let env = match &shared {
            Some(env) => env,
            None => {
                fresh = TestEnv::new();
                &fresh
            }
        };
        let before = env.snapshot();
        let out = env
            .keyctl(case.args)
            .with(|c| {
                for (k, v) in case.env {
                    c.env(k, v);
                }
            })
            .run();
        let mut wrong = Vec::new();
        if out.code != Some(case.code) {
            wrong.push(format!("exit {:?}, want {}", out.code, case.code));
        }
        if !out.stdout.is_empty() {
            wrong.push("printed to stdout".into());
        }
        if out.stderr.lines().count() != 1 || !out.stderr.starts_with("error: ") {
            wrong.push("stderr is not one 'error: ' line".into());
        }
        for bad in ["panicked", "backtrace"] {
            if out.stderr.contains(bad) {
                wrong.push(format!("stderr mentions {bad}"));
            }
        }
        for text in case.says {
            if !out.stderr.contains(text) {
                wrong.push(format!("error does not say {text:?}"));
            }
        }
        if env.snapshot() != before {
            wrong.push(if with_store {
                "the store changed".into()
            } else {
                format!("files were created: {:?}", env.snapshot().paths())
            });
        }
        if !wrong.is_empty() {
            problems.push(format!("{}\n{out}", wrong.join("; ")));
        }
    }
    assert!(
        problems.is_empty(),
        "{} bad-input case(s) misbehave:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn bad_input_leaves_an_existing_store_unchanged() {
    check_all(true);
}

#[test]
fn bad_input_creates_no_store() {
    check_all(false);
}

/// A value chosen from a fixed set is refused with the set spelled out in the same
/// (single) line, so the user sees what would work.
#[test]
fn unknown_choices_name_the_valid_ones() {
    let env = TestEnv::initialized();
    for (args, valid) in [
        (
            &["--format", "xml", "list"][..],
            &["table", "json", "csv"][..],
        ),
        (
            &["list", "--sort", "size"],
            &["name", "created", "last-used", "expires"],
        ),
        (
            &["list", "--status", "bogus"],
            &["active", "disabled", "expired", "revoked"],
        ),
    ] {
        let out = env.run(args);
        let line = out.fails(2);
        for v in valid {
            assert!(line.contains(v), "{args:?}: does not offer {v:?}: {line}");
        }
    }
}

/// A clap error names the command whose help would explain it.
#[test]
fn usage_errors_point_at_the_right_help() {
    let env = TestEnv::initialized();
    for (args, help) in [
        (&["list", "--bogus"][..], "keyctl list --help"),
        (&["list", "--sort", "size"], "keyctl list --help"),
        (&["create", "--nmae", "x"], "keyctl create --help"),
    ] {
        let out = env.run(args);
        let line = out.fails(2);
        assert!(line.contains(help), "{args:?}: {line}");
    }
}

/// One parser per setting (issue 11): a value is refused in the same words by every
/// command that takes it, and by a batch line in its field's name; nothing changes.
#[test]
fn a_setting_is_refused_in_the_same_words_everywhere() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let before = env.run(&["list", "--json", "--all"]).stdout;
    let past = "invalid --expires '2020-01-01': it is in the past; use a future date, a duration like 30d, or never";
    for args in [
        &["create", "--name", "x", "--expires", "2020-01-01"][..],
        &["edit", "k", "--expires", "2020-01-01"],
        &["rotate", "--yes", "k", "--expires", "2020-01-01"],
    ] {
        let out = env.run(args);
        assert_eq!(out.fails(2), format!("error: {past}"), "{args:?}");
    }
    let batch = env.run_with_stdin(
        &["create", "--batch", "-"],
        b"{\"name\": \"x\", \"expires\": \"2020-01-01\"}\n",
    );
    assert_eq!(
        batch.fails(2),
        format!(
            "error: line 1: {}",
            past.replace("--expires", "field `expires`")
        )
    );
    // Bad text in a flag's parser: the same line from create and edit.
    for args in [
        &["create", "--name", "x", "--allow-ip", "10.0.0.5/8"][..],
        &["edit", "k", "--allow-ip", "10.0.0.5/8"],
    ] {
        let line = env.run(args).fails(2).to_string();
        assert!(line.starts_with("error: --allow-ip: "), "{args:?}: {line}");
        assert!(line.contains("'10.0.0.5/8'"), "{line}");
    }
    // `none` removes a cap on edit; on create it is no cap at all, and says so.
    let create = env.run(&["create", "--name", "x", "--quota-daily", "none"]);
    assert!(create.fails(2).contains("--quota-daily 'none'"), "{create}");
    let edit = env.run(&["edit", "k", "--quota-daily", "lots"]);
    assert!(edit.fails(2).ends_with(", or 'none'"), "{edit}");
    assert_eq!(env.run(&["list", "--json", "--all"]).stdout, before);
}

/// A value's problem is found while the arguments are read: a missing store is not
/// created for it.
#[test]
fn a_bad_value_creates_no_store() {
    let env = TestEnv::new();
    for args in [
        &["create", "--name", "x", "--rate-limit", "10/h"][..],
        &["edit", "k", "--credits", "0"],
        &["rotate", "--yes", "k", "--grace", "never"],
    ] {
        env.run(args).fails(2);
        assert!(!env.store_exists(), "{args:?} created the store");
    }
}
