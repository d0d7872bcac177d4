//! `disable`, `enable`, `revoke` and `delete`: every transition, the refused ones
//! (which leave the store's bytes as they were), several KEYREFs in one transaction,
//! `--yes` without a terminal, request history and `--force`, and their audit events.

use serde_json::{json, Value};

use crate::support::*;

fn status(env: &TestEnv, keyref: &str) -> String {
    env.key_json(keyref)["status"].as_str().unwrap().to_string()
}

/// The actions of the audit events of one key, oldest first.
fn actions_of(env: &TestEnv, key_id: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .audit_json(&[key_id])
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    v.reverse();
    v
}

/// Gives a key request history: one accepted, recorded `verify`.
fn add_request(env: &TestEnv, secret: &str) {
    let args = ["--endpoint", "GET /v1/models", "--ip", "203.0.113.7"];
    env.expect_verify(NOW, secret, &args, "valid", "OK");
}

#[test]
fn disable_and_enable_several_keys_in_one_command() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    let c = env.create("c", &[]);

    // By name, by prefix, and the same key twice (counted once).
    let out = env.run(&["disable", "a", b.prefix(), a.id()]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "disabled key \"a\" ({})\ndisabled key \"b\" ({})\n",
            a.id(),
            b.id()
        )
    );
    assert_eq!(status(&env, "a"), "disabled");
    assert_eq!(status(&env, "b"), "disabled");
    assert_eq!(status(&env, "c"), "active");
    let listed = env.list_json(&[]);
    assert_eq!(listed.len(), 3, "disabled keys are listed");
    assert_eq!(env.key_json("a")["is_active"], false);

    let out = env.run(&["enable", "a", "b"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!(
            "enabled key \"a\" ({})\nenabled key \"b\" ({})\n",
            a.id(),
            b.id()
        )
    );
    assert_eq!(status(&env, "a"), "active");
    assert_eq!(status(&env, "b"), "active");
    assert_eq!(env.key_json("a")["is_active"], true);

    for (k, name) in [(&a, "a"), (&b, "b")] {
        assert_eq!(
            actions_of(&env, k.id()),
            ["created", "disabled", "enabled"],
            "{name}"
        );
    }
    assert_eq!(actions_of(&env, c.id()), ["created"]);
    let ev = &env.audit_json(&["--action", "disabled"]);
    assert_eq!(ev.len(), 2);
    // Newest first: b was disabled after a, in the same command.
    assert_eq!(ev[0]["key_id"], b.id());
    assert_eq!(ev[1]["key_id"], a.id());
    assert_eq!(ev[0]["details"], json!({"name": "b"}));
    assert_eq!(ev[0]["actor"], ACTOR);
    assert_eq!(ev[0]["at"], NOW);
}

#[test]
fn repeating_a_transition_is_a_note_and_writes_no_event() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    env.run(&["disable", "a"]).ok();
    let out = env.run(&["disable", "a"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!("key \"a\" ({}) is already disabled\n", a.id())
    );
    env.run(&["enable", "a"]).ok();
    let out = env.run(&["enable", "a"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!("key \"a\" ({}) is already active\n", a.id())
    );
    env.run(&["revoke", "--yes", "a"]).ok();
    let out = env.run(&["revoke", "--yes", "a"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!("key \"a\" ({}) is already revoked\n", a.id())
    );
    assert_eq!(
        actions_of(&env, a.id()),
        ["created", "disabled", "enabled", "revoked"]
    );
}

#[test]
fn one_bad_keyref_among_several_changes_nothing() {
    let env = TestEnv::initialized();
    env.create("a", &[]);
    env.create("b", &[]);
    env.run(&["disable", "b"]).ok();
    let before = env.snapshot();
    for args in [
        &["disable", "a", "nosuch", "b"][..],
        &["enable", "b", "nosuch"],
        &["revoke", "--yes", "a", "nosuch"],
        &["delete", "--yes", "a", "b", "nosuch"],
    ] {
        let out = env.run(args);
        assert_eq!(
            out.fails(3),
            "error: no key matches 'nosuch': use a key id, exact name or prefix (see 'keyctl list --all')",
            "{args:?}"
        );
        assert_eq!(env.snapshot(), before, "{args:?} changed the store");
    }
    assert_eq!(status(&env, "a"), "active");
    assert_eq!(status(&env, "b"), "disabled");
}

#[test]
fn enabling_a_revoked_key_is_refused_with_the_spec_message() {
    let env = TestEnv::initialized();
    env.create("dead", &[]);
    env.create("sleeping", &[]);
    env.run(&["revoke", "--yes", "dead"]).ok();
    env.run(&["disable", "sleeping"]).ok();
    let before = env.snapshot();
    for args in [
        &["enable", "dead"][..],
        // With a key that could be enabled before it: still nothing changes.
        &["enable", "sleeping", "dead"],
    ] {
        let out = env.run(args);
        assert_eq!(
            out.fails(4),
            "error: revoked keys cannot be reactivated; create a new key",
            "{args:?}"
        );
        assert_eq!(env.snapshot(), before, "{args:?} changed the store");
    }
    assert_eq!(status(&env, "sleeping"), "disabled");
    assert_eq!(env.key_json("dead")["status"], "revoked");
}

#[test]
fn disabling_a_revoked_key_is_refused() {
    let env = TestEnv::initialized();
    let dead = env.create("dead", &[]);
    env.create("live", &[]);
    env.run(&["revoke", "--yes", "dead"]).ok();
    let before = env.snapshot();
    let out = env.run(&["disable", "live", dead.id()]);
    let line = out.fails(4);
    assert!(
        line.contains(dead.id()) && line.contains("revoked"),
        "{line}"
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(status(&env, "live"), "active");
}

#[test]
fn enabling_an_expired_disabled_key_says_it_has_expired() {
    let env = TestEnv::initialized();
    let k = env.create("old", &["--expires", "1h"]);
    env.run(&["disable", "old"]).ok();
    let later = now_plus(2 * HOUR);
    let out = env.run_at(&later, &["enable", k.id()]);
    out.ok();
    assert!(out.stderr.contains("it has expired"), "{out}");
    assert_eq!(env.key_json_at(&later, k.id())["status"], "expired");
}

/// An expired key gave up its name and another key took it. Disabling the expired
/// key must not make the name ambiguous for the key that holds it now (SPEC §1: a
/// name is unique among active and disabled keys): either the disable is refused as
/// a conflict with nothing changed, or the name keeps meaning its holder.
#[test]
fn disabling_an_expired_key_keeps_its_old_name_unambiguous() {
    let env = TestEnv::initialized();
    let old = env.create("reused", &["--expires", "1h"]);
    let later = now_plus(2 * HOUR);
    let holder = env.create_at(&later, "reused", &[]);
    let before = env.snapshot();
    let out = env.run_at(&later, &["disable", old.id()]);
    if out.code != Some(0) {
        out.fails(4);
        assert_eq!(env.snapshot(), before);
    }
    let out = env.run_at(&later, &["show", "--json", "reused"]);
    out.ok();
    assert_eq!(
        out.json()["id"],
        holder.id(),
        "the name still means its holder"
    );
    env.run_at(&later, &["edit", "reused", "--description", "still mine"])
        .ok();
}

#[test]
fn revoke_is_permanent_and_the_key_stays_visible_with_all() {
    let env = TestEnv::initialized();
    let a = env.create("leaked", &[]);
    env.create("kept", &[]);
    let out = env.run(&[
        "revoke",
        "--yes",
        "leaked",
        "--reason",
        "posted in a CI log",
    ]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, format!("revoked key \"leaked\" ({})\n", a.id()));
    assert_eq!(env.list_names(&[]), ["kept"]);
    assert_eq!(env.list_names(&["--all"]), ["kept", "leaked"]);
    let v = env.key_json(a.id());
    assert_eq!(v["status"], "revoked");
    assert_eq!(v["is_active"], false);
    assert_eq!(env.list_names(&["--status", "revoked"]), ["leaked"]);

    let ev = env.audit_json(&["--action", "revoked"]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["key_id"], a.id());
    assert_eq!(
        ev[0]["details"],
        json!({"name": "leaked", "reason": "posted in a CI log"})
    );

    // Permanent: nothing brings it back, and its name is free for a new key.
    env.run(&["enable", "leaked"]).fails(4);
    let again = env.create("leaked", &[]);
    assert_ne!(again.id(), a.id());
    assert_eq!(env.key_json("leaked")["id"], again.id());
}

#[test]
fn revoke_several_keys_with_one_reason_or_none() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    env.run(&["disable", "b"]).ok();
    env.run(&["revoke", "-y", "a", "b"]).ok();
    let ev = env.audit_json(&["--action", "revoked"]);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["key_id"], a.id());
    assert_eq!(ev[0]["key_id"], b.id());
    assert_eq!(ev[0]["details"], json!({"name": "b", "reason": null}));
    assert_eq!(env.list_names(&[]), Vec::<String>::new());
}

#[test]
fn a_bad_reason_is_refused() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let before = env.snapshot();
    let long = "r".repeat(5000);
    for reason in ["two\nlines", "bell\u{7}", long.as_str()] {
        let out = env.run(&["revoke", "--yes", "k", "--reason", reason]);
        assert!(out.fails(2).contains("--reason"), "{out}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn destructive_commands_need_yes_without_a_terminal() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let before = env.snapshot();
    for verb in ["revoke", "delete", "rotate"] {
        let out = env.run(&[verb, "k"]);
        let line = out.fails(2);
        assert_eq!(
            line,
            format!(
                "error: {verb} needs confirmation: pass --yes (there is no terminal to ask on)"
            )
        );
        assert_eq!(env.snapshot(), before, "{verb} changed the store");
        // A terminal on stdout alone is not someone to ask: stdin is not a terminal.
        let out = run_on_tty(env.command(), &[verb, "k"], 100);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(out.stderr.contains("--yes"), "{out}");
        assert_eq!(out.stdout, "", "{out}");
        assert_eq!(env.snapshot(), before, "{verb} on a tty changed the store");
    }
    assert_eq!(status(&env, "k"), "active");
}

#[test]
fn deleting_an_active_key_revokes_it_first_and_audits_both() {
    let env = TestEnv::initialized();
    let a = env.create("temp", &[]);
    env.create("other", &[]);
    let out = env.run(&["delete", "--yes", "temp"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, format!("deleted key \"temp\" ({})\n", a.id()));
    assert_eq!(env.list_names(&["--all"]), ["other"]);
    assert!(env.run(&["show", a.id()]).fails(3).contains(a.id()));

    let ev = env.audit_json(&[a.id()]);
    let actions: Vec<&str> = ev.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deleted", "revoked", "created"]);
    assert_eq!(
        ev[1]["details"],
        json!({"name": "temp", "reason": "deleted"})
    );
    assert_eq!(
        ev[0]["details"],
        json!({"name": "temp", "key_prefix": a.prefix(), "forced": false})
    );
    // The name is free again.
    env.create("temp", &[]);
}

#[test]
fn deleting_a_revoked_or_disabled_key() {
    let env = TestEnv::initialized();
    let r = env.create("revoked", &[]);
    let d = env.create("disabled", &[]);
    env.run(&["revoke", "--yes", "revoked"]).ok();
    env.run(&["disable", "disabled"]).ok();
    env.run(&["delete", "--yes", r.id(), "disabled"]).ok();
    assert_eq!(env.list_names(&["--all"]), Vec::<String>::new());
    // Already revoked: only the deletion is new.
    assert_eq!(actions_of(&env, r.id()), ["created", "revoked", "deleted"]);
    // Disabled is not revoked: it is revoked first.
    assert_eq!(
        actions_of(&env, d.id()),
        ["created", "disabled", "revoked", "deleted"]
    );
}

#[test]
fn a_key_with_request_history_is_deleted_only_with_force() {
    let env = TestEnv::initialized();
    let used = env.create("used", &[]);
    let unused = env.create("unused", &[]);
    add_request(&env, &used.secret);
    let before = env.snapshot();
    for args in [
        &["delete", "--yes", "used"][..],
        // One used key among several: nothing at all is deleted.
        &["delete", "--yes", "unused", "used"],
    ] {
        let out = env.run(args);
        let line = out.fails(4);
        assert!(
            line.contains("request history")
                && line.contains("--force")
                && line.contains(used.id()),
            "{line}"
        );
        assert_eq!(env.snapshot(), before, "{args:?} changed the store");
    }
    assert_eq!(env.list_names(&[]), ["unused", "used"]);

    let out = env.run(&["delete", "--yes", "--force", "used"]);
    out.ok();
    assert_eq!(env.list_names(&["--all"]), ["unused"]);
    // The request log keeps the deleted key's id.
    let kept: Vec<(String, String)> = env
        .logs_json(&[])
        .iter()
        .map(|r| {
            let text = |member: &str| r[member].as_str().unwrap_or("(not text)").to_string();
            (text("key_id"), text("key_name"))
        })
        .collect();
    assert_eq!(kept, [(used.id().to_string(), "used".to_string())]);
    let ev = env.audit_json(&[used.id(), "--action", "deleted"]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["details"]["forced"], true);
    assert_eq!(actions_of(&env, unused.id()), ["created"]);
}

#[test]
fn force_deletes_keys_without_history_too() {
    let env = TestEnv::initialized();
    let k = env.create("plain", &[]);
    env.run(&["delete", "-y", "--force", k.prefix()]).ok();
    assert_eq!(env.list_names(&["--all"]), Vec::<String>::new());
    let ev = env.audit_json(&[k.id(), "--limit", "1"]);
    assert_eq!(ev[0]["action"], "deleted");
    assert_eq!(ev[0]["details"]["forced"], Value::Bool(true));
}

// ---- confirmation at a terminal ----

#[test]
fn at_a_terminal_revoke_asks_and_no_changes_nothing() {
    let env = TestEnv::initialized();
    let k = env.create("asked", &[]);
    let before = env.snapshot();
    let out = Pty::run_answering(
        env.command(),
        &["revoke", "asked"],
        "cannot be undone",
        b"n",
    );
    assert!(
        out.stdout.contains(&format!(
            "Revoke key \"asked\" ({}..., active)? This cannot be undone.",
            k.prefix()
        )),
        "{out}"
    );
    // Saying no is not a success, and it is said in one line, not a panic.
    assert!(matches!(out.code, Some(c) if c != 0), "{out}");
    assert!(!out.stdout.contains("panicked"), "{out}");
    assert!(
        out.stdout
            .contains("error: revoke cancelled: nothing changed"),
        "{out}"
    );
    assert_eq!(env.snapshot(), before);

    let out = Pty::run_answering(
        env.command(),
        &["revoke", "asked", "--reason", "asked first"],
        "cannot be undone",
        b"y",
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(env.key_json(k.id())["status"], "revoked");
    let ev = env.audit_json(&["--action", "revoked"]);
    assert_eq!(ev[0]["details"]["reason"], "asked first");
}

#[test]
fn at_a_terminal_delete_and_rotate_ask_first() {
    let env = TestEnv::initialized();
    let d = env.create("to-delete", &[]);
    let r = env.create("to-rotate", &[]);
    let out = Pty::run_answering(
        env.command(),
        &["delete", "to-delete"],
        "cannot be undone",
        b"y",
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Delete key \"to-delete\""), "{out}");
    assert_eq!(actions_of(&env, d.id()), ["created", "revoked", "deleted"]);

    let out = Pty::run_answering(
        env.command(),
        &["rotate", "to-rotate"],
        "disabled at once",
        b"y",
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("This key will not be shown again. Store it securely now."),
        "{out}"
    );
    let new = env.key_json("to-rotate");
    assert_ne!(new["id"], r.id());
    assert_eq!(env.key_json(r.id())["status"], "disabled");
}
