//! `keyctl rotate KEYREF`: a new key with every setting of the old one, the lifetime
//! kept from now, the grace period across its edge (`KEYCTL_NOW`), the one-time reveal
//! of the new secret (never stored), one shared credit balance, and the refusals.

use std::fs;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::support::*;

/// Every optional setting, and a 30-day lifetime.
const FULL: &[&str] = &[
    "--description",
    "billing worker",
    "--owner",
    "ops",
    "--category",
    "production",
    "--group",
    "enterprise",
    "--scope",
    "read",
    "--scope",
    "billing:write",
    "--deployment",
    "eu-1",
    "--allow-model",
    "small",
    "--allow-model",
    "large",
    "--allow-ip",
    "10.0.0.0/8,2001:db8::/32",
    "--expires",
    "30d",
    "--quota-total",
    "100000",
    "--quota-daily",
    "1000",
    "--quota-weekly",
    "5000",
    "--quota-monthly",
    "20000",
    "--rate-limit",
    "50/s",
    "--credits",
    "750",
    "--test",
];

/// Fields a rotation gives the new key afresh; everything else is copied.
const FRESH: [&str; 6] = [
    "id",
    "key_prefix",
    "created_at",
    "expires_at",
    "rotated_from",
    "rotated_to",
];

/// The internal credit pool a key draws on.
fn pool_of(env: &TestEnv, id: &str) -> i64 {
    env.query_i64(&format!("SELECT pool_id FROM keys WHERE id = '{id}'"))
}

/// `rotate --yes --json ARGS` at `now`: the new secret and key object.
fn rotate_json_at(env: &TestEnv, now: &str, args: &[&str]) -> (String, Value) {
    let mut all = vec!["rotate", "--yes", "--json"];
    all.extend_from_slice(args);
    let out = env.run_at(now, &all);
    out.ok();
    assert_eq!(out.stdout_lines().len(), 1, "one json line\n{out}");
    let v = out.json();
    (
        v["key"].as_str().expect("key is a string").to_string(),
        v["key_details"].clone(),
    )
}

#[test]
fn rotation_keeps_every_setting_and_the_lifetime_from_now() {
    let env = TestEnv::initialized();
    let old = env.create("svc", FULL);
    let before = env.key_json(old.id());
    let t10 = now_plus(10 * DAY);
    let (secret, new) = rotate_json_at(&env, &t10, &["svc"]);

    assert_secret(&secret, "sk", "test");
    for field in KEY_FIELDS {
        if !FRESH.contains(&field) {
            assert_eq!(new[field], before[field], "{field} was not kept");
        }
    }
    assert_eq!(new["name"], "svc");
    assert_eq!(new["status"], "active");
    assert_eq!(new["livemode"], false);
    assert_ne!(new["id"], before["id"]);
    assert_eq!(new["key_prefix"], &secret[..12]);
    assert_eq!(new["created_at"], t10);
    // Created with 30 days at T0, rotated at T0+10d: 30 days from the rotation.
    assert_eq!(before["expires_at"], now_plus(30 * DAY));
    assert_eq!(new["expires_at"], now_plus(40 * DAY));
    assert_eq!(new["rotated_from"], old.id());
    assert_eq!(new["rotated_to"], Value::Null);

    let new_id = new["id"].as_str().unwrap();
    let old_now = env.key_json_at(&t10, old.id());
    assert_eq!(old_now["rotated_to"], new_id);
    assert_eq!(old_now["rotated_from"], Value::Null);
    assert_eq!(
        old_now["status"], "disabled",
        "no --grace: disabled at once"
    );
    assert_eq!(old_now["expires_at"], before["expires_at"]);
    assert_eq!(env.key_json_at(&t10, new_id), new, "show agrees");
    // The old key keeps its secret; the new one has its own.
    assert_eq!(env.secret_hash(old.id()), sha256(old.secret.as_bytes()));
    assert_eq!(env.secret_hash(new_id), sha256(secret.as_bytes()));
}

#[test]
fn a_key_without_expiry_rotates_to_one_without_expiry() {
    let env = TestEnv::initialized();
    env.create("forever", &[]);
    let (_, new) = rotate_json_at(&env, &now_plus(5 * DAY), &["forever"]);
    assert_eq!(new["expires_at"], Value::Null);
}

#[test]
fn expires_overrides_the_kept_lifetime() {
    let env = TestEnv::initialized();
    env.create("a", &["--expires", "30d"]);
    env.create("b", &["--expires", "30d"]);
    env.create("c", &[]);
    let t = now_plus(DAY);
    let (_, a) = rotate_json_at(&env, &t, &["a", "--expires", "7d"]);
    assert_eq!(a["expires_at"], now_plus(8 * DAY));
    let (_, b) = rotate_json_at(&env, &t, &["b", "--expires", "never"]);
    assert_eq!(b["expires_at"], Value::Null);
    let (_, c) = rotate_json_at(&env, &t, &["c", "--expires", "2027-01-31"]);
    assert_eq!(c["expires_at"], "2027-01-31T00:00:00Z");
}

#[test]
fn without_grace_the_old_key_is_disabled_at_once() {
    let env = TestEnv::initialized();
    let old = env.create("ci", &[]);
    let out = env.run(&["rotate", "--yes", "ci"]);
    out.ok();
    let new_id = env.key_json("ci")["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old.id());
    assert!(
        out.stderr
            .ends_with(&format!("old key {} is disabled\n", old.id())),
        "{out}"
    );
    assert_eq!(env.key_json(old.id())["status"], "disabled");
    assert_eq!(env.key_json(old.id())["is_active"], false);
    assert_eq!(env.key_json(&new_id)["status"], "active");
    // Both are listed: the old one disabled, the new one active.
    let listed = env.list_json(&[]);
    let statuses: Vec<(&str, &str)> = listed
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [(new_id.as_str(), "active"), (old.id(), "disabled")]
    );
}

#[test]
fn grace_keeps_the_old_key_active_until_its_edge_then_expired() {
    let env = TestEnv::initialized();
    let old = env.create("web", &[]);
    let out = env.run(&["rotate", "--yes", "web", "--grace", "1h"]);
    out.ok();
    let edge = now_plus(HOUR);
    assert!(
        out.stderr.ends_with(&format!(
            "old key {} keeps working until {edge}\n",
            old.id()
        )),
        "{out}"
    );
    let new_id = env.key_json("web")["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old.id(), "the name moves to the new key at once");
    for (now, want) in [
        (NOW.to_string(), "active"),
        (now_plus(HOUR - 1), "active"),
        (edge.clone(), "expired"),
        (now_plus(HOUR + 1), "expired"),
        (now_plus(30 * DAY), "expired"),
    ] {
        let o = env.key_json_at(&now, old.id());
        assert_eq!(o["status"], want, "old key at {now}");
        assert_eq!(o["is_active"], want == "active", "old key at {now}");
        assert_eq!(o["expires_at"], edge);
        let n = env.key_json_at(&now, &new_id);
        assert_eq!(n["status"], "active", "new key at {now}");
        assert_eq!(n["expires_at"], Value::Null);
    }
    let ev = env.audit_json(&[old.id(), "--action", "rotated"]);
    assert_eq!(
        ev[0]["details"],
        json!({"name": "web", "rotated_to": new_id, "grace_until": edge})
    );
}

#[test]
fn grace_never_extends_an_earlier_expiry() {
    let env = TestEnv::initialized();
    let old = env.create("brief", &["--expires", "30m"]);
    env.run(&["rotate", "--yes", "brief", "--grace", "1d"]).ok();
    assert_eq!(env.key_json(old.id())["expires_at"], now_plus(30 * MINUTE));
    assert_eq!(
        env.key_json_at(&now_plus(30 * MINUTE), old.id())["status"],
        "expired"
    );
}

#[test]
fn grace_until_a_date() {
    let env = TestEnv::initialized();
    let old = env.create("dated", &[]);
    env.run(&["rotate", "--yes", "dated", "--grace", "2026-11-25"])
        .ok();
    let edge = "2026-11-25T00:00:00Z";
    assert_eq!(env.key_json(old.id())["expires_at"], edge);
    assert_eq!(
        env.key_json_at("2026-11-24T23:59:59Z", old.id())["status"],
        "active"
    );
    assert_eq!(env.key_json_at(edge, old.id())["status"], "expired");
}

#[test]
fn the_new_secret_is_printed_once_on_a_pipe_and_never_stored() {
    let env = TestEnv::initialized();
    // On SQLite, holding a connection open keeps keyctl's writes in the WAL, so its
    // bytes can be searched too.
    let holder = env.sqlite_only("searches the SQLite file's WAL for the secret");
    if let Some(holder) = &holder {
        let _: i64 = holder
            .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
            .unwrap();
    }
    let old = env.create("pipe", &[]);
    let out = env.run(&["rotate", "--yes", "pipe"]);
    out.ok();
    let secret = out
        .stdout
        .strip_suffix('\n')
        .expect("one line on stdout")
        .to_string();
    assert!(!secret.contains('\n'), "the secret alone\n{out}");
    assert_secret(&secret, "sk", "live");
    assert!(!out.stderr.contains(&secret), "secret on stderr\n{out}");
    assert!(!has_secret_shape(&out.stderr), "secret on stderr\n{out}");

    let new = env.key_json("pipe");
    let new_id = new["id"].as_str().unwrap();
    assert_eq!(new["key_prefix"], &secret[..12]);
    assert_eq!(
        out.stderr,
        format!(
            "rotated key \"pipe\" ({new_id}, {}..., live mode, expires never)\nold key {} is disabled\n",
            &secret[..12],
            old.id()
        )
    );
    assert_eq!(env.secret_hash(new_id), sha256(secret.as_bytes()));

    let body = &secret["sk_live_".len()..];
    let forms = [secret.as_str(), body, &body[..32]];
    // The file and its WAL (still there while the holder is open), or every table.
    let stored = env.stored_bytes();
    assert!(
        stored
            .iter()
            .any(|(_, bytes)| contains_bytes(bytes, new_id.as_bytes())),
        "the new key is stored (else this test proves nothing)"
    );
    for (place, bytes) in &stored {
        for form in forms {
            assert!(
                !contains_bytes(bytes, form.as_bytes()),
                "{place} holds {form:?}"
            );
        }
    }
    if let Some(holder) = holder {
        let wal = fs::read(with_suffix(env.db_file(), "-wal")).expect("the WAL is still there");
        assert!(
            contains_bytes(&wal, new_id.as_bytes()),
            "the new key is in the WAL (else this test proves nothing)"
        );
        drop(holder);
        let db = fs::read(env.db_file()).unwrap();
        assert!(!contains_bytes(&db, &body.as_bytes()[..32]));
    }
    // The audit trail names the new key but holds no secret.
    let trail = env.run(&["audit", "--json"]);
    assert!(!trail.stdout.contains(body), "{trail}");
    assert!(!has_secret_shape(&trail.stdout), "{trail}");
}

#[test]
fn json_reveal_is_key_and_key_details_in_spec_order() {
    let env = TestEnv::initialized();
    let old = env.create("j", &[]);
    let out = env.run(&["rotate", "--yes", "--json", "j"]);
    out.ok();
    assert_eq!(out.stdout_lines().len(), 1);
    let ordered = Ordered::parse(&out.stdout);
    assert_eq!(ordered.keys(), ["key", "key_details"]);
    assert_key_field_order(ordered.get("key_details"));
    let v = out.json();
    let secret = v["key"].as_str().unwrap();
    assert_secret(secret, "sk", "live");
    assert_eq!(v["key_details"]["rotated_from"], old.id());
    assert_eq!(v["key_details"]["key_prefix"], &secret[..12]);
    assert!(!out.stderr.contains(secret), "{out}");
}

#[test]
fn in_a_terminal_the_new_secret_is_framed_with_the_warning() {
    let env = TestEnv::initialized();
    env.create("tty", &[]);
    let out = run_on_tty(env.command(), &["rotate", "--yes", "tty"], 100);
    out.ok();
    assert!(
        out.stdout
            .contains("This key will not be shown again. Store it securely now."),
        "{out}"
    );
    let new = env.key_json("tty");
    let prefix = new["key_prefix"].as_str().unwrap();
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("no secret line\n{out}"));
    let secret = line.trim().trim_matches('│').trim();
    assert_secret(secret, "sk", "live");
    let id = new["id"].as_str().unwrap();
    let said = format!("API key \"tty\" rotated ({id})");
    assert!(out.stdout.contains(&said), "{out}");
}

#[test]
fn old_and_new_draw_on_one_credit_balance() {
    let env = TestEnv::initialized();
    let old = env.create("metered", &["--credits", "100"]);
    let (_, first) = rotate_json_at(&env, NOW, &["metered"]);
    let first_id = first["id"].as_str().unwrap();
    // Rotating the new key again keeps the same balance down the line.
    let (second_secret, second) = rotate_json_at(&env, &now_plus(HOUR), &["metered"]);
    let second_id = second["id"].as_str().unwrap();
    // Spending through one key shows on all of them.
    env.expect_verify(
        &now_plus(2 * HOUR),
        &second_secret,
        &["--cost", "42"],
        "valid",
        "OK",
    );
    for id in [old.id(), first_id, second_id] {
        let k = env.key_json(id);
        assert_eq!(k["credits_used"], 42, "{id}");
        assert_eq!(k["credit_limit"], 100, "{id}");
    }
    let pool = pool_of(&env, old.id());
    assert_eq!(pool_of(&env, first_id), pool);
    assert_eq!(pool_of(&env, second_id), pool);
    assert_eq!(
        env.count_rows("credit_pools"),
        1,
        "no balance was duplicated"
    );
}

#[test]
fn rotation_is_audited_on_both_keys() {
    let env = TestEnv::initialized();
    let old = env.create("aud", &["--expires", "10d"]);
    let (_, new) = rotate_json_at(&env, NOW, &["aud"]);
    let new_id = new["id"].as_str().unwrap();
    let ev = env.audit_json(&["--limit", "2"]);
    assert_eq!(ev[1]["action"], "rotated");
    assert_eq!(ev[1]["key_id"], old.id());
    assert_eq!(
        ev[1]["details"],
        json!({"name": "aud", "rotated_to": new_id, "grace_until": null})
    );
    assert_eq!(ev[0]["action"], "created");
    assert_eq!(ev[0]["key_id"], new_id);
    assert_eq!(
        ev[0]["details"],
        json!({
            "name": "aud",
            "key_prefix": new["key_prefix"],
            "mode": "live",
            "expires_at": now_plus(10 * DAY),
            "rotated_from": old.id(),
        })
    );
    for e in &ev {
        assert_eq!(e["actor"], ACTOR);
        assert_eq!(e["at"], NOW);
    }
}

#[test]
fn rotating_the_same_key_twice_is_refused() {
    let env = TestEnv::initialized();
    let old = env.create("once", &[]);
    let (_, new) = rotate_json_at(&env, NOW, &["once"]);
    let before = env.snapshot();
    let out = env.run(&["rotate", "--yes", old.id()]);
    assert_eq!(
        out.fails(4),
        format!(
            "error: key \"once\" ({}) was superseded by {} (\"once\", active) in a rotation: superseded keys cannot be rotated again; rotate the newest key of its chain",
            old.id(),
            new["id"].as_str().unwrap()
        )
    );
    // Also with a grace period, and by prefix.
    env.run(&["rotate", "--yes", "--grace", "1h", old.prefix()])
        .fails(4);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn rotating_a_revoked_key_is_refused() {
    let env = TestEnv::initialized();
    let k = env.create("dead", &[]);
    env.run(&["revoke", "--yes", "dead"]).ok();
    let before = env.snapshot();
    let out = env.run(&["rotate", "--yes", "dead"]);
    assert_eq!(
        out.fails(4),
        format!(
            "error: key \"dead\" ({}) is revoked: revoked keys cannot be rotated; create a new key",
            k.id()
        )
    );
    env.run(&["rotate", "--yes", "--json", k.id()]).fails(4);
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.list_json(&["--all"]).len(), 1);
}

#[test]
fn bad_input_changes_nothing() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let before = env.snapshot();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["rotate", "--yes", "k", "--grace", "0s"], 2, "--grace"),
        (&["rotate", "--yes", "k", "--grace", "never"], 2, "--grace"),
        (
            &["rotate", "--yes", "k", "--grace", "2020-01-01"],
            2,
            "--grace",
        ),
        (&["rotate", "--yes", "k", "--grace", "soon"], 2, "--grace"),
        (
            &["rotate", "--yes", "k", "--expires", "2020-01-01"],
            2,
            "in the past",
        ),
        (&["rotate", "--yes", "k", "--expires", "1y"], 2, "--expires"),
        (&["rotate", "--yes", "--format", "csv", "k"], 2, "csv"),
        (&["rotate", "--yes", "nosuch"], 3, "nosuch"),
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
}

/// SPEC §4: a secret is never lost. If stdout cannot take the new secret, nothing
/// is rotated and the exit is 1.
#[test]
fn a_closed_stdout_rotates_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("kept", &[]);
    let before = env.snapshot();
    for args in [
        &["rotate", "--yes", "kept"][..],
        &["rotate", "--yes", "--json", "kept"],
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
    let v = env.key_json("kept");
    assert_eq!(v["id"], k.id());
    assert_eq!(v["status"], "active");
    assert_eq!(v["rotated_to"], Value::Null);
}

/// Several `rotate` processes on one key at once: exactly one rotates it, the others
/// are refused as "superseded" (exit 4), never "database is locked".
#[test]
fn parallel_rotations_of_one_key_let_exactly_one_through() {
    let env = TestEnv::initialized();
    let old = env.create("contended", &[]);
    let started: Vec<Running> = (0..5)
        .map(|_| env.keyctl(&["rotate", "--yes", old.id()]).spawn())
        .collect();
    let outs: Vec<Outcome> = started.into_iter().map(Running::outcome).collect();
    let won: Vec<&Outcome> = outs.iter().filter(|o| o.code == Some(0)).collect();
    assert_eq!(won.len(), 1, "one winner");
    for out in outs.iter().filter(|o| o.code != Some(0)) {
        let line = out.fails(4);
        assert!(line.contains("superseded by"), "{line}");
    }
    let secret = won[0].stdout.trim_end();
    let new = env.key_json("contended");
    assert_eq!(new["key_prefix"], &secret[..12]);
    assert_eq!(env.list_json(&["--all"]).len(), 2);
    assert_eq!(env.audit_head().0, 3, "created, rotated, created");
}

/// An expired key gave up its name; once another key holds it, rotating the expired
/// key would make a second active key of that name (SPEC §1: names are unique among
/// active and disabled keys). The rotation is a conflict and changes nothing.
#[test]
fn rotating_an_expired_key_whose_name_was_taken_is_a_conflict() {
    let env = TestEnv::initialized();
    let old = env.create("shared", &["--expires", "1h"]);
    let later = now_plus(2 * HOUR);
    let holder = env.create_at(&later, "shared", &[]);
    let before = env.snapshot();
    let out = env.run_at(&later, &["rotate", "--yes", old.id()]);
    let line = out.fails(4);
    assert!(
        line.contains("'shared'") && line.contains(holder.id()),
        "{line}"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.key_json_at(&later, "shared")["id"], holder.id());
}

/// The same expired key can be rotated while its name is free: the new key takes it.
#[test]
fn rotating_an_expired_key_gives_it_a_fresh_lifetime() {
    let env = TestEnv::initialized();
    let old = env.create("lapsed", &["--expires", "1h"]);
    let later = now_plus(2 * HOUR);
    let (_, new) = rotate_json_at(&env, &later, &[old.id()]);
    assert_eq!(new["status"], "active");
    assert_eq!(new["expires_at"], now_plus(3 * HOUR));
    assert_eq!(env.key_json_at(&later, "lapsed")["id"], new["id"]);
}
