//! SPEC §5 "Rotated pairs": a key replaced by a rotation (superseded) lives on only
//! for its grace period. Revoking or disabling its successor says so (or reaches it
//! with `--with-predecessor`); it cannot be enabled, made permanent or rotated again;
//! `list` and `show` mark it; `audit` shows the whole chain's history.

use serde_json::Value;

use crate::support::*;

/// The end of a 24 h grace period started at `NOW`.
const GRACE_END: &str = "2026-11-24T12:00:00Z";

/// `rotate --yes --json ARGS` at `now`: the new secret and the new key's id.
fn rotate_at(env: &TestEnv, now: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["rotate", "--yes", "--json"];
    all.extend_from_slice(args);
    let out = env.run_at(now, &all);
    out.ok();
    let v = out.json();
    (
        v["key"].as_str().expect("key is a string").to_string(),
        v["key_details"]["id"]
            .as_str()
            .expect("id is a string")
            .to_string(),
    )
}

fn rotate(env: &TestEnv, args: &[&str]) -> (String, String) {
    rotate_at(env, NOW, args)
}

/// `prod-api` created and rotated with a 24 h grace period: (old, new secret, new id).
fn graced_pair(env: &TestEnv) -> (Created, String, String) {
    let old = env.create("prod-api", &[]);
    let (secret, id) = rotate(env, &["prod-api", "--grace", "24h"]);
    (old, secret, id)
}

/// The `warning:` lines of an outcome's stderr.
fn warnings(out: &Outcome) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}

/// The grace warning `revoke`/`disable` (`verb`) gives for `old`, replaced by `by`.
fn grace_warning(old: &str, by: &str, verb: &str) -> String {
    format!(
        "warning: key \"prod-api\" ({old}) was replaced by {by} in a rotation and still verifies until {GRACE_END} (its grace period): {verb} it too with 'keyctl {verb} --with-predecessor {by}'"
    )
}

fn status_of(env: &TestEnv, id: &str) -> String {
    env.key_json(id)["status"].as_str().unwrap().to_string()
}

/// (action, key_id) of every event `audit --json ARGS` shows, oldest first.
fn events(env: &TestEnv, args: &[&str]) -> Vec<(String, String)> {
    let mut all = env.audit_json(args);
    all.reverse();
    all.iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["key_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pair(action: &str, id: &str) -> (String, String) {
    (action.to_string(), id.to_string())
}

// ---- revoke and disable: the warning, and --with-predecessor ----

#[test]
fn revoking_the_name_after_a_graced_rotation_warns_and_the_old_key_still_verifies() {
    let env = TestEnv::initialized();
    let (old, new_secret, new_id) = graced_pair(&env);
    let out = env.run(&["revoke", "--yes", "prod-api"]);
    out.ok();
    assert!(
        out.stderr
            .contains(&format!("revoked key \"prod-api\" ({new_id})")),
        "{out}"
    );
    assert_eq!(
        warnings(&out),
        [grace_warning(old.id(), &new_id, "revoke")],
        "{out}"
    );
    // Only the new key was revoked: the old one still verifies until its grace ends.
    env.expect_verify(NOW, &new_secret, &[], "revoked", "API key has been revoked");
    env.expect_verify(NOW, &old.secret, &[], "valid", "OK");
    env.expect_verify(&now_plus(DAY - 1), &old.secret, &[], "valid", "OK");
    // The command the warning names closes the gap.
    let out = env.run(&["revoke", "--yes", "--with-predecessor", &new_id]);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");
    env.expect_verify(NOW, &old.secret, &[], "revoked", "API key has been revoked");
}

#[test]
fn disabling_the_name_after_a_graced_rotation_warns_too() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    let out = env.run(&["disable", "prod-api"]);
    out.ok();
    assert_eq!(
        warnings(&out),
        [grace_warning(old.id(), &new_id, "disable")],
        "{out}"
    );
    env.expect_verify(NOW, &old.secret, &[], "valid", "OK");
    // A warning, not a note: --quiet keeps it. Repeating the command repeats it.
    let out = env.run(&["--quiet", "disable", "prod-api"]);
    out.ok();
    assert_eq!(
        out.stderr,
        format!("{}\n", grace_warning(old.id(), &new_id, "disable"))
    );
}

#[test]
fn deleting_the_new_key_warns_naming_the_old_key_to_revoke() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    let out = env.run(&["delete", "--yes", "prod-api"]);
    out.ok();
    assert_eq!(
        warnings(&out),
        [format!(
            "warning: key \"prod-api\" ({}) was replaced by {new_id} in a rotation and still verifies until {GRACE_END} (its grace period): revoke it with 'keyctl revoke {}'",
            old.id(),
            old.id()
        )],
        "{out}"
    );
    env.expect_verify(NOW, &old.secret, &[], "valid", "OK");
    env.run(&["revoke", "--yes", old.id()]).ok();
    env.expect_verify(NOW, &old.secret, &[], "revoked", "API key has been revoked");
}

#[test]
fn no_warning_when_the_predecessor_no_longer_verifies() {
    // Plain rotation: the old key is disabled at once.
    let env = TestEnv::initialized();
    env.create("plain", &[]);
    rotate(&env, &["plain"]);
    let out = env.run(&["revoke", "--yes", "plain"]);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");

    // Grace over: the old key has expired.
    let env = TestEnv::initialized();
    graced_pair(&env);
    let out = env.run_at(&now_plus(DAY), &["disable", "prod-api"]);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");

    // Both named at once: nothing is left verifying.
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    let out = env.run(&["revoke", "--yes", &new_id, old.id()]);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");
}

#[test]
fn revoke_with_predecessor_revokes_both_in_one_transaction_each_audited() {
    let env = TestEnv::initialized();
    let (old, new_secret, new_id) = graced_pair(&env);
    let out = env.run(&[
        "revoke",
        "--yes",
        "prod-api",
        "--with-predecessor",
        "--reason",
        "leaked",
    ]);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");
    assert_eq!(
        out.stderr,
        format!(
            "revoked key \"prod-api\" ({new_id})\nrevoked key \"prod-api\" ({}), which {new_id} replaced\n",
            old.id()
        )
    );
    for secret in [&new_secret, &old.secret] {
        env.expect_verify(NOW, secret, &[], "revoked", "API key has been revoked");
    }
    let revoked: Vec<Value> = env
        .audit_json(&["--action", "revoked"])
        .into_iter()
        .collect();
    assert_eq!(revoked.len(), 2, "one event per key: {revoked:?}");
    let mut ids: Vec<&str> = revoked
        .iter()
        .map(|e| e["key_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![old.id(), new_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(revoked.iter().all(|e| e["details"]["reason"] == "leaked"));
}

#[test]
fn a_refused_key_rolls_back_its_predecessors_too() {
    let env = TestEnv::initialized();
    let (_, _, new_id) = graced_pair(&env);
    env.create("other", &[]);
    env.run(&["revoke", "--yes", "other"]).ok();
    let before = env.snapshot();
    // Disabling a revoked key is refused: nothing at all changes.
    env.run(&["disable", "--with-predecessor", &new_id, "other"])
        .fails(4);
    assert_eq!(env.snapshot(), before);
}

/// Three rotations: a → b → c → d, each with a grace period, all with one name.
fn chain_of_four(env: &TestEnv) -> Vec<(String, String)> {
    let a = env.create("prod-api", &[]);
    let mut keys = vec![(a.secret.clone(), a.id().to_string())];
    for _ in 0..3 {
        keys.push(rotate(env, &["prod-api", "--grace", "24h"]));
    }
    keys
}

#[test]
fn with_predecessor_reaches_the_whole_chain_of_three_rotations() {
    let env = TestEnv::initialized();
    let keys = chain_of_four(&env);
    // Without the flag: one warning per key of the chain still in grace.
    let out = env.run(&["disable", "prod-api"]);
    out.ok();
    let warned = warnings(&out);
    assert_eq!(warned.len(), 3, "{out}");
    for (_, id) in &keys[..3] {
        assert!(
            warned.iter().any(|w| w.contains(&format!("({id})"))),
            "{id}\n{out}"
        );
    }
    for (secret, _) in &keys[..3] {
        env.expect_verify(NOW, secret, &[], "valid", "OK");
    }
    // With it: every key of the chain is disabled, each audited.
    let newest = &keys[3].1;
    let out = env.run(&["disable", newest, "--with-predecessor"]);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");
    for (secret, id) in &keys {
        env.expect_verify(NOW, secret, &[], "inactive", "Inactive API Key");
        assert_eq!(status_of(&env, id), "disabled");
    }
    assert_eq!(env.audit_json(&["--action", "disabled"]).len(), 4);

    let out = env.run(&["revoke", "--yes", newest, "--with-predecessor"]);
    out.ok();
    for (secret, _) in &keys {
        env.expect_verify(NOW, secret, &[], "revoked", "API key has been revoked");
    }
    assert_eq!(env.audit_json(&["--action", "revoked"]).len(), 4);
}

#[test]
fn with_predecessor_skips_revoked_keys_and_goes_on_behind_deleted_ones() {
    let env = TestEnv::initialized();
    let keys = chain_of_four(&env);
    let (a, b, c, d) = (&keys[0], &keys[1], &keys[2], &keys[3]);
    // b revoked on its own (warning about a), c deleted (it never verified).
    let out = env.run(&["revoke", "--yes", &b.1]);
    out.ok();
    assert_eq!(warnings(&out).len(), 1, "{out}");
    env.run(&["delete", "--yes", &c.1]).ok();
    env.expect_verify(NOW, &a.0, &[], "valid", "OK");

    // Revoking d warns about a, two links back behind a revoked and a deleted key.
    let out = env.run(&["revoke", "--yes", &d.1]);
    out.ok();
    let warned = warnings(&out);
    assert_eq!(warned.len(), 1, "{out}");
    assert!(warned[0].contains(&format!("({})", a.1)), "{out}");

    let out = env.run(&["revoke", "--yes", "--with-predecessor", &d.1]);
    out.ok();
    env.expect_verify(NOW, &a.0, &[], "revoked", "API key has been revoked");
    // b was revoked already: it is not revoked (or audited) twice.
    let revoked_b = env
        .audit_json(&["--action", "revoked"])
        .iter()
        .filter(|e| e["key_id"] == b.1.as_str())
        .count();
    assert_eq!(revoked_b, 1);
}

// ---- a superseded key cannot come back ----

#[test]
fn enabling_the_old_key_after_a_plain_rotation_is_refused_naming_its_successor() {
    let env = TestEnv::initialized();
    let old = env.create("prod-api", &[]);
    let (_, new_id) = rotate(&env, &["prod-api"]);
    let before = env.snapshot();
    let out = env.run(&["enable", old.id()]);
    assert_eq!(
        out.fails(4),
        format!(
            "error: key \"prod-api\" ({}) was superseded by {new_id} (\"prod-api\", active) in a rotation: superseded keys cannot be enabled",
            old.id()
        )
    );
    // By prefix, and together with an enable that alone would succeed: nothing changes.
    env.run(&["enable", old.prefix()]).fails(4);
    env.create("paused", &[]);
    env.run(&["disable", "paused"]).ok();
    let before_pair = env.snapshot();
    env.run(&["enable", "paused", old.id()]).fails(4);
    assert_eq!(env.snapshot(), before_pair);
    assert_ne!(before, before_pair);
    env.expect_verify(NOW, &old.secret, &[], "inactive", "Inactive API Key");
}

#[test]
fn a_superseded_key_whose_successor_was_deleted_says_so() {
    let env = TestEnv::initialized();
    let old = env.create("prod-api", &[]);
    let (_, new_id) = rotate(&env, &["prod-api"]);
    env.run(&["delete", "--yes", &new_id]).ok();
    let want = |why: &str| {
        format!(
            "error: key \"prod-api\" ({}) was superseded by {new_id} (since deleted) in a rotation: {why}",
            old.id()
        )
    };
    assert_eq!(
        env.run(&["enable", old.id()]).fails(4),
        want("superseded keys cannot be enabled")
    );
    assert_eq!(
        env.run(&["rotate", "--yes", old.id()]).fails(4),
        want("superseded keys cannot be rotated again; rotate the newest key of its chain")
    );
    assert_eq!(
        env.run(&["edit", old.id(), "--expires", "never"]).fails(4),
        want("a superseded key cannot be given 'never' as expiry; its grace may be extended to a later date")
    );
}

#[test]
fn enable_with_predecessor_enables_the_named_key_and_leaves_superseded_ones_disabled() {
    let env = TestEnv::initialized();
    let (old, new_secret, new_id) = graced_pair(&env);
    env.run(&["disable", "--with-predecessor", "prod-api"]).ok();
    let out = env.run(&["enable", "--with-predecessor", &new_id]);
    out.ok();
    assert_eq!(
        warnings(&out),
        [format!(
            "warning: key \"prod-api\" ({}) stays disabled: it was superseded by {new_id} (\"prod-api\", active) in a rotation, and superseded keys cannot be enabled",
            old.id()
        )],
        "{out}"
    );
    env.expect_verify(NOW, &new_secret, &[], "valid", "OK");
    env.expect_verify(NOW, &old.secret, &[], "inactive", "Inactive API Key");
    assert_eq!(env.audit_json(&["--action", "enabled"]).len(), 1);
    // Naming the superseded key itself is still refused, flag or not.
    env.run(&["enable", "--with-predecessor", old.id()])
        .fails(4);
}

#[test]
fn editing_the_old_key_to_never_expire_is_refused_a_later_grace_end_is_not() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    let before = env.snapshot();
    let line = env
        .run(&["edit", old.id(), "--expires", "never"])
        .fails(4)
        .to_string();
    assert!(line.contains(&format!("superseded by {new_id}")), "{line}");
    assert_eq!(env.snapshot(), before);

    // A later finite end during grace: allowed, and the old key verifies until then.
    let out = env.run(&["edit", old.id(), "--expires", "2026-11-26"]);
    out.ok();
    assert_eq!(env.key_json(old.id())["expires_at"], "2026-11-26T00:00:00Z");
    env.expect_verify(&now_plus(2 * DAY), &old.secret, &[], "valid", "OK");
    env.expect_verify(
        &now_plus(3 * DAY),
        &old.secret,
        &[],
        "expired",
        "Expired API Key",
    );
    // Other edits of a superseded key stay allowed.
    env.run(&["edit", old.id(), "--description", "old billing key"])
        .ok();
    // The successor itself can be made permanent.
    env.run(&["edit", &new_id, "--expires", "never"]).ok();
}

#[test]
fn rotating_the_old_key_again_is_refused() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    let before = env.snapshot();
    for args in [
        vec!["rotate", "--yes", old.id()],
        vec!["rotate", "--yes", old.id(), "--grace", "1h"],
    ] {
        let line = env.run(&args).fails(4).to_string();
        assert!(
            line.contains(&format!(
                "was superseded by {new_id} (\"prod-api\", active)"
            )),
            "{line}"
        );
    }
    assert_eq!(env.snapshot(), before);
}

// ---- list and show mark superseded keys ----

#[test]
fn list_marks_superseded_keys_in_the_table_only() {
    let env = TestEnv::initialized();
    let a = env.create("prod-api", &[]);
    let (_, b) = rotate(&env, &["prod-api"]);
    let (_, c) = rotate(&env, &["prod-api", "--grace", "24h"]);
    let status_cells = |now: &str| -> Vec<(String, String)> {
        let out = env.run_at(now, &["list", "--sort", "created"]);
        out.ok();
        [a.prefix().to_string(), b.clone(), c.clone()]
            .iter()
            .map(|who| {
                let prefix = if who.starts_with("key_") {
                    env.key_json(who)["key_prefix"]
                        .as_str()
                        .unwrap()
                        .to_string()
                } else {
                    who.clone()
                };
                let row = out
                    .stdout
                    .lines()
                    .find(|l| l.contains(&prefix))
                    .unwrap_or_else(|| panic!("no row for {prefix}\n{out}"));
                let status = row
                    .split('●')
                    .nth(1)
                    .and_then(|rest| rest.split("  ").next())
                    .unwrap()
                    .trim()
                    .to_string();
                (prefix, status)
            })
            .collect()
    };
    let now: Vec<String> = status_cells(NOW).into_iter().map(|(_, s)| s).collect();
    assert_eq!(now, ["disabled (rotated)", "active (grace)", "active"]);
    let later: Vec<String> = status_cells(&now_plus(DAY))
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(later, ["disabled (rotated)", "expired (rotated)", "active"]);
    // Revoked superseded keys are marked too.
    env.run(&["revoke", "--yes", a.id()]).ok();
    let out = env.run(&["list", "--all"]);
    assert!(out.stdout.contains("● revoked (rotated)"), "{out}");

    // json and csv keep the SPEC key object: a plain status, rotated_to beside it.
    let keys = env.list_json(&["--all"]);
    let superseded = keys.iter().find(|k| k["id"] == b.as_str()).unwrap();
    assert_eq!(superseded["status"], "active");
    assert_eq!(superseded["rotated_to"], c.as_str());
    let csv = env.run(&["list", "--format", "csv"]);
    csv.ok();
    assert!(!csv.stdout.contains("grace"), "{csv}");
    assert!(!csv.stdout.contains("(rotated)"), "{csv}");
}

#[test]
fn show_says_which_key_superseded_it_and_until_when() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    let out = env.run(&["show", old.id()]);
    out.ok();
    assert!(out.stdout.contains("● active (grace)"), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "superseded by {new_id} (grace until 2026-11-24 12:00:00 +00:00, in 1 day)"
        )),
        "{out}"
    );
    let out = env.run_at(&now_plus(2 * DAY), &["show", old.id()]);
    assert!(
        out.stdout.contains(&format!(
            "superseded by {new_id} (grace ended 2026-11-24 12:00:00 +00:00, 1 day ago)"
        )),
        "{out}"
    );
    env.run(&["delete", "--yes", &new_id]).ok();
    let out = env.run(&["show", old.id()]);
    assert!(
        out.stdout.contains(&format!(
            "superseded by {new_id} (since deleted; grace until"
        )),
        "{out}"
    );
    // The successor, and json, are unchanged.
    let out = env.run(&["show", "--json", old.id()]);
    assert!(!out.stdout.contains("superseded"), "{out}");
    let env = TestEnv::initialized();
    env.create("solo", &[]);
    let out = env.run(&["show", "solo"]);
    assert!(!out.stdout.contains("superseded"), "{out}");
}

// ---- audit shows the whole chain ----

#[test]
fn audit_name_shows_the_created_and_rotated_events_of_both_keys() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    env.create("unrelated", &[]);
    let chain = vec![
        pair("created", old.id()),
        pair("rotated", old.id()),
        pair("created", &new_id),
    ];
    assert_eq!(events(&env, &["prod-api"]), chain);
    // Any key of the chain, by id or prefix, means the chain.
    assert_eq!(events(&env, &[old.id()]), chain);
    assert_eq!(events(&env, &[old.prefix()]), chain);
    assert_eq!(events(&env, &["unrelated"]).len(), 1);
    // Filters still apply within the chain.
    assert_eq!(
        events(&env, &["prod-api", "--action", "created"]),
        [pair("created", old.id()), pair("created", &new_id)]
    );
    assert_eq!(events(&env, &["prod-api", "--limit", "1"]).len(), 1);
}

#[test]
fn audit_follows_a_chain_of_three_rotations_through_revoked_and_deleted_keys() {
    let env = TestEnv::initialized();
    let keys = chain_of_four(&env);
    env.run(&["delete", "--yes", &keys[1].1]).ok();
    env.run(&["revoke", "--yes", &keys[3].1]).ok();
    let got = events(&env, &[&keys[0].1]);
    // 4 created, 3 rotated, b's revoked + deleted, d's revoked.
    assert_eq!(got.len(), 10, "{got:?}");
    for (_, id) in &keys {
        assert!(got.contains(&pair("created", id)), "{id}: {got:?}");
    }
    // The id of the deleted key still finds the whole chain.
    assert_eq!(events(&env, &[&keys[1].1]), got);
    // No key holds the name now (the newest is revoked, the others superseded): the
    // name still means its one chain.
    assert_eq!(events(&env, &["prod-api"]), got);
}

#[test]
fn a_name_shared_by_unrelated_keys_stays_ambiguous_in_audit() {
    let env = TestEnv::initialized();
    let first = env.create("dup", &[]);
    env.run(&["revoke", "--yes", first.id()]).ok();
    let second = env.create("dup", &[]);
    env.run(&["revoke", "--yes", second.id()]).ok();
    let line = env.run(&["audit", "dup"]).fails(4).to_string();
    assert!(line.contains("matches 2 keys"), "{line}");
}

#[test]
fn at_a_terminal_revoke_with_predecessor_asks_about_the_chain_too() {
    let env = TestEnv::initialized();
    let (old, new_secret, _) = graced_pair(&env);
    let new_prefix = &new_secret[..12];
    let out = Pty::run_answering(
        env.command(),
        &["revoke", "prod-api", "--with-predecessor"],
        "cannot be undone",
        b"y",
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "Revoke key \"prod-api\" ({new_prefix}..., active) and every key it replaced in rotations? This cannot be undone."
        )),
        "{out}"
    );
    env.expect_verify(NOW, &old.secret, &[], "revoked", "API key has been revoked");
}

/// Before SPEC §5, `enable OLD` after a plain rotation revived a superseded key for
/// good. Such a key is still found and named: it verifies with no end.
#[test]
fn a_superseded_key_revived_by_an_older_keyctl_is_warned_about_and_reached() {
    let env = TestEnv::initialized();
    let old = env.create("prod-api", &[]);
    let (_, new_id) = rotate(&env, &["prod-api"]);
    // A superseded key made active again, which only an older keyctl or another
    // writer could do.
    env.fixture("UPDATE keys SET state = 'active' WHERE id = ?1", old.id());
    env.expect_verify(NOW, &old.secret, &[], "valid", "OK");
    let out = env.run(&["revoke", "--yes", "prod-api"]);
    out.ok();
    assert_eq!(
        warnings(&out),
        [format!(
            "warning: key \"prod-api\" ({}) was replaced by {new_id} in a rotation and still verifies with no end: revoke it too with 'keyctl revoke --with-predecessor {new_id}'",
            old.id()
        )],
        "{out}"
    );
    env.run(&["revoke", "--yes", "--with-predecessor", &new_id])
        .ok();
    env.expect_verify(NOW, &old.secret, &[], "revoked", "API key has been revoked");
}

/// keyctl never writes a cycle of rotations, but another writer might: every walk of
/// the chain ends, and each key is acted on once.
#[test]
fn a_stored_cycle_of_rotations_ends_every_walk() {
    let env = TestEnv::initialized();
    let a = env.create("loop", &[]);
    let (b_secret, b) = rotate(&env, &["loop", "--grace", "24h"]);
    // a was rotated to b, and now claims to come from b as well.
    env.fixture(
        &format!("UPDATE keys SET rotated_from = '{b}' WHERE id = ?1"),
        a.id(),
    );
    assert_eq!(events(&env, &[a.id()]).len(), 3);
    let out = env.run(&["revoke", "--yes", "--with-predecessor", &b]);
    out.ok();
    for secret in [&a.secret, &b_secret] {
        env.expect_verify(NOW, secret, &[], "revoked", "API key has been revoked");
    }
    assert_eq!(env.audit_json(&["--action", "revoked"]).len(), 2);
}

#[test]
fn a_name_no_key_holds_means_the_newest_key_of_its_one_rotation_chain() {
    let env = TestEnv::initialized();
    let (old, _, new_id) = graced_pair(&env);
    env.run(&["revoke", "--yes", "prod-api"]).ok();
    // Nobody holds the name now; it still means the chain's newest key, so the
    // operator can close the gap by name.
    assert_eq!(env.key_json("prod-api")["id"], new_id.as_str());
    env.run(&["revoke", "--yes", "--with-predecessor", "prod-api"])
        .ok();
    assert_eq!(status_of(&env, old.id()), "revoked");
    // Keys that share a name without being one chain stay ambiguous.
    let first = env.create("dup", &[]);
    env.run(&["revoke", "--yes", first.id()]).ok();
    let second = env.create("dup", &[]);
    env.run(&["revoke", "--yes", second.id()]).ok();
    let line = env.run(&["show", "dup"]).fails(4).to_string();
    assert!(line.contains("matches 2 keys"), "{line}");
}
