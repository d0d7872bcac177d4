//! `keyctl edit KEYREF`: every field kind (text, sets, IPs, expiry, quotas, rate
//! limit, credits), `none` / `--unlimited` / `--clear-*`, name clashes, and the
//! secret that never changes; each change audited as old → new.

use serde_json::{json, Value};

use crate::support::*;

/// A key with every optional setting filled in.
const FULL: &[&str] = &[
    "--description",
    "first",
    "--owner",
    "ops",
    "--category",
    "staging",
    "--group",
    "free",
    "--scope",
    "read",
    "--deployment",
    "eu-1",
    "--allow-model",
    "small",
    "--allow-ip",
    "10.0.0.0/8",
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
];

/// The newest audit event.
fn last_event(env: &TestEnv) -> Value {
    env.audit_json(&["--limit", "1"]).remove(0)
}

#[test]
fn edit_changes_every_field_and_audits_each_old_and_new_value() {
    let env = TestEnv::initialized();
    let k = env.create("svc", FULL);
    let before = env.key_json("svc");
    let out = env.run(&[
        "edit",
        "svc",
        "--json",
        "--name",
        "svc-2",
        "--description",
        "second",
        "--owner",
        "platform",
        "--category",
        "production",
        "--group",
        "paid",
        "--scope",
        "write",
        "--scope",
        "admin",
        "--deployment",
        "us-2",
        "--allow-model",
        "large",
        "--allow-model",
        "medium",
        "--allow-ip",
        "192.168.1.0/24,2001:db8::/32",
        "--allow-ip",
        "203.0.113.7",
        "--expires",
        "2027-06-01",
        "--quota-total",
        "2000",
        "--quota-daily",
        "20",
        "--quota-weekly",
        "70",
        "--quota-monthly",
        "300",
        "--rate-limit",
        "100/m",
        "--credits",
        "5000",
        "--refill",
        "100/day",
    ]);
    out.ok();
    assert_eq!(out.stdout_lines().len(), 1, "one json line\n{out}");
    assert_key_field_order(&Ordered::parse(&out.stdout));
    let expected = json!({
        "id": k.id(),
        "name": "svc-2",
        "description": "second",
        "owner": "platform",
        "key_prefix": k.prefix(),
        "status": "active",
        "is_active": true,
        "livemode": true,
        "category": "production",
        "group": "paid",
        "scopes": ["admin", "write"],
        "deployment": "us-2",
        "allowed_models": ["large", "medium"],
        "allowed_ips": ["192.168.1.0/24", "2001:db8::/32", "203.0.113.7"],
        "quotas": {"total": 2000, "daily": 20, "weekly": 70, "monthly": 300},
        "rate_limit": "100/m",
        "credit_limit": 5000,
        "credits_used": 0,
        "refill": {"amount": 100, "interval": "day", "mode": "set"},
        "next_refill_at": "2026-11-24T00:00:00Z",
        "created_at": NOW,
        "expires_at": "2027-06-01T00:00:00Z",
        "last_used_at": null,
        "last_used_ip": null,
        "rotated_from": null,
        "rotated_to": null,
        "meta": {},
    });
    assert_eq!(out.json(), expected);
    assert_eq!(
        env.key_json(k.id()),
        expected,
        "show agrees with edit's output"
    );
    assert!(
        out.stderr.starts_with(&format!(
            "updated key \"svc-2\" ({}): name: svc → svc-2",
            k.id()
        )),
        "{out}"
    );

    // The secret never changes: the same sha256 is still the key's.
    assert_eq!(env.secret_hash(k.id()), sha256(k.secret.as_bytes()));

    let ev = last_event(&env);
    assert_eq!(ev["action"], "edited");
    assert_eq!(ev["key_id"], k.id());
    assert_eq!(ev["actor"], ACTOR);
    assert_eq!(ev["at"], NOW);
    assert_eq!(
        ev["details"],
        json!({"changes": {
            "name": {"old": "svc", "new": "svc-2"},
            "description": {"old": "first", "new": "second"},
            "owner": {"old": "ops", "new": "platform"},
            "category": {"old": "staging", "new": "production"},
            "group": {"old": "free", "new": "paid"},
            "scopes": {"old": ["read"], "new": ["admin", "write"]},
            "deployment": {"old": "eu-1", "new": "us-2"},
            "allowed_models": {"old": ["small"], "new": ["large", "medium"]},
            "allowed_ips": {
                "old": ["10.0.0.0/8"],
                "new": ["192.168.1.0/24", "2001:db8::/32", "203.0.113.7"]
            },
            "quota_total": {"old": 1000, "new": 2000},
            "quota_daily": {"old": 10, "new": 20},
            "quota_weekly": {"old": 50, "new": 70},
            "quota_monthly": {"old": 100, "new": 300},
            "rate_limit": {"old": "5/s", "new": "100/m"},
            "credit_limit": {"old": 500, "new": 5000},
            "expires_at": {"old": before["expires_at"], "new": "2027-06-01T00:00:00Z"},
            "refill": {"old": null, "new": "100/day set"},
        }})
    );
    assert_eq!(before["expires_at"], now_plus(30 * DAY));
}

#[test]
fn none_clears_quotas_and_rate_limit_and_unlimited_clears_credits() {
    let env = TestEnv::initialized();
    let k = env.create("capped", FULL);
    let out = env.run(&[
        "edit",
        k.id(),
        "--quota-total",
        "none",
        "--quota-daily",
        "none",
        "--quota-weekly",
        "NONE",
        "--quota-monthly",
        "none",
        "--rate-limit",
        "none",
        "--unlimited",
    ]);
    out.ok();
    assert_eq!(out.stdout, "", "no --json: nothing on stdout\n{out}");
    let now = env.key_json(k.id());
    assert_eq!(
        now["quotas"],
        json!({"total": null, "daily": null, "weekly": null, "monthly": null})
    );
    assert_eq!(now["rate_limit"], Value::Null);
    assert_eq!(now["credit_limit"], Value::Null);
    assert_eq!(
        last_event(&env)["details"],
        json!({"changes": {
            "quota_total": {"old": 1000, "new": null},
            "quota_daily": {"old": 10, "new": null},
            "quota_weekly": {"old": 50, "new": null},
            "quota_monthly": {"old": 100, "new": null},
            "rate_limit": {"old": "5/s", "new": null},
            "credit_limit": {"old": 500, "new": null},
        }})
    );
    // And back from none to a value.
    env.run(&["edit", k.id(), "--quota-daily", "7", "--credits", "9"])
        .ok();
    assert_eq!(
        last_event(&env)["details"],
        json!({"changes": {
            "quota_daily": {"old": null, "new": 7},
            "credit_limit": {"old": null, "new": 9},
        }})
    );
}

#[test]
fn clear_flags_and_empty_text_remove_restrictions() {
    let env = TestEnv::initialized();
    let k = env.create("restricted", FULL);
    env.run(&[
        "edit",
        "restricted",
        "--clear-ips",
        "--clear-scopes",
        "--clear-models",
        "--description",
        "",
        "--category",
        "",
        "--group",
        "",
        "--deployment",
        "",
        "--expires",
        "never",
    ])
    .ok();
    let now = env.key_json(k.id());
    for field in ["allowed_ips", "scopes", "allowed_models"] {
        assert_eq!(now[field], json!([]), "{field}");
    }
    for field in [
        "description",
        "category",
        "group",
        "deployment",
        "expires_at",
    ] {
        assert_eq!(now[field], Value::Null, "{field}");
    }
    let changes = &last_event(&env)["details"]["changes"];
    assert_eq!(
        changes["allowed_ips"],
        json!({"old": ["10.0.0.0/8"], "new": []})
    );
    assert_eq!(changes["deployment"], json!({"old": "eu-1", "new": null}));
    assert_eq!(
        changes["expires_at"],
        json!({"old": now_plus(30 * DAY), "new": null})
    );
}

#[test]
fn expiry_edits_count_from_now_and_can_revive_an_expired_key() {
    let env = TestEnv::initialized();
    let k = env.create("short", &["--expires", "1h"]);
    let later = now_plus(2 * HOUR);
    assert_eq!(env.key_json_at(&later, k.id())["status"], "expired");
    env.run_at(&later, &["edit", k.id(), "--expires", "7d"])
        .ok();
    let v = env.key_json_at(&later, k.id());
    assert_eq!(v["status"], "active");
    assert_eq!(v["expires_at"], now_plus(2 * HOUR + 7 * DAY));
    // A past expiry is refused.
    let before = env.snapshot();
    let out = env.run(&["edit", k.id(), "--expires", "2020-01-01"]);
    assert!(out.fails(2).contains("in the past"), "{out}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_name_held_by_another_key_is_a_conflict_and_changes_nothing() {
    let env = TestEnv::initialized();
    let a = env.create("alpha", &[]);
    let b = env.create("beta", &["--description", "b"]);
    let before = env.snapshot();
    let out = env.run(&["edit", "beta", "--name", "alpha", "--description", "x"]);
    assert_eq!(
        out.fails(4),
        format!(
            "error: a key named 'alpha' already exists ({}): choose another name",
            a.id()
        )
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.key_json(b.id())["description"], "b");

    // A disabled key still holds its name.
    env.run(&["disable", "alpha"]).ok();
    let before = env.snapshot();
    env.run(&["edit", "beta", "--name", "alpha"]).fails(4);
    assert_eq!(env.snapshot(), before);

    // A revoked key's name is free again.
    env.run(&["revoke", "--yes", "alpha"]).ok();
    env.run(&["edit", "beta", "--name", "alpha"]).ok();
    assert_eq!(env.key_json("alpha")["id"], b.id());
}

#[test]
fn the_secret_and_identity_never_change() {
    let env = TestEnv::initialized();
    let k = env.create("stable", &[]);
    let hash = sha256(k.secret.as_bytes());
    assert_eq!(env.secret_hash(k.id()), hash);
    for args in [
        &["--name", "renamed"][..],
        &["--scope", "read"],
        &["--expires", "90d"],
        &["--allow-ip", "10.1.0.0/16"],
        &["--credits", "3"],
    ] {
        let mut all = vec!["edit", k.id()];
        all.extend_from_slice(args);
        env.run(&all).ok();
        assert_eq!(env.secret_hash(k.id()), hash, "after edit {args:?}");
        let v = env.key_json(k.id());
        assert_eq!(v["key_prefix"], k.prefix());
        assert_eq!(v["created_at"], NOW);
    }
    // Exactly one key: edit never made another.
    assert_eq!(env.list_json(&["--all"]).len(), 1);
    for (place, bytes) in env.stored_bytes() {
        assert!(!contains_bytes(&bytes, k.secret.as_bytes()), "{place}");
    }
}

#[test]
fn unchanged_values_write_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("same", &["--description", "d", "--quota-daily", "5"]);
    let events = env.audit_json(&[]).len();
    let before = env.snapshot();
    let out = env.run(&["edit", "same", "--description", "d", "--quota-daily", "5"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!(
            "key \"same\" ({}) already has these settings; nothing changed\n",
            k.id()
        )
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.audit_json(&[]).len(), events);
}

#[test]
fn refused_edits_change_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("target", FULL);
    env.create("gone", &[]);
    env.run(&["revoke", "--yes", "gone"]).ok();
    let before = env.snapshot();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["edit", "target"], 2, "nothing to change"),
        (
            &["edit", "target", "--quota-daily", "0"],
            2,
            "--quota-daily",
        ),
        (
            &["edit", "target", "--quota-total", "many"],
            2,
            "--quota-total",
        ),
        (
            &["edit", "target", "--rate-limit", "5/h"],
            2,
            "--rate-limit",
        ),
        (&["edit", "target", "--credits", "none"], 2, "--credits"),
        (
            &["edit", "target", "--credits", "5", "--unlimited"],
            2,
            "--unlimited",
        ),
        (
            &["edit", "target", "--allow-ip", "10.0.0.5/8"],
            2,
            "10.0.0.0/8",
        ),
        (
            &["edit", "target", "--allow-ip", "10.0.0.0/8", "--clear-ips"],
            2,
            "--clear-ips",
        ),
        (&["edit", "target", "--expires", "soon"], 2, "--expires"),
        (&["edit", "target", "--owner", ""], 2, "--owner"),
        (&["edit", "target", "--name", ""], 2, "name"),
        (&["edit", "target", "--scope", "a b"], 2, "--scope"),
        (&["edit", "nosuch", "--description", "x"], 3, "nosuch"),
        (&["edit", "gone", "--description", "x"], 4, "revoked"),
    ];
    for (args, code, says) in cases {
        let out = env.run(args);
        let line = out.fails(*code);
        assert!(
            line.contains(says),
            "{args:?} does not say {says:?}: {line}"
        );
        assert_eq!(env.snapshot(), before, "{args:?} changed the store");
    }
    assert_eq!(env.key_json(k.id())["quotas"]["daily"], 10);
}

/// SPEC §1: a name is unique among keys that are active or disabled (and not
/// superseded). An expired key gives up its name; extending its expiry after another
/// key took the name would make two active keys share it (and the name ambiguous), so
/// that edit is a conflict and changes nothing.
#[test]
fn reviving_an_expired_key_whose_name_was_taken_is_a_conflict() {
    let env = TestEnv::initialized();
    let old = env.create("shared", &["--expires", "1h"]);
    let later = now_plus(2 * HOUR);
    let holder = env.create_at(&later, "shared", &[]);
    let before = env.snapshot();
    let out = env.run_at(&later, &["edit", old.id(), "--expires", "30d"]);
    let line = out.fails(4);
    assert!(
        line.contains("'shared'") && line.contains(holder.id()),
        "{line}"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.key_json_at(&later, old.id())["status"], "expired");
    assert_eq!(env.key_json_at(&later, "shared")["id"], holder.id());
}
