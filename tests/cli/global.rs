//! Global flags and behaviour shared by every command: version, help, --db and
//! KEYCTL_DB, and a closed stdout.

use std::process::Stdio;

use crate::support::*;

#[test]
fn version_prints_one_line_naming_keyctl_and_its_version() {
    let env = TestEnv::new();
    for flag in ["-V", "--version"] {
        let out = env.run(&[flag]);
        out.ok();
        assert_eq!(out.stderr, "");
        assert_eq!(out.stdout_lines().len(), 1, "{out}");
        let prefix = format!("keyctl {}", env!("CARGO_PKG_VERSION"));
        assert!(out.stdout.starts_with(&prefix), "{out}");
    }
    // -V works without any store and creates nothing.
    assert!(!env.db.exists());
}

#[test]
fn help_lists_the_commands_and_hides_the_test_clock() {
    let env = TestEnv::new();
    let out = env.run(&["--help"]);
    out.ok();
    for word in [
        "init",
        "create",
        "list",
        "show",
        "config",
        "--db",
        "--actor",
        "--format",
        "--json",
        "--no-color",
        "--quiet",
        "--version",
    ] {
        assert!(out.stdout.contains(word), "--help lacks {word}\n{out}");
    }
    for args in [
        &["--help"][..],
        &["create", "--help"],
        &["list", "--help"],
        &["show", "--help"],
        &["config", "--help"],
        &["init", "--help"],
    ] {
        let out = env.run(args);
        out.ok();
        assert!(
            !out.stdout.contains("KEYCTL_NOW"),
            "{args:?} shows KEYCTL_NOW"
        );
    }
    let out = env.run(&["create", "--help"]);
    for flag in [
        "--name",
        "--description",
        "--owner",
        "--category",
        "--group",
        "--scope",
        "--deployment",
        "--allow-model",
        "--allow-ip",
        "--expires",
        "--quota-total",
        "--quota-daily",
        "--quota-weekly",
        "--quota-monthly",
        "--rate-limit",
        "--credits",
        "--test",
        "--copy",
        "--no-copy",
    ] {
        assert!(out.stdout.contains(flag), "create --help lacks {flag}");
    }
    assert!(!env.db.exists());
}

#[test]
fn missing_subcommand_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env.run(&[]);
    assert_eq!(out.code, Some(2), "{out}");
    out.no_panic();
    let out = env.run(&["config"]);
    assert_eq!(out.code, Some(2), "{out}");
}

#[test]
fn db_flag_overrides_keyctl_db() {
    let env = TestEnv::new();
    let other = env.root().join("other.db");
    let out = env.run(&["--db", other.to_str().unwrap(), "init"]);
    out.ok();
    assert!(other.is_file());
    assert!(!env.db.exists(), "KEYCTL_DB was overridden");
    // The flag works after the subcommand too.
    let out = env.run(&["create", "--name", "k", "--db", other.to_str().unwrap()]);
    out.ok();
    let out = env.run(&["list", "--json", "--db", other.to_str().unwrap()]);
    assert_eq!(names(out.json().as_array().unwrap()), ["k"]);
    assert!(!env.db.exists());
}

#[test]
fn relative_db_path_is_relative_to_the_working_folder() {
    let env = TestEnv::new();
    let out = env.run(&["--db", "rel.db", "init"]);
    out.ok();
    assert_eq!(out.stderr, "created key store at rel.db\n");
    assert!(env.root().join("rel.db").is_file());
}

/// `keyctl list | head` and friends: a reader that went away ends keyctl quietly —
/// no panic, no message (ripgrep's convention: success).
#[test]
fn closed_stdout_ends_read_commands_quietly() {
    let env = TestEnv::initialized();
    for i in 0..3 {
        env.create(&format!("key-{i}"), &[]);
    }
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["list", "--format", "csv"],
        &["show", "key-1"],
        &["show", "--json", "key-1"],
        &["config", "list"],
        &["config", "get", "max-keys"],
        &["--version"],
        &["--help"],
    ] {
        let out = env
            .keyctl(args)
            .with(|c| {
                c.stdout(Stdio::from(closed_pipe()));
            })
            .run();
        out.no_panic();
        assert_eq!(out.stderr, "", "{out}");
        assert_eq!(out.code, Some(0), "{out}");
    }
}

/// A closed stdout on a command that changes the store still does the change: only
/// the secret's delivery decides a create.
#[test]
fn closed_stdout_does_not_undo_a_setting() {
    let env = TestEnv::initialized();
    let out = env
        .keyctl(&["config", "set", "max-keys", "9"])
        .with(|c| {
            c.stdout(Stdio::from(closed_pipe()));
        })
        .run();
    out.ok();
    assert_eq!(env.run(&["config", "get", "max-keys"]).stdout, "9\n");
}
