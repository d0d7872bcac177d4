//! The PostgreSQL side of the test harness, shared by test binaries
//! (`#[path = "common/pg.rs"] mod pg;`): a fresh database per test on the throwaway
//! server `scripts/test.sh` starts (its base URL in `KEYCTL_TEST_PG`). Without that
//! server the PostgreSQL tests fail, saying how to run them: never skipped silently.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use keyctl::store::Location;

/// The server's base URL (a database any test may connect to).
pub fn base_url() -> String {
    match std::env::var("KEYCTL_TEST_PG") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "KEYCTL_TEST_PG is not set: the PostgreSQL tests need the throwaway server that \
             `bash scripts/test.sh` starts (run the suite with it)"
        ),
    }
}

/// `base` with its database replaced by `db`.
pub fn url_of(db: &str) -> String {
    let base = base_url();
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m.to_string(), format!("?{q}")),
        None => (base.clone(), String::new()),
    };
    let authority_end = main["postgres://".len()..]
        .find('/')
        .map_or(main.len(), |i| i + "postgres://".len());
    format!("{}/{db}{query}", &main[..authority_end])
}

/// A client on the base database, for test set-up the store does not do.
pub fn admin_client() -> postgres::Client {
    postgres::Client::connect(&base_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot reach the test server at KEYCTL_TEST_PG: {e}"))
}

/// A new, empty database of its own; its name.
pub fn fresh_database_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "keyctl_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    admin_client()
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    name
}

/// A new, empty database of its own, as a store location (no keyctl tables yet).
pub fn fresh_database() -> Location {
    Location::parse(&url_of(&fresh_database_name())).unwrap()
}

/// The database a PostgreSQL location names.
pub fn database_of(location: &Location) -> String {
    let url = location.to_string();
    let path = url.split('?').next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// The server's TCP address with TLS (`localhost:PORT`, the socket's port number) and
/// the CA file that signed its certificate (`scripts/pg-cluster.sh`).
pub fn tls_endpoint() -> (String, std::path::PathBuf) {
    let base = base_url();
    let host_port = base["postgres://".len()..]
        .split('/')
        .next()
        .and_then(|authority| authority.rsplit('@').next())
        .unwrap_or_default()
        .to_string();
    let (socket_dir, port) = host_port.rsplit_once(':').unwrap_or((&host_port, "5432"));
    let dir = socket_dir.replace("%2F", "/").replace("%2f", "/");
    (
        format!("localhost:{port}"),
        std::path::Path::new(&dir).join("tls/ca.pem"),
    )
}
