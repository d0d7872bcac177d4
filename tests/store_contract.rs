//! The store contract: stories over the `Store`/`Txn` traits and the `app` use cases,
//! in process, that every backend must pass. Each story takes a `&Location`; each runs
//! twice, on a fresh SQLite store in a temporary folder (`_sqlite`) and on a fresh
//! database of the test PostgreSQL server (`_postgres`; `bash scripts/test.sh` starts
//! it). Only the stories marked SQLite-only (building an old schema by hand) stay with
//! SQLite; PostgreSQL's own cases (the database's clock, serialization failures) are
//! at the end.
//!
//! Concurrency stories use threads, each with its own handle from `store::open` (a
//! handle is one connection), and wait by joining, never by sleeping.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;

use chrono::{DateTime, Duration, Utc};
use keyctl::app::audit::append_audit;
use keyctl::app::keys::claim_name;
use keyctl::app::retry::with_retry;
use keyctl::app::verify::{verify_group, verify_one, Meta, Pending, Verdict};
use keyctl::core::audit::{chain_hash, AuditEvent, GENESIS};
use keyctl::core::key::{self, Mode};
use keyctl::core::limits::Quotas;
use keyctl::core::meta::KeyMeta;
use keyctl::core::model::{
    KeySettings, NewKey, RequestRow, RunningTotals, State, Status, UsageFigures,
};
use keyctl::core::policy::{Outcome, Request};
use keyctl::core::refill::{Interval, Mode as RefillMode, Refill};
use keyctl::core::time::{parse_datetime, to_millis};
use keyctl::store::{
    copy_rows, is_empty_target, open, AuditQuery, Clock, ErrorKind, Intent, KeyQuery, Location,
    OpenOptions, RequestQuery, SortBy, Starting, Store, StoredAuditEvent, Table, Txn, Value,
};
use tempfile::TempDir;

#[path = "common/pg.rs"]
mod pg;

// ---- the harness: a store, keys, verifications ----

/// Runs `story` on a fresh SQLite store in its own temporary folder.
fn on_sqlite(story: fn(&Location)) {
    let dir = TempDir::new().unwrap();
    story(&Location::Sqlite(dir.path().join("keys.db")));
}

/// Runs `story` on a fresh database of the test PostgreSQL server.
fn on_postgres(story: fn(&Location)) {
    story(&pg::fresh_database());
}

/// A handle on the store at `location`, creating it when missing.
fn handle(location: &Location) -> Box<dyn Store> {
    let how = OpenOptions {
        create: true,
        ..OpenOptions::default()
    };
    open(location, &how).unwrap().0
}

fn now() -> DateTime<Utc> {
    parse_datetime("2026-11-23T12:00:00Z").unwrap()
}

/// Key number `n`: a well-formed secret and the row to insert for it, named `name`.
fn numbered_key(n: u32, name: &str) -> (String, NewKey) {
    // The number leads, so each key's display prefix differs too.
    let body = format!("{n:04}{}", "x".repeat(key::RANDOM_LEN - 4));
    let secret = key::assemble("sk", Mode::Live, &body);
    let mut id_bytes = [0u8; key::ID_LEN];
    id_bytes[..4].copy_from_slice(&n.to_be_bytes());
    let new_key = NewKey {
        id: key::key_id(&id_bytes),
        hash: secret.hash(),
        key_prefix: Some(key::display_prefix("sk", Mode::Live, &body)),
        mode: Mode::Live,
        created_at: now(),
        settings: KeySettings {
            name: name.to_string(),
            owner: "ops".to_string(),
            ..KeySettings::default()
        },
        rotated_from: None,
    };
    (secret.expose().to_string(), new_key)
}

/// Inserts `new_key` in its own `Admin` transaction.
fn insert(store: &mut dyn Store, new_key: &NewKey) {
    let mut tx = store.begin(Intent::Admin).unwrap();
    tx.insert_key(new_key).unwrap();
    tx.commit().unwrap();
}

/// Verifies and records one request (cost 1) at `at`, tagged with `endpoint`.
fn verify_at(store: &mut dyn Store, secret: &str, at: DateTime<Utc>, endpoint: &str) -> Verdict {
    let req = Request {
        ip: Some("203.0.113.7".parse().unwrap()),
        cost: 1,
        ..Request::default()
    };
    let meta = Meta {
        ip_text: Some("203.0.113.7".to_string()),
        endpoint: Some(endpoint.to_string()),
        duration_ms: None,
    };
    verify_one(store, secret, &req, &meta, Clock::Fixed(at), true).unwrap()
}

/// Replaces `old_id` by `successor` (whose `rotated_from` is `old_id`) in `tx`: the old
/// key is disabled at once (`grace: None`) or keeps working until `grace`.
fn rotate_in(tx: &mut dyn Txn, old_id: &str, successor: &NewKey, grace: Option<DateTime<Utc>>) {
    let mut old = tx.key_by_id(old_id).unwrap().unwrap();
    old.rotated_to = Some(successor.id.clone());
    match grace {
        Some(until) => old.settings.expires_at = Some(until),
        None => old.state = State::Disabled,
    }
    tx.update_key(&old).unwrap();
    tx.insert_key(successor).unwrap();
}

/// Runs `work` on `threads` threads at once, each with its own store handle, released
/// together by a barrier; returns what each returned, in thread order.
fn run_concurrently<T: Send>(
    location: &Location,
    threads: usize,
    work: impl Fn(&mut dyn Store, usize) -> T + Sync,
) -> Vec<T> {
    let start = Barrier::new(threads);
    thread::scope(|scope| {
        let running: Vec<_> = (0..threads)
            .map(|t| {
                let (start, work) = (&start, &work);
                scope.spawn(move || {
                    let mut store = handle(location);
                    start.wait();
                    work(store.as_mut(), t)
                })
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `threads` threads at once each verify `each` requests (cost 1) at `now()`, thread
/// `t` presenting `secrets[t % secrets.len()]`; the outcomes of all of them.
fn verify_concurrently(
    location: &Location,
    threads: usize,
    each: usize,
    secrets: &[&str],
) -> Vec<Outcome> {
    run_concurrently(location, threads, |store, t| {
        let secret = secrets[t % secrets.len()];
        (0..each)
            .map(|i| verify_at(store, secret, now(), &format!("/{t}/{i}")).outcome)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Exactly `accepted` outcomes are valid and every other one is `otherwise`.
fn assert_accepts_exactly(outcomes: &[Outcome], accepted: u64, otherwise: &Outcome) {
    let valid = outcomes.iter().filter(|o| o.is_valid()).count();
    assert_eq!(valid as u64, accepted, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.is_valid() || o == otherwise),
        "{outcomes:?}"
    );
}

fn audit_event(action: &str, key_id: Option<&str>, details: &str) -> AuditEvent {
    AuditEvent {
        seq: 0,
        at_ms: to_millis(now()),
        actor: "contract".to_string(),
        action: action.to_string(),
        key_id: key_id.map(str::to_string),
        details: details.to_string(),
    }
}

/// Every audit event, oldest first.
fn audit_trail(store: &mut dyn Store) -> Vec<StoredAuditEvent> {
    let tx = store.begin(Intent::Read).unwrap();
    let mut events = Vec::new();
    tx.for_each_audit(&AuditQuery::default(), &mut |e| {
        events.push(e.clone());
        Ok(())
    })
    .unwrap();
    events
}

/// What `audit verify` checks: seq 1, 2, ... with no gap, each event linked to its
/// predecessor's hash and hashed as `core::audit` computes it.
fn assert_chain_intact(events: &[StoredAuditEvent]) {
    let mut prev = GENESIS;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.event.seq, i as i64 + 1, "gapless seq");
        assert_eq!(e.prev_hash, prev.to_vec(), "event {} links", e.event.seq);
        assert_eq!(
            e.hash,
            chain_hash(&prev, &e.event).to_vec(),
            "event {} hash",
            e.event.seq
        );
        prev.copy_from_slice(&e.hash);
    }
}

fn days(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

// ---- story 1: every operation once ----

fn every_operation(location: &Location) {
    let how = OpenOptions {
        create: true,
        ..OpenOptions::default()
    };
    let (mut store, created) = open(location, &how).unwrap();
    assert!(created, "the first open creates the store");
    let store = store.as_mut();

    // Settings: a stored value over the default, then reset to the default.
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        assert_eq!(tx.settings().unwrap().max_keys, None);
        tx.set_setting("max-keys", Some("5")).unwrap();
        assert!(tx
            .setting_pairs()
            .unwrap()
            .contains(&("max-keys".to_string(), "5".to_string())));
        assert_eq!(tx.settings().unwrap().max_keys, Some(5));
        tx.set_setting("log-retention", Some("30d")).unwrap();
        tx.set_setting("log-retention", None).unwrap();
        assert_eq!(tx.settings().unwrap().log_retention, None);
        tx.commit().unwrap();
    }

    // Keys: insert, find by id, name and prefix; the name holder and the limit count.
    let (secret, mut first) = numbered_key(1, "billing");
    first.settings.quotas = Quotas {
        daily: Some(10),
        ..Quotas::default()
    };
    first.settings.credit_limit = Some(100);
    let (_, second) = numbered_key(2, "search");
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        assert_eq!(tx.settings().unwrap().max_keys, Some(5), "committed");
        tx.insert_key(&first).unwrap();
        tx.insert_key(&second).unwrap();
        let got = tx.key_by_id(&first.id).unwrap().unwrap();
        assert_eq!(got.settings, first.settings);
        assert_eq!(got.key_prefix, first.key_prefix);
        assert_eq!(got.state, State::Active);
        assert_eq!(got.status(now()), Status::Active);
        assert_eq!(tx.key_by_id("key_nonexistent0").unwrap(), None);
        let by_name = tx.keys_by_name("search").unwrap();
        assert_eq!(by_name.len(), 1);
        assert_eq!(by_name[0].id, second.id);
        assert!(tx.keys_by_name("nobody").unwrap().is_empty());
        let by_prefix = tx
            .keys_by_prefix(first.key_prefix.as_deref().unwrap_or_default())
            .unwrap();
        assert_eq!(
            by_prefix.iter().map(|k| &k.id).collect::<Vec<_>>(),
            [&first.id]
        );
        assert_eq!(
            tx.name_holder("billing", now()).unwrap().as_deref(),
            Some(first.id.as_str())
        );
        assert_eq!(tx.name_holder("nobody", now()).unwrap(), None);
        assert_eq!(tx.count_limited(now()).unwrap(), 2);
        assert!(!tx.has_requests(&first.id).unwrap());
        tx.commit().unwrap();
    }

    // for_each_key: a disabled key shows in the counts and under its status.
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        let mut k = tx.key_by_id(&second.id).unwrap().unwrap();
        k.state = State::Disabled;
        k.settings.description = Some("paused".to_string());
        tx.update_key(&k).unwrap();
        tx.commit().unwrap();
        let tx = store.begin(Intent::Read).unwrap();
        let got = tx.key_by_id(&second.id).unwrap().unwrap();
        assert_eq!(got.state, State::Disabled);
        assert_eq!(got.settings.description.as_deref(), Some("paused"));
        let mut names = Vec::new();
        let counts = tx
            .for_each_key(&KeyQuery::default(), now(), &mut |k| {
                names.push(k.settings.name.clone());
                Ok(())
            })
            .unwrap();
        names.sort();
        assert_eq!(names, ["billing", "search"]);
        assert_eq!((counts.active, counts.disabled), (1, 1));
        let only_disabled = KeyQuery {
            statuses: vec![Status::Disabled],
            ..KeyQuery::default()
        };
        let mut ids = Vec::new();
        tx.for_each_key(&only_disabled, now(), &mut |k| {
            ids.push(k.id.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(ids, std::slice::from_ref(&second.id));
    }

    // The log cursor taken before any request sees every request recorded after it.
    let cursor = store.begin(Intent::Read).unwrap().log_cursor_now().unwrap();

    // Verify (load_for_verify + record_verdict): accepted twice, an unknown key once.
    let first_at = now() - Duration::hours(2);
    let v = verify_at(store, &secret, first_at, "/a");
    assert_eq!(v.outcome, Outcome::Valid);
    assert_eq!(v.credits_remaining, Some(99));
    assert_eq!(v.quota_remaining.and_then(|q| q.daily), Some(9));
    let v = verify_at(store, &secret, now(), "/b");
    assert_eq!(v.outcome, Outcome::Valid);
    assert_eq!(v.credits_remaining, Some(98));
    let (unknown, _) = numbered_key(99, "unknown");
    let v = verify_at(store, &unknown, now(), "/c");
    assert_eq!(v.outcome, Outcome::Invalid);
    assert!(v.key.is_none());

    {
        let tx = store.begin(Intent::Read).unwrap();
        let k = tx.key_by_id(&first.id).unwrap().unwrap();
        assert!(tx.has_requests(&first.id).unwrap());
        assert_eq!(k.credits_used, 2);
        assert_eq!(k.last_used_at, Some(now()));
        assert_eq!(k.last_used_ip.as_deref(), Some("203.0.113.7"));
        // Windows (since, now]: the last hour holds one request, the last day both.
        let starts = [now() - Duration::hours(1), now() - Duration::days(1)];
        let figures = tx.usage_windows(&k, &starts).unwrap();
        let one = UsageFigures {
            accepted: 1,
            rejected: 0,
            credits: 1,
        };
        let two = UsageFigures {
            accepted: 2,
            rejected: 0,
            credits: 2,
        };
        assert_eq!(figures, [one, two]);
        assert_eq!(tx.pool_windows(&k, &starts).unwrap(), [1, 2]);
        let today = days(now());
        assert_eq!(
            tx.usage_by_day(Some(&first.id), today - 1, today).unwrap(),
            [(today, two)]
        );
        let everyone = tx.usage_by_day(None, today, today).unwrap();
        assert_eq!(everyone.len(), 1);
        assert_eq!(everyone[0].1.accepted, 2);
        assert_eq!(
            everyone[0].1.rejected, 1,
            "the unknown key's request counts"
        );

        // The cursor: the three rows once, oldest first, then nothing more.
        let mut rows: Vec<RequestRow> = Vec::new();
        let after = tx
            .requests_after(&cursor, &RequestQuery::default(), &mut |r| {
                rows.push(r.clone());
                Ok(())
            })
            .unwrap();
        let codes: Vec<_> = rows
            .iter()
            .map(|r| (r.endpoint.as_deref().unwrap_or(""), r.code.as_str()))
            .collect();
        assert_eq!(codes, [("/a", "valid"), ("/b", "valid"), ("/c", "invalid")]);
        assert_eq!(rows[0].key_id.as_deref(), Some(first.id.as_str()));
        assert_eq!(rows[2].key_id, None);
        let mut again = 0;
        let same = tx
            .requests_after(&after, &RequestQuery::default(), &mut |_| {
                again += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(same, after);
        assert_eq!(tx.log_cursor_now().unwrap(), after);
        // for_each_request: newest first, the limit applies.
        let mut newest = Vec::new();
        let query = RequestQuery {
            limit: Some(2),
            ..RequestQuery::default()
        };
        tx.for_each_request(&query, &mut |r| {
            newest.push(r.endpoint.clone().unwrap_or_default());
            Ok(())
        })
        .unwrap();
        assert_eq!(newest, ["/c", "/b"]);
    }

    // Rotation: the new key is linked both ways and shares the old one's credits.
    let (new_secret, mut successor) = numbered_key(3, "billing");
    successor.settings = first.settings.clone();
    successor.rotated_from = Some(first.id.clone());
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        claim_name(tx.as_ref(), "billing", Some(&first.id), now(), "rename it").unwrap();
        rotate_in(tx.as_mut(), &first.id, &successor, None);
        let rotated_to = format!(r#"{{"rotated_to":"{}"}}"#, successor.id);
        let rotated_from = format!(r#"{{"rotated_from":"{}"}}"#, first.id);
        for (action, id, details) in [
            ("rotated", &first.id, rotated_to),
            ("created", &successor.id, rotated_from),
        ] {
            append_audit(tx.as_mut(), audit_event(action, Some(id), &details)).unwrap();
        }
        assert_eq!(
            tx.name_holder("billing", now()).unwrap().as_deref(),
            Some(successor.id.as_str()),
            "the successor holds the name"
        );
        tx.commit().unwrap();
    }
    let v = verify_at(store, &new_secret, now(), "/d");
    assert_eq!(v.outcome, Outcome::Valid);
    assert_eq!(
        v.credits_remaining,
        Some(97),
        "the pool's credits carry over"
    );
    assert_eq!(
        v.quota_remaining.and_then(|q| q.daily),
        Some(7),
        "so do quotas"
    );
    assert_eq!(
        verify_at(store, &secret, now(), "/e").outcome,
        Outcome::Inactive
    );

    // Delete: the key is gone, its audit events keep its id and its rotation links.
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        tx.delete_key(&second.id).unwrap();
        append_audit(tx.as_mut(), audit_event("deleted", Some(&second.id), "{}")).unwrap();
        tx.delete_key(&first.id).unwrap();
        tx.commit().unwrap();
        let tx = store.begin(Intent::Read).unwrap();
        assert_eq!(tx.key_by_id(&second.id).unwrap(), None);
        assert!(tx.keys_by_name("search").unwrap().is_empty());
        assert_eq!(tx.count_limited(now()).unwrap(), 1);
        assert_eq!(
            tx.rotation_chain(&successor.id).unwrap(),
            [first.id.clone(), successor.id.clone()],
            "the chain goes on behind a deleted key"
        );
    }

    // The IP's state in the verify pair: its third invalid key within the window (the
    // first was "/c") blocks it, and then even a good key is refused.
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        tx.set_setting("failed-auth-limit", Some("3")).unwrap();
        tx.commit().unwrap();
    }
    for endpoint in ["/f", "/g"] {
        let v = verify_at(store, &unknown, now(), endpoint);
        assert_eq!(v.outcome, Outcome::Invalid);
    }
    let v = verify_at(store, &new_secret, now(), "/h");
    assert_eq!(v.outcome, Outcome::IpBlocked);
    assert!(v.key.is_none());

    // Pruning the log removes its rows; the key's counters keep its history.
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        assert_eq!(tx.prune_requests(now() + Duration::seconds(1)).unwrap(), 8);
        tx.commit().unwrap();
        let tx = store.begin(Intent::Read).unwrap();
        let mut left = 0;
        tx.for_each_request(&RequestQuery::default(), &mut |_| {
            left += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(left, 0);
        assert!(tx.has_requests(&successor.id).unwrap());
        let k = tx.key_by_id(&successor.id).unwrap().unwrap();
        assert_eq!((k.events_total, k.credits_used), (1, 3));
    }

    // The audit trail: what was appended, in order, chained.
    let events = audit_trail(store);
    let actions: Vec<_> = events.iter().map(|e| e.event.action.as_str()).collect();
    assert_eq!(actions, ["rotated", "created", "deleted"]);
    assert_eq!(events[2].event.key_id.as_deref(), Some(second.id.as_str()));
    assert_chain_intact(&events);
    let tx = store.begin(Intent::Read).unwrap();
    let mut of_successor = Vec::new();
    let query = AuditQuery {
        key_id: Some(successor.id.clone()),
        ..AuditQuery::default()
    };
    tx.for_each_audit(&query, &mut |e| {
        of_successor.push(e.event.action.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(of_successor, ["created"]);
}

#[test]
fn every_operation_once_sqlite() {
    on_sqlite(every_operation);
}

#[test]
fn every_operation_once_postgres() {
    on_postgres(every_operation);
}

// ---- key metadata: written by every key write, read by every key read ----

/// Metadata goes in with `insert_key` and `insert_keys`, comes back from every lookup
/// (verification's `key_by_hash` included), is replaced by `update_key`, and a key
/// without it stores NULL.
fn metadata_is_kept_by_every_key_write_and_read(location: &Location) {
    let mut store = handle(location);
    let meta_of = |tx: &dyn Txn, id: &str| tx.key_by_id(id).unwrap().unwrap().settings.meta;
    let tagged = KeyMeta::from_stored(Some(r#"{"plan":"pro","tenant":"acme"}"#.to_string()));
    let (secret, mut one) = numbered_key(1, "one");
    one.settings.meta = tagged.clone();
    let (_, mut two) = numbered_key(2, "two");
    two.settings.meta = KeyMeta::from_stored(Some(r#"{"tenant":"beta"}"#.to_string()));
    let (_, three) = numbered_key(3, "three");
    {
        let mut tx = store.begin(Intent::Bulk).unwrap();
        tx.insert_key(&one).unwrap();
        tx.insert_keys(&[&two, &three]).unwrap();
        tx.commit().unwrap();
    }
    {
        let tx = store.begin(Intent::Read).unwrap();
        let by_hash = tx.key_by_hash(&key::hash_secret(&secret)).unwrap().unwrap();
        assert_eq!(by_hash.settings.meta, tagged);
        assert_eq!(by_hash.settings.meta.entries()["tenant"], "acme");
        // `scan`'s lookup of many hashes at once (its hash after the key's columns).
        let hashes = [key::hash_secret(&secret), two.hash];
        let mut found = tx.keys_by_hashes(&hashes).unwrap();
        found.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        assert_eq!(found.len(), 2);
        for (hash, k) in &found {
            let expected = if k.id == one.id {
                (&hashes[0], &tagged)
            } else {
                (&hashes[1], &two.settings.meta)
            };
            assert_eq!((hash, &k.settings.meta), expected);
        }
        assert_eq!(
            meta_of(tx.as_ref(), &two.id).stored(),
            Some(r#"{"tenant":"beta"}"#)
        );
        assert!(meta_of(tx.as_ref(), &three.id).is_empty());
        assert_eq!(tx.keys_by_name("one").unwrap()[0].settings.meta, tagged);
    }
    // What verification hands back is the key as loaded.
    let v = verify_at(store.as_mut(), &secret, now(), "/");
    assert_eq!(v.outcome, Outcome::Valid);
    assert_eq!(v.key.unwrap().settings.meta, tagged);
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        for (id, meta) in [(&one.id, KeyMeta::default()), (&three.id, tagged.clone())] {
            let mut k = tx.key_by_id(id).unwrap().unwrap();
            k.settings.meta = meta;
            tx.update_key(&k).unwrap();
        }
        tx.commit().unwrap();
    }
    let tx = store.begin(Intent::Read).unwrap();
    assert!(meta_of(tx.as_ref(), &one.id).is_empty());
    assert_eq!(meta_of(tx.as_ref(), &three.id), tagged);
    // As stored (what copy and backup move): NULL for none.
    let at = Table::Keys
        .columns()
        .iter()
        .position(|(name, _)| *name == "meta")
        .unwrap();
    let mut metas = Vec::new();
    tx.dump(&mut |table, row| {
        if table == Table::Keys {
            metas.push(row[at].clone());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        metas,
        [
            Value::Null,
            Value::Text(r#"{"tenant":"beta"}"#.to_string()),
            Value::Text(r#"{"plan":"pro","tenant":"acme"}"#.to_string()),
        ]
    );
}

#[test]
fn metadata_is_kept_by_every_key_write_and_read_sqlite() {
    on_sqlite(metadata_is_kept_by_every_key_write_and_read);
}

#[test]
fn metadata_is_kept_by_every_key_write_and_read_postgres() {
    on_postgres(metadata_is_kept_by_every_key_write_and_read);
}

// ---- story 2: a daily quota is exact under concurrent verifies ----

fn quota_is_exact_under_concurrency(location: &Location) {
    const THREADS: usize = 6;
    const EACH: usize = 5;
    const QUOTA: u64 = 12;
    let (secret, mut metered) = numbered_key(1, "metered");
    metered.settings.quotas.daily = Some(QUOTA);
    insert(handle(location).as_mut(), &metered);

    let outcomes = verify_concurrently(location, THREADS, EACH, &[&secret]);
    assert_accepts_exactly(&outcomes, QUOTA, &Outcome::QuotaExceeded("daily"));
    let mut store = handle(location);
    let tx = store.begin(Intent::Read).unwrap();
    let k = tx.key_by_id(&metered.id).unwrap().unwrap();
    let day = [now() - Duration::days(1)];
    assert_eq!(tx.pool_windows(&k, &day).unwrap(), [QUOTA]);
    assert_eq!(
        k.events_total,
        (THREADS * EACH) as u64,
        "every attempt is logged"
    );
}

#[test]
fn a_daily_quota_accepts_exactly_its_count_under_concurrent_verifies_sqlite() {
    on_sqlite(quota_is_exact_under_concurrency);
}

#[test]
fn a_daily_quota_accepts_exactly_its_count_under_concurrent_verifies_postgres() {
    on_postgres(quota_is_exact_under_concurrency);
}

// ---- story 3: a rotated pair's shared credits are spent exactly ----

fn shared_credits_are_never_overspent(location: &Location) {
    const THREADS: usize = 6;
    const EACH: usize = 4;
    const CREDITS: u64 = 10;
    let (old_secret, mut old) = numbered_key(1, "pair");
    old.settings.credit_limit = Some(CREDITS);
    let (new_secret, mut new) = numbered_key(2, "pair");
    new.settings = old.settings.clone();
    new.rotated_from = Some(old.id.clone());
    {
        let mut store = handle(location);
        insert(store.as_mut(), &old);
        let mut tx = store.begin(Intent::Admin).unwrap();
        rotate_in(tx.as_mut(), &old.id, &new, Some(now() + Duration::hours(1)));
        tx.commit().unwrap();
    }

    // Half the threads present the old key (in its grace period), half the new one.
    let outcomes = verify_concurrently(location, THREADS, EACH, &[&old_secret, &new_secret]);
    assert_accepts_exactly(&outcomes, CREDITS, &Outcome::CreditsExhausted);
    let mut store = handle(location);
    let tx = store.begin(Intent::Read).unwrap();
    let old_now = tx.key_by_id(&old.id).unwrap().unwrap();
    let new_now = tx.key_by_id(&new.id).unwrap().unwrap();
    assert_eq!(old_now.credits_used, CREDITS, "never overspent");
    assert_eq!(
        new_now.credits_used, CREDITS,
        "one pool, seen from both keys"
    );
    assert_eq!(old_now.credits_total + new_now.credits_total, CREDITS);
}

#[test]
fn a_rotated_pairs_shared_credits_never_go_below_zero_sqlite() {
    on_sqlite(shared_credits_are_never_overspent);
}

#[test]
fn a_rotated_pairs_shared_credits_never_go_below_zero_postgres() {
    on_postgres(shared_credits_are_never_overspent);
}

// ---- story 3b: credit refill (SPEC §8) ----

/// A key with `limit` credits refilled by `refill`, number `n`.
fn refilled_key(n: u32, name: &str, limit: u64, refill: Refill) -> (String, NewKey) {
    let (secret, mut key) = numbered_key(n, name);
    key.settings.credit_limit = Some(limit);
    key.settings.refill = Some(refill);
    (secret, key)
}

fn at(text: &str) -> DateTime<Utc> {
    parse_datetime(text).unwrap()
}

/// One recorded verification of `secret` (cost `cost`) at `at`, decided and recorded
/// as `verify` does; with `read_back` the request goes to the store without the
/// running totals read with the key, so the store advances them itself.
fn verify_recording(
    store: &mut dyn Store,
    secret: &str,
    at: DateTime<Utc>,
    cost: u64,
    read_back: bool,
) -> Outcome {
    let ip = Some("203.0.113.7".parse().unwrap());
    let hash = key::hash_secret(secret);
    let mut tx = store.begin(Intent::Verify).unwrap();
    let view = tx
        .load_for_verify(Some(&hash), ip, true, Clock::Fixed(at))
        .unwrap();
    let req = Request {
        ip,
        cost,
        ..Request::default()
    };
    let d = keyctl::core::policy::decide(view, true, &req, at);
    let outcome = record_decision(tx.as_mut(), d, at, "/v1", read_back);
    tx.commit().unwrap();
    outcome
}

/// Records decision `d` (made at `at`) as `verify` does, tagged with `endpoint`;
/// with `read_back`, without the running totals read with the key.
fn record_decision(
    tx: &mut dyn Txn,
    d: keyctl::core::policy::Decision,
    at: DateTime<Utc>,
    endpoint: &str,
    read_back: bool,
) -> Outcome {
    let totals = d.key.as_ref().and_then(RunningTotals::of);
    let request = keyctl::core::model::RequestRecord {
        at,
        key: d
            .key
            .as_ref()
            .map(|k| (k.id.clone(), k.settings.name.clone())),
        endpoint: Some(endpoint.to_string()),
        http_status: d.outcome.http_status(),
        code: d.outcome.code().to_string(),
        ip: Some("203.0.113.7".to_string()),
        duration_ms: None,
        credits: d.credits,
        accepted: d.outcome.is_valid(),
        refill: d.key.as_ref().and_then(keyctl::core::refill::to_write),
        totals: if read_back { None } else { totals },
    };
    tx.record_verdict(&keyctl::store::VerdictRecord {
        request,
        auth_failure: d.auth_failure,
        prune_before: d.prune_before,
        store_ledger: None,
    })
    .unwrap();
    d.outcome
}

/// SQLite writes a key's running totals advanced from what the verification read
/// under its lock, instead of advancing them in SQL and reading them back: both ways
/// leave every row of the store the same, through accepted and rejected requests, a
/// refill, a clock stepping back, a rotation and an unknown key. (PostgreSQL always
/// reads them back: its key rows carry no totals to advance.)
#[test]
fn recording_with_the_totals_read_writes_what_reading_them_back_writes_sqlite() {
    let runs = [false, true].map(|read_back| {
        let dir = TempDir::new().unwrap();
        let location = Location::Sqlite(dir.path().join("keys.db"));
        let mut store = handle(&location);
        let store = store.as_mut();
        let refill = Refill {
            amount: 2,
            interval: Interval::Day,
            mode: RefillMode::Add,
        };
        let (secret, mut k) = refilled_key(1, "billing", 5, refill);
        k.settings.quotas.daily = Some(3);
        let (plain_secret, plain) = numbered_key(2, "plain");
        insert(store, &k);
        insert(store, &plain);
        let (unknown, _) = numbered_key(99, "unknown");
        let (new_secret, mut successor) = numbered_key(3, "billing");
        successor.settings = k.settings.clone();
        successor.rotated_from = Some(k.id.clone());
        let s = Duration::seconds(1);
        let mut outcomes = vec![
            verify_recording(store, &secret, now(), 2, read_back),
            verify_recording(store, &secret, now() + s, 2, read_back),
            verify_recording(store, &secret, now() + s * 2, 2, read_back),
            // The clock steps back an hour: the ledgers' times stay where they were.
            verify_recording(store, &secret, now() - Duration::hours(1), 1, read_back),
            verify_recording(store, &secret, now() + s * 3, 1, read_back),
            verify_recording(store, &plain_secret, now(), 0, read_back),
            verify_recording(store, &unknown, now(), 1, read_back),
        ];
        let mut tx = store.begin(Intent::Admin).unwrap();
        rotate_in(
            tx.as_mut(),
            &k.id,
            &successor,
            Some(now() + Duration::days(2)),
        );
        tx.commit().unwrap();
        // A day later: the refill's two credits, shared by the pair (the old key
        // still in its grace period).
        let day = now() + Duration::days(1);
        outcomes.push(verify_recording(store, &new_secret, day, 1, read_back));
        outcomes.push(verify_recording(store, &secret, day + s, 1, read_back));
        outcomes.push(verify_recording(
            store,
            &new_secret,
            day + s * 2,
            1,
            read_back,
        ));
        (outcomes, dump_all(&location))
    });
    let [(advanced, advanced_rows), (read, read_rows)] = runs;
    assert_eq!(
        advanced,
        [
            Outcome::Valid,
            Outcome::Valid,
            Outcome::CreditsExhausted,
            Outcome::Valid,
            Outcome::QuotaExceeded("daily"),
            Outcome::Valid,
            Outcome::Invalid,
            Outcome::Valid,
            Outcome::Valid,
            Outcome::CreditsExhausted,
        ]
    );
    assert_eq!(advanced, read);
    assert_eq!(advanced_rows.len(), read_rows.len());
    for (a, b) in advanced_rows.iter().zip(&read_rows) {
        assert_eq!(a, b);
    }
}

/// A group of requests in one transaction, each at its own time across midnights,
/// gives exactly what one transaction per request gives: the verdicts, what is left,
/// and the balance stored.
fn refill_groups_match_one_transaction_each(location: &Location) {
    let set = Refill {
        amount: 4,
        interval: Interval::Day,
        mode: RefillMode::Set,
    };
    let add = Refill {
        amount: 3,
        interval: Interval::Day,
        mode: RefillMode::Add,
    };
    // Keys 1 and 2 are verified in one group, keys 3 and 4 (the same settings) one
    // transaction per request.
    let (s1, k1) = refilled_key(1, "set-group", 10, set);
    let (s2, k2) = refilled_key(2, "add-group", 10, add);
    let (s3, k3) = refilled_key(3, "set-single", 10, set);
    let (s4, k4) = refilled_key(4, "add-single", 10, add);
    let mut store = handle(location);
    for k in [&k1, &k2, &k3, &k4] {
        insert(store.as_mut(), k);
    }
    let times = [
        "2026-11-23T22:00:00Z",
        "2026-11-23T23:59:59Z",
        "2026-11-24T00:00:00Z",
        "2026-11-24T00:00:00.001Z",
        "2026-11-24T13:00:00Z",
        "2026-11-27T08:00:00Z",
        "2026-11-27T09:00:00Z",
    ];
    let ask = |secret: &str, when: &str, cost: u64| Pending {
        presented: secret.to_string(),
        req: Request {
            cost,
            ..Request::default()
        },
        meta: Meta::default(),
        clock: Clock::Fixed(at(when)),
    };
    let mut group = Vec::new();
    let mut singles = Vec::new();
    for (i, when) in times.iter().enumerate() {
        let cost = [3, 4, 2, 5][i % 4];
        group.push(ask(&s1, when, cost));
        group.push(ask(&s2, when, cost + 1));
        singles.push(ask(&s3, when, cost));
        singles.push(ask(&s4, when, cost + 1));
    }
    let grouped: Vec<Verdict> = verify_group(store.as_mut(), &group, true)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let single: Vec<Verdict> = singles
        .iter()
        .map(|p| {
            let mut v = verify_group(store.as_mut(), std::slice::from_ref(p), true);
            v.remove(0).unwrap()
        })
        .collect();
    let seen = |v: &[Verdict]| -> Vec<(Outcome, Option<u64>)> {
        v.iter()
            .map(|v| (v.outcome.clone(), v.credits_remaining))
            .collect()
    };
    assert_eq!(seen(&grouped), seen(&single));
    // The sequence crossed refills in both modes: something was refused, then accepted.
    let left: Vec<Option<u64>> = grouped.iter().map(|v| v.credits_remaining).collect();
    assert_eq!(
        left,
        [7, 6, 3, 1, 2, 1, 2, 1, 2, 1, 0, 5, 0, 2]
            .iter()
            .map(|n| Some(*n))
            .collect::<Vec<_>>(),
        "{:?}",
        seen(&grouped)
    );
    let tx = store.begin(Intent::Read).unwrap();
    for (a, b) in [(&k1, &k3), (&k2, &k4)] {
        let (a, b) = (
            tx.key_by_id(&a.id).unwrap().unwrap(),
            tx.key_by_id(&b.id).unwrap().unwrap(),
        );
        assert_eq!(
            (a.credits_used, a.refilled_at),
            (b.credits_used, b.refilled_at),
            "the same balance stored"
        );
        assert_eq!(a.refilled_at, Some(at("2026-11-27T00:00:00Z")));
    }
}

#[test]
fn a_group_across_midnight_refills_as_one_transaction_per_request_does_sqlite() {
    on_sqlite(refill_groups_match_one_transaction_each);
}

#[test]
fn a_group_across_midnight_refills_as_one_transaction_per_request_does_postgres() {
    on_postgres(refill_groups_match_one_transaction_each);
}

/// A rotated pair spent to zero refills once after midnight, exactly, while threads
/// verify through both keys at once.
fn a_pair_refills_once_under_concurrency(location: &Location) {
    const CREDITS: u64 = 10;
    let refill = Refill {
        amount: 7,
        interval: Interval::Day,
        mode: RefillMode::Add,
    };
    let (old_secret, old) = refilled_key(1, "pair", CREDITS, refill);
    let (new_secret, mut new) = numbered_key(2, "pair");
    new.settings = old.settings.clone();
    new.rotated_from = Some(old.id.clone());
    {
        let mut store = handle(location);
        insert(store.as_mut(), &old);
        let mut tx = store.begin(Intent::Admin).unwrap();
        rotate_in(tx.as_mut(), &old.id, &new, Some(now() + Duration::days(2)));
        tx.commit().unwrap();
        for i in 0..CREDITS {
            let v = verify_at(store.as_mut(), &old_secret, now(), &format!("/{i}"));
            assert!(v.outcome.is_valid());
        }
    }
    let midnight = at("2026-11-24T00:00:00Z");
    let outcomes: Vec<Outcome> = run_concurrently(location, 6, |store, t| {
        let secret = [&old_secret, &new_secret][t % 2];
        (0..4)
            .map(|i| verify_at(store, secret, midnight, &format!("/{t}/{i}")).outcome)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    assert_accepts_exactly(&outcomes, refill.amount, &Outcome::CreditsExhausted);
    let mut store = handle(location);
    let tx = store.begin(Intent::Read).unwrap();
    let k = tx.key_by_id(&new.id).unwrap().unwrap();
    assert_eq!((k.credits_used, k.refilled_at), (CREDITS, Some(midnight)));
}

#[test]
fn a_rotated_pair_refills_once_under_concurrent_verifies_sqlite() {
    on_sqlite(a_pair_refills_once_under_concurrency);
}

#[test]
fn a_rotated_pair_refills_once_under_concurrent_verifies_postgres() {
    on_postgres(a_pair_refills_once_under_concurrency);
}

// ---- story 4: one winner per contested name ----

fn one_winner_per_name(location: &Location) {
    const THREADS: usize = 8;
    handle(location);
    let results = run_concurrently(location, THREADS, |store, t| {
        let (_, candidate) = numbered_key(t as u32 + 1, "contested");
        // As a command runs it: a backend may ask for the whole transaction again.
        with_retry(
            store.retry_attempts(),
            || -> keyctl::error::Result<String> {
                let mut tx = store.begin(Intent::Admin)?;
                claim_name(tx.as_ref(), "contested", None, now(), "choose another name")?;
                tx.insert_key(&candidate)?;
                tx.commit()?;
                Ok(candidate.id.clone())
            },
        )
    });

    let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one commits: {results:?}");
    let winner = winners[0];
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            refused.message,
            format!("a key named 'contested' already exists ({winner}): choose another name")
        );
    }
    let mut store = handle(location);
    let tx = store.begin(Intent::Read).unwrap();
    let named: Vec<String> = tx
        .keys_by_name("contested")
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(named, std::slice::from_ref(winner));
}

#[test]
fn one_key_wins_a_contested_name_sqlite() {
    on_sqlite(one_winner_per_name);
}

#[test]
fn one_key_wins_a_contested_name_postgres() {
    on_postgres(one_winner_per_name);
}

// ---- story 5: concurrent admin writers leave a gapless audit chain ----

fn audit_chain_stays_gapless(location: &Location) {
    const THREADS: usize = 4;
    const EACH: usize = 10;
    handle(location);
    run_concurrently(location, THREADS, |store, t| {
        for i in 0..EACH {
            let details = format!(r#"{{"writer":{t},"n":{i}}}"#);
            with_retry(store.retry_attempts(), || -> keyctl::error::Result<()> {
                let mut tx = store.begin(Intent::Admin)?;
                append_audit(tx.as_mut(), audit_event("config", None, &details))?;
                Ok(tx.commit()?)
            })
            .unwrap();
        }
    });

    let events = audit_trail(handle(location).as_mut());
    assert_eq!(events.len(), THREADS * EACH);
    assert_chain_intact(&events);
    let written: BTreeSet<&str> = events.iter().map(|e| e.event.details.as_str()).collect();
    assert_eq!(written.len(), THREADS * EACH, "every event once");
}

#[test]
fn concurrent_admin_writers_leave_a_gapless_audit_chain_sqlite() {
    on_sqlite(audit_chain_stays_gapless);
}

#[test]
fn concurrent_admin_writers_leave_a_gapless_audit_chain_postgres() {
    on_postgres(audit_chain_stays_gapless);
}

// ---- story 6: following the log misses no row ----

fn follow_cursor_misses_no_row(location: &Location) {
    const WRITERS: usize = 3;
    const EACH: usize = 15;
    let (secret, unlimited) = numbered_key(1, "busy");
    let mut store = handle(location);
    insert(store.as_mut(), &unlimited);
    let start = store.begin(Intent::Read).unwrap().log_cursor_now().unwrap();
    drop(store);

    let done = AtomicBool::new(false);
    let seen: Vec<String> = thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut store = handle(location);
            let mut cursor = start;
            let mut seen = Vec::new();
            loop {
                // Read once more after the writers are done: that poll sees the rest.
                let finished = done.load(Ordering::SeqCst);
                let tx = store.begin(Intent::Read).unwrap();
                cursor = tx
                    .requests_after(&cursor, &RequestQuery::default(), &mut |r| {
                        seen.push(r.endpoint.clone().unwrap_or_default());
                        Ok(())
                    })
                    .unwrap();
                drop(tx);
                if finished {
                    return seen;
                }
                thread::yield_now();
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let secret = &secret;
                scope.spawn(move || {
                    let mut store = handle(location);
                    for i in 0..EACH {
                        verify_at(store.as_mut(), secret, now(), &format!("/{t}/{i}"));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });

    let expected: BTreeSet<String> = (0..WRITERS)
        .flat_map(|t| (0..EACH).map(move |i| format!("/{t}/{i}")))
        .collect();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), WRITERS * EACH, "no row twice");
    assert_eq!(unique, expected, "no row missed");
}

#[test]
fn following_the_log_sees_every_row_exactly_once_sqlite() {
    on_sqlite(follow_cursor_misses_no_row);
}

#[test]
fn following_the_log_sees_every_row_exactly_once_postgres() {
    on_postgres(follow_cursor_misses_no_row);
}

// ---- story 7: migrations ----

fn reopening_migrates_nothing(location: &Location) {
    let (secret, k) = numbered_key(1, "kept");
    {
        let mut store = handle(location);
        let mut tx = store.begin(Intent::Admin).unwrap();
        tx.insert_key(&k).unwrap();
        append_audit(tx.as_mut(), audit_event("created", Some(&k.id), "{}")).unwrap();
        tx.commit().unwrap();
    }
    let existing = OpenOptions::default();
    for _ in 0..2 {
        let (mut store, created) = open(location, &existing).unwrap();
        assert!(!created, "an existing store is opened, not created");
        let tx = store.begin(Intent::Read).unwrap();
        let got = tx.key_by_id(&k.id).unwrap().unwrap();
        assert_eq!(got.settings, k.settings);
        drop(tx);
        assert_eq!(audit_trail(store.as_mut()).len(), 1);
        assert_eq!(
            verify_at(store.as_mut(), &secret, now(), "/").outcome,
            Outcome::Valid
        );
    }
}

#[test]
fn opening_a_current_store_again_changes_nothing_sqlite() {
    on_sqlite(reopening_migrates_nothing);
}

#[test]
fn opening_a_current_store_again_changes_nothing_postgres() {
    on_postgres(reopening_migrates_nothing);
}

// ---- story 6b: verifiers and administrators at once ----

/// API hosts verify one key while administrators edit it, create keys under a key
/// limit and append audit events: the quota is exact, every request is counted once,
/// every administrator's change lands (retried if the backend asks), the chain stays
/// gapless.
fn verifiers_and_admins_at_once(location: &Location) {
    const VERIFIERS: usize = 4;
    const EACH: usize = 20;
    const QUOTA: u64 = 30;
    const EDITS: usize = 8;
    let (secret, mut busy) = numbered_key(1, "busy");
    busy.settings.quotas.total = Some(QUOTA);
    {
        let mut store = handle(location);
        insert(store.as_mut(), &busy);
        let mut tx = store.begin(Intent::Admin).unwrap();
        tx.set_setting("max-keys", Some("100")).unwrap();
        tx.commit().unwrap();
    }
    let outcomes = run_concurrently(location, VERIFIERS + 2, |store, t| {
        if t < VERIFIERS {
            return (0..EACH)
                .map(|i| verify_at(store, &secret, now(), &format!("/{t}/{i}")).outcome)
                .collect();
        }
        for i in 0..EDITS {
            let n = (t << 8 | i) as u32;
            let (_, extra) = numbered_key(n, &format!("extra-{t}-{i}"));
            with_retry(5, || -> keyctl::error::Result<()> {
                let mut tx = store.begin(Intent::Admin)?;
                let mut k = tx.key_by_id(&busy.id)?.unwrap();
                k.settings.description = Some(format!("edit {t}/{i}"));
                tx.update_key(&k)?;
                let settings = tx.settings()?;
                keyctl::app::keys::check_can_add(
                    tx.as_ref(),
                    &settings,
                    &extra.settings.name,
                    now(),
                )?;
                tx.insert_key(&extra)?;
                append_audit(tx.as_mut(), audit_event("edited", Some(&k.id), "{}"))?;
                Ok(tx.commit()?)
            })
            .unwrap();
        }
        Vec::new()
    });
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    assert_eq!(outcomes.len(), VERIFIERS * EACH);
    assert_accepts_exactly(&outcomes, QUOTA, &Outcome::QuotaExceeded("total"));
    let mut store = handle(location);
    let events = audit_trail(store.as_mut());
    assert_eq!(events.len(), 2 * EDITS);
    assert_chain_intact(&events);
    let tx = store.begin(Intent::Read).unwrap();
    let k = tx.key_by_id(&busy.id).unwrap().unwrap();
    assert_eq!(k.events_total, (VERIFIERS * EACH) as u64);
    assert_eq!(k.accepted_total, QUOTA);
    assert_eq!(tx.count_limited(now()).unwrap(), 1 + 2 * EDITS as u64);
}

#[test]
fn verifiers_and_administrators_at_once_stay_exact_sqlite() {
    on_sqlite(verifiers_and_admins_at_once);
}

#[test]
fn verifiers_and_administrators_at_once_stay_exact_postgres() {
    on_postgres(verifiers_and_admins_at_once);
}

// ---- story 7b: listing orders and filters keys the same way everywhere ----

fn listing_orders_and_filters_alike(location: &Location) {
    let mut store = handle(location);
    let names = ["beta", "Alpha", "Übung", "alpha2", "Zed", "_under"];
    let mut ids = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let (_, mut k) = numbered_key(n as u32 + 1, name);
        if *name == "Zed" {
            k.settings.description = Some("Holds the ALPHA feed".to_string());
            k.settings.expires_at = Some(now() - Duration::days(1));
        }
        if *name == "Übung" {
            k.settings.description = Some("ÄLPHA in umlauts".to_string());
        }
        ids.push(k.id.clone());
        insert(store.as_mut(), &k);
    }
    let list = |query: KeyQuery| {
        let mut store = handle(location);
        let tx = store.begin(Intent::Read).unwrap();
        let mut got = Vec::new();
        tx.for_each_key(&query, now(), &mut |k| {
            got.push(k.settings.name.clone());
            Ok(())
        })
        .unwrap();
        got
    };
    // SQLite's NOCASE: ASCII letters folded to lower case, then bytes ('_' sorts
    // before the folded 'a', 'Ü' after every ASCII letter).
    let by_name = list(KeyQuery {
        sort: SortBy::Name,
        ..KeyQuery::default()
    });
    assert_eq!(
        by_name,
        ["_under", "Alpha", "alpha2", "beta", "Zed", "Übung"]
    );
    assert_eq!(
        list(KeyQuery::default()),
        ["_under", "Zed", "alpha2", "Übung", "Alpha", "beta"],
        "newest first"
    );
    // Search: ASCII case-insensitive in names, descriptions and prefixes, exact in ids.
    let search = |text: &str| {
        list(KeyQuery {
            search: Some(text.to_string()),
            sort: SortBy::Name,
            ..KeyQuery::default()
        })
    };
    assert_eq!(search("ALP"), ["Alpha", "alpha2", "Zed"]);
    assert_eq!(search("übung"), Vec::<String>::new(), "only ASCII folds");
    assert_eq!(
        search("Übung"),
        Vec::<String>::new(),
        "the needle is lower-cased"
    );
    assert_eq!(search(&ids[4]), ["Zed"]);
    let expired = list(KeyQuery {
        statuses: vec![Status::Expired],
        ..KeyQuery::default()
    });
    assert_eq!(expired, ["Zed"]);
}

#[test]
fn listing_orders_and_filters_keys_alike_sqlite() {
    on_sqlite(listing_orders_and_filters_alike);
}

#[test]
fn listing_orders_and_filters_keys_alike_postgres() {
    on_postgres(listing_orders_and_filters_alike);
}

// ---- story: a paged scan (report) sees every key once, in creation order ----

fn paging_sees_every_key_once(location: &Location) {
    let mut store = handle(location);
    let mut ids = Vec::new();
    for n in 1..=7 {
        let (_, mut k) = numbered_key(n, &format!("page-{n}"));
        k.settings.quotas.daily = Some(10);
        ids.push(k.id.clone());
        insert(store.as_mut(), &k);
    }
    let mut tx = store.begin(Intent::Admin).unwrap();
    let mut revoked = tx.key_by_id(&ids[3]).unwrap().unwrap();
    revoked.state = State::Revoked;
    tx.update_key(&revoked).unwrap();
    tx.commit().unwrap();
    let tx = store.begin(Intent::Read).unwrap();
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    let mut after: Option<String> = None;
    loop {
        let page = tx.keys_page(after.as_deref(), 3).unwrap();
        pages.push(page.len());
        for k in &page {
            // Other reads between pages, as report's near-limit makes them.
            assert_eq!(
                tx.pool_windows(k, &[now() - Duration::days(1)]).unwrap(),
                [0]
            );
            seen.push(k.settings.name.clone());
        }
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|k| k.id.clone());
    }
    assert_eq!(pages, [3, 3, 0]);
    assert_eq!(
        seen,
        ["page-1", "page-2", "page-3", "page-5", "page-6", "page-7"],
        "creation order, revoked keys left out"
    );
    assert!(tx
        .keys_page(Some("key_nosuchkey222"), 3)
        .unwrap()
        .is_empty());
}

#[test]
fn a_paged_scan_sees_every_key_once_sqlite() {
    on_sqlite(paging_sees_every_key_once);
}

#[test]
fn a_paged_scan_sees_every_key_once_postgres() {
    on_postgres(paging_sees_every_key_once);
}

// ---- story: completion reads only what starts with the typed text ----

fn completion_reads_a_prefix_range(location: &Location) {
    let mut store = handle(location);
    let names = [
        "team-b", "team-a", "Team-x", "teamster", "other", "tëam", "team-a", "team-c",
    ];
    let mut ids = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let (_, k) = numbered_key(n as u32 + 1, name);
        ids.push(k.id.clone());
        insert(store.as_mut(), &k);
    }
    let tx = store.begin(Intent::Read).unwrap();
    let complete = |typed: &str, limit: u32| {
        let (named, more_names) = tx.keys_starting(Starting::Name, typed, limit).unwrap();
        let (by_id, more_ids) = tx.keys_starting(Starting::Id, typed, limit).unwrap();
        let named: Vec<String> = named.iter().map(|k| k.settings.name.clone()).collect();
        let by_id: Vec<String> = by_id.iter().map(|k| k.id.clone()).collect();
        (named, more_names, by_id, more_ids)
    };
    // The first names in byte order, case as typed, every key of each name.
    let (named, more, by_id, _) = complete("team", 2);
    assert_eq!(named, ["team-a", "team-a", "team-b"]);
    assert!(more, "team-c and teamster are left unread");
    assert!(by_id.is_empty(), "no id starts with a name");
    let (named, more, _, _) = complete("team", 10);
    assert_eq!(named, ["team-a", "team-a", "team-b", "team-c", "teamster"]);
    assert!(!more);
    assert_eq!(complete("të", 10).0, ["tëam"]);
    assert_eq!(complete("Team", 10).0, ["Team-x"]);
    assert_eq!(complete("nobody", 10).0, Vec::<String>::new());
    // Nothing typed: the first names of the whole store.
    let (named, more, by_id, more_ids) = complete("", 2);
    assert_eq!(named, ["Team-x", "other"]);
    assert!(more);
    assert_eq!(by_id.len(), 2);
    assert!(more_ids);
    // An id typed in full finds its key.
    let (named, _, by_id, more_ids) = complete(&ids[3], 10);
    assert!(named.is_empty());
    assert_eq!(by_id, [ids[3].clone()]);
    assert!(!more_ids);
}

#[test]
fn completion_reads_only_the_typed_prefix_sqlite() {
    on_sqlite(completion_reads_a_prefix_range);
}

#[test]
fn completion_reads_only_the_typed_prefix_postgres() {
    on_postgres(completion_reads_a_prefix_range);
}

// ---- story 8: a copy reproduces every row, across backends ----

/// A store with something in every table: settings, a rotated pair and a plain key,
/// accepted and rejected requests (usage days, windows), an IP blocked by failed
/// attempts, audit events.
fn populate(location: &Location) {
    let mut store = handle(location);
    let store = store.as_mut();
    let (secret, mut first) = numbered_key(1, "billing");
    first.settings.quotas.daily = Some(50);
    first.settings.credit_limit = Some(100);
    first.settings.refill = Some(Refill {
        amount: 40,
        interval: Interval::Day,
        mode: RefillMode::Add,
    });
    first.settings.description = Some("Zürich team".to_string());
    first.settings.scopes = vec!["read".to_string(), "write:all".to_string()];
    first.settings.meta = KeyMeta::from_stored(Some(r#"{"tenant":"acme"}"#.to_string()));
    let (other_secret, other) = numbered_key(2, "search");
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        tx.set_setting("failed-auth-limit", Some("2")).unwrap();
        tx.set_setting("key-prefix", Some("sk")).unwrap();
        tx.insert_key(&first).unwrap();
        tx.insert_key(&other).unwrap();
        append_audit(tx.as_mut(), audit_event("created", Some(&first.id), "{}")).unwrap();
        append_audit(tx.as_mut(), audit_event("created", Some(&other.id), "{}")).unwrap();
        tx.commit().unwrap();
    }
    verify_at(store, &secret, now() - Duration::days(2), "/old");
    verify_at(store, &secret, now(), "/a");
    verify_at(store, &other_secret, now(), "/b");
    let (new_secret, mut successor) = numbered_key(3, "billing");
    successor.settings = first.settings.clone();
    successor.rotated_from = Some(first.id.clone());
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        rotate_in(
            tx.as_mut(),
            &first.id,
            &successor,
            Some(now() + Duration::hours(1)),
        );
        append_audit(tx.as_mut(), audit_event("rotated", Some(&first.id), "{}")).unwrap();
        tx.commit().unwrap();
    }
    verify_at(store, &new_secret, now(), "/c");
    let (unknown, _) = numbered_key(99, "unknown");
    for endpoint in ["/x", "/y"] {
        verify_at(store, &unknown, now(), endpoint);
    }
}

/// Every row of the store, as `dump` gives it.
fn dump_all(location: &Location) -> Vec<(Table, Vec<Value>)> {
    let mut store = handle(location);
    let tx = store.begin(Intent::Read).unwrap();
    let mut rows = Vec::new();
    tx.dump(&mut |table, row| {
        rows.push((table, row.to_vec()));
        Ok(())
    })
    .unwrap();
    rows
}

/// Copies the store at `from` into a new store at `to`, as `keyctl copy` does.
fn copy(from: &Location, to: &Location) {
    assert!(is_empty_target(to).unwrap(), "{to} is a new target");
    let (mut source, _) = open(from, &OpenOptions::default()).unwrap();
    let (mut target, created) = open(to, &create()).unwrap();
    assert!(created);
    let snapshot = source.begin(Intent::Read).unwrap();
    let mut tx = target.begin(Intent::Bulk).unwrap();
    copy_rows(snapshot.as_ref(), tx.as_mut()).unwrap();
    tx.commit().unwrap();
    assert!(!is_empty_target(to).unwrap(), "{to} now holds a store");
}

fn create() -> OpenOptions {
    OpenOptions {
        create: true,
        ..OpenOptions::default()
    }
}

/// `first` to `second` and back to `third`: the same rows in all three, the same audit
/// head, and the copies keep working (new rows are numbered after the copied ones).
fn round_trip(first: &Location, second: &Location, third: &Location) {
    populate(first);
    copy(first, second);
    copy(second, third);
    let original = dump_all(first);
    assert!(
        original.iter().any(|(t, _)| *t == Table::IpBlocks),
        "an IP is blocked"
    );
    assert!(original.iter().any(|(t, _)| *t == Table::PoolEvents));
    assert!(
        original.iter().any(|(t, row)| *t == Table::Keys
            && row.contains(&Value::Text(r#"{"tenant":"acme"}"#.to_string()))),
        "a key's metadata is copied"
    );
    assert_eq!(dump_all(second), original, "{first} -> {second}");
    assert_eq!(dump_all(third), original, "{second} -> {third}");
    let head = |location: &Location| {
        audit_trail(handle(location).as_mut())
            .last()
            .map(|e| e.hash.clone())
    };
    assert_eq!(head(second), head(first));
    assert_chain_intact(&audit_trail(handle(third).as_mut()));
    for location in [second, third] {
        let mut store = handle(location);
        let (secret, key) = numbered_key(4, "after-copy");
        insert(store.as_mut(), &key);
        // The blocked IP stays blocked in the copy; its request is logged after the
        // copied ones.
        let v = verify_at(store.as_mut(), &secret, now(), "/new");
        assert_eq!(v.outcome, Outcome::IpBlocked, "{location}");
        let mut tx = store.begin(Intent::Admin).unwrap();
        append_audit(tx.as_mut(), audit_event("created", Some(&key.id), "{}")).unwrap();
        tx.commit().unwrap();
    }
}

#[test]
fn a_copy_from_sqlite_to_postgres_and_back_reproduces_every_row() {
    let dir = TempDir::new().unwrap();
    round_trip(
        &Location::Sqlite(dir.path().join("first.db")),
        &pg::fresh_database(),
        &Location::Sqlite(dir.path().join("third.db")),
    );
}

#[test]
fn a_copy_from_postgres_to_sqlite_and_back_reproduces_every_row() {
    let dir = TempDir::new().unwrap();
    round_trip(
        &pg::fresh_database(),
        &Location::Sqlite(dir.path().join("second.db")),
        &pg::fresh_database(),
    );
}

#[test]
fn an_existing_store_even_an_empty_one_is_no_copy_target() {
    let dir = TempDir::new().unwrap();
    for location in [
        Location::Sqlite(dir.path().join("keys.db")),
        pg::fresh_database(),
    ] {
        assert!(is_empty_target(&location).unwrap());
        handle(&location);
        assert!(!is_empty_target(&location).unwrap(), "{location}");
    }
}

/// PostgreSQL's `backup` writes an SQLite file (0600) with `copy`'s content.
#[test]
fn a_postgres_backup_is_an_sqlite_file_with_every_row() {
    use std::os::unix::fs::PermissionsExt;
    let location = pg::fresh_database();
    populate(&location);
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("backup.db");
    handle(&location).backup_to(&file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(dump_all(&Location::Sqlite(file)), dump_all(&location));
}

// ---- PostgreSQL's own cases ----

/// One recorded verification of `secret` (cost 1) on a host whose clock is `offset`
/// off, as `verify` runs it on a backend with a clock of its own: the locks first,
/// then "now" (the database's clock, else the host's), then the decision and its
/// record, in one transaction. The outcome and the "now" it decided at.
fn verify_on_db_clock(
    store: &mut dyn Store,
    secret: &str,
    offset: Duration,
    endpoint: &str,
) -> (Outcome, DateTime<Utc>) {
    let ip = Some("203.0.113.7".parse().unwrap());
    let hash = keyctl::core::key::hash_secret(secret);
    let mut tx = store.begin(Intent::Verify).unwrap();
    tx.lock_for_verify(Some(&hash), ip).unwrap();
    let db = tx.db_clock().unwrap();
    assert_eq!(tx.db_clock().unwrap(), db, "read once per transaction");
    let now = db.unwrap_or_else(|| Utc::now() + offset);
    let view = tx
        .load_for_verify(Some(&hash), ip, true, Clock::Fixed(now))
        .unwrap();
    let req = Request {
        ip,
        cost: 1,
        ..Request::default()
    };
    let d = keyctl::core::policy::decide(view, true, &req, now);
    let outcome = record_decision(tx.as_mut(), d, now, endpoint, false);
    tx.commit().unwrap();
    (outcome, now)
}

/// Two API hosts whose clocks are a day apart still count one daily quota exactly:
/// both decide on the database's clock.
#[test]
fn two_hosts_with_disagreeing_clocks_count_one_quota_on_the_database_clock() {
    const QUOTA: u64 = 5;
    let location = pg::fresh_database();
    let (secret, mut metered) = numbered_key(1, "metered");
    metered.settings.quotas.daily = Some(QUOTA);
    metered.created_at = Utc::now() - Duration::days(2);
    insert(handle(&location).as_mut(), &metered);
    let mut hosts = [
        (handle(&location), Duration::hours(-12)),
        (handle(&location), Duration::hours(12)),
    ];
    let mut accepted = 0;
    for i in 0..4 * QUOTA {
        let (store, offset) = &mut hosts[(i % 2) as usize];
        let (outcome, at) = verify_on_db_clock(store.as_mut(), &secret, *offset, &format!("/{i}"));
        let host = Utc::now() + *offset;
        assert!(
            (host - at).num_hours().abs() >= 11,
            "the database's clock, not the host's"
        );
        if outcome == Outcome::Valid {
            accepted += 1;
        }
    }
    assert_eq!(accepted, QUOTA);
    // SQLite has no clock of its own: the host's is used.
    let dir = TempDir::new().unwrap();
    let mut sqlite = handle(&Location::Sqlite(dir.path().join("keys.db")));
    assert_eq!(
        sqlite.begin(Intent::Verify).unwrap().db_clock().unwrap(),
        None
    );
}

/// Two admin transactions that lock two keys in opposite orders deadlock: PostgreSQL
/// aborts one, which the store reports as Retry, and running that whole transaction
/// again (`with_retry`) succeeds.
#[test]
fn a_deadlock_is_reported_as_retry_and_a_retried_transaction_succeeds() {
    let location = pg::fresh_database();
    let keys = [numbered_key(1, "a").1, numbered_key(2, "b").1];
    {
        let mut store = handle(&location);
        for k in &keys {
            insert(store.as_mut(), k);
        }
    }
    let both_hold_one = Barrier::new(2);
    let runs = std::sync::atomic::AtomicU32::new(0);
    let retries = std::sync::atomic::AtomicU32::new(0);
    let results = run_concurrently(&location, 2, |store, t| {
        let (first, second) = (&keys[t].id, &keys[1 - t].id);
        with_retry(5, || -> keyctl::error::Result<()> {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            let mut tx = store.begin(Intent::Admin)?;
            let mut k = tx.key_by_id(first)?.unwrap();
            if run < 2 {
                both_hold_one.wait();
            }
            let locked = tx.key_by_id(second);
            if let Err(e) = &locked {
                assert_eq!(e.kind(), Some(ErrorKind::Retry), "{e}");
                retries.fetch_add(1, Ordering::SeqCst);
            }
            locked?;
            k.settings.description = Some(format!("edited by {t}"));
            tx.update_key(&k)?;
            Ok(tx.commit()?)
        })
    });
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    // A victim's second run may deadlock again with the first winner's (rarely):
    // each failed run was a Retry, and ran again.
    let retries = retries.load(Ordering::SeqCst);
    assert!(retries >= 1, "a deadlock victim");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2 + retries,
        "every victim ran again"
    );
    let mut store = handle(&location);
    let tx = store.begin(Intent::Read).unwrap();
    for (t, k) in keys.iter().enumerate() {
        let description = tx.key_by_id(&k.id).unwrap().unwrap().settings.description;
        assert_eq!(description, Some(format!("edited by {t}")));
    }
}

/// SPEC §6: a recording verification decides at the database's clock read after its
/// locks. One that waited for the key row another verification held decides at a time
/// after that one committed, not when it asked for the row (PostgreSQL reads the lock
/// and the clock in one statement).
#[test]
fn a_verification_that_waited_for_the_key_row_decides_after_the_holder_committed() {
    let location = pg::fresh_database();
    let (secret, k) = numbered_key(1, "held");
    insert(handle(&location).as_mut(), &k);
    let hash = key::hash_secret(&secret);
    let mut holder = handle(&location);
    let mut tx = holder.begin(Intent::Verify).unwrap();
    tx.lock_for_verify(Some(&hash), None).unwrap();
    let db = pg::database_of(&location);
    let (decided_at, released) = thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let mut store = handle(&location);
            let mut tx = store.begin(Intent::Verify).unwrap();
            tx.lock_for_verify(Some(&hash), None).unwrap();
            tx.db_clock().unwrap().unwrap()
        });
        wait_for_a_lock_wait(&location);
        // The holder lets the database's clock get well past the moment the waiter
        // asked for the row, then commits.
        let mut admin = pg::admin_client();
        let released = loop {
            let row = admin
                .query_one(
                    "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
                     floor(extract(epoch FROM max(query_start)) * 1000)::bigint \
                     FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                    &[&db],
                )
                .unwrap();
            let (clock, asked): (i64, Option<i64>) = (row.get(0), row.get(1));
            if asked.is_some_and(|asked| clock - asked >= 5) {
                break clock;
            }
            thread::yield_now();
        };
        tx.commit().unwrap();
        (waiter.join().unwrap(), released)
    });
    assert!(
        to_millis(decided_at) >= released,
        "decided at {decided_at}, before the holder committed (clock {released} ms)"
    );
}

/// Waits until some connection to the store's database waits for a row lock.
fn wait_for_a_lock_wait(location: &Location) {
    let db = pg::database_of(location);
    let mut admin = pg::admin_client();
    while admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            &[&db],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        thread::yield_now();
    }
}

/// An accepted request of key `k` at `now()` charging `credits`, tagged `/1`, handed
/// to the store without the totals read with the key.
fn accepted_at_now(k: &NewKey, credits: u64) -> keyctl::core::model::RequestRecord {
    keyctl::core::model::RequestRecord {
        at: now(),
        key: Some((k.id.clone(), k.settings.name.clone())),
        endpoint: Some("/1".to_string()),
        http_status: 200,
        code: "valid".to_string(),
        ip: None,
        duration_ms: None,
        credits,
        accepted: true,
        refill: None,
        totals: None,
    }
}

/// PostgreSQL guards the spend in the statement that records it: a charge beyond the
/// key's credit limit (which a decision under the pool's lock never asks for) is
/// refused as a retry, and nothing of that request stays once its transaction ends.
#[test]
fn a_spend_beyond_the_credit_limit_is_refused_and_leaves_nothing_postgres() {
    let location = pg::fresh_database();
    let (_, mut k) = numbered_key(1, "one-credit");
    k.settings.credit_limit = Some(1);
    insert(handle(&location).as_mut(), &k);
    let mut store = handle(&location);
    let request = accepted_at_now(&k, 2);
    {
        let mut tx = store.begin(Intent::Verify).unwrap();
        let refused = tx.record_request(&request).err().unwrap();
        assert_eq!(refused.kind(), Some(ErrorKind::Retry), "{refused}");
    }
    // Within the limit, the same request is recorded.
    let mut tx = store.begin(Intent::Verify).unwrap();
    tx.record_request(&keyctl::core::model::RequestRecord {
        credits: 1,
        ..request.clone()
    })
    .unwrap();
    tx.commit().unwrap();
    let tx = store.begin(Intent::Read).unwrap();
    let key = tx.key_by_id(&k.id).unwrap().unwrap();
    assert_eq!(
        (key.accepted_total, key.events_total, key.credits_used),
        (1, 1, 1)
    );
    let mut endpoints = Vec::new();
    tx.for_each_request(&RequestQuery::default(), &mut |row| {
        endpoints.push(row.endpoint.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(endpoints, [Some("/1".to_string())]);
}

/// The concurrency stories really run at once on PostgreSQL: a verification of a key
/// waits for the row lock another verification of it holds, and then decides on what
/// that one recorded (its credit is spent).
#[test]
fn a_verification_waits_for_the_key_row_another_holds_and_sees_its_spend() {
    let location = pg::fresh_database();
    let (secret, mut k) = numbered_key(1, "one-credit");
    k.settings.credit_limit = Some(1);
    insert(handle(&location).as_mut(), &k);
    let mut holder = handle(&location);
    let mut tx = holder.begin(Intent::Verify).unwrap();
    let hash = keyctl::core::key::hash_secret(&secret);
    let view = tx
        .load_for_verify(Some(&hash), None, true, Clock::Fixed(now()))
        .unwrap();
    assert_eq!(view.key.unwrap().credits_used, 0);
    let outcome = thread::scope(|scope| {
        let waiter =
            scope.spawn(|| verify_at(handle(&location).as_mut(), &secret, now(), "/2").outcome);
        wait_for_a_lock_wait(&location);
        let request = accepted_at_now(&k, 1);
        tx.record_request(&request).unwrap();
        tx.commit().unwrap();
        waiter.join().unwrap()
    });
    assert_eq!(outcome, Outcome::CreditsExhausted);
}

/// A PostgreSQL store at schema 2 (built from its two migrations, recorded as keyctl
/// records them) is refused until `keyctl migrate`, which adds what came since (key
/// metadata among it); its key then reads back without metadata and can be given some.
#[test]
fn a_postgres_schema_2_store_migrates_and_its_keys_take_metadata() {
    let name = pg::fresh_database_name();
    let mut client = postgres::Client::connect(&pg::url_of(&name), postgres::NoTls).unwrap();
    let (secret, k) = numbered_key(1, "legacy");
    client
        .batch_execute(concat!(
            "CREATE SCHEMA keyctl; SET search_path TO keyctl; ",
            "CREATE TABLE schema_meta (version BIGINT PRIMARY KEY, min_keyctl TEXT NOT NULL, applied_at BIGINT NOT NULL); ",
            include_str!("../src/store/postgres/migrations/001_init.sql"),
            include_str!("../src/store/postgres/migrations/002_completion.sql"),
            "INSERT INTO schema_meta VALUES (1, '0.1.0', 0), (2, '0.1.0', 0); ",
            "INSERT INTO credit_pools DEFAULT VALUES;"
        ))
        .unwrap();
    client
        .execute(
            "INSERT INTO keyctl.keys (id, secret_hash, name, owner, key_prefix, livemode, \
             pool_id, created_at, state) VALUES ($1, $2, 'legacy', 'ops', $3, 1, \
             (SELECT min(id) FROM keyctl.credit_pools), $4, 'active')",
            &[
                &k.id,
                &key::hash_secret(&secret).to_vec(),
                &k.key_prefix,
                &to_millis(now() - Duration::days(1)),
            ],
        )
        .unwrap();
    let location = Location::parse(&pg::url_of(&name)).unwrap();
    let older = open(&location, &OpenOptions::default()).err().unwrap();
    assert!(
        older.to_string().contains("run `keyctl migrate`"),
        "{older}"
    );
    let (from, to) = keyctl::store::migrate(&location).unwrap();
    assert_eq!(from, 2);
    assert!(to > 2, "{to}");
    let mut store = handle(&location);
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        let mut got = tx.key_by_id(&k.id).unwrap().unwrap();
        assert!(
            got.settings.meta.is_empty(),
            "a key from before metadata has none"
        );
        got.settings.meta = KeyMeta::from_stored(Some(r#"{"tenant":"acme"}"#.to_string()));
        tx.update_key(&got).unwrap();
        tx.commit().unwrap();
    }
    let v = verify_at(store.as_mut(), &secret, now(), "/");
    assert_eq!(v.outcome, Outcome::Valid);
    assert_eq!(v.key.unwrap().settings.meta.entries()["tenant"], "acme");
}

/// The schema: a database without keyctl tables is refused (init creates them in a
/// schema of their own, beside other tables), a newer schema is used only when it says
/// this keyctl can, `migrate` twice changes nothing.
#[test]
fn postgres_schemas_are_created_only_by_init_and_checked_on_open() {
    let name = pg::fresh_database_name();
    let mut other = postgres::Client::connect(&pg::url_of(&name), postgres::NoTls).unwrap();
    other
        .batch_execute("CREATE TABLE public.orders (id BIGINT)")
        .unwrap();
    let location = Location::parse(&pg::url_of(&name)).unwrap();
    let refused = open(&location, &OpenOptions::default()).err().unwrap();
    assert_eq!(refused.kind(), Some(ErrorKind::NotFound));
    assert_eq!(
        refused.to_string(),
        format!("{location} holds no keyctl store (schema keyctl)")
    );
    assert_eq!(
        keyctl::store::migrate(&location).err().unwrap().kind(),
        Some(ErrorKind::NotFound)
    );
    let (_, created) = open(&location, &create()).unwrap();
    assert!(created);
    let tables: i64 = other
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'keyctl'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(tables >= 10, "{tables}");
    let (from, to) = keyctl::store::migrate(&location).unwrap();
    assert_eq!(from, to, "nothing to migrate");
    assert_eq!(keyctl::store::migrate(&location).unwrap(), (from, to));

    // A schema of its own from the URL's options.
    let tenant = Location::parse(&format!(
        "{}&options=-csearch_path%3Dtenant_a",
        pg::url_of(&name)
    ))
    .unwrap();
    assert!(is_empty_target(&tenant).unwrap());
    let (_, created) = open(&tenant, &create()).unwrap();
    assert!(created);

    // Newer schemas: usable while they say this keyctl may use them.
    let mut meta = |sql: &str| other.batch_execute(sql).unwrap();
    meta("INSERT INTO keyctl.schema_meta VALUES (99, '0.0.1', 0)");
    assert!(open(&location, &OpenOptions::default()).is_ok());
    meta("INSERT INTO keyctl.schema_meta VALUES (100, '99.0.0', 0)");
    let newer = open(&location, &OpenOptions::default()).err().unwrap();
    assert_eq!(newer.kind(), Some(ErrorKind::Refused));
    assert!(
        newer.to_string().contains("needs keyctl >= 99.0.0"),
        "{newer}"
    );
    // An older one is refused until `keyctl migrate` (no host upgrades it on its own).
    meta("DELETE FROM keyctl.schema_meta");
    let older = open(&location, &OpenOptions::default()).err().unwrap();
    assert_eq!(older.kind(), Some(ErrorKind::Refused));
    assert!(
        older.to_string().contains("run `keyctl migrate`"),
        "{older}"
    );
}

/// Failures name the server by its masked URL, in one line, never with the password.
#[test]
fn postgres_failures_are_one_line_without_the_password() {
    let base = pg::url_of("postgres");
    let (_, rest) = base.split_once('@').unwrap();
    let with_password = format!("postgres://postgres:hunter2@{rest}");
    let unreachable =
        "postgres://postgres:hunter2@127.0.0.1:1/postgres?sslmode=disable".to_string();
    let missing_db = with_password.replace("/postgres?", "/no_such_db?");
    for (url, kind, words) in [
        (
            unreachable,
            ErrorKind::Unavailable,
            "cannot reach PostgreSQL at",
        ),
        (
            missing_db,
            ErrorKind::NotFound,
            "no such PostgreSQL database",
        ),
    ] {
        let location = Location::parse(&url).unwrap();
        assert!(location.password_in_url());
        let e = open(&location, &OpenOptions::default()).err().unwrap();
        let text = e.to_string();
        assert_eq!(e.kind(), Some(kind), "{text}");
        assert!(text.contains(words), "{text}");
        assert!(text.contains("postgres:***@"), "{text}");
        assert!(
            !text.contains("hunter2") && !format!("{e:?}").contains("hunter2"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}

/// A role that logs in with a password: the right one (from the URL, as `KEYCTL_DB`
/// may carry it) opens the store, a wrong one is one line without it.
#[test]
fn a_wrong_password_is_one_line_without_the_password() {
    let name = pg::fresh_database_name();
    let mut admin = pg::admin_client();
    // Roles are cluster-wide: create it once, whichever test binary runs first.
    let _ = admin.batch_execute("CREATE ROLE keyctl_pw LOGIN PASSWORD 'right-one'");
    admin
        .batch_execute(&format!("ALTER DATABASE {name} OWNER TO keyctl_pw"))
        .unwrap();
    let (endpoint, _) = pg::tls_endpoint();
    let url = |password: &str| {
        Location::parse(&format!(
            "postgres://keyctl_pw:{password}@{endpoint}/{name}?sslmode=disable"
        ))
        .unwrap()
    };
    let e = open(&url("wrong-one"), &create()).err().unwrap();
    let text = e.to_string();
    assert_eq!(e.kind(), Some(ErrorKind::Unavailable), "{text}");
    assert!(
        text.starts_with(&format!(
            "cannot log in to PostgreSQL at postgres://keyctl_pw:***@{endpoint}/{name}"
        )),
        "{text}"
    );
    assert!(!text.contains("wrong-one") && !format!("{e:?}").contains("wrong-one"));
    assert_eq!(text.lines().count(), 1);
    let (_, created) = open(&url("right-one"), &create()).unwrap();
    assert!(created);
}

/// A handle whose connection the server dropped (a restart, an administrator) fails
/// the transaction it was in, nothing of which commits, and reconnects at the next
/// begin: a long `verify --stream` keeps going.
#[test]
fn a_dropped_connection_fails_its_transaction_and_the_next_begin_reconnects() {
    let location = pg::fresh_database();
    let (secret, k) = numbered_key(1, "steady");
    let mut store = handle(&location);
    insert(store.as_mut(), &k);
    let name = pg::database_of(&location);
    // Ends every connection to the store's database, and waits until they are gone.
    let kill = || {
        let mut admin = pg::admin_client();
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .unwrap();
        let left = |admin: &mut postgres::Client| -> i64 {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&name],
                )
                .unwrap()
                .get(0)
        };
        while left(&mut admin) > 0 {
            thread::yield_now();
        }
    };
    // Mid-transaction: the write is lost with the connection, and said so.
    {
        let mut tx = store.begin(Intent::Admin).unwrap();
        tx.set_setting("max-keys", Some("3")).unwrap();
        kill();
        let e = tx.set_setting("log-retention", Some("30d")).err().unwrap();
        assert_eq!(e.kind(), Some(ErrorKind::Unavailable), "{e}");
        assert!(
            e.to_string().starts_with("cannot reach PostgreSQL at "),
            "{e}"
        );
    }
    // Between transactions: the next begin reconnects without the caller noticing.
    assert_eq!(
        verify_at(store.as_mut(), &secret, now(), "/1").outcome,
        Outcome::Valid
    );
    kill();
    assert_eq!(
        verify_at(store.as_mut(), &secret, now(), "/2").outcome,
        Outcome::Valid
    );
    let tx = store.begin(Intent::Read).unwrap();
    assert_eq!(
        tx.settings().unwrap().max_keys,
        None,
        "nothing partial committed"
    );
    assert_eq!(tx.key_by_id(&k.id).unwrap().unwrap().events_total, 2);
}

/// TLS in libpq's modes against the test server's certificate (for `localhost`, from
/// a test CA): `require` encrypts without checking it, `verify-full` checks chain and
/// name, `verify-ca` only the chain; a wrong name or an unknown CA is one line.
#[test]
fn postgres_tls_modes_check_what_libpq_checks() {
    let name = pg::fresh_database_name();
    let (endpoint, ca) = pg::tls_endpoint();
    let ca = ca.display().to_string().replace('/', "%2F");
    let by_ip = endpoint.replace("localhost", "127.0.0.1");
    let url = |host: &str, mode: &str| {
        Location::parse(&format!(
            "postgres://postgres@{host}/{name}?sslmode={mode}&sslrootcert={ca}"
        ))
        .unwrap()
    };
    for (location, works) in [
        (url(&endpoint, "require"), true),
        (url(&by_ip, "require"), true),
        (url(&endpoint, "verify-full"), true),
        (url(&by_ip, "verify-ca"), true),
        (url(&by_ip, "verify-full"), false),
        (
            Location::parse(&format!(
                "postgres://postgres@{endpoint}/{name}?sslmode=verify-full"
            ))
            .unwrap(),
            false,
        ),
    ] {
        match open(&location, &create()) {
            Ok(_) => assert!(works, "{location} should be refused"),
            Err(e) => {
                assert!(!works, "{location}: {e}");
                let text = e.to_string();
                assert!(
                    text.starts_with("cannot set up TLS with PostgreSQL at "),
                    "{text}"
                );
                assert_eq!(text.lines().count(), 1, "{text}");
            }
        }
    }
    // The store's connections really are encrypted.
    let mut admin = pg::admin_client();
    let mut store = handle(&url(&endpoint, "verify-full"));
    let _tx = store.begin(Intent::Read).unwrap();
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.datname = $1 AND a.application_name = 'keyctl' AND s.ssl",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1);
    // As libpq: a unix socket ignores sslmode.
    let socket = pg::url_of(&name).replace("sslmode=disable", "sslmode=verify-full");
    assert!(open(&Location::parse(&socket).unwrap(), &create()).is_ok());
}

// ---- story 7c: `keyctl migrate` on a current store changes nothing ----

fn migrating_a_current_store_changes_nothing(location: &Location) {
    assert_eq!(
        keyctl::store::migrate(location).err().map(|e| e.kind()),
        Some(Some(ErrorKind::NotFound)),
        "no store yet"
    );
    let (_, k) = numbered_key(1, "kept");
    insert(handle(location).as_mut(), &k);
    let before = dump_all(location);
    let (from, to) = keyctl::store::migrate(location).unwrap();
    assert_eq!(from, to);
    assert_eq!(keyctl::store::migrate(location).unwrap(), (from, to));
    assert_eq!(dump_all(location), before);
}

#[test]
fn migrating_a_current_store_changes_nothing_sqlite() {
    on_sqlite(migrating_a_current_store_changes_nothing);
}

#[test]
fn migrating_a_current_store_changes_nothing_postgres() {
    on_postgres(migrating_a_current_store_changes_nothing);
}

/// SQLite-only: the schema version a store of this keyctl carries (one per migration).
fn current_schema_version() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/sqlite/migrations");
    std::fs::read_dir(dir).unwrap().count() as i64
}

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// SQLite-only: a store as keyctl's first schema left it (built from its own migration,
/// stamped as the v1 keyctl stamped it) migrates on open, and its key reads back with
/// its counters and credits and still verifies.
#[test]
fn a_schema_1_store_migrates_to_the_current_schema_and_its_keys_read_back() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("keys.db");
    let (secret, k) = numbered_key(1, "legacy");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(include_str!("../src/store/sqlite/migrations/001_init.sql"))
            .unwrap();
        c.execute_batch("PRAGMA application_id = 1803117428; PRAGMA user_version = 1;")
            .unwrap();
        c.execute_batch("INSERT INTO credit_pools (id, credits_used) VALUES (1, 2);")
            .unwrap();
        c.execute(
            "INSERT INTO keys (id, secret_hash, name, owner, key_prefix, livemode, \
             quota_total, credit_limit, pool_id, requests_total, created_at, state) \
             VALUES (?1, ?2, 'legacy', 'ops', ?3, 1, 5, 10, 1, 3, ?4, 'active')",
            rusqlite::params![
                k.id,
                key::hash_secret(&secret).to_vec(),
                k.key_prefix,
                to_millis(now() - Duration::days(3)),
            ],
        )
        .unwrap();
    }
    assert_eq!(user_version(&path), 1);

    let location = Location::Sqlite(path.clone());
    // `keyctl migrate` (what opening does anyway on SQLite) says what it did.
    assert_eq!(
        keyctl::store::migrate(&location).unwrap(),
        (1, current_schema_version())
    );
    let (mut store, created) = open(&location, &OpenOptions::default()).unwrap();
    assert!(!created);
    assert_eq!(user_version(&path), current_schema_version());
    {
        let tx = store.begin(Intent::Read).unwrap();
        let got = tx.key_by_id(&k.id).unwrap().unwrap();
        assert_eq!(got.settings.name, "legacy");
        assert_eq!(got.settings.quotas.total, Some(5));
        assert_eq!(got.settings.credit_limit, Some(10));
        assert!(
            got.settings.meta.is_empty(),
            "a key from before metadata has none"
        );
        assert_eq!(got.credits_used, 2);
        assert_eq!(got.accepted_total, 3);
        assert_eq!(
            got.pool_accepted_total, 3,
            "the lineage's total is its key's"
        );
        assert_eq!(
            tx.name_holder("legacy", now()).unwrap().as_deref(),
            Some(k.id.as_str())
        );
    }
    let v = verify_at(store.as_mut(), &secret, now(), "/");
    assert_eq!(v.outcome, Outcome::Valid);
    assert_eq!(v.credits_remaining, Some(7));
    assert_eq!(v.quota_remaining.and_then(|q| q.total), Some(1));
    drop(store);
    // Migrated once: opening again finds the current version and the same key.
    let (mut store, _) = open(&location, &OpenOptions::default()).unwrap();
    let tx = store.begin(Intent::Read).unwrap();
    assert_eq!(tx.key_by_id(&k.id).unwrap().unwrap().accepted_total, 4);
    assert_eq!(user_version(&path), current_schema_version());
}

// ---- store-wide limits: one counter for every key, exact under concurrency ----

/// Sets store settings and recomputes the store-wide counter as `config set` does.
fn set_store_limits(store: &mut dyn Store, settings: &[(&str, &str)]) {
    let mut tx = store.begin(Intent::Admin).unwrap();
    for (name, value) in settings {
        tx.set_setting(name, Some(value)).unwrap();
    }
    tx.reset_store_usage(now(), true, true).unwrap();
    tx.commit().unwrap();
}

fn store_wide_limits_hold_across_keys(location: &Location) {
    const THREADS: usize = 6;
    const EACH: usize = 5;
    let keys: Vec<(String, NewKey)> = (0..3)
        .map(|n| {
            let (secret, mut k) = numbered_key(n + 1, &format!("k{n}"));
            k.settings.group = Some("pro".to_string());
            (secret, k)
        })
        .collect();
    let mut store = handle(location);
    for (_, k) in &keys {
        insert(store.as_mut(), k);
    }
    // One request before the limits: counted in the credits (1 x 1, no multiplier
    // yet) and in the rate window rebuilt from the log.
    assert!(verify_at(store.as_mut(), &keys[0].0, now(), "/before")
        .outcome
        .is_valid());
    // Cost 1 x 1.5 = 2 (rounded up): 1 spent + 2 per request, 21 allows 10 more.
    set_store_limits(
        store.as_mut(),
        &[("credit-limit", "21"), ("group-multiplier.pro", "1.5")],
    );
    {
        let tx = store.begin(Intent::Read).unwrap();
        let figures = tx.store_figures(None).unwrap();
        assert_eq!(figures.credits_used, 1, "spent before the limit");
    }
    let secrets: Vec<&str> = keys.iter().map(|(s, _)| s.as_str()).collect();
    let outcomes = verify_concurrently(location, THREADS, EACH, &secrets);
    assert_accepts_exactly(&outcomes, 10, &Outcome::CreditsExhausted);
    let tx = store.begin(Intent::Read).unwrap();
    assert_eq!(tx.store_figures(None).unwrap().credits_used, 21);
    let spent: u64 = keys
        .iter()
        .map(|(_, k)| tx.key_by_id(&k.id).unwrap().unwrap().credits_used)
        .sum();
    assert_eq!(spent, 21, "each key charged the multiplied cost");
    drop(tx);

    // A store-wide rate limit set now counts the minute's 11 accepted requests
    // (from the log): 4 more allowed.
    set_store_limits(
        store.as_mut(),
        &[("credit-limit", "none"), ("rate-limit", "15/m")],
    );
    let outcomes = verify_concurrently(location, THREADS, EACH, &secrets);
    let limit = keyctl::core::limits::parse_rate_limit("15/m").unwrap();
    assert_accepts_exactly(&outcomes, 4, &Outcome::StoreRateLimited(limit));
    let tx = store.begin(Intent::Read).unwrap();
    let window = tx
        .store_figures(Some(now() - Duration::minutes(1)))
        .unwrap();
    assert_eq!(window.rate_window, 15);
}

#[test]
fn store_wide_limits_hold_across_keys_under_concurrent_verifies_sqlite() {
    on_sqlite(store_wide_limits_hold_across_keys);
}

#[test]
fn store_wide_limits_hold_across_keys_under_concurrent_verifies_postgres() {
    on_postgres(store_wide_limits_hold_across_keys);
}

/// SQLite-only: a store of the schema before the store-wide tables migrates in place,
/// and a credit limit set afterwards counts what its keys spent before.
#[test]
fn a_schema_3_store_gains_the_store_wide_tables_and_counts_earlier_spending() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("keys.db");
    let (secret, k) = numbered_key(1, "legacy");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            include_str!("../src/store/sqlite/migrations/001_init.sql"),
            include_str!("../src/store/sqlite/migrations/002_verification.sql"),
            include_str!("../src/store/sqlite/migrations/003_shared_limits.sql"),
        ] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch("PRAGMA application_id = 1803117428; PRAGMA user_version = 3;")
            .unwrap();
        c.execute_batch("INSERT INTO credit_pools (id, credits_used) VALUES (1, 7);")
            .unwrap();
        c.execute(
            "INSERT INTO keys (id, secret_hash, name, owner, key_prefix, livemode, \
             pool_id, created_at, state) VALUES (?1, ?2, 'legacy', 'ops', ?3, 1, 1, ?4, 'active')",
            rusqlite::params![
                k.id,
                key::hash_secret(&secret).to_vec(),
                k.key_prefix,
                to_millis(now() - Duration::days(3)),
            ],
        )
        .unwrap();
        c.execute(
            "INSERT INTO usage_days (key_id, day, accepted, rejected, credits) VALUES (?1, ?2, 2, 0, 7)",
            rusqlite::params![k.id, days(now()) - 2],
        )
        .unwrap();
    }
    let location = Location::Sqlite(path.clone());
    assert_eq!(
        keyctl::store::migrate(&location).unwrap(),
        (3, current_schema_version())
    );
    let mut store = handle(&location);
    set_store_limits(store.as_mut(), &[("credit-limit", "10")]);
    assert_eq!(
        verify_at(store.as_mut(), &secret, now(), "/").outcome,
        Outcome::Valid
    );
    for _ in 0..2 {
        assert_eq!(
            verify_at(store.as_mut(), &secret, now(), "/").outcome,
            Outcome::Valid
        );
    }
    assert_eq!(
        verify_at(store.as_mut(), &secret, now(), "/").outcome,
        Outcome::CreditsExhausted,
        "7 spent before the limit, 3 after"
    );
}

/// Builds the schema of SQLite version `version` on `c` with the migrations as they
/// shipped, stamped as keyctl stamps it.
fn schema_store(c: &rusqlite::Connection, version: usize) {
    let migrations = [
        include_str!("../src/store/sqlite/migrations/001_init.sql"),
        include_str!("../src/store/sqlite/migrations/002_verification.sql"),
        include_str!("../src/store/sqlite/migrations/003_shared_limits.sql"),
        include_str!("../src/store/sqlite/migrations/004_import.sql"),
        include_str!("../src/store/sqlite/migrations/005_meta.sql"),
        include_str!("../src/store/sqlite/migrations/006_refill.sql"),
        include_str!("../src/store/sqlite/migrations/007_store_limits.sql"),
        include_str!("../src/store/sqlite/migrations/008_store_counter_in_ledger.sql"),
    ];
    for sql in &migrations[..version] {
        c.execute_batch(sql).unwrap();
    }
    c.execute_batch(&format!(
        "PRAGMA application_id = 1803117428; PRAGMA user_version = {version};"
    ))
    .unwrap();
}

/// SQLite-only: a store of schema 7 (the store-wide counter in a row of its own)
/// migrates: the counter moves into the ledger's last row, so the credits charged and
/// the rate window read back the same and counting goes on from them.
#[test]
fn a_schema_7_store_keeps_its_store_wide_counter_and_window() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("keys.db");
    let at = to_millis(now());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        schema_store(&c, 7);
        // 12 accepted requests in all, the last 3 within the last minute; 40 credits.
        c.execute(
            "INSERT INTO store_usage (id, credits_used, accepted_total, last_event_at) \
             VALUES (1, 40, 12, ?1)",
            [at - 1000],
        )
        .unwrap();
        for (n, ago) in [(9, 120_000), (10, 30_000), (11, 2000), (12, 1000)] {
            c.execute(
                "INSERT INTO store_events (at, n) VALUES (?1, ?2)",
                [at - ago, n],
            )
            .unwrap();
        }
    }
    assert_eq!(
        keyctl::store::migrate(&Location::Sqlite(path.clone())).unwrap(),
        (7, current_schema_version())
    );
    let mut store = handle(&Location::Sqlite(path.clone()));
    let minute_ago = Some(now() - Duration::minutes(1));
    {
        let tx = store.begin(Intent::Read).unwrap();
        let figures = tx.store_figures(minute_ago).unwrap();
        assert_eq!((figures.credits_used, figures.rate_window), (40, 3));
    }
    let mut tx = store.begin(Intent::Verify).unwrap();
    tx.record_store_usage(now(), 5, true).unwrap();
    tx.commit().unwrap();
    let tx = store.begin(Intent::Read).unwrap();
    let figures = tx.store_figures(minute_ago).unwrap();
    assert_eq!((figures.credits_used, figures.rate_window), (45, 4));
    let tables: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'store_usage'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the counter's own table is gone");
}

/// SQLite-only: a store of schema 8 (a key's running totals in its keys row) migrates:
/// the totals, the last use and the ledger read back the same, recording goes on from
/// them (an accepted request moves the last use, a rejected one keeps it), a key whose
/// ledger is empty keeps its totals, and a copy carries the totals as they read.
#[test]
fn a_schema_8_store_keeps_its_keys_totals_and_last_use() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("keys.db");
    let (secret, used) = numbered_key(1, "used");
    let (_, idle) = numbered_key(2, "idle");
    let ms = |t: DateTime<Utc>| to_millis(t);
    let last_event = now() - Duration::hours(2);
    let last_use = now() - Duration::hours(3);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        schema_store(&c, 8);
        // Key 1: 7 recorded requests, 5 accepted (its quota allows 6 in all), 2
        // rejected, 9 credits; the newest ledger row carries the counts as schema 8
        // wrote them. Key 2: counts from before the ledger existed, no ledger row.
        for (pool, k, totals, quota) in [
            (1, &used, (5, 7, 2, 9), Some(6)),
            (2, &idle, (3, 0, 0, 4), None),
        ] {
            c.execute(
                "INSERT INTO credit_pools (id, credits_used, accepted_total, last_event_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![pool, totals.3, totals.0, ms(last_event)],
            )
            .unwrap();
            c.execute(
                "INSERT INTO keys (id, secret_hash, name, owner, livemode, scopes, \
                 allowed_models, allowed_ips, quota_total, pool_id, requests_total, \
                 created_at, last_used_at, last_used_ip, state, events_total, \
                 rejected_total, credits_total, last_event_at) VALUES (?1, ?2, ?3, 'ops', \
                 1, '[]', '[]', '[]', ?4, ?5, ?6, ?7, ?8, '198.51.100.1', 'active', ?9, \
                 ?10, ?11, ?12)",
                rusqlite::params![
                    k.id,
                    &k.hash[..],
                    k.settings.name,
                    quota,
                    pool,
                    totals.0,
                    ms(now() - Duration::days(3)),
                    ms(last_use),
                    totals.1,
                    totals.2,
                    totals.3,
                    ms(last_event)
                ],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO key_events (key_id, at, n, accepted_cum, credits_cum, accepted, cost) \
             VALUES (?1, ?2, 7, 5, 9, 0, 0)",
            rusqlite::params![used.id, ms(last_event)],
        )
        .unwrap();
    }
    assert_eq!(
        keyctl::store::migrate(&Location::Sqlite(path.clone())).unwrap(),
        (8, current_schema_version())
    );
    let location = Location::Sqlite(path.clone());
    let mut store = handle(&location);
    // (accepted, recorded, credits, last use, its IP) as a reader sees them.
    let figures = |store: &mut dyn Store, id: &str| {
        let tx = store.begin(Intent::Read).unwrap();
        let k = tx.key_by_id(id).unwrap().unwrap();
        (
            k.accepted_total,
            k.events_total,
            k.credits_total,
            k.last_used_at,
            k.last_used_ip,
        )
    };
    let before = Some("198.51.100.1".to_string());
    assert_eq!(
        figures(store.as_mut(), &used.id),
        (5, 7, 9, Some(last_use), before.clone())
    );
    assert_eq!(
        figures(store.as_mut(), &idle.id),
        (3, 0, 4, Some(last_use), before.clone())
    );
    let ip = Some("203.0.113.7".to_string());
    assert_eq!(
        verify_recording(store.as_mut(), &secret, now(), 2, false),
        Outcome::Valid
    );
    assert_eq!(
        figures(store.as_mut(), &used.id),
        (6, 8, 11, Some(now()), ip.clone())
    );
    let later = now() + Duration::minutes(1);
    assert_eq!(
        verify_recording(store.as_mut(), &secret, later, 2, true),
        Outcome::QuotaExceeded("total")
    );
    assert_eq!(
        figures(store.as_mut(), &used.id),
        (6, 9, 11, Some(now()), ip.clone())
    );
    {
        let tx = store.begin(Intent::Read).unwrap();
        let k = tx.key_by_id(&used.id).unwrap().unwrap();
        // The last hour: the two requests recorded since the migration.
        let hour = tx.usage_windows(&k, &[later - Duration::hours(1)]).unwrap();
        assert_eq!(
            hour[0],
            UsageFigures {
                accepted: 1,
                rejected: 1,
                credits: 2
            }
        );
    }
    // A copy holds the totals as they read, in the keys row of the copy.
    let copied = Location::Sqlite(dir.path().join("copy.db"));
    copy(&location, &copied);
    let mut copy_store = handle(&copied);
    assert_eq!(
        figures(copy_store.as_mut(), &used.id),
        (6, 9, 11, Some(now()), ip)
    );
    let row: (i64, i64, i64, i64, i64, String) = rusqlite::Connection::open(
        dir.path().join("copy.db"),
    )
    .unwrap()
    .query_row(
        "SELECT requests_total, events_total, rejected_total, credits_total, last_event_at, \
             last_used_ip FROM keys WHERE id = ?1",
        [&used.id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
    .unwrap();
    assert_eq!(row, (6, 9, 3, 11, ms(later), "203.0.113.7".to_string()));
}

/// The store-wide counter outlives the pruning of the rate window's ledger, counts
/// without a rate limit too, and a credit recount keeps the window.
fn the_store_counter_survives_pruning(location: &Location) {
    let mut store = handle(location);
    set_store_limits(store.as_mut(), &[("credit-limit", "1000")]);
    // A time the ledger is pruned at (every 64th millisecond), and one it is not.
    let base = now() + Duration::milliseconds(64 - to_millis(now()).rem_euclid(64));
    let record = |store: &mut dyn Store, at: DateTime<Utc>, credits: u64, ledger: bool| {
        let mut tx = store.begin(Intent::Verify).unwrap();
        tx.lock_store_usage().unwrap();
        tx.record_store_usage(at, credits, ledger).unwrap();
        tx.commit().unwrap();
    };
    for i in 0..3 {
        record(
            store.as_mut(),
            base + Duration::milliseconds(i + 1),
            2,
            false,
        );
    }
    // Five minutes on, at a pruning time: the three rows go, not the count.
    let later = base + Duration::milliseconds(64 * 4688);
    record(store.as_mut(), later, 10, true);
    record(store.as_mut(), later + Duration::milliseconds(1), 1, true);
    let window_start = Some(base + Duration::minutes(4));
    {
        let tx = store.begin(Intent::Read).unwrap();
        let figures = tx.store_figures(window_start).unwrap();
        assert_eq!((figures.credits_used, figures.rate_window), (17, 2));
        assert_eq!(tx.store_figures(None).unwrap().rate_window, 0);
    }
    // `config set credit-limit` recounts the credits from the usage days (none were
    // recorded here: 0) and leaves the window.
    let mut tx = store.begin(Intent::Admin).unwrap();
    tx.reset_store_usage(now(), true, false).unwrap();
    tx.commit().unwrap();
    record(store.as_mut(), later + Duration::milliseconds(2), 3, true);
    let tx = store.begin(Intent::Read).unwrap();
    let figures = tx.store_figures(window_start).unwrap();
    assert_eq!((figures.credits_used, figures.rate_window), (3, 3));
}

#[test]
fn the_store_counter_survives_pruning_sqlite() {
    on_sqlite(the_store_counter_survives_pruning);
}

#[test]
fn the_store_counter_survives_pruning_postgres() {
    on_postgres(the_store_counter_survives_pruning);
}

// ---- import (SPEC §8): keys of another format, and keys known by their hash alone ----

/// Imported keys: one of another format (a display prefix of its own) and one known by
/// its sha256 alone (no display prefix). Both read back as inserted, verify by their
/// hash, keep an imported last use, never match a prefix lookup by their missing
/// prefix, and travel through a verbatim copy.
fn imported_keys_read_back_verify_and_copy(location: &Location) {
    let mut store = handle(location);
    let foreign = "sk-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL";
    let hash_only = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let (_, mut with_prefix) = numbered_key(1, "newapi");
    with_prefix.hash = key::hash_secret(foreign);
    with_prefix.key_prefix = Some(key::foreign_display_prefix(foreign));
    let (_, mut without) = numbered_key(2, "legacy");
    without.hash = key::hash_secret(hash_only);
    without.key_prefix = None;
    let used = now() - Duration::days(40);
    {
        let mut tx = store.begin(Intent::Bulk).unwrap();
        tx.insert_key(&with_prefix).unwrap();
        tx.insert_key(&without).unwrap();
        tx.set_imported_last_use(&without.id, used).unwrap();
        tx.commit().unwrap();
    }
    {
        let tx = store.begin(Intent::Read).unwrap();
        let got = tx.key_by_id(&without.id).unwrap().unwrap();
        assert_eq!(got.key_prefix, None);
        assert_eq!(got.last_used_at, Some(used));
        assert_eq!(got.events_total, 0, "an imported last use is no request");
        let got = tx.key_by_id(&with_prefix.id).unwrap().unwrap();
        assert_eq!(got.key_prefix.as_deref(), Some("sk-012345678"));
        assert_eq!(tx.keys_by_prefix("sk-012345678").unwrap().len(), 1);
        for missing in ["", "(hash only)", "null"] {
            assert!(tx.keys_by_prefix(missing).unwrap().is_empty(), "{missing}");
        }
        let found = tx.keys_by_hashes(&[key::hash_secret(hash_only)]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.id, without.id);
        // The store's prefixes (scan) come from keyctl-shaped prefixes only.
        assert!(tx.key_prefixes().unwrap().iter().all(|p| p == "sk"));
    }
    for (secret, id) in [(foreign, &with_prefix.id), (hash_only, &without.id)] {
        let v = verify_at(store.as_mut(), secret, now(), "/");
        assert_eq!(v.outcome, Outcome::Valid, "{secret}");
        assert_eq!(v.key.map(|k| k.id), Some(id.clone()));
    }
    // A verbatim copy (what `copy` and `backup` do) keeps the missing prefix.
    let dir = TempDir::new().unwrap();
    let target = Location::Sqlite(dir.path().join("copy.db"));
    {
        let from = store.begin(Intent::Read).unwrap();
        let mut to_store = handle(&target);
        let mut to = to_store.begin(Intent::Bulk).unwrap();
        copy_rows(from.as_ref(), to.as_mut()).unwrap();
        to.commit().unwrap();
    }
    let mut copied = handle(&target);
    let tx = copied.begin(Intent::Read).unwrap();
    let got = tx.key_by_id(&without.id).unwrap().unwrap();
    // Verified above at now(): its last use moved from the imported one.
    assert_eq!((got.key_prefix, got.last_used_at), (None, Some(now())));
    drop(tx);
    let v = verify_at(copied.as_mut(), hash_only, now(), "/");
    assert_eq!(v.outcome, Outcome::Valid);
}

#[test]
fn imported_keys_read_back_verify_and_copy_sqlite() {
    on_sqlite(imported_keys_read_back_verify_and_copy);
}

#[test]
fn imported_keys_read_back_verify_and_copy_postgres() {
    on_postgres(imported_keys_read_back_verify_and_copy);
}
