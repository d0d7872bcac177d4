//! `keyctl create`: the key format, every flag, the one-time reveal in its three
//! shapes, and "a secret is never lost" (nothing is created when stdout fails).

use std::process::Stdio;

use serde_json::{json, Value};

use crate::support::*;

#[test]
fn pipe_reveal_prints_the_secret_alone_and_details_on_stderr() {
    let env = TestEnv::initialized();
    let out = env.run(&["create", "--name", "ci"]);
    out.ok();
    let secret = out.stdout.strip_suffix('\n').expect("one line on stdout");
    assert!(
        !secret.contains('\n'),
        "the secret alone on one line\n{out}"
    );
    assert_secret(secret, "sk", "live");

    let keys = env.list_json(&[]);
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    let id = k["id"].as_str().unwrap();
    assert_eq!(k["key_prefix"], &secret[..12]);
    assert_eq!(
        out.stderr,
        format!(
            "created key \"ci\" ({id}, {}..., live mode, expires never)\n",
            &secret[..12]
        )
    );
    assert!(
        !out.stderr.contains(secret),
        "the secret is on stdout only\n{out}"
    );
}

#[test]
fn quiet_pipe_reveal_prints_only_the_secret() {
    let env = TestEnv::new();
    // On SQLite a write command creates the store, and -q silences that note too; on
    // PostgreSQL only init makes one (SPEC §6).
    if on_postgres() {
        env.run(&["init"]).ok();
    }
    let out = env.run(&["-q", "create", "--name", "ci"]);
    out.ok();
    assert_eq!(out.stderr, "");
    assert_secret(out.stdout.trim_end(), "sk", "live");
    assert_eq!(out.stdout_lines().len(), 1);
}

#[test]
fn first_write_creates_the_store_and_says_so_once() {
    sqlite_only!("a write command creates a missing store only on SQLite (on PostgreSQL only init and copy do)");
    let env = TestEnv::new();
    let first = env.run(&["create", "--name", "one"]);
    first.ok();
    let note = format!("created key store at {}", env.shown());
    assert_eq!(first.stderr.lines().next(), Some(note.as_str()), "{first}");
    let second = env.run(&["create", "--name", "two"]);
    second.ok();
    assert!(!second.stderr.contains("created key store"), "{second}");
}

#[test]
fn json_reveal_has_the_key_and_its_details_in_spec_order() {
    let env = TestEnv::initialized();
    let out = env.run(&["create", "--json", "--name", "svc"]);
    out.ok();
    assert_eq!(out.stderr, "", "--json prints nothing on stderr\n{out}");
    assert_eq!(out.stdout_lines().len(), 1, "one json line\n{out}");

    let ordered = Ordered::parse(&out.stdout);
    assert_eq!(ordered.keys(), ["key", "key_details"]);
    assert_key_field_order(ordered.get("key_details"));

    let v = out.json();
    let secret = v["key"].as_str().unwrap();
    assert_secret(secret, "sk", "live");
    let d = &v["key_details"];
    let id = d["id"].as_str().unwrap();
    assert!(
        id.len() == 16
            && id.starts_with("key_")
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "key id {id:?} is key_ + 12 of [a-z2-7]"
    );
    let expected = json!({
        "id": id,
        "name": "svc",
        "description": null,
        "owner": ACTOR,
        "key_prefix": &secret[..12],
        "status": "active",
        "is_active": true,
        "livemode": true,
        "category": null,
        "group": null,
        "scopes": [],
        "deployment": null,
        "allowed_models": [],
        "allowed_ips": [],
        "quotas": {"total": null, "daily": null, "weekly": null, "monthly": null},
        "rate_limit": null,
        "credit_limit": null,
        "credits_used": 0,
        "refill": null,
        "next_refill_at": null,
        "created_at": NOW,
        "expires_at": null,
        "last_used_at": null,
        "last_used_ip": null,
        "rotated_from": null,
        "rotated_to": null,
        "meta": {},
    });
    assert_eq!(d, &expected);
}

#[test]
fn json_flag_and_format_json_are_the_same_anywhere_on_the_line() {
    let env = TestEnv::initialized();
    for args in [
        &["--json", "create", "--name", "a"][..],
        &["create", "--format", "json", "--name", "b"],
        &["--format=json", "create", "--name", "c"],
    ] {
        let out = env.run(args);
        out.ok();
        assert_eq!(Ordered::parse(&out.stdout).keys(), ["key", "key_details"]);
    }
}

#[test]
fn every_create_flag_lands_in_the_key_object() {
    let env = TestEnv::initialized();
    let c = env.create(
        "full",
        &[
            "--description",
            "Deploys from CI",
            "--owner",
            "alice",
            "--category",
            "production",
            "--group",
            "pro-tier",
            "--scope",
            "write",
            "--scope",
            "read",
            "--scope",
            "read",
            "--deployment",
            "eu-1",
            "--allow-model",
            "gpt-x",
            "--allow-model",
            "claude",
            "--allow-ip",
            "10.0.0.0/8, 203.0.113.7",
            "--allow-ip",
            "2001:db8::/32",
            "--expires",
            "30d",
            "--quota-total",
            "1000",
            "--quota-daily",
            "100",
            "--quota-weekly",
            "500",
            "--quota-monthly",
            "900",
            "--rate-limit",
            "10/s",
            "--credits",
            "5000",
            "--test",
            "--no-copy",
        ],
    );
    assert_secret(&c.secret, "sk", "test");
    let d = &c.details;
    assert_eq!(d["description"], "Deploys from CI");
    assert_eq!(d["owner"], "alice");
    assert_eq!(d["category"], "production");
    assert_eq!(d["group"], "pro-tier");
    assert_eq!(d["scopes"], json!(["read", "write"]));
    assert_eq!(d["deployment"], "eu-1");
    assert_eq!(d["allowed_models"], json!(["claude", "gpt-x"]));
    assert_eq!(
        d["allowed_ips"],
        json!(["10.0.0.0/8", "203.0.113.7", "2001:db8::/32"])
    );
    assert_eq!(d["expires_at"], "2026-12-23T12:00:00Z");
    assert_eq!(
        d["quotas"],
        json!({"total": 1000, "daily": 100, "weekly": 500, "monthly": 900})
    );
    assert_eq!(d["rate_limit"], "10/s");
    assert_eq!(d["credit_limit"], 5000);
    assert_eq!(d["credits_used"], 0);
    assert_eq!(d["livemode"], false);
    assert_eq!(d["status"], "active");
    assert_eq!(d["is_active"], true);
    assert_eq!(d["key_prefix"], &c.secret[..12]);

    // What create printed is what the store holds.
    let listed = env.list_json(&[]);
    assert_eq!(listed, vec![d.clone()]);
}

#[test]
fn rate_limit_per_minute_and_quota_at_the_largest_value() {
    let env = TestEnv::initialized();
    let c = env.create(
        "edge",
        &["--rate-limit", "600/m", "--quota-total", "9007199254740991"],
    );
    assert_eq!(c.details["rate_limit"], "600/m");
    assert_eq!(c.details["quotas"]["total"], 9_007_199_254_740_991u64);
}

#[test]
fn expiry_inputs_become_rfc3339_utc() {
    let env = TestEnv::initialized();
    for (input, expected) in [
        ("90m", json!("2026-11-23T13:30:00Z")),
        ("12h", json!("2026-11-24T00:00:00Z")),
        ("1d", json!("2026-11-24T12:00:00Z")),
        ("2w", json!("2026-12-07T12:00:00Z")),
        ("2027-01-31", json!("2027-01-31T00:00:00Z")),
        ("2027-01-31T12:00:00Z", json!("2027-01-31T12:00:00Z")),
        ("2027-01-31T12:00:00+02:00", json!("2027-01-31T10:00:00Z")),
        ("never", Value::Null),
    ] {
        let c = env.create(&format!("exp-{input}"), &["--expires", input]);
        assert_eq!(c.details["expires_at"], expected, "--expires {input}");
    }
}

#[test]
fn secrets_are_unique_and_checksummed() {
    let env = TestEnv::initialized();
    let mut seen = std::collections::HashSet::new();
    for i in 0..8 {
        let c = env.create(&format!("k{i}"), &[]);
        assert_secret(&c.secret, "sk", "live");
        assert!(seen.insert(c.secret.clone()), "a secret repeated");
        assert!(seen.insert(c.id().to_string()), "an id repeated");
    }
}

#[test]
fn owner_defaults_to_the_actor_from_flag_or_env() {
    let env = TestEnv::initialized();
    assert_eq!(env.create("from-env", &[]).details["owner"], ACTOR);
    let out = env.run(&["--actor", "bob", "create", "--json", "--name", "from-flag"]);
    out.ok();
    assert_eq!(out.json()["key_details"]["owner"], "bob");
    let out = env
        .keyctl(&["create", "--json", "--name", "env2"])
        .with(|c| {
            c.env("KEYCTL_ACTOR", "carol");
        })
        .run();
    out.ok();
    assert_eq!(out.json()["key_details"]["owner"], "carol");
    // --owner wins over the actor.
    let out = env.run(&[
        "--actor", "bob", "create", "--json", "--name", "owned", "--owner", "dave",
    ]);
    out.ok();
    assert_eq!(out.json()["key_details"]["owner"], "dave");
}

#[test]
fn duplicate_name_is_a_conflict_and_changes_nothing() {
    let env = TestEnv::initialized();
    let first = env.create("dup", &[]);
    let before = env.snapshot();
    let out = env.run(&["create", "--name", "dup"]);
    let line = out.fails(4);
    assert!(
        line.contains("'dup'") && line.contains(first.id()),
        "{line}"
    );
    assert!(!has_secret_shape(&out.stderr), "{out}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn an_expired_key_frees_its_name() {
    let env = TestEnv::initialized();
    env.create("rolling", &["--expires", "1d"]);
    let later = "2026-11-25T12:00:00Z";
    let second = env.create_at(later, "rolling", &[]);
    assert_eq!(second.details["created_at"], later);
}

#[test]
fn copy_flags_are_accepted_and_the_secret_is_still_printed() {
    let env = TestEnv::initialized();
    let out = env.run(&["create", "--name", "nc", "--no-copy"]);
    out.ok();
    assert_secret(out.stdout.trim_end(), "sk", "live");

    let out = env.run(&["create", "--name", "c", "--copy"]);
    out.ok();
    assert_secret(out.stdout.trim_end(), "sk", "live");
    // With no display the copy warns: a warning, never a failure.
    assert!(out.stderr.contains("warning:"), "{out}");

    let out = env.run(&["create", "--name", "both", "--copy", "--no-copy"]);
    out.ok();
}

#[test]
fn terminal_reveal_is_a_framed_block_with_the_warning() {
    let env = TestEnv::initialized();
    let out = run_on_tty(env.command(), &["create", "--name", "tty"], 100);
    out.ok();
    let keys = env.list_json(&[]);
    let id = keys[0]["id"].as_str().unwrap();
    assert!(
        out.stdout
            .contains(&format!("API key \"tty\" created ({id})")),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("This key will not be shown again. Store it securely now."),
        "{out}"
    );
    let framed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('│'))
        .collect();
    assert_eq!(framed.len(), 1, "one framed line\n{out}");
    let secret = framed[0]
        .trim()
        .trim_start_matches('│')
        .trim_end_matches('│')
        .trim();
    assert_secret(secret, "sk", "live");
    assert_eq!(keys[0]["key_prefix"], &secret[..12]);
    assert!(
        out.stdout.contains('╭') && out.stdout.contains('╰'),
        "{out}"
    );
    assert!(!out.stderr.contains(secret), "{out}");
}

/// SPEC §4: if stdout cannot take the secret, nothing is created and the exit is 1.
#[test]
fn closed_stdout_creates_no_key() {
    let env = TestEnv::initialized();
    env.create("existing", &[]);
    let before = env.snapshot();
    for args in [
        &["create", "--name", "lost"][..],
        &["create", "--json", "--name", "lost"],
    ] {
        let out = env
            .keyctl(args)
            .with(|c| {
                c.stdout(Stdio::from(closed_pipe()));
            })
            .run();
        let line = out.fails(1);
        assert!(line.contains("nothing was created"), "{line}");
        assert!(!has_secret_shape(&out.stderr), "the secret leaked\n{out}");
    }
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.list_names(&[]), ["existing"]);
}

/// A full disk (a `/dev/full` device: every write fails with ENOSPC) loses no secret
/// either. The device is made here, outside the snapshotted folder (reading it never
/// ends), so the test runs whatever the host's /dev holds.
#[test]
fn full_disk_stdout_creates_no_key() {
    let devices = tempfile::tempdir().unwrap();
    let full = full_device(devices.path(), "full");
    let env = TestEnv::initialized();
    let before = env.snapshot();
    let out = env
        .keyctl(&["create", "--name", "lost"])
        .with(|c| {
            let f = std::fs::OpenOptions::new().write(true).open(&full).unwrap();
            c.stdout(Stdio::from(f));
        })
        .run();
    let line = out.fails(1);
    assert!(line.contains("nothing was created"), "{line}");
    assert!(!has_secret_shape(&out.stderr), "{out}");
    assert_eq!(env.snapshot(), before);
    assert!(env.list_json(&[]).is_empty());
}

/// Stdout redirected to a file: the secret is saved (and synced) before the commit.
#[test]
fn stdout_to_a_file_keeps_the_secret() {
    let env = TestEnv::initialized();
    let file = env.root().join("secret.txt");
    let out = env
        .keyctl(&["create", "--name", "saved"])
        .with(|c| {
            c.stdout(Stdio::from(std::fs::File::create(&file).unwrap()));
        })
        .run();
    out.ok();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_secret(text.trim_end(), "sk", "live");
    assert_eq!(env.list_names(&[]), ["saved"]);
}
