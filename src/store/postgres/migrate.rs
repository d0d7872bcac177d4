//! The schema in PostgreSQL: numbered migrations, each recorded in `schema_meta`
//! with the oldest keyctl that can use the schema it leaves. Only `init`/`copy`
//! ([`create`]) and `keyctl migrate` ([`migrate`]) change it; opening checks it.

use postgres::Client;

use super::{pg_error, quote_ident, PgLocation};
use crate::store::{ErrorKind, Remedy, Result, StoreError};

/// Ordered migrations with the oldest keyctl that can use the schema after each.
/// Never remove or edit an entry: stores in the field were built by them.
const MIGRATIONS: &[(&str, &str)] = &[
    (include_str!("migrations/001_init.sql"), "0.1.0"),
    // Two indexes: every keyctl since 0.1.0 can use the store.
    (include_str!("migrations/002_completion.sql"), "0.1.0"),
    // Issue 17 (keyctl 0.2.0): an older keyctl cannot read a key imported without a
    // display prefix, would drop metadata on rotate, edit and copy, would charge a
    // refilled pool from its stale balance and would not enforce the store-wide
    // limits, so a fleet's hosts must all run 0.2.0 or later.
    (include_str!("migrations/003_import.sql"), "0.2.0"),
    (include_str!("migrations/004_meta.sql"), "0.2.0"),
    (include_str!("migrations/005_refill.sql"), "0.2.0"),
    (include_str!("migrations/006_store_limits.sql"), "0.2.0"),
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's clock in unix milliseconds, in SQL.
macro_rules! now_ms_sql {
    () => {
        "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

/// The schema's newest version record (version, oldest keyctl), None without
/// keyctl tables.
pub(super) fn version(client: &mut Client, location: &PgLocation) -> Result<Option<(i64, String)>> {
    let table = format!("{}.schema_meta", quote_ident(&location.schema));
    let exists: bool = client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
        .and_then(|row| row.try_get(0))
        .map_err(|e| pg_error(location, &e))?;
    if !exists {
        return Ok(None);
    }
    client
        .query_opt(
            "SELECT version, min_keyctl FROM schema_meta ORDER BY version DESC LIMIT 1",
            &[],
        )
        .and_then(|row| row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
        .map_err(|e| pg_error(location, &e))
        .map(|found| Some(found.unwrap_or((0, String::new()))))
}

/// A version number `a.b.c` as comparable parts (missing parts 0).
fn parts(version: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = version
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    parts.resize(3, 0);
    parts
}

/// Checks that this keyctl may use the store's schema: None without keyctl tables.
pub(super) fn check(client: &mut Client, location: &PgLocation) -> Result<Option<i64>> {
    let Some((version, min_keyctl)) = version(client, location)? else {
        return Ok(None);
    };
    let ours = env!("CARGO_PKG_VERSION");
    if version < SCHEMA_VERSION {
        return Err(StoreError::at(
            ErrorKind::Refused,
            location,
            format!(
                "key store {location} has schema version {version}, older than this keyctl's {SCHEMA_VERSION}: run `keyctl migrate` (once, from one host)"
            ),
        ));
    }
    if version > SCHEMA_VERSION && parts(&min_keyctl) > parts(ours) {
        return Err(StoreError::at(
            ErrorKind::Refused,
            location,
            format!(
                "key store {location} needs keyctl >= {min_keyctl} (schema version {version}; this is keyctl {ours})"
            ),
        )
        .remedy(Remedy::Upgrade));
    }
    Ok(Some(version))
}

/// Runs migrations `from+1..` in `tx`, recording each.
fn apply(tx: &mut postgres::Transaction, location: &PgLocation, from: i64) -> Result<()> {
    for (n, (sql, min_keyctl)) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        tx.batch_execute(sql).map_err(|e| pg_error(location, &e))?;
        tx.execute(
            concat!(
                "INSERT INTO schema_meta (version, min_keyctl, applied_at) VALUES ($1, $2, ",
                now_ms_sql!(),
                ")"
            ),
            &[&(n as i64 + 1), min_keyctl],
        )
        .map_err(|e| pg_error(location, &e))?;
    }
    Ok(())
}

/// Creates the schema and keyctl's tables (`init`, `copy`); true when this call
/// created them, false when another process did first.
pub(super) fn create(
    client: &mut Client,
    location: &PgLocation,
    prefix: Option<&str>,
) -> Result<bool> {
    let created = (|| -> Result<()> {
        let mut tx = client.transaction().map_err(|e| pg_error(location, &e))?;
        // A concurrent `init` waits on the catalog's unique index for schema_meta,
        // then fails on it: that one then uses the store this one made.
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; \
             CREATE TABLE {schema}.schema_meta (version BIGINT PRIMARY KEY, \
             min_keyctl TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            schema = quote_ident(&location.schema)
        ))
        .map_err(|e| pg_error(location, &e))?;
        apply(&mut tx, location, 0)?;
        if let Some(p) = prefix {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES ('key-prefix', $1)",
                &[&p],
            )
            .map_err(|e| pg_error(location, &e))?;
        }
        tx.commit().map_err(|e| pg_error(location, &e))
    })();
    match created {
        Ok(()) => Ok(true),
        Err(e) => match check(client, location) {
            Ok(Some(_)) => Ok(false),
            _ => Err(e),
        },
    }
}

/// `keyctl migrate`: the versions before and after.
pub(super) fn migrate(client: &mut Client, location: &PgLocation) -> Result<(i64, i64)> {
    let mut tx = client.transaction().map_err(|e| pg_error(location, &e))?;
    // The newest record, locked: two `migrate`s run one after the other.
    let found = tx
        .query_opt(
            "SELECT version FROM schema_meta ORDER BY version DESC LIMIT 1 FOR UPDATE",
            &[],
        )
        .map_err(|e| pg_error(location, &e));
    let from: i64 = match found {
        Ok(Some(row)) => row.try_get(0).map_err(|e| pg_error(location, &e))?,
        Ok(None) => 0,
        Err(e) if e.kind() == Some(ErrorKind::Refused) => return Err(super::no_store(location)),
        Err(e) => return Err(e),
    };
    if from >= SCHEMA_VERSION {
        drop(tx);
        check(client, location)?;
        return Ok((from, from));
    }
    apply(&mut tx, location, from)?;
    tx.commit().map_err(|e| pg_error(location, &e))?;
    Ok((from, SCHEMA_VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        assert!(parts("0.10.0") > parts("0.9.3"));
        assert!(parts("1.0") == parts("1.0.0"));
        assert!(parts("0.1.0-rc1") == parts("0.1.0"));
    }
}
