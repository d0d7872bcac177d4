//! The store read and forged directly, for fixtures the CLI cannot make and for
//! checks of what it wrote; which backend the suite runs on.
//!
//! A state no keyctl command can make (a forged tamper, a value out of range, a
//! look-alike name) is made with plain SQL both backends take (`fixture`, `tamper`,
//! `query_i64`); a step only SQLite has (a corrupted file, an old schema, a secret
//! proven absent from the WAL's bytes) goes through `sqlite_only` with the reason.
//! Anything a command can make is made with the command.
//!
//! `count_rows`, `secret_hash`, `store_exists` and `stored_bytes` stay unmarked: they
//! read what keyctl wrote, through rusqlite or the postgres client. `integrity_check`
//! is SQLite's own check, called only in a SQLite-only test or step.
//!
//! The one switch is `KEYCTL_TEST_BACKEND`: `sqlite` when unset, or `postgres`, when
//! every `TestEnv` gets a fresh database of its own on the server `KEYCTL_TEST_PG`
//! names (`pg`) and every keyctl it runs sees that URL as `KEYCTL_DB`. A test about
//! the SQLite file itself (its bytes, mode, WAL, a crash or corruption of it) starts
//! with `sqlite_only!("why")`; a SQLite-only step goes through `sqlite_only` or
//! `sqlite_only_test`. On PostgreSQL either prints `SKIPPED (sqlite-only): <why>`
//! to stderr and the test returns early, visibly. A test that passes an explicit
//! file path (`--db some/path`) is about files and runs on SQLite in both runs.

use std::io::Write;

use super::{hex, masked, psql, sha256, with_suffix, TestEnv};

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

/// Returns from a test about the SQLite file itself (`why`) on another backend, after
/// reporting it as skipped: `sqlite_only!("checks the file's mode");`.
macro_rules! sqlite_only {
    ($why:expr) => {
        if !$crate::support::sqlite_only_test($why) {
            return;
        }
    };
}
pub(crate) use sqlite_only;

/// The backend the suite runs against: `KEYCTL_TEST_BACKEND`, `sqlite` when unset.
fn test_backend() -> String {
    let backend = std::env::var("KEYCTL_TEST_BACKEND").unwrap_or_else(|_| "sqlite".to_string());
    assert!(
        backend == "sqlite" || backend == "postgres",
        "KEYCTL_TEST_BACKEND={backend:?} is neither sqlite nor postgres"
    );
    backend
}

/// True when the suite runs on PostgreSQL (`KEYCTL_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    test_backend() == "postgres"
}

/// The keys table with each key's running totals as keyctl reads them, for SQL that
/// checks them (`SELECT ... FROM {keys_as_read()} k`): PostgreSQL keeps them in the
/// keys row; SQLite in the key's newest window-ledger row once that row carries them
/// (its migration 009), else in the keys row.
pub fn keys_as_read() -> &'static str {
    if on_postgres() {
        return "keys";
    }
    "(SELECT k.id, k.name, k.pool_id, \
     iif(e.rejected_cum IS NULL, k.events_total, e.n) AS events_total, \
     iif(e.rejected_cum IS NULL, k.requests_total, e.accepted_cum) AS requests_total, \
     iif(e.rejected_cum IS NULL, k.rejected_total, e.rejected_cum) AS rejected_total, \
     iif(e.rejected_cum IS NULL, k.credits_total, e.credits_cum) AS credits_total, \
     iif(e.rejected_cum IS NULL, k.last_used_at, e.used_at) AS last_used_at, \
     iif(e.rejected_cum IS NULL, k.last_used_ip, e.used_ip) AS last_used_ip \
     FROM keys k LEFT JOIN key_events e ON e.key_id = k.id AND (e.at, e.n) = \
     (SELECT at, n FROM key_events WHERE key_id = k.id ORDER BY at DESC, n DESC LIMIT 1))"
}

/// The schema keyctl keeps its tables in on PostgreSQL unless told otherwise.
pub const PG_SCHEMA: &str = "keyctl";

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
    /// command can make, in plain SQL both backends take; it must change one row.
    pub fn fixture(&self, sql: &str, id: &str) {
        let changed = match self.pg_client() {
            Some(mut client) => {
                let changed = client
                    .execute(&sql.replace("?1", "$1"), &[&id])
                    .unwrap_or_else(|e| panic!("fixture {sql:?}: {e}"));
                usize::try_from(changed).expect("a row count")
            }
            None => self.raw_sqlite().execute(sql, [id]).expect("fixture sql"),
        };
        assert_eq!(changed, 1, "fixture {sql:?} changed {changed} rows");
    }

    /// A client on this world's database with the store's schema first in its search
    /// path, for SQL on the store's tables; None on SQLite.
    pub fn pg_client(&self) -> Option<postgres::Client> {
        let database = self.database()?;
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls)
            .expect("connect to the test database");
        client
            .batch_execute(&format!("SET search_path TO {PG_SCHEMA}"))
            .expect("set search_path");
        Some(client)
    }

    /// Runs `sql`, a tamper no keyctl command can make (an audit row edited or deleted
    /// behind keyctl's back), on either backend: plain SQL both take, on the store's
    /// tables (the `keyctl` schema on PostgreSQL).
    pub fn tamper(&self, sql: &str) {
        match self.database() {
            Some(database) => {
                psql(
                    &database.url,
                    &format!("SET search_path TO {PG_SCHEMA}; {sql}"),
                );
            }
            None => self.raw_sqlite().execute_batch(sql).expect("tamper sql"),
        }
    }

    pub(super) fn raw_sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_file()).expect("open the store with rusqlite")
    }

    /// Rows in one table of the store.
    pub fn count_rows(&self, table: &str) -> i64 {
        self.query_i64(&format!("SELECT count(*) FROM {table}"))
    }

    /// The one integer `sql` (plain SQL both backends take, on the store's tables)
    /// selects: what keyctl wrote beneath what any command shows.
    pub fn query_i64(&self, sql: &str) -> i64 {
        if let Some(database) = self.database() {
            let text = psql(
                &database.url,
                &format!("SET search_path TO {PG_SCHEMA}; {sql}"),
            );
            return text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{sql}: {text:?} ({e})"));
        }
        self.raw_sqlite()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The stored `secret_hash` of a key.
    pub fn secret_hash(&self, id: &str) -> Vec<u8> {
        if let Some(database) = self.database() {
            assert!(
                id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "key id {id:?}"
            );
            let sql = format!(
                "SELECT encode(secret_hash, 'hex') FROM {PG_SCHEMA}.keys WHERE id = '{id}'"
            );
            let hex = psql(&database.url, &sql);
            return from_hex(hex.trim())
                .unwrap_or_else(|| panic!("no secret_hash for {id}: {hex:?}"));
        }
        self.raw_sqlite()
            .query_row("SELECT secret_hash FROM keys WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .expect("the key's secret_hash")
    }

    /// True when the store exists: the file, or keyctl's tables in the database.
    pub fn store_exists(&self) -> bool {
        match self.database() {
            Some(database) => {
                let sql =
                    format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{PG_SCHEMA}'");
                psql(&database.url, &sql).trim() != "0"
            }
            None => self.db_file().exists(),
        }
    }

    /// What the store holds, to compare before and after a command: the file's bytes
    /// (digested), or every table's rows (digested).
    pub fn store_contents(&self) -> Vec<(String, String)> {
        match self.database() {
            Some(database) => database.table_digests(),
            None => {
                let bytes = std::fs::read(self.db_file()).expect("read the store's file");
                vec![("keys.db".to_string(), hex(&sha256(&bytes)))]
            }
        }
    }

    /// Everything the store keeps, to search for what must never be stored: the
    /// file and its WAL by path, or every table's rows as text by name.
    pub fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        match self.database() {
            Some(database) => database
                .tables()
                .into_iter()
                .map(|table| {
                    let rows = psql(&database.url, &format!("SELECT t::text FROM {table} t"));
                    (table, rows.into_bytes())
                })
                .collect(),
            None => [
                self.db_file().to_path_buf(),
                with_suffix(self.db_file(), "-wal"),
            ]
            .into_iter()
            .filter_map(|path| Some((path.display().to_string(), std::fs::read(&path).ok()?)))
            .collect(),
        }
    }

    /// Removes the store: the file, or keyctl's schema in the database.
    pub fn remove_store(&self) {
        match self.database() {
            Some(database) => {
                psql(&database.url, &format!("DROP SCHEMA {PG_SCHEMA} CASCADE"));
            }
            None => std::fs::remove_file(self.db_file()).expect("remove the store's file"),
        }
    }

    /// The one line a read command prints when there is no store: a missing file, or
    /// a database without keyctl's tables, which says where it looked.
    pub fn no_store_error(&self) -> String {
        let remedy = "(run 'keyctl init' or pass --db)";
        match self.database() {
            Some(_) => format!(
                "error: {} holds no keyctl store (schema {PG_SCHEMA}) {remedy}",
                self.shown()
            ),
            None => format!("error: no key store at {} {remedy}", self.shown()),
        }
    }

    /// The store as keyctl's messages name it: the file's path, or the database's URL
    /// with any password as `***`.
    pub fn shown(&self) -> String {
        match self.database() {
            Some(database) => masked(&database.url),
            None => self.db_file().display().to_string(),
        }
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

/// Bytes from lowercase or uppercase hex; None when it is not hex.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
