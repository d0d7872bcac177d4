//! `verify`'s own parser (`cli::parse_verify`, the global options and `verify`'s alone)
//! against the whole command tree (`cli::parse`): the same arguments through both give
//! the same command, and whatever the small one does not take (help, version, errors,
//! other commands) is left to the whole tree, so its messages stay the one tree's.

use std::ffi::OsString;

use keyctl::cli::{parse, parse_verify, Command};

use crate::support::*;

fn argv(words: &[&str]) -> Vec<OsString> {
    std::iter::once("keyctl")
        .chain(words.iter().copied())
        .map(OsString::from)
        .collect()
}

/// Both parsers on `words`: the fast one answers exactly when the whole tree parses a
/// `verify`, and then with the same command. True when it answered.
fn same_both_ways(words: &[&str]) -> bool {
    let args = argv(words);
    let fast = parse_verify(&args);
    let full = parse(args.iter().cloned());
    match (&fast, &full) {
        (Some(fast), Ok(full)) => {
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{words:?}");
            true
        }
        (Some(fast), Err(e)) => panic!("{words:?}: fast path took {fast:?}, the tree says {e}"),
        (None, Ok(full)) => {
            assert!(
                !matches!(full.command, Command::Verify(_)),
                "{words:?}: a verify the fast path left to the tree: {full:?}"
            );
            false
        }
        (None, Err(_)) => false,
    }
}

#[test]
fn the_forms_services_use_take_the_fast_path_with_the_same_result() {
    for words in [
        &["verify"][..],
        &["verify", "--no-record"],
        &["verify", "--stream"],
        &["verify", "--stream", "--no-record", "--cost", "3"],
        &["--db", "/tmp/k.db", "verify"],
        &["verify", "--db", "/tmp/k.db", "--json"],
        &["--db=/tmp/k.db", "verify", "--format", "csv", "-q"],
        &["verify", "--key-env", "API_KEY", "--ip", "203.0.113.7"],
        &[
            "verify",
            "--ip=::1",
            "--scope",
            "read",
            "--deployment",
            "eu",
        ],
        &["verify", "--model", "m-1", "--endpoint", "POST /v1/chat"],
        &["verify", "--cost", "0", "--duration-ms", "12", "--no-color"],
        &["--actor", "ops", "--quiet", "verify", "--json"],
        &["--db", "verify", "verify"],
    ] {
        assert!(
            same_both_ways(words),
            "{words:?} did not take the fast path"
        );
    }
}

#[test]
fn help_version_mistakes_and_other_commands_are_left_to_the_whole_tree() {
    for words in [
        &[][..],
        &["list"],
        &["show", "verify"],
        &["audit", "verify"],
        &["--actor", "verify", "list"],
        &["verify", "--help"],
        &["verify", "-h"],
        &["help", "verify"],
        &["verify", "help"],
        &["--version"],
        &["verify", "--version"],
        &["verify", "sk_live_x"],
        &["verify", "--ip", "nope"],
        &["verify", "--cost", "-1"],
        &["verify", "--cost"],
        &["verify", "--stream", "--ip", "10.0.0.1"],
        &["verify", "--format", "yaml"],
        &["verify", "--bogus"],
        &["verify", "verify"],
        &["--", "verify"],
        &["verif"],
    ] {
        assert!(!same_both_ways(words), "{words:?} took the fast path");
    }
}

/// Every sequence of a few words from a pool of what verify lines hold (flags, values,
/// other commands, help, mistakes) through both parsers.
#[test]
fn any_mix_of_words_parses_the_same_through_both() {
    const POOL: &[&str] = &[
        "verify",
        "list",
        "help",
        "--db",
        "/tmp/k.db",
        "--db=x.db",
        "--json",
        "--format",
        "table",
        "--actor",
        "-q",
        "--no-color",
        "--no-record",
        "--stream",
        "--key-env",
        "K",
        "--ip",
        "10.0.0.1",
        "nope",
        "--cost",
        "7",
        "-1",
        "--duration-ms",
        "--scope",
        "--endpoint",
        "--",
        "-h",
        "--version",
        "",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut fast = 0;
    for _ in 0..4000 {
        let len = 1 + next(6);
        let mut words: Vec<&str> = (0..len).map(|_| POOL[next(POOL.len())]).collect();
        // Most lines of a service name verify: put it in half of them.
        if next(2) == 0 {
            let at = next(words.len() + 1);
            words.insert(at, "verify");
        }
        if same_both_ways(&words) {
            fast += 1;
        }
    }
    // The draw is fixed (seeded): 85 of its mixes are verify lines the tree accepts.
    assert!(fast >= 50, "only {fast} mixes took the fast path");
}

/// The binary: help and mistakes on a fast-path line read as the whole tree's.
#[test]
fn the_binary_prints_the_whole_trees_help_and_errors_for_verify() {
    let env = TestEnv::new();
    let out = env.run(&["verify", "--help"]);
    out.ok();
    assert!(out.stdout.contains("--no-record"), "{out}");
    assert!(out.stdout.contains("Global Options"), "{out}");
    assert_eq!(
        env.run(&["verify", "sk_live_abc"]).fails(2),
        "error: verify takes no key argument: pipe the key on stdin or use --key-env VAR \
         (see 'keyctl verify --help')"
    );
}
