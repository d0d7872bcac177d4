//! `keyctl copy --to` and `keyctl migrate` (SPEC §6) on the suite's store, and the
//! password rule for URLs given as arguments.

use std::path::Path;

use crate::support::*;

/// `keyctl --db PATH ARGS`.
fn on(env: &TestEnv, db: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    env.run(&all)
}

/// A store with keys in several states, requests and an audit chain.
fn store_with_history(env: &TestEnv) -> String {
    let live = env.create("live", &["--credits", "10", "--meta", "tenant=acme"]);
    env.create("old", &[]);
    env.run(&["rotate", "--yes", "old"]).ok();
    env.run_with_stdin(&["verify", "--ip", "10.0.0.1"], live.secret.as_bytes())
        .ok();
    env.run_with_stdin(&["verify"], b"sk_live_notakey\n");
    live.secret
}

#[test]
fn copy_into_a_new_file_keeps_every_key_request_and_the_audit_head() {
    let env = TestEnv::initialized();
    let secret = store_with_history(&env);
    let (events, head) = env.audit_head();
    let target = env.root().join("moved.db");

    let out = env.run(&["copy", "--to", target.to_str().unwrap()]);
    out.ok();
    // stdout is the head, for scripts; stderr says what happened.
    assert_eq!(out.stdout, format!("{head}\n"));
    assert!(out.stderr.contains("moved.db"), "{out}");
    assert!(
        out.stderr.contains(&format!("{events} audit events")),
        "{out}"
    );

    // The copy is a store of its own with the same content, head and behaviour.
    let verdict = on(&env, &target, &["audit", "verify"]);
    verdict.ok();
    assert_eq!(parse_verify_line(&verdict.stdout), (events, head.clone()));
    for args in [
        &["list", "--json", "--all"][..],
        &["logs", "--json"],
        &["usage", "--json"],
    ] {
        let here = env.run(args);
        let there = on(&env, &target, args);
        assert_eq!(here.stdout, there.stdout, "{args:?} differs after copy");
    }
    // No audit event was added to either store.
    assert_eq!(env.audit_head(), (events, head));
    // The copied key verifies there, against its copied credits.
    let there = env
        .keyctl(&["--db", target.to_str().unwrap(), "verify", "--json"])
        .stdin(secret.as_bytes())
        .run();
    there.ok();
    assert_eq!(there.json()["credits_remaining"], 8, "{there}");
}

#[test]
fn copy_json_names_the_target_events_and_head() {
    let env = TestEnv::initialized();
    store_with_history(&env);
    let (events, head) = env.audit_head();
    let target = env.root().join("moved.db");
    let out = env.run(&["copy", "--json", "--to", target.to_str().unwrap()]);
    out.ok();
    let v = out.json();
    assert_eq!(v["to"], target.to_str().unwrap());
    assert_eq!(v["audit_events"], events);
    assert_eq!(v["head"], head);
}

#[test]
fn copy_writes_only_into_a_new_store() {
    let env = TestEnv::initialized();
    store_with_history(&env);
    // An existing store, even an empty one, is refused and left as it was.
    let empty = env.root().join("empty.db");
    on(&env, &empty, &["init"]).ok();
    let before = env.snapshot();
    let line = env
        .run(&["copy", "--to", empty.to_str().unwrap()])
        .fails(4)
        .to_string();
    assert!(
        line.contains("empty.db already holds a keyctl store"),
        "{line}"
    );
    assert!(line.contains("new store"), "{line}");
    assert_eq!(env.snapshot(), before);
    // Its own store is not a new store either.
    let own = env.location();
    env.run(&["copy", "--to", own.to_str().unwrap()]).fails(4);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_password_inside_a_url_argument_is_refused_and_never_echoed() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    let password = "Hunter2-secret";
    let url = format!("postgres://keyctl:{password}@db.example:5432/keys");
    for args in [
        vec!["--db", url.as_str(), "list"],
        vec!["copy", "--to", url.as_str()],
    ] {
        let out = env.run(&args);
        let line = out.fails(2);
        assert!(!line.contains(password), "the password is echoed: {line}");
        assert!(line.contains("PGPASSWORD"), "{line}");
        assert!(line.contains("visible to every user"), "{line}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn migrate_says_there_is_nothing_to_do_on_a_current_store() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    let out = env.run(&["migrate"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("nothing to migrate"), "{out}");
    assert_eq!(env.snapshot(), before);
    // Twice is the same.
    env.run(&["migrate"]).ok();
}

#[test]
fn migrate_on_a_missing_store_fails_and_creates_nothing() {
    let env = TestEnv::new();
    let out = env.run(&["migrate"]);
    let line = out.fails(1);
    assert!(line.contains("keyctl init"), "{line}");
    assert!(!env.store_exists(), "migrate created a store");
}

#[test]
fn copy_is_one_snapshot_while_writers_run() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::atomic::{AtomicBool, Ordering};

    let env = TestEnv::initialized();
    let svc = env.create("svc", &[]);
    let target = env.root().join("moved.db");
    let stop = AtomicBool::new(false);

    // A service verifying without pause and an admin creating keys, while copy runs.
    let mut stream = env
        .command()
        .args(["verify", "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start verify --stream");
    let mut input = stream.stdin.take().unwrap();
    let mut answers = BufReader::new(stream.stdout.take().unwrap());
    let copied = std::thread::scope(|s| {
        let verifier = s.spawn(|| {
            let mut answered = 0u64;
            let mut line = String::new();
            while !stop.load(Ordering::SeqCst) {
                writeln!(input, r#"{{"key":"{}","ip":"10.0.0.1"}}"#, svc.secret).unwrap();
                input.flush().unwrap();
                line.clear();
                answers.read_line(&mut line).unwrap();
                assert!(line.contains(r#""code":"valid""#), "{line}");
                answered += 1;
            }
            answered
        });
        let admin = s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                env.run(&["create", "--name", &format!("during-{n}"), "--quiet"])
                    .ok();
                n += 1;
            }
            n
        });
        // Copy once both writers have written something, then stop them.
        wait_for("writers under way", || env.logs_json(&[]).len() >= 20);
        let out = env.run(&["copy", "--to", target.to_str().unwrap()]);
        stop.store(true, Ordering::SeqCst);
        let (answered, created) = (verifier.join().unwrap(), admin.join().unwrap());
        assert!(
            answered > 20 && created > 0,
            "{answered} verifies, {created} creates"
        );
        out
    });
    drop(input);
    stream.wait().unwrap();
    copied.ok();

    // The copy is one moment of the store: its chain is intact and ends at the head
    // copy printed, and the key's counters match its log rows exactly.
    let verdict = on(&env, &target, &["audit", "verify"]);
    verdict.ok();
    let (events, head) = parse_verify_line(&verdict.stdout);
    assert_eq!(copied.stdout, format!("{head}\n"));
    let keys = on(&env, &target, &["list", "--json"]).json();
    assert_eq!(
        keys.as_array().unwrap().len() as u64,
        events,
        "one created event per key in the copy"
    );
    let shown = on(&env, &target, &["show", "svc", "--json"]).json();
    let rows = on(
        &env,
        &target,
        &["logs", "svc", "--json", "--limit", "1000000"],
    )
    .json();
    let rows = rows.as_array().unwrap().len() as u64;
    assert!(rows >= 20, "{rows}");
    assert_eq!(shown["usage"]["last_24h"]["accepted"].as_u64(), Some(rows));
    // And the source went on after the snapshot.
    assert!(env.logs_json(&["--limit", "1000000"]).len() as u64 > rows);
}
