//! The store read and forged directly through SQLite, for fixtures the CLI cannot make
//! and for checks of what it wrote.

use super::TestEnv;

impl TestEnv {
    /// A read-write SQLite connection to the store, for fixtures the CLI cannot make
    /// (last use, colliding prefixes, damaged values).
    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open the store with rusqlite")
    }

    /// Runs one fixture statement on the store with `?1` bound to a key id.
    pub fn fixture(&self, sql: &str, id: &str) {
        let changed = self.sqlite().execute(sql, [id]).expect("fixture sql");
        assert_eq!(changed, 1, "fixture {sql:?} changed {changed} rows");
    }

    /// Rows in one table of the store.
    pub fn count_rows(&self, table: &str) -> i64 {
        self.sqlite()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }

    /// The stored `secret_hash` of a key.
    pub fn secret_hash(&self, id: &str) -> Vec<u8> {
        self.sqlite()
            .query_row("SELECT secret_hash FROM keys WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .expect("the key's secret_hash")
    }

    /// `PRAGMA integrity_check` of the store, through rusqlite: "ok" when intact.
    pub fn integrity_check(&self) -> String {
        let conn = self.sqlite();
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
