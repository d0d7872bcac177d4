//! SPEC §4 under faults: "every command is one SQLite transaction: it happens entirely
//! or not at all, also when the process is killed".
//!
//! Each test spawns the real binary and SIGKILLs it after a delay drawn from a seeded
//! generator across 0..1.5× of a measured run of the same command (the median of five
//! for the quick ones, a single run for a batch or a stream), so kills land
//! before the transaction (while starting or reading input), during it, and after the
//! commit or the exit. After every kill: the store opens (`list --json` exits 0),
//! `PRAGMA integrity_check` is ok, `audit verify` passes, and the command left either
//! its whole effect or none of it, in the keys, the audit trail and the request log.
//!
//! On PostgreSQL every story runs too, reading the rows through the server (`Rows`);
//! the integrity check and the WAL's evidence of a kill inside the commit are
//! SQLite's.
//!
//! The delays are deterministic given the seed: `KEYCTL_CRASH_SEED` (decimal or 0x-hex)
//! replaces the built-in one, and a failure prints the seed, the round and the delay.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::support::*;

/// The store's rows, read beneath what any command shows, on either backend.
enum Rows {
    Sqlite(Connection),
    Pg(postgres::Client),
}

/// The store's rows (see `Rows`).
fn raw_rows(env: &TestEnv) -> Rows {
    match env.pg_client() {
        Some(client) => Rows::Pg(client),
        None => Rows::Sqlite(Connection::open(env.db_file()).expect("open the store")),
    }
}

impl Rows {
    /// Every row of `sql` (`?1`, `?2` bound to `args`), each column as text (NULL as
    /// None), whichever backend answers.
    fn text(&mut self, sql: &str, args: &[&str]) -> Vec<Vec<Option<String>>> {
        use rusqlite::types::Value as V;
        match self {
            Rows::Sqlite(conn) => {
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        (0..n)
                            .map(|i| {
                                Ok(match r.get::<_, V>(i)? {
                                    V::Null => None,
                                    V::Integer(v) => Some(v.to_string()),
                                    V::Real(v) => Some(v.to_string()),
                                    V::Text(t) => Some(t),
                                    V::Blob(b) => Some(hex(&b)),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.collect::<rusqlite::Result<_>>()
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Rows::Pg(client) => {
                // Ids and names only: bound as literals, so the simple protocol gives
                // every column as text.
                let mut bound = sql.to_string();
                for (i, arg) in args.iter().enumerate().rev() {
                    assert!(!arg.contains('\''), "{arg:?}");
                    bound = bound.replace(&format!("?{}", i + 1), &format!("'{arg}'"));
                }
                client
                    .simple_query(&bound)
                    .unwrap_or_else(|e| panic!("{bound}: {e}"))
                    .into_iter()
                    .filter_map(|m| match m {
                        postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect()
            }
        }
    }
}

const BATCH_KILLS: usize = 20;
const ROTATE_KILLS: usize = 30;
const EDIT_KILLS: usize = 30;
const DELETE_KILLS: usize = 30;
const STREAM_KILLS: usize = 20;

// Issue 7: at least 100 kills across the suite.
const _: () = assert!(BATCH_KILLS + ROTATE_KILLS + EDIT_KILLS + DELETE_KILLS + STREAM_KILLS >= 100);

/// Lines of each killed batch: enough that a kill often lands inside its transaction.
const BATCH_LINES: usize = 2000;
/// Batch rounds per store: a fresh store then keeps each round's checks (which read
/// the whole store and re-hash the whole audit chain) quick.
const BATCH_ROUNDS_PER_STORE: usize = 5;
/// Requests fed to each killed stream.
const STREAM_LINES: usize = 1500;

const DEFAULT_SEED: u64 = 0x6b65_7963_746c_0007;

/// Delays are drawn from 0 to this many times the measured run.
const SPREAD: f64 = 1.5;

/// How long a killed process may take to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(10);

fn base_seed() -> u64 {
    match std::env::var("KEYCTL_CRASH_SEED") {
        Err(_) => DEFAULT_SEED,
        Ok(text) => {
            let t = text.trim();
            let parsed = match t.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => t.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("KEYCTL_CRASH_SEED={text:?}: {e}"))
        }
    }
}

/// One kind of killed command: its generator, the delays drawn so far and a tally of
/// where the kills landed. Dropped during a panic, it prints how to replay the run.
struct Group {
    name: &'static str,
    base_seed: u64,
    rng: SplitMix64,
    rounds: usize,
    /// The measured duration of one uninterrupted run.
    typical: Duration,
    round: usize,
    delay: Duration,
    kills: usize,
    tally: BTreeMap<&'static str, usize>,
}

impl Group {
    fn new(name: &'static str, rounds: usize) -> Group {
        let base_seed = base_seed();
        // One stream per group, so adding rounds to one group leaves the others' alone.
        let group_seed = name.bytes().fold(base_seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Group {
            name,
            base_seed,
            rng: SplitMix64::new(group_seed),
            rounds,
            typical: Duration::ZERO,
            round: 0,
            delay: Duration::ZERO,
            kills: 0,
            tally: BTreeMap::new(),
        }
    }

    /// Where we are, for assertion messages.
    fn at(&self) -> String {
        format!(
            "crash/{} round {}/{}: SIGKILL after {:?} (one run takes {:?}), seed {:#x}",
            self.name, self.round, self.rounds, self.delay, self.typical, self.base_seed
        )
    }

    /// Runs `command` on `env`'s store, kills it after the next seeded delay, and
    /// returns how it ended.
    fn kill(&mut self, env: &TestEnv, command: Command, input: Option<Vec<u8>>) -> Killed {
        assert!(self.typical > Duration::ZERO, "measure a run first");
        self.delay = self.typical.mul_f64(self.rng.unit() * SPREAD);
        // A PostgreSQL store has no file to watch: its kills are tallied before or
        // after the commit only.
        let file = env.database().is_none().then(|| env.db_file());
        let wal_before = file.and_then(wal_stamp);
        let mut run = run_and_kill(command, self.delay, input);
        // Only the killed process ran in between (connections that merely read never
        // write frames; opening one may create an empty -wal).
        let wal_after = file.and_then(wal_stamp);
        run.wal_written = wal_after.is_some_and(|(len, _)| len > 0) && wal_after != wal_before;
        self.kills += 1;
        if !run.cut() {
            // It finished before the signal: then it must have succeeded.
            assert_eq!(
                run.status.code(),
                Some(0),
                "an uninterrupted run failed ({})\nstderr: {}",
                self.at(),
                String::from_utf8_lossy(&run.stderr)
            );
        }
        run
    }

    /// Counts where the kill of this round landed.
    fn landed(&mut self, run: &Killed, what: &'static str) {
        let key = match (run.cut(), what) {
            (false, _) => "finished before the kill",
            (true, w) => w,
        };
        *self.tally.entry(key).or_default() += 1;
        self.round += 1;
    }

    /// Every round ran and killed its process; prints where the kills landed.
    fn finish(&self) {
        assert_eq!(self.kills, self.rounds, "{}", self.at());
        let cut: usize = self
            .tally
            .iter()
            .filter(|(k, _)| !k.starts_with("finished"))
            .map(|(_, n)| n)
            .sum();
        eprintln!(
            "crash/{}: {} kills (seed {:#x}, one run {:?}): {:?}",
            self.name, self.kills, self.base_seed, self.typical, self.tally
        );
        assert!(
            cut > 0,
            "no kill interrupted a running process: the test proved nothing ({})",
            self.at()
        );
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n*** {} failed at {}\n*** replay: KEYCTL_CRASH_SEED={:#x} cargo test --test cli crash::\n*** kills so far: {:?}",
                self.name,
                self.at(),
                self.base_seed,
                self.tally
            );
        }
    }
}

/// How a killed run ended and what it printed before.
struct Killed {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The process wrote frames to the store's `-wal` before it ended.
    wal_written: bool,
}

impl Killed {
    /// True when the SIGKILL ended it (rather than its own exit).
    fn cut(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }

    /// Where a kill that left the store unchanged landed: a process that wrote to the
    /// `-wal` was inside its commit (the log header or frames written, no commit frame;
    /// with `synchronous = FULL` SQLite also syncs a new log's header there).
    fn unapplied(&self) -> &'static str {
        if self.wal_written {
            "killed during the commit (WAL written, no commit frame)"
        } else {
            "killed before the commit"
        }
    }
}

/// The size and modification time of the store's `-wal`, if it has one.
fn wal_stamp(db: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = fs::metadata(with_suffix(db, "-wal")).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Starts `command` (with `input` on stdin, if any) through the harness's one `Run`,
/// and notes when the spawn returned.
fn spawn_piped(command: Command, input: Option<Vec<u8>>) -> (Running, Instant) {
    let run = Run::new(command);
    let run = match input {
        Some(bytes) => run.stdin(&bytes),
        None => run,
    };
    let running = run.spawn();
    (running, Instant::now())
}

/// What a killed run left behind, once it ended with `status`.
fn killed(run: Running, status: ExitStatus) -> Killed {
    let output = run.finish(status);
    Killed {
        status,
        stdout: output.stdout,
        stderr: output.stderr,
        wal_written: false,
    }
}

/// Spawns `command` and sends it SIGKILL `delay` after the spawn returned (the signal
/// is sent even if it has exited: an unreaped child cannot be confused with another).
fn run_and_kill(command: Command, delay: Duration, input: Option<Vec<u8>>) -> Killed {
    let (mut run, started) = spawn_piped(command, input);
    std::thread::sleep(delay.saturating_sub(started.elapsed()));
    run.kill();
    let status = run
        .wait_within(REAP_LIMIT)
        .expect("a killed keyctl was reaped");
    killed(run, status)
}

/// How long one uninterrupted run of `command` takes (it must succeed).
fn measure_one(command: Command, input: Option<Vec<u8>>) -> Duration {
    let (mut run, started) = spawn_piped(command, input);
    let status = run.wait_to_end();
    let took = started.elapsed();
    let done = killed(run, status);
    assert_eq!(
        done.status.code(),
        Some(0),
        "the measuring run failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    took
}

/// The median duration of `runs` uninterrupted runs; `make(i)` gives the i-th run's
/// command (each must do the real work, not find it already done).
fn measure(runs: usize, mut make: impl FnMut(usize) -> Command) -> Duration {
    let mut took: Vec<Duration> = (0..runs).map(|i| measure_one(make(i), None)).collect();
    took.sort();
    took[runs / 2]
}

/// After a kill: the store opens (`list --json --all --search SEARCH` exits 0, whose
/// keys are returned), `PRAGMA integrity_check` says ok and `audit verify` passes
/// (whose event count is returned).
fn check_store(env: &TestEnv, at: &str, search: &str) -> (Vec<Value>, u64) {
    let list = env.run(&["list", "--json", "--all", "--search", search]);
    assert_eq!(
        list.code,
        Some(0),
        "the store does not open after the kill ({at})\n{list}"
    );
    list.no_panic();
    let keys = match list.json() {
        Value::Array(items) => items,
        other => panic!("list --json printed {other} ({at})"),
    };
    // SQLite's own check of its file; PostgreSQL's server keeps its own pages whole.
    if env.database().is_none() {
        let integrity = env.integrity_check();
        assert_eq!(
            integrity, "ok",
            "PRAGMA integrity_check after the kill ({at})"
        );
    }
    let audit = env.run(&["audit", "verify"]);
    assert_eq!(
        audit.code,
        Some(0),
        "audit verify fails after the kill ({at})\n{audit}"
    );
    let (events, _) = parse_verify_line(&audit.stdout);
    (keys, events)
}

/// The first row of `sql` (see `Rows::text`), if any.
fn first_row(conn: &mut Rows, sql: &str, args: &[&str]) -> Option<Vec<Option<String>>> {
    conn.text(sql, args).into_iter().next()
}

/// A number column as text, parsed (NULL as None).
fn int(cell: &Option<String>) -> Option<i64> {
    cell.as_ref().map(|v| {
        v.parse()
            .unwrap_or_else(|e| panic!("{v:?} is not a number: {e}"))
    })
}

fn count(conn: &mut Rows, sql: &str, args: &[&str]) -> i64 {
    let rows = conn.text(sql, args);
    let cell = rows.first().and_then(|r| r.first().cloned().flatten());
    cell.and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: no count in {rows:?}"))
}

/// The columns of one key row these tests look at.
#[derive(Debug, Clone, PartialEq)]
struct KeyRow {
    name: String,
    description: Option<String>,
    quota_daily: Option<i64>,
    scopes: String,
    state: String,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
    rotated_from: Option<String>,
    rotated_to: Option<String>,
}

fn key_row(conn: &mut Rows, id: &str) -> Option<KeyRow> {
    let rows = conn.text(
        "SELECT name, description, quota_daily, scopes, state, revoked_at, revoke_reason, \
         rotated_from, rotated_to FROM keys WHERE id = ?1",
        &[id],
    );
    let row = rows.into_iter().next()?;
    let int = |cell: &Option<String>| cell.as_ref().map(|v| v.parse::<i64>().expect("a number"));
    Some(KeyRow {
        name: row[0].clone().expect("a name"),
        description: row[1].clone(),
        quota_daily: int(&row[2]),
        scopes: row[3].clone().expect("scopes"),
        state: row[4].clone().expect("a state"),
        revoked_at: int(&row[5]),
        revoke_reason: row[6].clone(),
        rotated_from: row[7].clone(),
        rotated_to: row[8].clone(),
    })
}

/// The details of every `action` event of key `id`, oldest first.
fn events_of(conn: &mut Rows, id: &str, action: &str) -> Vec<Value> {
    conn.text(
        "SELECT details FROM audit_events WHERE key_id = ?1 AND action = ?2 ORDER BY seq",
        &[id, action],
    )
    .into_iter()
    .map(|r| {
        let details = r[0].as_deref().expect("audit details");
        serde_json::from_str(details).expect("audit details are json")
    })
    .collect()
}

// ---- create --batch ----

/// A batch file of `BATCH_LINES` keys named `TAG-0000`...
fn batch_file(env: &TestEnv, tag: &str) -> PathBuf {
    let path = env.root().join(format!("{tag}.ndjson"));
    let mut text = String::with_capacity(BATCH_LINES * 120);
    for j in 0..BATCH_LINES {
        let line = json!({
            "name": format!("{tag}-{j:04}"),
            "description": "made by a batch that may be killed",
            "scopes": ["read", "write"],
            "quota_daily": 1000 + j,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    fs::write(&path, text).expect("write the batch file");
    path
}

fn batch_command(env: &TestEnv, file: &Path) -> Command {
    let mut c = env.command();
    c.args(["create", "--batch"]).arg(file);
    c
}

/// A store for batches, holding one key made before them.
fn batch_store() -> TestEnv {
    let env = TestEnv::initialized();
    env.create("made-before-the-batches", &[]);
    env
}

#[test]
fn a_killed_batch_creates_none_or_all_of_its_keys() {
    let mut g = Group::new("batch", BATCH_KILLS);
    let mut env = batch_store();
    // One run (each adds BATCH_LINES keys): the median of several would cost more
    // than the spread it removes.
    g.typical = measure(1, |_| batch_command(&env, &batch_file(&env, "measure")));
    let (_, mut events) = check_store(&env, "after the measuring run", "measure-");
    for round in 0..BATCH_KILLS {
        if round > 0 && round % BATCH_ROUNDS_PER_STORE == 0 {
            env = batch_store();
            events = 1;
        }
        let tag = format!("b{round:02}");
        let file = batch_file(&env, &tag);
        let run = g.kill(&env, batch_command(&env, &file), None);
        let at = g.at();
        let (listed, after) = check_store(&env, &at, &format!("{tag}-"));
        let mut conn = raw_rows(&env);
        let pattern = format!("{tag}-%");
        let present = count(
            &mut conn,
            "SELECT count(*) FROM keys WHERE name LIKE ?1",
            &[&pattern],
        );
        assert!(
            present == 0 || present == BATCH_LINES as i64,
            "a killed batch left {present} of its {BATCH_LINES} keys ({at})"
        );
        assert_eq!(listed.len() as i64, present, "list shows the batch ({at})");
        assert_eq!(
            after,
            events + present as u64,
            "the audit trail gained exactly the batch's events ({at})"
        );
        // The new events (seq after the old head) are this batch's 'created' events.
        let audited = count(
            &mut conn,
            &format!(
                "SELECT count(*) FROM audit_events WHERE seq > {events} AND action = 'created' \
                 AND key_id IN (SELECT id FROM keys WHERE name LIKE ?1)"
            ),
            &[&pattern],
        );
        assert_eq!(
            audited, present,
            "one 'created' event per key of the batch present ({at})"
        );
        let unmatched = count(
            &mut conn,
            "SELECT count(*) FROM keys k WHERE k.name LIKE ?1 AND (SELECT count(*) \
             FROM audit_events a WHERE a.key_id = k.id AND a.action = 'created') != 1",
            &[&pattern],
        );
        assert_eq!(
            unmatched, 0,
            "each batch key has its own 'created' event ({at})"
        );
        g.landed(
            &run,
            match (present > 0, run.wal_written, run.stdout.is_empty()) {
                (true, _, _) => "killed after the commit",
                (false, true, _) => run.unapplied(),
                // SPEC §4 prints the secrets before the commit: a kill in between shows
                // keys that never came to exist (never the other way round).
                (false, false, false) => "killed between printing and commit",
                (false, false, true) => run.unapplied(),
            },
        );
        events = after;
    }
    g.finish();
}

// ---- rotate ----

#[test]
fn a_killed_rotate_leaves_the_old_key_or_the_complete_new_pair() {
    let mut g = Group::new("rotate", ROTATE_KILLS);
    let env = TestEnv::initialized();
    let first = env.create(
        "lineage",
        &[
            "--description",
            "rotated under fire",
            "--quota-daily",
            "500",
            "--scope",
            "read",
        ],
    );
    let rotate = |id: &str| {
        let mut c = env.command();
        c.args(["rotate", id, "--yes"]);
        c
    };
    env.create("measure", &[]);
    // Each run rotates the key that holds the name now.
    g.typical = measure(5, |_| rotate("measure"));
    let (_, mut events) = check_store(&env, "after the measuring runs", "lineage");
    let original = key_row(&mut raw_rows(&env), first.id()).expect("the first key");
    let mut current = first.id().to_string();
    for _ in 0..ROTATE_KILLS {
        let keys_before = count(&mut raw_rows(&env), "SELECT count(*) FROM keys", &[]);
        let run = g.kill(&env, rotate(&current), None);
        let at = g.at();
        let (listed, after) = check_store(&env, &at, "lineage");
        let mut conn = raw_rows(&env);
        let old = key_row(&mut conn, &current).expect("the rotated key still exists");
        let successors = count(
            &mut conn,
            "SELECT count(*) FROM keys WHERE rotated_from = ?1",
            &[&current],
        );
        let rotated = events_of(&mut conn, &current, "rotated");
        let keys_now = count(&mut conn, "SELECT count(*) FROM keys", &[]);
        match old.rotated_to.clone() {
            None => {
                assert_eq!(old.state, "active", "old state kept ({at})");
                assert_eq!(successors, 0, "no new key without the link ({at})");
                assert!(rotated.is_empty(), "no 'rotated' event ({at}): {rotated:?}");
                assert_eq!(keys_now, keys_before, "no key added ({at})");
                assert_eq!(after, events, "no audit event added ({at})");
                g.landed(&run, run.unapplied());
            }
            Some(new_id) => {
                let new = key_row(&mut conn, &new_id).unwrap_or_else(|| {
                    panic!("rotated_to names {new_id}, which is missing ({at})")
                });
                assert_eq!(new.rotated_from.as_deref(), Some(current.as_str()), "{at}");
                assert_eq!(old.state, "disabled", "the old key is disabled ({at})");
                assert_eq!(new.state, "active", "the new key is active ({at})");
                assert_eq!(
                    (&new.name, &new.description, new.quota_daily, &new.scopes),
                    (
                        &original.name,
                        &original.description,
                        original.quota_daily,
                        &original.scopes
                    ),
                    "the new key has the old one's settings ({at})"
                );
                assert_eq!(successors, 1, "{at}");
                assert_eq!(keys_now, keys_before + 1, "one key added ({at})");
                assert_eq!(rotated.len(), 1, "one 'rotated' event ({at})");
                assert_eq!(rotated[0]["rotated_to"], new_id.as_str(), "{at}");
                let created = events_of(&mut conn, &new_id, "created");
                assert_eq!(
                    created.len(),
                    1,
                    "one 'created' event for the new key ({at})"
                );
                assert_eq!(created[0]["rotated_from"], current.as_str(), "{at}");
                assert_eq!(after, events + 2, "exactly the two events added ({at})");
                g.landed(&run, "killed after the commit");
                current = new_id;
            }
        }
        let active: Vec<&Value> = listed.iter().filter(|k| k["status"] == "active").collect();
        assert_eq!(active.len(), 1, "one active key of the lineage ({at})");
        assert_eq!(active[0]["id"], current.as_str(), "{at}");
        events = after;
    }
    g.finish();
}

// ---- edit ----

fn edit_command(env: &TestEnv, id: &str, name: &str, quota: i64, description: &str) -> Command {
    let mut c = env.command();
    c.args([
        "edit",
        id,
        "--name",
        name,
        "--quota-daily",
        &quota.to_string(),
        "--description",
        description,
    ]);
    c
}

#[test]
fn a_killed_edit_leaves_all_old_or_all_new_values() {
    let mut g = Group::new("edit", EDIT_KILLS);
    let env = TestEnv::initialized();
    let k = env.create(
        "edit-me",
        &["--quota-daily", "10", "--description", "start"],
    );
    let m = env.create("measure", &[]);
    g.typical = measure(5, |i| {
        edit_command(&env, m.id(), &format!("measured-{i}"), 7 + i as i64, "m")
    });
    let (_, mut events) = check_store(&env, "after the measuring runs", k.id());
    let id = k.id().to_string();
    let mut old = (
        "edit-me".to_string(),
        Some(10i64),
        Some("start".to_string()),
    );
    for round in 0..EDIT_KILLS {
        let new = (
            format!("edited-{round:02}"),
            Some(1000 + round as i64),
            Some(format!("round {round}")),
        );
        let edits_before = events_of(&mut raw_rows(&env), &id, "edited").len();
        let command = edit_command(&env, &id, &new.0, new.1.unwrap(), new.2.as_deref().unwrap());
        let run = g.kill(&env, command, None);
        let at = g.at();
        let (listed, after) = check_store(&env, &at, &id);
        let mut conn = raw_rows(&env);
        let row = key_row(&mut conn, &id).expect("the edited key exists");
        let got = (row.name.clone(), row.quota_daily, row.description.clone());
        let edits = events_of(&mut conn, &id, "edited");
        if got == old {
            assert_eq!(edits.len(), edits_before, "no 'edited' event ({at})");
            assert_eq!(after, events, "no audit event added ({at})");
            g.landed(&run, run.unapplied());
        } else if got == new {
            assert_eq!(edits.len(), edits_before + 1, "one 'edited' event ({at})");
            let changes = &edits.last().unwrap()["changes"];
            assert_eq!(changes["name"]["old"], old.0.as_str(), "{at}");
            assert_eq!(changes["name"]["new"], new.0.as_str(), "{at}");
            assert_eq!(changes["quota_daily"]["old"], json!(old.1), "{at}");
            assert_eq!(changes["quota_daily"]["new"], json!(new.1), "{at}");
            assert_eq!(changes["description"]["new"], json!(new.2), "{at}");
            assert_eq!(after, events + 1, "exactly one audit event added ({at})");
            g.landed(&run, "killed after the commit");
            old = new;
        } else {
            panic!("a killed edit left a mix: {got:?}, neither old {old:?} nor new {new:?} ({at})");
        }
        assert_eq!(listed.len(), 1, "{at}");
        assert_eq!(listed[0]["name"], old.0.as_str(), "list agrees ({at})");
        assert_eq!(listed[0]["quotas"]["daily"], json!(old.1), "{at}");
        assert_eq!(listed[0]["description"], json!(old.2), "{at}");
        events = after;
    }
    g.finish();
}

// ---- delete ----

#[test]
fn a_killed_delete_leaves_the_key_or_removes_it_with_both_events() {
    let mut g = Group::new("delete", DELETE_KILLS);
    let env = TestEnv::initialized();
    let delete = |id: &str| {
        let mut c = env.command();
        c.args(["delete", id, "--yes", "--force"]);
        c
    };
    let measured: Vec<Created> = (0..5)
        .map(|i| env.create(&format!("measure-{i}"), &[]))
        .collect();
    g.typical = measure(5, |i| delete(measured[i].id()));
    let (_, mut events) = check_store(&env, "after the measuring runs", "measure");
    for round in 0..DELETE_KILLS {
        let name = format!("del-{round:02}");
        let k = env.create(&name, &["--description", "to be deleted"]);
        events += 1;
        // Every other key has request history, which only --force deletes.
        let history = round % 2 == 1;
        if history {
            let v = env.run_with_stdin(&["verify"], format!("{}\n", k.secret).as_bytes());
            v.ok();
        }
        let run = g.kill(&env, delete(k.id()), None);
        let at = g.at();
        let (listed, after) = check_store(&env, &at, &name);
        let mut conn = raw_rows(&env);
        let revoked = events_of(&mut conn, k.id(), "revoked");
        let deleted = events_of(&mut conn, k.id(), "deleted");
        let log_rows = count(
            &mut conn,
            "SELECT count(*) FROM requests WHERE key_id = ?1",
            &[k.id()],
        );
        assert_eq!(
            log_rows,
            i64::from(history),
            "the log keeps the key's rows ({at})"
        );
        match key_row(&mut conn, k.id()) {
            Some(row) => {
                assert_eq!(row.state, "active", "not revoked by the delete ({at})");
                assert_eq!((row.revoked_at, row.revoke_reason), (None, None), "{at}");
                assert!(revoked.is_empty(), "no 'revoked' event ({at}): {revoked:?}");
                assert!(deleted.is_empty(), "no 'deleted' event ({at}): {deleted:?}");
                assert_eq!(after, events, "no audit event added ({at})");
                assert_eq!(listed.len(), 1, "list still shows it ({at})");
                g.landed(&run, run.unapplied());
            }
            None => {
                assert_eq!(revoked.len(), 1, "one 'revoked' event ({at})");
                assert_eq!(revoked[0]["reason"], "deleted", "{at}");
                assert_eq!(deleted.len(), 1, "one 'deleted' event ({at})");
                assert_eq!(after, events + 2, "exactly the two events added ({at})");
                assert!(listed.is_empty(), "list no longer shows it ({at})");
                g.landed(&run, "killed after the commit");
            }
        }
        events = after;
    }
    g.finish();
}

// ---- verify --stream ----

/// What each line of a stream asks: `j % 4` of 0 and 1 are accepted, 2 is refused for
/// its IP (a known key: counted as rejected), 3 presents a key no store holds.
fn stream_input(round: usize, secret: &str, unknown: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(STREAM_LINES * 120);
    for j in 0..STREAM_LINES {
        let line = match j % 4 {
            0 | 1 => json!({
                "key": secret,
                "ip": format!("10.{}.{}.{}", round % 250, j / 250, j % 250),
                "endpoint": format!("GET /round/{round}/{j}"),
            }),
            2 => json!({"key": secret, "ip": "192.0.2.7"}),
            _ => json!({"key": unknown}),
        };
        input.extend_from_slice(line.to_string().as_bytes());
        input.push(b'\n');
    }
    input
}

fn expected_stream_code(j: usize) -> &'static str {
    match j % 4 {
        0 | 1 => "valid",
        2 => "ip_not_allowed",
        _ => "invalid",
    }
}

/// A stream on the real clock (each request its own time), so `last_used_at` is
/// checked against one row, not a clock shared by all of them.
fn stream_command(env: &TestEnv) -> Command {
    let mut c = env.command();
    c.env_remove("KEYCTL_NOW").args(["verify", "--stream"]);
    c
}

/// The request log agrees with the key's counters, windows, usage figures, credits
/// and last use.
fn assert_log_matches_counters(conn: &mut Rows, id: &str, at: &str) {
    let counters = first_row(
        conn,
        &format!(
            "SELECT k.events_total, k.requests_total, k.rejected_total, k.last_used_at, \
             k.last_used_ip, p.credits_used FROM {} k \
             JOIN credit_pools p ON p.id = k.pool_id WHERE k.id = ?1",
            keys_as_read()
        ),
        &[id],
    )
    .expect("the key's counters");
    let events_total = int(&counters[0]).expect("events_total");
    let requests_total = int(&counters[1]).expect("requests_total");
    let rejected_total = int(&counters[2]).expect("rejected_total");
    let (last_used_at, last_used_ip) = (int(&counters[3]), counters[4].clone());
    let credits_used = int(&counters[5]).expect("credits_used");
    let rows = count(
        conn,
        "SELECT count(*) FROM requests WHERE key_id = ?1",
        &[id],
    );
    let accepted = count(
        conn,
        "SELECT count(*) FROM requests WHERE key_id = ?1 AND code = 'valid'",
        &[id],
    );
    let credits = count(
        conn,
        "SELECT coalesce(sum(credits), 0) FROM requests WHERE key_id = ?1",
        &[id],
    );
    assert_eq!(rows, events_total, "log rows = keys.events_total ({at})");
    assert_eq!(
        accepted, requests_total,
        "accepted rows = keys.requests_total ({at})"
    );
    assert_eq!(
        rows - accepted,
        rejected_total,
        "rejected rows = keys.rejected_total ({at})"
    );
    assert_eq!(credits, credits_used, "charged credits = the pool's ({at})");
    let newest = first_row(
        conn,
        "SELECT at, ip FROM requests WHERE key_id = ?1 AND code = 'valid' \
         ORDER BY seq DESC LIMIT 1",
        &[id],
    );
    match newest {
        Some(row) => assert_eq!(
            (last_used_at, last_used_ip),
            (int(&row[0]), row[1].clone()),
            "last_used_at/ip = the newest accepted row's ({at})"
        ),
        None => assert_eq!(last_used_at, None, "never used ({at})"),
    }
    let window = first_row(
        conn,
        "SELECT count(*), max(n), (SELECT accepted_cum FROM key_events WHERE key_id = ?1 \
         ORDER BY n DESC LIMIT 1) FROM key_events WHERE key_id = ?1",
        &[id],
    )
    .expect("a count");
    let (window_rows, newest_n, newest_accepted) =
        (int(&window[0]), int(&window[1]), int(&window[2]));
    assert_eq!(
        window_rows,
        Some(events_total),
        "one key_events row per request ({at})"
    );
    if events_total > 0 {
        assert_eq!(
            (newest_n, newest_accepted),
            (Some(events_total), Some(requests_total)),
            "the newest window row carries the totals ({at})"
        );
    }
    let days = first_row(
        conn,
        "SELECT coalesce(sum(accepted), 0), coalesce(sum(rejected), 0) FROM usage_days \
         WHERE key_id = ?1",
        &[id],
    )
    .expect("sums");
    assert_eq!(
        (int(&days[0]), int(&days[1])),
        (Some(requests_total), Some(rejected_total)),
        "usage_days = the counters ({at})"
    );
    let unknown_rows = count(
        conn,
        "SELECT count(*) FROM requests WHERE key_id IS NULL",
        &[],
    );
    let unknown_days = count(
        conn,
        "SELECT coalesce(sum(rejected), 0) FROM usage_days WHERE key_id = ''",
        &[],
    );
    assert_eq!(
        unknown_rows, unknown_days,
        "unknown-key rows = their usage ({at})"
    );
}

#[test]
fn a_killed_stream_keeps_the_log_and_the_counters_equal() {
    let mut g = Group::new("stream", STREAM_KILLS);
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--allow-ip", "10.0.0.0/8"]);
    let unknown = forge_secret("sk", "live", "CrashCrashCrashCrashCrashCrash00");
    let id = k.id().to_string();
    g.typical = measure_one(
        stream_command(&env),
        Some(stream_input(999, &k.secret, &unknown)),
    );
    let (_, events) = check_store(&env, "after the measuring run", "svc");
    assert_log_matches_counters(&mut raw_rows(&env), &id, "after the measuring run");
    for round in 0..STREAM_KILLS {
        let rows_before = count(&mut raw_rows(&env), "SELECT count(*) FROM requests", &[]);
        let run = g.kill(
            &env,
            stream_command(&env),
            Some(stream_input(round, &k.secret, &unknown)),
        );
        let at = g.at();
        let (listed, after) = check_store(&env, &at, "svc");
        assert_eq!(listed.len(), 1, "{at}");
        assert_eq!(after, events, "verification writes no audit event ({at})");
        let mut conn = raw_rows(&env);
        assert_log_matches_counters(&mut conn, &id, &at);
        let added = count(&mut conn, "SELECT count(*) FROM requests", &[]) - rows_before;
        // Each answer is written after its commit: whatever was answered is logged.
        let text = String::from_utf8(run.stdout.clone()).expect("stream output is utf-8");
        let answered: Vec<&str> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        for (j, line) in answered.iter().enumerate() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("answer {j} is not json ({e}): {line:?} ({at})"));
            assert_eq!(v["code"], expected_stream_code(j), "answer {j} ({at})");
        }
        assert!(
            added >= answered.len() as i64 && added <= STREAM_LINES as i64,
            "{added} rows logged for {} answers of {STREAM_LINES} requests ({at})",
            answered.len()
        );
        g.landed(
            &run,
            match added {
                0 => "killed before the first request",
                n if n == STREAM_LINES as i64 => "killed after the last request",
                _ => "killed mid-stream",
            },
        );
    }
    g.finish();
}
