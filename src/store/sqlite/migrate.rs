//! The schema: numbered migrations run in one transaction, stamped with
//! `user_version` and keyctl's `application_id`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{sql_error, SqliteStore, APPLICATION_ID};
use crate::store::{ErrorKind, Remedy, Result, StoreError};

/// Ordered migrations; schema version N means the first N have run. Never remove or
/// edit an entry: stores in the field were built by them.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_verification.sql"),
    include_str!("migrations/003_shared_limits.sql"),
    include_str!("migrations/004_import.sql"),
    include_str!("migrations/005_meta.sql"),
    include_str!("migrations/006_refill.sql"),
    include_str!("migrations/007_store_limits.sql"),
    include_str!("migrations/008_store_counter_in_ledger.sql"),
    include_str!("migrations/009_key_totals_in_ledger.sql"),
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Runs every pending migration in one transaction and stamps the version.
pub(super) fn migrate(conn: &mut Connection, path: &Path, prefix: Option<&str>) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_error(path, e))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sql_error(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(newer_error(path, version));
    }
    for sql in MIGRATIONS.iter().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(|e| sql_error(path, e))?;
    }
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(|e| sql_error(path, e))?;
    if let Some(p) = prefix {
        tx.execute(
            "INSERT OR REPLACE INTO settings (name, value) VALUES ('key-prefix', ?1)",
            [p],
        )
        .map_err(|e| sql_error(path, e))?;
    }
    tx.commit().map_err(|e| sql_error(path, e))
}

fn newer_error(path: &Path, version: i64) -> StoreError {
    StoreError::new(ErrorKind::Refused, path, format!(
        "{} was written by a newer keyctl (schema {version}; this keyctl {} knows up to {SCHEMA_VERSION})",
        path.display(),
        env!("CARGO_PKG_VERSION")
    ))
    .remedy(Remedy::Upgrade)
}

impl SqliteStore {
    pub(super) fn check_and_migrate(&mut self) -> Result<()> {
        // Reading the schema now makes a damaged file fail here, before a command has
        // printed anything.
        self.conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| sql_error(&self.path, e))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql_error(&self.path, e))?;
        if version > SCHEMA_VERSION {
            return Err(newer_error(&self.path, version));
        }
        if version < SCHEMA_VERSION {
            migrate(&mut self.conn, &self.path, None)?;
        }
        Ok(())
    }
}
