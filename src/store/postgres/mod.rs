//! The PostgreSQL backend: a fleet's store, shared by keyctl processes on many hosts.
//! [`location`] parses and masks the URL and finds the password, [`tls`] sets up
//! rustls, [`migrate`] creates and upgrades the schema, [`queries`] holds every
//! statement. One connection per handle; a handle whose connection broke reconnects
//! at its next [`Store::begin`], so a long `verify --stream` outlives a server
//! restart.
//!
//! Isolation and locks, per intent (why: every decision must hold across hosts, and
//! only row locks port to CockroachDB/YugabyteDB):
//! - `Read`: `REPEATABLE READ READ ONLY`: one snapshot for the whole command, no
//!   locks, never waits for a writer.
//! - `Admin`, `Bulk`: `READ COMMITTED` (each statement sees what committed before
//!   it, so a lock taken and then a read sees the previous holder's writes), with
//!   the rows a decision rests on locked `FOR UPDATE` until commit: `key_by_id` the
//!   key it returns (an update rewrites what it read), `name_holder` the name's
//!   `name_locks` row, `count_limited` and every key insert the `key-count` row of
//!   `store_locks`, `audit_head_for_append` its `audit-head` row.
//! - `Verify`: `READ COMMITTED` with the IP's `ip_blocks` row, the presented key's row
//!   and its credit pool's row locked `FOR UPDATE`, in that order (`lock_for_verify`,
//!   again by `ip_blocked_until` and `key_by_hash`); `record_auth_failure` makes the
//!   IP's row if missing (an upsert, `until` 0: only a lock) and locks it: quotas,
//!   rate limits, credits and failure counts of one key or IP are decided one request
//!   after another; credits are spent by a conditional `UPDATE ... RETURNING` as a
//!   last guard.
//! - The clock: `db_clock` reads `clock_timestamp()` once per transaction (call it
//!   after the locks), so every host decides on the database's time.
//! - Following the log: `requests_after` needs a `Read` transaction (one snapshot for
//!   the rows and the new position); see `LogCursor` for its window.
//! - Failures: a serialization failure or deadlock is `ErrorKind::Retry` (run the
//!   whole transaction again); a transaction that fails commits nothing.

mod location;
#[macro_use]
mod migrate;
mod queries;
mod tls;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Statement};

pub use location::{is_url, PgLocation};

use super::{ErrorKind, Intent, OpenOptions, Remedy, Result, Store, StoreError, Txn};
use queries::PgTxn;

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PgStore {
    location: PgLocation,
    /// None after a failed reconnect: the next `begin` tries again.
    client: Option<Client>,
    /// Statements prepared on this connection, by their text.
    statements: HashMap<&'static str, Statement>,
}

/// Opens (or with `create`, creates) the store at `location`: see [`super::open`].
pub fn open(location: &PgLocation, how: &OpenOptions) -> Result<(Box<dyn Store>, bool)> {
    let mut client = connect(location)?;
    let created = match migrate::check(&mut client, location)? {
        Some(_) => false,
        None if how.create => migrate::create(&mut client, location, how.prefix.as_deref())?,
        None => return Err(no_store(location)),
    };
    let store = PgStore {
        location: location.clone(),
        client: Some(client),
        statements: HashMap::new(),
    };
    Ok((Box::new(store), created))
}

/// A database (or schema) without keyctl's tables, where a store was expected.
fn no_store(location: &PgLocation) -> StoreError {
    StoreError::at(
        ErrorKind::NotFound,
        location,
        format!(
            "{location} holds no keyctl store (schema {})",
            location.schema
        ),
    )
    .remedy(Remedy::InitOrPassDb)
}

/// `keyctl migrate`: see [`super::migrate`].
pub fn migrate(location: &PgLocation) -> Result<(i64, i64)> {
    migrate::migrate(&mut connect(location)?, location)
}

/// True when the database (which must exist) has no keyctl tables in the schema.
pub fn is_empty_target(location: &PgLocation) -> Result<bool> {
    Ok(migrate::version(&mut connect(location)?, location)?.is_none())
}

/// `"name"`: an identifier quoted for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A connection to `location` with the session's search path set to its schema.
fn connect(location: &PgLocation) -> Result<Client> {
    let refused = |problem: String| StoreError::at(ErrorKind::Refused, location, problem);
    let mut config: postgres::Config = location
        .config_url()
        .parse()
        .map_err(|e| refused(format!("{location} is not a valid PostgreSQL URL: {e}")))?;
    if config.get_password().is_none() {
        if let Some(password) = location.password_from_environment() {
            config.password(password);
        }
    }
    if config.get_user().is_none() {
        config.user(&location.user_name());
    }
    // As libpq: no host means PGHOST, else the local socket folder (Debian's).
    if config.get_hosts().is_empty() {
        let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
        config.host(&host);
        if let Some(port) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok()) {
            config.port(port);
        }
    }
    // As libpq: a unix socket never uses TLS, whatever sslmode says.
    let only_sockets = config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, postgres::config::Host::Unix(_)));
    config.ssl_mode(match location.ssl {
        _ if only_sockets => postgres::config::SslMode::Disable,
        location::SslMode::Disable => postgres::config::SslMode::Disable,
        location::SslMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("keyctl");
    }
    let tls = tls::connector(location).map_err(|why| {
        StoreError::at(
            ErrorKind::Refused,
            location,
            format!("cannot use PostgreSQL at {location}: {why}"),
        )
    })?;
    let mut client = config.connect(tls).map_err(|e| pg_error(location, &e))?;
    client
        .batch_execute(&format!(
            "SET search_path TO {}",
            quote_ident(&location.schema)
        ))
        .map_err(|e| pg_error(location, &e))?;
    Ok(client)
}

/// Maps a PostgreSQL failure to a one-line message naming the store by its masked
/// URL (a server's messages never carry the password).
pub(super) fn pg_error(location: &PgLocation, e: &postgres::Error) -> StoreError {
    let failed = |kind, problem: String| StoreError::at(kind, location, problem);
    let unreachable = |why: String| {
        failed(
            ErrorKind::Unavailable,
            format!("cannot reach PostgreSQL at {location}"),
        )
        .because(why)
    };
    let Some(db) = e.as_db_error() else {
        let text = e.to_string();
        if text.contains("TLS") {
            return failed(
                ErrorKind::Unavailable,
                format!("cannot set up TLS with PostgreSQL at {location}"),
            )
            .because(tls_cause(e));
        }
        return unreachable(cause_chain(e));
    };
    let code = db.code();
    let message = db.message().to_string();
    // LOCK_NOT_AVAILABLE: a group's later request found its row held (NOWAIT).
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
    {
        return failed(
            ErrorKind::Retry,
            format!("key store {location}: a concurrent transaction conflicted with this one"),
        )
        .because(message)
        .remedy(Remedy::TryAgain);
    }
    if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        return failed(
            ErrorKind::Unavailable,
            format!("cannot log in to PostgreSQL at {location}"),
        )
        .because(message);
    }
    if *code == SqlState::INVALID_CATALOG_NAME {
        return failed(
            ErrorKind::NotFound,
            format!("no such PostgreSQL database: {location}"),
        )
        .because(message);
    }
    if *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || code.code().starts_with("08")
    {
        return unreachable(message);
    }
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        return failed(
            ErrorKind::Unavailable,
            format!("key store {location}: permission denied"),
        )
        .because(message);
    }
    if *code == SqlState::UNIQUE_VIOLATION {
        return failed(
            ErrorKind::Conflict,
            format!("key store {location}: {message}"),
        );
    }
    if *code == SqlState::UNDEFINED_TABLE
        || *code == SqlState::UNDEFINED_COLUMN
        || *code == SqlState::DUPLICATE_TABLE
    {
        return failed(
            ErrorKind::Refused,
            format!("key store {location}: its schema does not match its version"),
        )
        .because(message)
        .remedy(Remedy::RestoreBackup);
    }
    if *code == SqlState::DISK_FULL {
        return failed(
            ErrorKind::Unavailable,
            format!("no space left for key store {location}"),
        )
        .because(message);
    }
    failed(ErrorKind::Other, format!("key store {location}: {message}"))
}

/// True when `e` says the connection is gone (closed, reset, or the server ended it:
/// a restart, an administrator), so a new one may work.
fn connection_lost(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code();
            *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08")
        }
        None => {
            e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

/// An error and its causes in one line (`error connecting to server: Connection
/// refused (os error 111)`).
fn cause_chain(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

fn tls_cause(e: &postgres::Error) -> String {
    cause_chain(e).replace("error performing TLS handshake: ", "")
}

impl PgStore {
    /// The connection, reconnecting when there is none or it broke.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statements.clear();
            self.client = Some(connect(&self.location)?);
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => Err(unreachable_now(&self.location)),
        }
    }
}

fn unreachable_now(location: &PgLocation) -> StoreError {
    StoreError::at(
        ErrorKind::Unavailable,
        location,
        format!("cannot reach PostgreSQL at {location}"),
    )
}

impl Store for PgStore {
    /// A deadlock or serialization failure is another host's transaction winning: a
    /// few runs of the whole transaction get through.
    fn retry_attempts(&self) -> u32 {
        3
    }

    fn begin(&mut self, intent: Intent) -> Result<Box<dyn Txn + '_>> {
        let sql = match intent {
            Intent::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            Intent::Admin | Intent::Bulk | Intent::Verify => "BEGIN ISOLATION LEVEL READ COMMITTED",
        };
        // A connection that broke since its last use (a server restart) shows only
        // when it is used: then reconnect once and begin again.
        let mut attempt = 0;
        loop {
            let client = self.client()?;
            let Err(e) = client.batch_execute(sql) else {
                break;
            };
            let lost = connection_lost(&e) || client.is_closed();
            if lost {
                self.client = None;
            }
            if !(lost && attempt == 0) {
                return Err(pg_error(&self.location, &e));
            }
            attempt += 1;
        }
        let PgStore {
            location,
            client,
            statements,
        } = self;
        match client.as_mut() {
            Some(client) => Ok(Box::new(PgTxn::new(client, location, statements, intent))),
            None => Err(unreachable_now(location)),
        }
    }

    fn backup_to(&mut self, dest: &Path) -> Result<()> {
        let tx = self.begin(Intent::Read)?;
        super::sqlite::write_new_store(dest, &mut |target| {
            super::copy_rows(tx.as_ref(), target).map(drop)
        })
    }
}
