//! An open transaction whose `BEGIN` and `COMMIT` are statements the connection keeps
//! prepared. rusqlite's `Transaction` runs them with `execute_batch`, which prepares
//! them afresh every time: about 5k instructions of the 190k a verify stream spends on
//! a request in its own transaction.

use std::ops::Deref;

use rusqlite::{Connection, TransactionBehavior};

/// A transaction on `conn`, rolled back when dropped uncommitted (as rusqlite's is).
pub(super) struct Transaction<'a> {
    conn: &'a Connection,
}

impl<'a> Transaction<'a> {
    pub(super) fn begin(
        conn: &'a Connection,
        behavior: TransactionBehavior,
    ) -> rusqlite::Result<Self> {
        let sql = match behavior {
            TransactionBehavior::Deferred => "BEGIN DEFERRED",
            TransactionBehavior::Exclusive => "BEGIN EXCLUSIVE",
            _ => "BEGIN IMMEDIATE",
        };
        conn.prepare_cached(sql)?.execute([])?;
        Ok(Transaction { conn })
    }

    /// Commits; on failure the transaction is rolled back as it is dropped.
    pub(super) fn commit(self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([]).map(|_| ())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Still open: never committed, or its COMMIT failed (SQLITE_BUSY leaves it
        // open). Nothing to report to: the caller already has the error, if any.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}
