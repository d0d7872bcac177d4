//! The suite on PostgreSQL: a fresh database per test on the throwaway server
//! `KEYCTL_TEST_PG` names (the shared harness, `tests/common/pg.rs`), dropped with it,
//! and reading one for checks.
//!
//! `KEYCTL_TEST_PG` is the base URL `scripts/pg-cluster.sh start` prints (no
//! password: the test server trusts local connections).

use std::sync::atomic::{AtomicU32, Ordering};

#[path = "../../common/pg.rs"]
mod common;

/// One test's own database, dropped with it.
pub struct PgDatabase {
    /// Its URL, as `KEYCTL_DB` gives it to keyctl.
    pub url: String,
    name: String,
}

/// A new, empty database on the server of `KEYCTL_TEST_PG`. Named here rather than
/// by the shared harness, whose `keyctl_test_<pid>` names look like a test-mode
/// secret (`_test_` and a run of digits) to the suite's leak checks.
pub fn fresh_database() -> PgDatabase {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "keyctl_cli_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = common::admin_client();
    // A database left by an earlier run with the same process id.
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    PgDatabase {
        url: common::url_of(&name),
        name,
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // FORCE: a killed keyctl's connection may linger until the server notices.
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = common::admin_client().batch_execute(&drop);
    }
}

/// `sql` run on the database at `url`: its rows, one a line, columns split by `|`
/// (NULL as an empty column), as `psql -At` prints them.
pub fn psql(url: &str, sql: &str) -> String {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    let mut out = String::new();
    for message in client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    {
        if let postgres::SimpleQueryMessage::Row(row) = message {
            let columns: Vec<&str> = (0..row.len())
                .map(|i| row.get(i).unwrap_or_default())
                .collect();
            out.push_str(&columns.join("|"));
            out.push('\n');
        }
    }
    out
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
