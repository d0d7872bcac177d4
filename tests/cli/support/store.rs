//! The store read and forged directly through SQLite, for fixtures the CLI cannot make
//! and for checks of what it wrote.
//!
//! Every raw-SQLite step of a test goes through `sqlite_only` or `fixture_sqlite_only`
//! with the reason no keyctl command can do it (a corrupted file, a forged tamper, a
//! value out of range, an old schema, a secret proven absent from the bytes). Anything
//! a command can make is made with the command.
//!
//! `count_rows` and `secret_hash` stay unmarked: they read what keyctl wrote, which
//! the next backend can answer with its own client. `integrity_check` is SQLite's own
//! check; the two tests that call it today (crash, concurrency_mix) do so after a
//! SQLite-only step.
//!
//! The one switch is `KEYCTL_TEST_BACKEND` (`sqlite` when unset). Today it has only
//! that one value and the README's test command sets nothing, so nothing is skipped.
//! The next issue sets it to `postgres`: a SQLite-only step then prints
//! `SKIPPED (sqlite-only): <why>` to stderr and the test returns early, visibly.

use std::io::Write;

use super::TestEnv;

/// The value of a SQLite-only step, or a return from the test, which the step has
/// already reported as skipped: `let db = or_skip!(env.sqlite_only("why"));`.
macro_rules! or_skip {
    ($step:expr) => {
        match $step {
            Some(value) => value,
            None => return,
        }
    };
}
pub(crate) use or_skip;

/// The backend the suite runs against: `KEYCTL_TEST_BACKEND`, `sqlite` when unset.
fn test_backend() -> String {
    std::env::var("KEYCTL_TEST_BACKEND").unwrap_or_else(|_| "sqlite".to_string())
}

/// Whether a test (or one step of it) that needs raw SQLite throughout (`why`) runs:
/// false, after saying so on stderr, on another backend; the test then returns at
/// once, or skips just that step when the checks after it stand alone.
pub fn sqlite_only_test(why: &str) -> bool {
    let backend = test_backend();
    if backend == "sqlite" {
        return true;
    }
    // Straight to the process's stderr, past libtest's capture, so a skip shows even
    // when the test passes.
    // libtest names each test's thread after the test.
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (sqlite-only): {why} [{test}, KEYCTL_TEST_BACKEND={backend}]"
    );
    false
}

impl TestEnv {
    /// A read-write SQLite connection to the store for a step no keyctl command can do;
    /// `why` says which. `None` (reported as skipped) on another backend: the caller
    /// writes `let Some(db) = env.sqlite_only("...") else { return };`.
    pub fn sqlite_only(&self, why: &str) -> Option<rusqlite::Connection> {
        sqlite_only_test(why).then(|| self.raw_sqlite())
    }

    /// Runs one fixture statement with `?1` bound to a key id, for a state no keyctl
    /// command can make (`why`). `None` (reported as skipped) on another backend.
    pub fn fixture_sqlite_only(&self, why: &str, sql: &str, id: &str) -> Option<()> {
        let db = self.sqlite_only(why)?;
        let changed = db.execute(sql, [id]).expect("fixture sql");
        assert_eq!(changed, 1, "fixture {sql:?} changed {changed} rows");
        Some(())
    }

    fn raw_sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open the store with rusqlite")
    }

    /// Rows in one table of the store.
    pub fn count_rows(&self, table: &str) -> i64 {
        self.raw_sqlite()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }

    /// The stored `secret_hash` of a key.
    pub fn secret_hash(&self, id: &str) -> Vec<u8> {
        self.raw_sqlite()
            .query_row("SELECT secret_hash FROM keys WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .expect("the key's secret_hash")
    }

    /// `PRAGMA integrity_check` of the store, through rusqlite: "ok" when intact.
    pub fn integrity_check(&self) -> String {
        let conn = self.raw_sqlite();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .expect("prepare integrity_check");
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("run integrity_check")
            .collect::<rusqlite::Result<_>>()
            .expect("read integrity_check");
        rows.join("\n")
    }
}
