//! `keyctl config get|set|list`: every setting, validation, and `max-keys` enforced
//! by `create`.

use serde_json::json;

use crate::support::*;

const DEFAULTS: [(&str, &str); 9] = [
    ("key-prefix", "sk"),
    ("max-keys", "none"),
    ("failed-auth-limit", "10"),
    ("failed-auth-ipv6-prefix", "64"),
    ("failed-auth-window", "10m"),
    ("block-duration", "15m"),
    ("log-retention", "never"),
    ("rate-limit", "none"),
    ("credit-limit", "none"),
];

#[test]
fn list_shows_every_setting_with_its_default() {
    let env = TestEnv::initialized();
    let out = env.run(&["config", "list"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), DEFAULTS.len(), "{out}");
    for (line, (name, value)) in lines.iter().zip(DEFAULTS) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&words[..3], [name, value, "(default)"], "{line}");
    }

    let out = env.run(&["config", "list", "--json"]);
    out.ok();
    let expected: Vec<_> = DEFAULTS
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v, "default": v, "is_default": true}))
        .collect();
    assert_eq!(out.json(), json!(expected));
    for item in Ordered::parse(&out.stdout).items() {
        assert_eq!(item.keys(), ["name", "value", "default", "is_default"]);
    }

    let out = env.run(&["config", "list", "--format", "csv"]);
    out.ok();
    let mut expected = vec!["name,value,default,is_default".to_string()];
    expected.extend(DEFAULTS.iter().map(|(n, v)| format!("{n},{v},{v},true")));
    assert_eq!(out.stdout_lines(), expected);
}

#[test]
fn get_prints_the_value_or_a_json_object() {
    let env = TestEnv::initialized();
    for (name, value) in DEFAULTS {
        let out = env.run(&["config", "get", name]);
        out.ok();
        assert_eq!(out.stdout, format!("{value}\n"));
    }
    let out = env.run(&["config", "get", "--json", "block-duration"]);
    out.ok();
    assert_eq!(
        out.json(),
        json!({"name": "block-duration", "value": "15m", "default": "15m", "is_default": true})
    );
}

#[test]
fn set_validates_normalises_and_persists_every_setting() {
    let env = TestEnv::initialized();
    for (name, input, stored) in [
        ("key-prefix", "acme", "acme"),
        ("max-keys", "50", "50"),
        ("max-keys", "NONE", "none"),
        ("failed-auth-limit", "5", "5"),
        ("failed-auth-window", "600s", "10m"),
        ("block-duration", "1h", "1h"),
        ("block-duration", "120m", "2h"),
        ("log-retention", "30d", "30d"),
        ("log-retention", "2w", "2w"),
        ("log-retention", "Never", "never"),
    ] {
        let out = env.run(&["config", "set", name, input]);
        out.ok();
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr, format!("{name} = {stored}\n"), "{out}");
        let out = env.run(&["config", "get", name]);
        out.ok();
        assert_eq!(out.stdout, format!("{stored}\n"), "config get {name}");
    }
    let out = env.run(&["config", "get", "--json", "failed-auth-window"]);
    assert_eq!(out.json()["is_default"], false);
    let out = env.run(&["config", "list"]);
    let line = out
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("failed-auth-limit"))
        .unwrap()
        .to_string();
    assert!(line.contains("5") && line.contains("(set)"), "{line}");
}

#[test]
fn set_quiet_prints_nothing() {
    let env = TestEnv::initialized();
    let out = env.run(&["-q", "config", "set", "max-keys", "3"]);
    out.ok();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

#[test]
fn set_on_a_missing_store_creates_it() {
    sqlite_only!("a write command creates a missing store only on SQLite (on PostgreSQL only init and copy do)");
    let env = TestEnv::new();
    let out = env.run(&["config", "set", "max-keys", "3"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!("created key store at {}\nmax-keys = 3\n", env.shown())
    );
    assert_eq!(mode(env.db_file()), 0o600);
}

#[test]
fn key_prefix_applies_to_new_keys_only() {
    let env = TestEnv::initialized();
    let old = env.create("old", &[]);
    env.run(&["config", "set", "key-prefix", "acme"]).ok();
    let new = env.create("new", &[]);
    assert_secret(&new.secret, "acme", "live");
    // The old key keeps its prefix and is still found by it.
    let out = env.run(&["show", "--json", old.prefix()]);
    out.ok();
    assert_eq!(out.json()["id"], old.id());
}

#[test]
fn max_keys_is_enforced_by_create_with_the_spec_message() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "max-keys", "2"]).ok();
    env.create("one", &[]);
    env.create("two", &["--expires", "1d"]);
    let out = env.run(&["list"]);
    assert_eq!(out.stdout_lines().last(), Some(&"2 active · limit 2/2"));

    let before = env.snapshot();
    let out = env.run(&["create", "--name", "three"]);
    assert_eq!(
        out.fails(4),
        "error: key limit reached (2/2): revoke or delete an unused key first"
    );
    let out = env.run(&["create", "--json", "--name", "three"]);
    out.fails(4);
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.list_names(&[]), ["two", "one"]);

    // An expired key no longer counts against the limit.
    let later = "2026-11-25T12:00:00Z";
    env.create_at(later, "three", &[]);
    let out = env.run_at(later, &["list"]);
    assert_eq!(
        out.stdout_lines().last(),
        Some(&"2 active · 1 expired · limit 2/2")
    );

    // Lifting the limit lets create through again.
    env.run_at(later, &["config", "set", "max-keys", "none"])
        .ok();
    env.create_at(later, "four", &[]);
    let out = env.run_at(later, &["list"]);
    assert_eq!(
        out.stdout_lines().last(),
        Some(&"3 active · 1 expired · 3 keys, no limit")
    );
}

#[test]
fn lowering_max_keys_below_the_count_blocks_new_keys() {
    let env = TestEnv::initialized();
    for name in ["a", "b", "c"] {
        env.create(name, &[]);
    }
    let out = env.run(&["config", "set", "max-keys", "1"]);
    out.ok();
    assert_eq!(
        out.stderr,
        "max-keys = 1\nwarning: 3 keys already count against max-keys 1: create will fail until 3 of them are revoked or deleted\n"
    );
    let out = env.run(&["create", "--name", "d"]);
    assert_eq!(
        out.fails(4),
        "error: key limit reached (3/1): revoke or delete an unused key first"
    );
}

#[test]
fn unknown_setting_is_not_found_and_changes_nothing() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    for args in [
        &["config", "get", "nosuch"][..],
        &["config", "set", "nosuch", "1"],
        &["config", "set", "max_keys", "1"],
    ] {
        let out = env.run(args);
        let line = out.fails(3);
        assert!(line.contains(&format!("'{}'", args[2])), "{line}");
        assert!(line.contains("max-keys"), "lists the settings: {line}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn bad_values_are_usage_errors_and_change_nothing() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "max-keys", "7"]).ok();
    let before = env.snapshot();
    for (name, value) in [
        ("key-prefix", "ACME"),
        ("key-prefix", ""),
        ("key-prefix", "way-too-long-prefix-here"),
        ("max-keys", "lots"),
        ("max-keys", "0"),
        ("max-keys", "-1"),
        ("max-keys", "1.5"),
        ("max-keys", "9223372036854775808"),
        ("failed-auth-limit", "none"),
        ("failed-auth-limit", "0"),
        ("failed-auth-window", "forever"),
        ("failed-auth-window", "10"),
        ("block-duration", "1y"),
        ("log-retention", "forever"),
        ("log-retention", "-3d"),
    ] {
        let out = env.run(&["config", "set", name, "--", value]);
        let line = out.fails(2);
        assert!(line.contains(name) || line.contains("prefix"), "{line}");
        if !value.is_empty() {
            assert!(line.contains(value), "names the value: {line}");
        }
    }
    assert_eq!(env.snapshot(), before);
    let out = env.run(&["config", "get", "max-keys"]);
    assert_eq!(out.stdout, "7\n");
}

#[test]
fn read_commands_on_a_missing_store_fail_and_create_nothing() {
    let env = TestEnv::new();
    let before = env.snapshot();
    for args in [&["config", "get", "max-keys"][..], &["config", "list"]] {
        let out = env.run(args);
        assert_eq!(out.fails(1), env.no_store_error());
    }
    assert_eq!(env.snapshot(), before);
}

/// Issue 10: `config set max-keys 2` with 6 keys counted was accepted silently. It is
/// accepted (keys are never removed by a setting) and warns with the count; disabled
/// keys count, revoked and expired ones do not; a limit at or above the count is quiet.
#[test]
fn a_max_keys_below_the_keys_counted_is_accepted_with_a_warning() {
    let env = TestEnv::initialized();
    for name in ["a", "b", "c", "d", "e", "f", "gone", "old"] {
        env.create(name, &[]);
    }
    env.run(&["disable", "f"]).ok();
    env.run(&["revoke", "--yes", "gone"]).ok();
    env.run(&["edit", "old", "--expires", "1h"]).ok();
    let later = now_plus(2 * 3600);
    let out = env.run_at(&later, &["config", "set", "max-keys", "2"]);
    out.ok();
    assert_eq!(
        out.stderr,
        "max-keys = 2\nwarning: 6 keys already count against max-keys 2: create will fail until 5 of them are revoked or deleted\n"
    );
    assert_eq!(env.run(&["config", "get", "max-keys"]).stdout, "2\n");
    assert_eq!(env.list_names(&["--all"]).len(), 8, "no key was touched");
    // --quiet drops the note, not the warning.
    let out = env.run_at(&later, &["-q", "config", "set", "max-keys", "3"]);
    out.ok();
    assert!(
        out.stderr.starts_with("warning: 6 keys already count"),
        "{out}"
    );
    for max in ["6", "7", "none"] {
        let out = env.run_at(&later, &["config", "set", "max-keys", max]);
        out.ok();
        assert_eq!(out.stderr, format!("max-keys = {max}\n"));
    }
    // Other settings never warn about keys.
    env.run_at(&later, &["config", "set", "max-keys", "1"]).ok();
    let out = env.run_at(&later, &["config", "set", "failed-auth-limit", "5"]);
    assert_eq!(out.stderr, "failed-auth-limit = 5\n");
}
