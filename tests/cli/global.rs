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

/// Every command's help: its own flags first, then the six global ones under a heading
/// of their own (issue 11: `--actor` sat between `--batch` and `--name`).
#[test]
fn global_options_have_their_own_heading_in_every_help() {
    let env = TestEnv::new();
    let globals = [
        "--db <PATH|URL>",
        "--actor <NAME>",
        "--format <FORMAT>",
        "--json",
        "--no-color",
        "--quiet",
    ];
    for args in [
        &["--help"][..],
        &["create", "--help"],
        &["edit", "--help"],
        &["rotate", "--help"],
        &["list", "--help"],
        &["verify", "--help"],
        &["logs", "prune", "--help"],
        &["config", "set", "--help"],
        &["audit", "verify", "--help"],
        &["create", "-h"],
    ] {
        let out = env.run(args);
        out.ok();
        let help = &out.stdout;
        let heading = help
            .find("\nGlobal Options:\n")
            .unwrap_or_else(|| panic!("{args:?} has no Global Options heading\n{help}"));
        let (own, global) = help.split_at(heading);
        for flag in globals {
            assert!(
                global.contains(flag),
                "{args:?}: {flag} not under the heading\n{help}"
            );
            assert!(
                !own.contains(flag),
                "{args:?}: {flag} among the command's own\n{help}"
            );
        }
    }
    let create = env.run(&["create", "--help"]).stdout;
    let at = |s: &str| create.find(s).unwrap_or_else(|| panic!("no {s}\n{create}"));
    assert!(at("--batch") < at("--name <NAME>"));
    assert!(at("--no-copy") < at("Global Options:"));
    assert!(at("Global Options:") < at("--actor <NAME>"));
}

/// `config set --help` lists every setting with its default and the values it takes,
/// from the table `config list` shows (so the two cannot disagree).
#[test]
fn config_set_help_lists_the_settings_with_defaults_and_forms() {
    let env = TestEnv::initialized();
    let help = env.run(&["config", "set", "--help"]);
    help.ok();
    let listed = env.run(&["config", "list", "--json"]).json();
    let settings = help
        .stdout
        .split_once("\nSettings:\n")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("no Settings section\n{help}"));
    let mut last = 0;
    for row in listed.as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let default = row["default"].as_str().unwrap();
        let line = settings
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("config set --help lacks {name}\n{settings}"));
        assert!(line.contains(&format!("default: {default}")), "{line}");
        assert!(line.contains("values: "), "{line}");
        // In the order config list shows them.
        let pos = settings.find(line).unwrap();
        assert!(pos >= last, "{name} out of order\n{settings}");
        last = pos;
    }
    for (name, form) in [
        ("max-keys", "N or none"),
        ("log-retention", "never"),
        ("block-duration", "duration"),
    ] {
        let line = settings.lines().find(|l| l.contains(name)).unwrap();
        assert!(line.contains(form), "{line}");
    }
}

/// The top-level help's environment list names every variable keyctl reads, after the
/// exit codes; the test clock and the completion scripts' variable stay out of it.
#[test]
fn help_lists_every_environment_variable() {
    let out = TestEnv::new().run(&["--help"]);
    out.ok();
    let (before, list) = out
        .stdout
        .split_once("\nEnvironment:\n")
        .unwrap_or_else(|| panic!("no Environment section\n{out}"));
    assert!(before.contains("Exit codes:"), "{out}");
    for var in [
        "KEYCTL_DB",
        "KEYCTL_ACTOR",
        "KEYCTL_CLIP_TIME",
        "NO_COLOR",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "USER",
        "HOME",
    ] {
        assert!(
            list.contains(var),
            "the environment list lacks {var}\n{list}"
        );
    }
    for hidden in ["KEYCTL_NOW", "KEYCTL_COMPLETE", "KEYCTL_CLIPBOARD"] {
        assert!(!out.stdout.contains(hidden), "--help shows {hidden}");
    }
    // One variable a line, each line within the help's 100 columns.
    for line in list.lines() {
        assert!(line.len() <= 100, "{line}");
    }
}

/// create and edit share their fields' definitions; edit's help shows its own forms
/// (`none` removes a cap or the rate limit) and no create defaults.
#[test]
fn edit_help_shows_its_clearing_forms_and_create_help_its_defaults() {
    let env = TestEnv::new();
    let create = env.run(&["create", "--help"]).stdout;
    let edit = env.run(&["edit", "--help"]).stdout;
    let line_of = |help: &str, flag: &str| {
        let at = help
            .find(&format!("      {flag} "))
            .unwrap_or_else(|| panic!("no {flag}\n{help}"));
        help[at..].lines().take(2).collect::<Vec<_>>().join(" ")
    };
    for flag in [
        "--quota-total",
        "--quota-daily",
        "--quota-weekly",
        "--quota-monthly",
    ] {
        assert!(line_of(&create, flag).contains("<N>"), "{create}");
        assert!(line_of(&edit, flag).contains("<N|none>"), "{edit}");
    }
    assert!(line_of(&edit, "--rate-limit").contains("<N/s|N/m|none>"));
    assert!(line_of(&create, "--owner").contains("[default: the actor]"));
    assert!(!line_of(&edit, "--owner").contains("default"), "{edit}");
    assert!(!line_of(&edit, "--name").contains("required"), "{edit}");
    for flag in [
        "--clear-scopes",
        "--clear-models",
        "--clear-ips",
        "--unlimited",
    ] {
        assert!(edit.contains(flag) && !create.contains(flag), "{flag}");
    }
}
