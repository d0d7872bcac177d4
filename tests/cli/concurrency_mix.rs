//! SPEC §4 under load: several keyctl processes at once on one store, mixing every kind
//! of write — create, edit, disable/enable, rotate and recorded verify. Every change
//! lands, no process fails or reports a locked/busy store, the audit chain verifies
//! with exactly one event per change (two per rotation), and the request log equals
//! the keys' counters. (`concurrency.rs` covers parallel creates, the key limit and
//! readers beside writers.)

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use serde_json::Value;

use crate::support::*;

/// Threads, each running its own keyctl processes one after another.
const THREADS: usize = 7;
/// Keys each thread takes through the whole lifecycle.
const ROUNDS: usize = 6;

/// One key's story as its thread told it.
struct Story {
    name: String,
    first_id: String,
    second_id: String,
    edited: String,
    last: String,
}

/// What one thread did and saw.
#[derive(Default)]
struct Log {
    stories: Vec<Story>,
    /// Successful admin commands by action name (each rotate counted once).
    admin: BTreeMap<&'static str, u64>,
    verifies: u64,
    /// Every process that did not do what it should, with its output.
    problems: Vec<String>,
}

impl Log {
    /// Checks one process: exit 0 and no locked/busy store on stderr. Returns it when
    /// it is fine.
    fn ran(&mut self, out: Outcome) -> Option<Outcome> {
        let lower = out.stderr.to_lowercase();
        if out.code != Some(0) || lower.contains("locked") || lower.contains("busy") {
            self.problems.push(out.to_string());
            return None;
        }
        if ["panicked", "RUST_BACKTRACE"]
            .iter()
            .any(|p| out.stderr.contains(p))
        {
            self.problems.push(out.to_string());
            return None;
        }
        Some(out)
    }

    fn admin(&mut self, action: &'static str, out: Outcome) -> Option<Outcome> {
        let out = self.ran(out)?;
        *self.admin.entry(action).or_default() += 1;
        Some(out)
    }

    fn verify(&mut self, env: &TestEnv, secret: &str) {
        let out = env.run_with_stdin(&["verify"], format!("{secret}\n").as_bytes());
        if let Some(out) = self.ran(out) {
            self.verifies += 1;
            if out.stdout != "OK\n" {
                self.problems.push(format!("verify did not say OK\n{out}"));
            }
        }
    }
}

/// One thread's work: each round takes a new key through create, verify, edit,
/// disable, enable, verify, rotate, verify of the new key and an edit of it. Every
/// process targets this thread's own keys, so no refusal is expected.
fn worker(env: &TestEnv, thread: usize) -> Log {
    let mut log = Log::default();
    for round in 0..ROUNDS {
        let name = format!("t{thread}-k{round}");
        let Some(out) = log.admin(
            "created",
            env.run(&["create", "--json", "--name", &name, "--description", "new"]),
        ) else {
            continue;
        };
        let v = out.json();
        let first_id = v["key_details"]["id"].as_str().unwrap().to_string();
        let first_secret = v["key"].as_str().unwrap().to_string();
        log.verify(env, &first_secret);
        let edited = format!("{name} edited by thread {thread}");
        log.admin(
            "edited",
            env.run(&["edit", &first_id, "--description", &edited]),
        );
        log.admin("disabled", env.run(&["disable", &first_id]));
        log.admin("enabled", env.run(&["enable", &first_id]));
        log.verify(env, &first_secret);
        let Some(out) = log.admin(
            "rotated",
            env.run(&["rotate", "--json", "--yes", &first_id]),
        ) else {
            continue;
        };
        let v = out.json();
        let second_id = v["key_details"]["id"].as_str().unwrap().to_string();
        let second_secret = v["key"].as_str().unwrap().to_string();
        log.verify(env, &second_secret);
        let last = format!("{name} final");
        log.admin(
            "edited",
            env.run(&["edit", &second_id, "--description", &last]),
        );
        log.stories.push(Story {
            name,
            first_id,
            second_id,
            edited,
            last,
        });
    }
    log
}

#[test]
fn mixed_writers_and_verifiers_at_once_lose_nothing() {
    let env = Arc::new(TestEnv::initialized());
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let env = Arc::clone(&env);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                worker(&env, t)
            })
        })
        .collect();
    let logs: Vec<Log> = handles
        .into_iter()
        .map(|h| h.join().expect("a worker thread panicked"))
        .collect();

    let problems: Vec<&String> = logs.iter().flat_map(|l| &l.problems).collect();
    assert!(
        problems.is_empty(),
        "{} process(es) failed or reported a locked store:\n\n{}",
        problems.len(),
        problems
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    let stories: Vec<&Story> = logs.iter().flat_map(|l| &l.stories).collect();
    assert_eq!(stories.len(), THREADS * ROUNDS, "every round completed");

    // Every key exists with every change that was made to it.
    let list = env.run(&["list", "--json", "--all"]);
    list.ok();
    let listed = match list.json() {
        Value::Array(items) => items,
        other => panic!("list --json printed {other}"),
    };
    let by_id: BTreeMap<&str, &Value> = listed
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k))
        .collect();
    assert_eq!(listed.len(), 2 * THREADS * ROUNDS, "no key lost or added");
    for s in &stories {
        let first = by_id
            .get(s.first_id.as_str())
            .unwrap_or_else(|| panic!("key {} ({}) is missing", s.first_id, s.name));
        let second = by_id
            .get(s.second_id.as_str())
            .unwrap_or_else(|| panic!("key {} ({}) is missing", s.second_id, s.name));
        assert_eq!(first["name"], s.name.as_str());
        assert_eq!(
            first["description"],
            s.edited.as_str(),
            "edit landed: {first}"
        );
        assert_eq!(first["status"], "disabled", "rotated away: {first}");
        assert_eq!(first["rotated_to"], s.second_id.as_str(), "{first}");
        assert_eq!(second["name"], s.name.as_str());
        assert_eq!(
            second["description"],
            s.last.as_str(),
            "edit landed: {second}"
        );
        assert_eq!(second["status"], "active", "{second}");
        assert_eq!(second["rotated_from"], s.first_id.as_str(), "{second}");
        assert_eq!(second["last_used_at"], NOW, "{second}");
    }

    // The audit trail: intact, one event per admin change (two per rotation).
    let mut admin: BTreeMap<&str, u64> = BTreeMap::new();
    for l in &logs {
        for (action, n) in &l.admin {
            *admin.entry(action).or_default() += n;
        }
    }
    let rotations = admin.get("rotated").copied().unwrap_or(0);
    let expected_events: u64 = admin.values().sum::<u64>() + rotations;
    let audit = env.run(&["audit", "verify"]);
    audit.ok();
    let (events, _) = parse_verify_line(&audit.stdout);
    assert_eq!(
        events, expected_events,
        "audit events = successful admin commands {admin:?} (rotate counts 2)"
    );
    let mut by_action: BTreeMap<String, u64> = BTreeMap::new();
    let trail = env.audit_json(&["--limit", &events.to_string()]);
    assert_eq!(trail.len() as u64, events, "audit --json shows every event");
    for e in &trail {
        *by_action.entry(action_of(e)).or_default() += 1;
    }
    let mut expected_actions: BTreeMap<String, u64> =
        admin.iter().map(|(a, n)| (a.to_string(), *n)).collect();
    // A rotation also records the new key's 'created'.
    *expected_actions.entry("created".into()).or_default() += rotations;
    assert_eq!(by_action, expected_actions, "audit events by action");
    for s in &stories {
        // The trail is newest first: reversed, in the order they happened.
        let actions = |id: &str| -> Vec<String> {
            let of_key = trail.iter().rev().filter(|e| e["key_id"] == id);
            of_key.map(action_of).collect()
        };
        assert_eq!(
            actions(&s.first_id),
            ["created", "edited", "disabled", "enabled", "rotated"],
            "events of {}",
            s.first_id
        );
        assert_eq!(
            actions(&s.second_id),
            ["created", "edited"],
            "events of {}",
            s.second_id
        );
    }

    // The request log: one row per verify, equal to the keys' counters.
    let verifies: u64 = logs.iter().map(|l| l.verifies).sum();
    let rows = env.count_rows("requests") as u64;
    let keys = keys_as_read();
    let events_total = env.query_i64(&format!("SELECT sum(events_total) FROM {keys} k"));
    let accepted = env.query_i64(&format!("SELECT sum(requests_total) FROM {keys} k"));
    assert_eq!(rows, verifies, "one log row per verify");
    assert_eq!(events_total as u64, verifies, "sum of keys.events_total");
    assert_eq!(accepted as u64, verifies, "every verify was accepted");
    for s in &stories {
        for (id, n) in [(&s.first_id, 2), (&s.second_id, 1)] {
            let logged = env.query_i64(&format!(
                "SELECT count(*) FROM requests WHERE key_id = '{id}'"
            ));
            let counted = env.query_i64(&format!(
                "SELECT events_total FROM {keys} k WHERE id = '{id}'"
            ));
            assert_eq!((logged, counted), (n, n), "requests of {id}");
        }
    }
    if sqlite_only_test("PRAGMA integrity_check of the store's file") {
        assert_eq!(env.integrity_check(), "ok");
    }
}

/// The `action` of one `audit --json` event.
fn action_of(event: &serde_json::Value) -> String {
    event["action"].as_str().unwrap_or("(not text)").to_string()
}
