//! The audit trail: one event per admin action with its details, `audit [KEYREF]`
//! with its filters and formats, and `audit verify` against direct tampering with the
//! `audit_events` table (edited, deleted, inserted events; a cut-off tail).

use serde_json::{json, Value};

use crate::support::*;

const ZERO_HEAD: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Six events: three keys created, one edited, one disabled, one revoked.
fn six_events(env: &TestEnv) -> [Created; 3] {
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    let c = env.create("c", &[]);
    env.run(&["edit", "a", "--description", "x"]).ok();
    env.run(&["disable", "b"]).ok();
    env.run(&["revoke", "--yes", "c", "--reason", "test"]).ok();
    assert_eq!(env.audit_head().0, 6);
    [a, b, c]
}

/// A stored audit row, every column.
#[derive(Debug, Clone)]
struct Row {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    key_id: Option<String>,
    details: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

/// The stored audit rows, read and written behind keyctl's back on either backend.
enum Raw {
    Sqlite(rusqlite::Connection),
    Pg(postgres::Client),
}

const ROWS: &str = "SELECT seq, at, actor, action, key_id, details, prev_hash, hash \
                    FROM audit_events ORDER BY seq";

impl Raw {
    fn of(env: &TestEnv) -> Raw {
        match env.pg_client() {
            Some(client) => Raw::Pg(client),
            None => Raw::Sqlite(rusqlite::Connection::open(env.db_file()).expect("open the store")),
        }
    }

    fn rows(&mut self) -> Vec<Row> {
        match self {
            Raw::Sqlite(db) => {
                let mut st = db.prepare(ROWS).unwrap();
                let out = st
                    .query_map([], |r| {
                        Ok(Row {
                            seq: r.get(0)?,
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            action: r.get(3)?,
                            key_id: r.get(4)?,
                            details: r.get(5)?,
                            prev_hash: r.get(6)?,
                            hash: r.get(7)?,
                        })
                    })
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                out
            }
            Raw::Pg(client) => client
                .query(ROWS, &[])
                .unwrap()
                .iter()
                .map(|r| Row {
                    seq: r.get(0),
                    at: r.get(1),
                    actor: r.get(2),
                    action: r.get(3),
                    key_id: r.get(4),
                    details: r.get(5),
                    prev_hash: r.get(6),
                    hash: r.get(7),
                })
                .collect(),
        }
    }

    fn insert(&mut self, r: &Row) {
        let sql =
            "INSERT INTO audit_events (seq, at, actor, action, key_id, details, prev_hash, hash) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        match self {
            Raw::Sqlite(db) => {
                db.execute(
                    sql,
                    rusqlite::params![
                        r.seq,
                        r.at,
                        r.actor,
                        r.action,
                        r.key_id,
                        r.details,
                        r.prev_hash,
                        r.hash
                    ],
                )
                .expect("insert an audit row");
            }
            Raw::Pg(client) => {
                client
                    .execute(
                        sql,
                        &[
                            &r.seq,
                            &r.at,
                            &r.actor,
                            &r.action,
                            &r.key_id,
                            &r.details,
                            &r.prev_hash,
                            &r.hash,
                        ],
                    )
                    .expect("insert an audit row");
            }
        }
    }

    /// Sets the bytes of `column` (a hash) of event `seq`.
    fn set_bytes(&mut self, column: &str, seq: i64, bytes: &[u8]) {
        let sql = format!("UPDATE audit_events SET {column} = $1 WHERE seq = {seq}");
        let changed = match self {
            Raw::Sqlite(db) => db.execute(&sql, [bytes]).expect("set a hash"),
            Raw::Pg(client) => {
                let changed = client.execute(&sql, &[&bytes]).expect("set a hash");
                usize::try_from(changed).expect("a row count")
            }
        };
        assert_eq!(changed, 1, "{sql}");
    }
}

fn rows(db: &mut Raw) -> Vec<Row> {
    db.rows()
}

fn insert(db: &mut Raw, r: &Row) {
    db.insert(r);
}

/// Moves events `from..` one place up (`by` = 1) or down (`by` = -1).
fn renumber_from(env: &TestEnv, from: i64, by: i64) {
    // Through negative numbers, so no two rows ever share a seq.
    env.tamper(&format!(
        "UPDATE audit_events SET seq = -seq WHERE seq >= {from};
             UPDATE audit_events SET seq = -seq + ({by}) WHERE seq < 0;"
    ));
}

/// The chain hash as documented (docs/architecture.md; src/core/audit.rs), computed
/// independently, so a test can forge an event whose own hash is right.
fn chain_hash(prev: &[u8], r: &Row) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    fn put(h: &mut Sha256, field: &[u8]) {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    let mut h = Sha256::new();
    h.update(b"keyctl-audit-v1");
    h.update(prev);
    put(&mut h, &r.seq.to_be_bytes());
    put(&mut h, &r.at.to_be_bytes());
    put(&mut h, r.actor.as_bytes());
    put(&mut h, r.action.as_bytes());
    match &r.key_id {
        Some(k) => put(&mut h, k.as_bytes()),
        None => h.update([0xff; 8]),
    }
    put(&mut h, r.details.as_bytes());
    h.finalize().to_vec()
}

/// Asserts this file's `chain_hash` reproduces the stored chain (so a forged event
/// built with it has a hash keyctl would accept).
fn check_encoding(db: &mut Raw) {
    let mut prev = vec![0u8; 32];
    for r in rows(db) {
        assert_eq!(
            r.prev_hash, prev,
            "event {} links to its predecessor",
            r.seq
        );
        assert_eq!(
            chain_hash(&prev, &r),
            r.hash,
            "the audit hash encoding changed: update chain_hash in tests/cli/audit.rs"
        );
        prev = r.hash.clone();
    }
}

/// Asserts `audit verify` fails with exit 8 naming event `seq`, and returns the line.
fn broken_at(env: &TestEnv, seq: i64) -> String {
    let out = env.run(&["audit", "verify"]);
    let line = out.fails(8).to_string();
    assert!(
        line.starts_with(&format!("error: audit trail broken at event {seq}: ")),
        "want event {seq} named: {line}"
    );
    line
}

// ---- one event per admin action ----

#[test]
fn every_admin_action_writes_one_event_with_its_details() {
    let env = TestEnv::initialized();
    let t = |min: i64| now_plus(min * MINUTE);
    env.run_at(&t(0), &["config", "set", "max-keys", "10"]).ok();
    let a = env.create_at(&t(1), "a", &["--expires", "30d"]);
    env.run_at(
        &t(2),
        &["edit", "a", "--description", "x", "--quota-daily", "5"],
    )
    .ok();
    env.run_at(&t(3), &["--actor", "alice", "disable", "a"])
        .ok();
    env.run_at(&t(4), &["enable", "a"]).ok();
    let b = env.create_at(&t(5), "b", &["--test"]);
    env.run_at(&t(6), &["revoke", "--yes", "b", "--reason", "leaked"])
        .ok();
    let out = env.run_at(&t(7), &["rotate", "--yes", "--json", "a"]);
    out.ok();
    let a2 = out.json()["key_details"].clone();
    let a2_id = a2["id"].as_str().unwrap();
    env.run_at(&t(8), &["delete", "--yes", b.id()]).ok();
    env.run_at(&t(9), &["delete", "--yes", a.id()]).ok();

    let mut ev = env.audit_json(&[]);
    ev.reverse();
    let expect: Vec<(i64, &str, Option<&str>, &str, Value)> = vec![
        (
            0,
            "config",
            None,
            ACTOR,
            json!({"setting": "max-keys", "old": "none", "new": "10"}),
        ),
        (
            1,
            "created",
            Some(a.id()),
            ACTOR,
            json!({"name": "a", "key_prefix": a.prefix(), "mode": "live",
                   "expires_at": now_plus(MINUTE + 30 * DAY)}),
        ),
        (
            2,
            "edited",
            Some(a.id()),
            ACTOR,
            json!({"changes": {
                "description": {"old": null, "new": "x"},
                "quota_daily": {"old": null, "new": 5},
            }}),
        ),
        (3, "disabled", Some(a.id()), "alice", json!({"name": "a"})),
        (4, "enabled", Some(a.id()), ACTOR, json!({"name": "a"})),
        (
            5,
            "created",
            Some(b.id()),
            ACTOR,
            json!({"name": "b", "key_prefix": b.prefix(), "mode": "test", "expires_at": null}),
        ),
        (
            6,
            "revoked",
            Some(b.id()),
            ACTOR,
            json!({"name": "b", "reason": "leaked"}),
        ),
        (
            7,
            "rotated",
            Some(a.id()),
            ACTOR,
            json!({"name": "a", "rotated_to": a2_id, "grace_until": null}),
        ),
        (
            7,
            "created",
            Some(a2_id),
            ACTOR,
            json!({"name": "a", "key_prefix": a2["key_prefix"], "mode": "live",
                   "expires_at": now_plus(7 * MINUTE + 30 * DAY), "rotated_from": a.id()}),
        ),
        (
            8,
            "deleted",
            Some(b.id()),
            ACTOR,
            json!({"name": "b", "key_prefix": b.prefix(), "forced": false}),
        ),
        // a is disabled by its rotation, not revoked: deleting it revokes it first.
        (
            9,
            "revoked",
            Some(a.id()),
            ACTOR,
            json!({"name": "a", "reason": "deleted"}),
        ),
        (
            9,
            "deleted",
            Some(a.id()),
            ACTOR,
            json!({"name": "a", "key_prefix": a.prefix(), "forced": false}),
        ),
    ];
    assert_eq!(ev.len(), expect.len(), "{ev:#?}");
    for (i, (e, (min, action, key, actor, details))) in ev.iter().zip(&expect).enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "event {i}");
        assert_eq!(e["at"], t(*min), "event {i}");
        assert_eq!(e["action"], *action, "event {i}");
        assert_eq!(e["key_id"], json!(key), "event {i}");
        assert_eq!(e["actor"], *actor, "event {i}");
        assert_eq!(&e["details"], details, "event {i} ({action})");
    }
    env.audit_head();
}

#[test]
fn keyref_action_since_and_limit_filter_newest_first() {
    let env = TestEnv::initialized();
    let a = env.create_at(&now_plus(-3 * HOUR), "a", &[]);
    let b = env.create_at(&now_plus(-2 * HOUR), "b", &[]);
    env.run_at(&now_plus(-30 * MINUTE), &["disable", "a"]).ok();
    env.run_at(&now_plus(-10 * MINUTE), &["edit", "b", "--group", "g"])
        .ok();
    env.run(&["enable", "a"]).ok();

    let seqs = |args: &[&str]| -> Vec<i64> {
        env.audit_json(args)
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&[]), [5, 4, 3, 2, 1]);
    assert_eq!(seqs(&["a"]), [5, 3, 1]);
    assert_eq!(seqs(&[a.id()]), [5, 3, 1]);
    assert_eq!(seqs(&[b.prefix()]), [4, 2]);
    assert_eq!(seqs(&["--action", "created"]), [2, 1]);
    assert_eq!(seqs(&["--action", "enabled"]), [5]);
    assert_eq!(seqs(&["--action", "revoked"]), Vec::<i64>::new());
    assert_eq!(seqs(&["--since", "1h"]), [5, 4, 3]);
    assert_eq!(seqs(&["--since", "30m"]), [5, 4, 3], "--since is inclusive");
    assert_eq!(seqs(&["--since", "2026-11-23T09:30:00Z"]), [5, 4, 3, 2]);
    assert_eq!(seqs(&["--since", "2026-11-23"]), [5, 4, 3, 2, 1]);
    assert_eq!(seqs(&["--limit", "2"]), [5, 4]);
    assert_eq!(seqs(&["a", "--since", "1h", "--limit", "1"]), [5]);
    assert_eq!(seqs(&["--action", "created", "--limit", "1"]), [2]);
    assert_eq!(seqs(&["b", "--action", "disabled"]), Vec::<i64>::new());
}

#[test]
fn json_csv_and_table_shapes() {
    let env = TestEnv::initialized();
    let k = env.create("shape", &[]);
    env.run(&["edit", "shape", "--description", "with, comma"])
        .ok();

    let out = env.run(&["audit", "--json"]);
    out.ok();
    let ordered = Ordered::parse(&out.stdout);
    for e in ordered.items() {
        assert_eq!(
            e.keys(),
            ["seq", "at", "actor", "action", "key_id", "details", "hash"]
        );
    }
    let ev = out.json();
    let (_, head) = env.audit_head();
    assert_eq!(ev[0]["hash"], head, "the newest event's hash is the head");
    for e in ev.as_array().unwrap() {
        let h = e["hash"].as_str().unwrap();
        assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    let out = env.run(&["audit", "--format", "csv"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "seq,at,actor,action,key_id,details,hash");
    assert_eq!(
        lines[1],
        format!(
            "2,{NOW},{ACTOR},edited,{},\"{{\"\"changes\"\":{{\"\"description\"\":{{\"\"new\"\":\"\"with, comma\"\",\"\"old\"\":null}}}}}}\",{}",
            k.id(),
            ev[0]["hash"].as_str().unwrap()
        )
    );
    assert!(
        lines[2].starts_with(&format!("1,{NOW},{ACTOR},created,{},", k.id())),
        "{out}"
    );

    let out = env.run(&["audit"]);
    out.ok();
    for head in ["Time", "Actor", "Action", "Key", "Details"] {
        assert!(out.stdout.contains(head), "no {head} column\n{out}");
    }
    assert!(
        out.stdout.contains("description: none → with, comma"),
        "edits read old → new\n{out}"
    );
    assert!(out.stdout.contains("2026-11-23 12:00:00 +00:00"), "{out}");
    let edited = out.stdout.find("edited").unwrap();
    let created = out.stdout.find("created").unwrap();
    assert!(edited < created, "newest first\n{out}");
}

#[test]
fn no_events_is_an_empty_result_in_every_format() {
    let env = TestEnv::initialized();
    let out = env.run(&["audit"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "no audit events match\n");
    let out = env.run(&["audit", "--json"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    let out = env.run(&["audit", "--format", "csv"]);
    out.ok();
    assert_eq!(out.stdout, "seq,at,actor,action,key_id,details,hash\n");
}

#[test]
fn a_deleted_keys_id_still_finds_its_events() {
    let env = TestEnv::initialized();
    let k = env.create("short-lived", &[]);
    env.create("other", &[]);
    env.run(&["delete", "--yes", "short-lived"]).ok();
    let ev = env.audit_json(&[k.id()]);
    let actions: Vec<&str> = ev.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deleted", "revoked", "created"]);
    assert!(ev.iter().all(|e| e["key_id"] == k.id()));
    // Its name or prefix no longer resolves: only the id is kept.
    for gone in ["short-lived", k.prefix()] {
        let out = env.run(&["audit", gone]);
        assert!(out.fails(3).contains(gone), "{out}");
    }
}

#[test]
fn bad_filters_are_refused() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let before = env.snapshot();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["audit", "--action", "bogus"],
            2,
            "created, edited, disabled, enabled, revoked, rotated, deleted, config",
        ),
        (&["audit", "--limit", "0"], 2, "--limit"),
        (&["audit", "--limit", "ten"], 2, "--limit"),
        (&["audit", "--since", "never"], 2, "--since"),
        (&["audit", "--since", "yesterday"], 2, "--since"),
        (&["audit", "nosuch"], 3, "nosuch"),
    ];
    for (args, code, says) in cases {
        let out = env.run(args);
        let line = out.fails(*code);
        assert!(
            line.contains(says),
            "{args:?} does not say {says:?}: {line}"
        );
    }
    assert_eq!(env.snapshot(), before);
    let missing = TestEnv::new();
    for args in [&["audit"][..], &["audit", "verify"]] {
        let out = missing.run(args);
        assert_eq!(out.fails(1), missing.no_store_error());
    }
}

#[test]
fn secrets_never_enter_the_trail() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let out = env.run(&["rotate", "--yes", "a"]);
    out.ok();
    let rotated = out.stdout.trim_end().to_string();
    let out = env.run_with_stdin(&["create", "--batch", "-"], b"{\"name\": \"b\"}\n");
    out.ok();
    let batch: Value = serde_json::from_str(out.stdout.trim_end()).unwrap();
    let trail = env.run(&["audit", "--json"]);
    trail.ok();
    for secret in [a.secret.as_str(), &rotated, batch["key"].as_str().unwrap()] {
        assert!(
            !trail.stdout.contains(&secret[8..]),
            "{secret} in the trail"
        );
    }
    assert!(!has_secret_shape(&trail.stdout), "{trail}");
    let details: String = rows(&mut Raw::of(&env))
        .iter()
        .map(|r| r.details.clone())
        .collect();
    assert!(!has_secret_shape(&details));
}

// ---- audit verify ----

#[test]
fn verify_prints_the_count_and_the_head_of_an_intact_chain() {
    let env = TestEnv::initialized();
    let out = env.run(&["audit", "verify"]);
    out.ok();
    assert_eq!(
        out.stdout,
        format!("audit trail intact: 0 events, head {ZERO_HEAD}\n")
    );
    assert_eq!(out.stderr, "");

    six_events(&env);
    let mut db = Raw::of(&env);
    check_encoding(&mut db);
    let out = env.run(&["audit", "verify"]);
    out.ok();
    let (count, head) = parse_verify_line(&out.stdout);
    assert_eq!(count, 6);
    assert_eq!(head, hex(&rows(&mut db)[5].hash));

    let out = env.run(&["audit", "verify", "--json"]);
    out.ok();
    assert_eq!(
        out.json(),
        json!({"intact": true, "events": 6, "head": head, "broken_at": null, "problem": null})
    );
}

#[test]
fn verify_changes_nothing() {
    let env = TestEnv::initialized();
    six_events(&env);
    let before = env.snapshot();
    env.run(&["audit", "verify"]).ok();
    env.tamper("UPDATE audit_events SET actor = 'x' WHERE seq = 2");
    let tampered = env.snapshot();
    assert_ne!(tampered, before);
    broken_at(&env, 2);
    assert_eq!(
        env.snapshot(),
        tampered,
        "verify repaired or changed the store"
    );
}

#[test]
fn editing_any_field_of_a_middle_event_is_detected() {
    let env = TestEnv::initialized();
    let [a, _, _] = six_events(&env);
    let (_, head) = env.audit_head();
    // Each column set to another value, as an SQL literal.
    let edits: &[(&str, String)] = &[
        ("at", (NOW_MS + 1).to_string()),
        ("actor", "'mallory'".into()),
        ("action", "'enabled'".into()),
        ("key_id", format!("'{}'", a.id())),
        ("key_id", "NULL".into()),
        ("details", "'{\"name\":\"c\"}'".into()),
        ("details", "''".into()),
    ];
    let mut db = Raw::of(&env);
    let original = rows(&mut db)[2].clone();
    for (column, value) in edits {
        env.tamper(&format!(
            "UPDATE audit_events SET {column} = {value} WHERE seq = 3"
        ));
        let line = broken_at(&env, 3);
        assert_eq!(
            line,
            "error: audit trail broken at event 3: its contents do not match its hash (the event was edited)",
            "{column}"
        );
        // Put it back: the chain is whole again, with the same head.
        env.tamper("DELETE FROM audit_events WHERE seq = 3");
        insert(&mut db, &original);
        assert_eq!(
            env.audit_head(),
            (6, head.clone()),
            "restored after {column}"
        );
    }
    // The stored hashes themselves.
    for column in ["hash", "prev_hash"] {
        db.set_bytes(column, 3, &[0u8; 32]);
        broken_at(&env, 3);
        env.tamper("DELETE FROM audit_events WHERE seq = 3");
        insert(&mut db, &original);
    }
    assert_eq!(env.audit_head(), (6, head));
}

#[test]
fn deleting_a_middle_event_is_detected() {
    let env = TestEnv::initialized();
    six_events(&env);
    env.tamper("DELETE FROM audit_events WHERE seq = 3");
    assert_eq!(
        broken_at(&env, 4),
        "error: audit trail broken at event 4: expected event 3 next but found event 4 (events were deleted or inserted)"
    );
    // Closing the gap does not hide it: event 3 (formerly 4) no longer links.
    renumber_from(&env, 4, -1);
    assert_eq!(env.count_rows("audit_events"), 5);
    assert_eq!(
        broken_at(&env, 3),
        "error: audit trail broken at event 3: its link to the previous event does not match (an earlier event was changed, deleted or inserted)"
    );
}

#[test]
fn deleting_the_first_event_is_detected() {
    let env = TestEnv::initialized();
    six_events(&env);
    env.tamper("DELETE FROM audit_events WHERE seq = 1");
    broken_at(&env, 2);
}

#[test]
fn inserting_a_forged_event_is_detected() {
    let env = TestEnv::initialized();
    let [a, _, _] = six_events(&env);
    let mut db = Raw::of(&env);
    check_encoding(&mut db);
    let original = rows(&mut db);
    let forged = |seq: i64, prev: &[u8]| -> Row {
        let mut r = Row {
            seq,
            at: NOW_MS,
            actor: ACTOR.into(),
            action: "enabled".into(),
            key_id: Some(a.id().into()),
            details: "{\"name\":\"a\"}".into(),
            prev_hash: prev.to_vec(),
            hash: Vec::new(),
        };
        r.hash = chain_hash(prev, &r);
        r
    };

    // In the middle, renumbering the rest, with a hash of its own that is right:
    // the next event no longer links to it.
    renumber_from(&env, 3, 1);
    insert(&mut db, &forged(3, &original[1].hash));
    assert_eq!(rows(&mut db).len(), 7);
    let line = broken_at(&env, 4);
    assert!(line.contains("link to the previous event"), "{line}");

    // The same with a made-up hash: the forged event itself is named.
    db.set_bytes("hash", 3, &[0x5a; 32]);
    broken_at(&env, 3);

    // Without renumbering: a second event 3 cannot be stored, so a gap-free forgery
    // must renumber (above) or append (below).
    env.tamper("DELETE FROM audit_events WHERE seq = 3");
    renumber_from(&env, 4, -1);
    let (count, head) = env.audit_head();
    assert_eq!((count, hex(&original[5].hash)), (6, head.clone()));

    // Appended after the head with a wrong hash.
    let mut tail = forged(7, &original[5].hash);
    tail.hash = vec![0xab; 32];
    insert(&mut db, &tail);
    assert_eq!(
        broken_at(&env, 7),
        "error: audit trail broken at event 7: its contents do not match its hash (the event was edited)"
    );
    // Appended with a wrong link.
    env.tamper("DELETE FROM audit_events WHERE seq = 7");
    insert(&mut db, &forged(7, &[7u8; 32]));
    broken_at(&env, 7);
    // Appended with a gap.
    env.tamper("DELETE FROM audit_events WHERE seq = 7");
    insert(&mut db, &forged(9, &original[5].hash));
    broken_at(&env, 9);
}

#[test]
fn a_cut_tail_is_detected_with_the_head_recorded_before() {
    let env = TestEnv::initialized();
    six_events(&env);
    let (_, recorded) = env.audit_head();
    env.tamper("DELETE FROM audit_events WHERE seq >= 5");
    // What is left is a whole chain of its own...
    let (count, shorter) = env.audit_head();
    assert_eq!(count, 4);
    // ...but not the one whose head was recorded.
    let out = env.run(&["audit", "verify", "--expect-head", &recorded]);
    assert_eq!(
        out.fails(8),
        format!(
            "error: audit trail does not contain the expected head {recorded}: its newest events were cut off or it was rewritten (head now {shorter}, 4 events)"
        )
    );
    // In json: the verdict on stdout, the error on stderr.
    let out = env.run(&["audit", "verify", "--json", "--expect-head", &recorded]);
    assert_eq!(out.code, Some(8), "{out}");
    out.one_error_line();
    let v = out.json();
    assert_eq!(v["intact"], false);
    assert_eq!(v["events"], 4);
    assert_eq!(v["head"], shorter);
    assert_eq!(v["broken_at"], Value::Null);
}

#[test]
fn a_rewritten_chain_is_caught_by_the_expected_head() {
    let env = TestEnv::initialized();
    six_events(&env);
    let mut db = Raw::of(&env);
    check_encoding(&mut db);
    let (_, recorded) = env.audit_head();
    // Edit event 2 and recompute every hash after it: self-consistent again.
    let mut all = rows(&mut db);
    all[1].actor = "mallory".into();
    let mut prev = all[0].hash.clone();
    for r in all.iter_mut().skip(1) {
        r.prev_hash = prev.clone();
        r.hash = chain_hash(&prev, r);
        prev = r.hash.clone();
    }
    env.tamper("DELETE FROM audit_events WHERE seq >= 2");
    for r in &all[1..] {
        insert(&mut db, r);
    }
    assert_eq!(env.audit_head().0, 6);
    let out = env.run(&["audit", "verify", "--expect-head", &recorded]);
    assert!(out.fails(8).contains(&recorded), "{out}");
}

#[test]
fn an_older_head_of_a_grown_chain_is_still_intact() {
    let env = TestEnv::initialized();
    env.create("a", &[]);
    let (_, first) = env.audit_head();
    env.create("b", &[]);
    env.run(&["config", "set", "max-keys", "5"]).ok();
    let (count, now_head) = env.audit_head();
    assert_eq!(count, 3);
    for expected in [
        first.clone(),
        first.to_uppercase(),
        format!(" {first} "),
        now_head.clone(),
        ZERO_HEAD.to_string(),
    ] {
        let out = env.run(&["audit", "verify", "--expect-head", &expected]);
        out.ok();
        assert_eq!(
            out.stdout,
            format!("audit trail intact: 3 events, head {now_head}\n"),
            "--expect-head {expected:?}"
        );
    }
}

#[test]
fn an_unknown_expected_head_is_exit_8() {
    let env = TestEnv::initialized();
    six_events(&env);
    let (_, head) = env.audit_head();
    let other = "ab".repeat(32);
    let out = env.run(&["audit", "verify", "--expect-head", &other]);
    let line = out.fails(8);
    assert!(line.contains(&other) && line.contains(&head), "{line}");
}

#[test]
fn a_malformed_expected_head_is_a_usage_error() {
    let env = TestEnv::initialized();
    six_events(&env);
    let before = env.snapshot();
    for bad in [
        "",
        "abc",
        &"a".repeat(63),
        &"a".repeat(65),
        &"g".repeat(64),
        &format!("0x{}", "a".repeat(62)),
    ] {
        let out = env.run(&["audit", "verify", "--expect-head", bad]);
        let line = out.fails(2);
        assert!(line.contains("--expect-head"), "{bad:?}: {line}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_broken_chain_in_json_names_the_event() {
    let env = TestEnv::initialized();
    six_events(&env);
    env.tamper("UPDATE audit_events SET details = '{}' WHERE seq = 4");
    let out = env.run(&["audit", "verify", "--json"]);
    assert_eq!(out.code, Some(8), "{out}");
    let line = out.one_error_line();
    assert!(line.starts_with("error: audit trail broken at event 4: "));
    let v = out.json();
    assert_eq!(v["intact"], false);
    assert_eq!(v["broken_at"], 4);
    assert_eq!(v["events"], 3, "events verified before the break");
    assert!(v["problem"].as_str().unwrap().contains("event 4"));
}

#[test]
fn a_closed_stdout_ends_audit_quietly() {
    let env = TestEnv::initialized();
    six_events(&env);
    for args in [
        &["audit"][..],
        &["audit", "--json"],
        &["audit", "--format", "csv"],
        &["audit", "verify"],
    ] {
        let out = env
            .keyctl(args)
            .with(|c| {
                c.stdout(std::process::Stdio::from(closed_pipe()));
            })
            .run();
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stderr, "", "{out}");
    }
}

/// Issue 10: an admin command run with a clock earlier than the newest event wrote an
/// event dated before its predecessor, and `audit --since` then hid it. Each event is
/// dated no earlier than the one before it; a later clock still dates events later.
#[test]
fn audit_times_never_go_backwards() {
    let env = TestEnv::initialized();
    env.create("a", &[]);
    let earlier = now_plus(-2 * HOUR);
    // A config change, one event; a batch, several events in one transaction.
    env.run_at(&earlier, &["config", "set", "max-keys", "50"])
        .ok();
    env.run_at_with_stdin(
        &earlier,
        &["create", "--batch", "-"],
        b"{\"name\":\"b\"}\n{\"name\":\"c\"}\n",
    )
    .ok();
    env.run_at(&now_plus(HOUR), &["disable", "a"]).ok();

    let events = env.audit_json(&[]);
    let times: Vec<(i64, &str)> = events
        .iter()
        .rev()
        .map(|e| (e["seq"].as_i64().unwrap(), e["at"].as_str().unwrap()))
        .collect();
    assert_eq!(
        times,
        [
            (1, NOW),
            (2, NOW),
            (3, NOW),
            (4, NOW),
            (5, now_plus(HOUR).as_str()),
        ],
        "events in seq order, each dated no earlier than its predecessor"
    );
    let since: Vec<i64> = env
        .audit_json(&["--since", NOW])
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        since,
        [5, 4, 3, 2, 1],
        "--since the first event shows them all"
    );
    assert_eq!(env.audit_head().0, 5, "the chain is intact");
}
