//! A fresh PostgreSQL database per test, on the server `KEYCTL_TEST_PG` names, and
//! reading one through `psql`: the suite's side of running on PostgreSQL.
//!
//! `KEYCTL_TEST_PG` is a URL of a database the tests may create databases from (a
//! throwaway cluster: `scripts/pg-cluster.sh`), without a password or with it in the
//! URL (the tests' own environment, never argv). Each database is dropped when its
//! `PgDatabase` is.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::require_tool;

/// The server the suite runs on: `KEYCTL_TEST_PG`, which the PostgreSQL run must set.
pub fn base_url() -> String {
    std::env::var("KEYCTL_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "KEYCTL_TEST_BACKEND=postgres needs KEYCTL_TEST_PG, the URL of a server the \
             tests may create databases on (start one with scripts/pg-cluster.sh)"
        )
    })
}

/// `url` naming the database `name` instead of its own: the path after the host.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// One test's own database, dropped with it.
pub struct PgDatabase {
    /// Its URL, as `KEYCTL_DB` gives it to keyctl.
    pub url: String,
    name: String,
}

/// A new, empty database on the server of `KEYCTL_TEST_PG`.
pub fn fresh_database() -> PgDatabase {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "keyctl_cli_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let base = base_url();
    psql(&base, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&base, &format!("CREATE DATABASE {name}"));
    PgDatabase {
        url: with_database(&base, &name),
        name,
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // FORCE: a killed keyctl's connection may linger until the server notices.
        let _ = try_psql(
            &base_url(),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// `sql` run by `psql` on `url`: its rows, one a line, columns split by `|`.
pub fn psql(url: &str, sql: &str) -> String {
    try_psql(url, sql).unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
}

fn try_psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(require_tool("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl PgDatabase {
    /// Every table of the database, as `schema.table`.
    pub fn tables(&self) -> Vec<String> {
        psql(
            &self.url,
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Every table of the database (`schema.table`) with its row count and a digest
    /// of its rows: what a command changed in the store.
    pub fn table_digests(&self) -> Vec<(String, String)> {
        let selects: Vec<String> = self
            .tables()
            .iter()
            .map(|table| {
                format!(
                    "SELECT '{table}', count(*), \
                     md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
                     FROM {table} t"
                )
            })
            .collect();
        if selects.is_empty() {
            return Vec::new();
        }
        psql(&self.url, &selects.join(" UNION ALL "))
            .lines()
            .map(|line| {
                let (table, digest) = line.split_once('|').expect("table|count|md5");
                (format!("postgres:{table}"), format!("rows {digest}"))
            })
            .collect()
    }
}

/// `url` as keyctl shows it: any password (`user:PASSWORD@`, `password=`) as `***`.
pub fn masked(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((info, hosts)) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hosts}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("password", _)) => "password=***".to_string(),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}
