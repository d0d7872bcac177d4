//! The key store: the only module that knows about SQL. Commands talk to it through
//! the [`Store`] and [`Txn`] traits with domain types, so another backend (PostgreSQL
//! for fleets of API hosts) can be added without touching the commands. [`open`] is
//! the one place a backend is chosen, from a [`Location`].

// Not `postgres`: that is the client crate's name.
#[path = "postgres/mod.rs"]
mod pg;
pub mod rows;
mod select;
mod sqlite;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub use crate::core::audit::{AuditHead, StoredAuditEvent};
use crate::core::limits::block_subject;
use crate::core::model::{
    KeyRecord, NewKey, RequestRecord, RequestRow, Status, StatusCounts, UsageFigures,
};
pub use crate::core::policy::VerifyView;
use crate::core::policy::{counts_from, window_starts, AuthFailure, Counts};
use crate::core::refill::{Balance, Refill};
use crate::core::settings::Settings;
use crate::core::store_limits::{StoreFigures, StoreLimits, StoreView};

pub use pg::PgLocation;
pub use rows::{Table, Value};
pub use sqlite::{
    setup_process as setup_sqlite_process, side_file, use_arena as use_sqlite_arena, SIDE_SUFFIXES,
};

/// The default store: `keys.db` in the platform data folder (None without a home).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "keyctl").map(|d| d.data_dir().join("keys.db"))
}

/// Where a store lives, which also says which backend serves it. `Display` is what
/// messages show: a PostgreSQL URL prints with `***` for its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (`--db PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`--db postgres://...`).
    Postgres(PgLocation),
}

impl Location {
    /// `--db`/`KEYCTL_DB` text: a `postgres://` or `postgresql://` URL names a
    /// PostgreSQL store, anything else an SQLite file. The error is one line for the
    /// user (a malformed URL), without the URL's password.
    pub fn parse(text: &str) -> std::result::Result<Location, String> {
        if pg::is_url(text) {
            PgLocation::parse(text).map(Location::Postgres)
        } else {
            Ok(Location::Sqlite(PathBuf::from(text)))
        }
    }

    /// The SQLite file, for what works on the file itself (`backup`); None for a
    /// store that is not one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }

    /// True when the location's text carries a password (a PostgreSQL URL's
    /// `user:password@` or `password=`), which argv must not (SPEC §6).
    pub fn password_in_url(&self) -> bool {
        match self {
            Location::Sqlite(_) => false,
            Location::Postgres(pg) => pg.password_in_url(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(pg) => pg.fmt(f),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Create the store when it is missing (write commands).
    pub create: bool,
    /// Also create a missing parent folder (0700); only for the default location, so a
    /// mistyped `--db` folder is reported instead of silently created.
    pub create_parent: bool,
    /// Key prefix for a newly created store (`init --prefix`).
    pub prefix: Option<String>,
}

/// Opens (or, with `create`, creates) the store at `location`, checking that it is a
/// keyctl store of a known schema version and migrating an older one forward. The
/// flag is true when this open created the store: that is a fact about the open (a
/// command says so once), not about the handle.
///
/// PostgreSQL: a database or schema without keyctl's tables is created only with
/// `create` (`init`, `copy`); an older schema is refused (only [`migrate`] changes
/// one, so a fleet's hosts never race to upgrade), a newer one is used when it says
/// this keyctl can use it.
pub fn open(location: &Location, how: &OpenOptions) -> Result<(Box<dyn Store>, bool)> {
    match location {
        Location::Sqlite(path) => sqlite::open(path, how),
        Location::Postgres(location) => pg::open(location, how),
    }
}

/// Brings an existing store's schema up to this keyctl's (`keyctl migrate`): the
/// schema versions before and after; the same number twice when there was nothing
/// to do. SQLite: what [`open`] does anyway.
pub fn migrate(location: &Location) -> Result<(i64, i64)> {
    match location {
        Location::Sqlite(path) => sqlite::migrate_store(path),
        Location::Postgres(location) => pg::migrate(location),
    }
}

/// True when there is no keyctl store at `location` yet, so `copy` may create one
/// there: a missing file, or a database or schema without keyctl's tables. Any store,
/// even an empty one, is false.
pub fn is_empty_target(location: &Location) -> Result<bool> {
    match location {
        Location::Sqlite(path) => Ok(matches!(
            std::fs::symlink_metadata(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound
        )),
        Location::Postgres(location) => pg::is_empty_target(location),
    }
}

/// Removes a store this run created at `location` and then could not fill (`copy`
/// failing half way), so running it again finds no store there. True when removed:
/// an SQLite file goes with its side files; a PostgreSQL store's tables stay (their
/// schema may hold other things), false.
pub fn discard_new(location: &Location) -> bool {
    match location {
        Location::Sqlite(path) => {
            sqlite::remove_with_side_files(path);
            true
        }
        Location::Postgres(_) => false,
    }
}

/// Copies every row `from` holds into `to`, verbatim and in dependency order (`copy`,
/// and `backup` from PostgreSQL); `to` must hold no rows yet. The number of rows.
pub fn copy_rows(from: &dyn Txn, to: &mut dyn Txn) -> Result<u64> {
    const BATCH: usize = 1000;
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
    let mut table = None;
    let mut count = 0;
    from.dump(&mut |t, row| {
        if table != Some(t) || batch.len() >= BATCH {
            if let Some(previous) = table {
                to.load(previous, &batch)?;
            }
            batch.clear();
            table = Some(t);
        }
        batch.push(row.to_vec());
        count += 1;
        Ok(())
    })?;
    if let Some(last) = table {
        to.load(last, &batch)?;
    }
    Ok(count)
}

/// What kind of failure a store reports: what a caller may do about it. The CLI maps
/// every kind to exit 1 (a runtime failure, SPEC §2), as before kinds existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing at the location (a read command found no store).
    NotFound,
    /// A write broke a uniqueness rule of the store.
    Conflict,
    /// Another writer held the lock too long (SQLite: BUSY/LOCKED after the busy
    /// timeout; PostgreSQL: a serialization failure or deadlock): running the whole
    /// transaction again may succeed.
    Retry,
    /// The store is there but cannot be used now or by this user: permissions, a
    /// read-only file or folder, a full disk, a missing folder, an I/O failure.
    Unavailable,
    /// The location holds something keyctl must not use: not a keyctl store, a foreign,
    /// damaged or newer one, a schema or value keyctl could not have written.
    Refused,
    /// Anything else: an unexpected database error.
    Other,
}

/// What the user can do about a failure. Only named here: the words are chosen where
/// errors meet the user (`error.rs`), so the store never speaks about flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Create the store, or point at another one.
    InitOrPassDb,
    /// Create the missing folder, or point at another store.
    CreateFolderOrPassDb,
    /// Point at a file, not a folder.
    PassFilePath,
    /// Remove the empty file, or point at another store.
    RemoveOrPassDb,
    /// Point at the right file.
    PassRightFile,
    /// Use a newer keyctl.
    Upgrade,
    /// Restore the store from a backup.
    RestoreBackup,
    /// Fix the bad stored value, or restore the store from a backup.
    FixValueOrRestore,
    /// Free disk space.
    FreeSpace,
    /// Try again later.
    TryAgain,
    /// Make the store and its folder readable.
    CheckReadable,
    /// Make the store's folder writable.
    MakeFolderWritable,
    /// Make the store file writable (reads still work).
    MakeFileWritable,
    /// Make the read-only side file writable, or remove it.
    MakeSideFileWritable,
    /// Make the store writable, or only read.
    MakeWritable,
}

/// Why the store could not do what was asked: a kind, the store's location, the
/// problem in one line naming the store, the underlying cause (shown in parentheses)
/// and what the user can do.
#[derive(Debug)]
pub enum StoreError {
    Failed {
        kind: ErrorKind,
        location: String,
        problem: String,
        cause: Option<String>,
        remedy: Option<Remedy>,
    },
    /// Writing to the output sink failed (a closed pipe, a full disk): not the store's.
    Sink(std::io::Error),
}

impl StoreError {
    pub fn new(kind: ErrorKind, location: &Path, problem: impl Into<String>) -> StoreError {
        StoreError::at(kind, location.display(), problem)
    }
    /// A failure of the store shown as `location` (a path, a masked URL).
    pub fn at(
        kind: ErrorKind,
        location: impl fmt::Display,
        problem: impl Into<String>,
    ) -> StoreError {
        StoreError::Failed {
            kind,
            location: location.to_string(),
            problem: problem.into(),
            cause: None,
            remedy: None,
        }
    }
    /// The underlying cause (an OS or database message).
    pub fn because(mut self, why: impl fmt::Display) -> StoreError {
        if let StoreError::Failed { cause, .. } = &mut self {
            *cause = Some(why.to_string());
        }
        self
    }
    /// What the user can do about it.
    pub fn remedy(mut self, what: Remedy) -> StoreError {
        if let StoreError::Failed { remedy, .. } = &mut self {
            *remedy = Some(what);
        }
        self
    }
    /// The kind; None for a failure of the output sink.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            StoreError::Failed { kind, .. } => Some(*kind),
            StoreError::Sink(_) => None,
        }
    }
}

/// The problem and its cause, without a remedy (the CLI adds that).
impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Failed { problem, cause, .. } => {
                f.write_str(problem)?;
                match cause {
                    Some(c) => write!(f, " ({c})"),
                    None => Ok(()),
                }
            }
            StoreError::Sink(e) => write!(f, "could not write output: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where a transaction's "now" comes from. `Fixed`: the user fixed it
/// (`KEYCTL_NOW`), on every backend. `Host`: the host's clock, used only by a backend
/// without a clock of its own; PostgreSQL reads the database's ([`Txn::db_clock`]),
/// one clock for every host of a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Fixed(DateTime<Utc>),
    Host(DateTime<Utc>),
}

impl Clock {
    /// The time `tx` decides at; call it after the transaction's locks.
    pub fn read<T: Txn + ?Sized>(self, tx: &mut T) -> Result<DateTime<Utc>> {
        match self {
            Clock::Fixed(t) => Ok(t),
            Clock::Host(t) => Ok(tx.db_clock()?.unwrap_or(t)),
        }
    }
}

/// How `list` orders keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    Name,
    /// Newest first.
    #[default]
    Created,
    /// Most recently used first, never-used last.
    LastUsed,
    /// Soonest expiry first, no expiry last.
    Expires,
}

/// The smallest text above every text that starts with `typed` (byte order), for a
/// range scan `column >= typed AND column < bound`; a value that continues `typed`
/// with U+10FFFF itself is beyond it (no key name or id does in practice).
pub(crate) fn prefix_bound(typed: &str) -> String {
    format!("{typed}\u{10FFFF}")
}

/// A key column that KEYREF completion searches by what was typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starting {
    Name,
    Id,
}

/// Which keys `list` shows.
#[derive(Debug, Clone, Default)]
pub struct KeyQuery {
    /// Only these statuses (empty: every status but revoked, unless `include_revoked`).
    pub statuses: Vec<Status>,
    pub include_revoked: bool,
    pub category: Option<String>,
    pub owner: Option<String>,
    pub deployment: Option<String>,
    pub group: Option<String>,
    /// Case-insensitive substring of name, description, id or prefix.
    pub search: Option<String>,
    pub sort: SortBy,
}

/// What a transaction is for. Commands say what they do; each backend maps that to
/// its own locking and durability, so no command names a pragma or an isolation level.
///
/// What the lock protects is part of the contract: every intent but `Read` reads,
/// decides and writes, and nothing another writer commits may slip in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Reads only, from one consistent snapshot (list, show, usage, logs, audit,
    /// `verify --no-record`).
    ///
    /// SQLite: a deferred transaction: a WAL snapshot taken at its first read; it
    /// takes no lock a writer waits for and waits for no writer. Durability does not
    /// apply.
    /// PostgreSQL (next issue): a READ ONLY transaction, no row locks.
    Read,
    /// An administrator's change (create, edit, rotate, revoke, delete, config, prune):
    /// names and limits are checked, then rows written, under one lock.
    ///
    /// SQLite: `BEGIN IMMEDIATE`: the store's single write lock (every row) taken up
    /// front, so concurrent writers queue for the busy timeout instead of failing mid
    /// way; `synchronous = FULL`: a commit survives power loss, so a revealed secret
    /// always works.
    /// PostgreSQL (next issue): READ COMMITTED with the rows the decision rests on
    /// locked (`FOR UPDATE`: the keys it changes, the name it claims, the audit head);
    /// a commit is durable.
    Admin,
    /// Recording one verification (`verify`; each request of `verify --stream`): the
    /// key, its credit pool and windows and the IP's failures are read, decided on and
    /// updated.
    ///
    /// SQLite: `BEGIN IMMEDIATE` (the whole store, as `Admin`), with
    /// `synchronous = NORMAL` and a checkpoint every 8192 WAL pages instead of 1000:
    /// the newest commits may be lost on power loss (never on a crash) for thousands of
    /// requests a second. A long-running verifier (`Store::serve_long`) checkpoints in
    /// a thread of its own. Those pragmas are set once per connection, not per
    /// transaction, so a stream's per-request cost stays one `BEGIN`.
    /// PostgreSQL (next issue): READ COMMITTED with the key row, its credit pool row
    /// and the IP's block row locked (`FOR UPDATE`) for the one decision.
    Verify,
    /// Many rows at once (`create --batch`).
    ///
    /// SQLite: as `Admin` (`BEGIN IMMEDIATE`, `synchronous = FULL`), with a 256 MiB page
    /// cache (set once per connection) so index pages are not spilled and re-read
    /// mid-transaction.
    /// PostgreSQL (next issue): as `Admin`.
    Bulk,
}

/// The most verifications in one group-committed transaction unless a backend says
/// otherwise (`Store::group_limit`): it bounds how long the first request of a group
/// waits for the last one's work (256 x 30-100 us), and on PostgreSQL how many rows a
/// group holds locked while other hosts' groups want them.
pub const GROUP_LIMIT: usize = 256;

/// A store handle. Every command runs in exactly one transaction from it.
pub trait Store {
    /// A transaction for `intent`, with the locking and durability it needs.
    fn begin(&mut self, intent: Intent) -> Result<Box<dyn Txn + '_>>;
    /// This handle serves groups of up to `group` verifications from now on (`verify
    /// --stream` and `serve` call it for each group larger than any before): a backend
    /// may keep more of the store in memory. Nothing by default.
    fn serve_many(&mut self, _group: usize) -> Result<()> {
        Ok(())
    }
    /// The most verifications one group-committed transaction should hold (SPEC §7:
    /// the ones waiting at once, up to this). [`GROUP_LIMIT`] by default.
    fn group_limit(&self) -> usize {
        GROUP_LIMIT
    }
    /// This handle serves a long-running verifier (`verify --stream`, `serve`): a
    /// backend may move housekeeping out of the requests' path (SQLite: WAL
    /// checkpoints into a thread of their own). Nothing by default.
    fn serve_long(&mut self) -> Result<()> {
        Ok(())
    }
    /// How many times `app::retry::with_retry` runs a transaction of this store that
    /// fails with `ErrorKind::Retry`. SQLite: once, because its busy timeout (30 s)
    /// already waited for the other writer inside the attempt.
    fn retry_attempts(&self) -> u32 {
        1
    }
    /// Writes a consistent copy of the store to `dest` (which must not exist), mode
    /// 0600, while other processes may keep writing.
    fn backup_to(&mut self, dest: &Path) -> Result<()>;
}

/// Which request-log rows `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub key_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub ip: Option<String>,
    /// The newest this many rows ([`Txn::for_each_request`]; following ignores it).
    pub limit: Option<u64>,
}

/// A position in the request log, for following it (`logs --follow`): every row
/// committed after the position, and none before, is read from it. Opaque outside the
/// store: only a backend makes one ([`Txn::log_cursor_now`]) or advances one
/// ([`Txn::requests_after`]), so no command assumes how rows are ordered.
///
/// SQLite: the rowid (`requests.seq`) of the newest row the cursor has passed. A rowid
/// is enough because SQLite has one writer at a time: a row's rowid is taken inside
/// the write lock, so commit order is rowid order and no row can later commit below a
/// position already read. (A log pruned empty numbers rows from 1 again: the backend
/// notices an end below the cursor and reads from the start; only rows that both
/// restart and pass the cursor between two polls could be missed.) PostgreSQL: ids
/// from a sequence are taken before commit and concurrent writers commit out of
/// order, so an id alone would skip a row that commits late below it; the cursor
/// also keeps the ids it has seen within a window behind its end
/// (`FOLLOW_WINDOW` in the PostgreSQL backend), and each poll re-reads that window and drops
/// the rows seen: a row committing later than that many ids behind the newest is
/// the only one it can miss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    /// The newest id the cursor has passed.
    end: i64,
    /// Ids at or below `end` within the window already read (PostgreSQL), ascending.
    seen: Vec<i64>,
}

impl LogCursor {
    fn at(end: i64) -> LogCursor {
        LogCursor {
            end,
            seen: Vec::new(),
        }
    }
}

/// Which audit events `audit` shows.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub key_id: Option<String>,
    /// Events of any of these keys (a rotation chain); empty: no such filter.
    pub key_ids: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub action: Option<String>,
    pub limit: Option<u64>,
    /// Newest first (for people); `audit verify` reads oldest first.
    pub newest_first: bool,
}

/// What recording one verification writes ([`Txn::record_verdict`]).
#[derive(Debug, Clone)]
pub struct VerdictRecord {
    /// The request-log row, and through it the key's counters, usage and credits.
    pub request: RequestRecord,
    /// An invalid attempt to count against the IP (which may block it).
    pub auth_failure: Option<AuthFailure>,
    /// Request-log rows older than this are pruned (log retention).
    pub prune_before: Option<DateTime<Utc>>,
    /// An accepted request while a store-wide limit is set: its charge goes to the
    /// store's counter too, and with `true` (a store rate limit) into its ledger.
    pub store_ledger: Option<bool>,
}

/// One transaction. Dropping it without [`Txn::commit`] rolls everything back.
/// The settings `txn` stores, typed ([`Txn::settings`] without a backend's cache).
pub(crate) fn read_settings<T: Txn + ?Sized>(txn: &T) -> Result<Settings> {
    let pairs = txn.setting_pairs()?;
    Ok(Settings::from_pairs(
        pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    ))
}

pub trait Txn {
    /// Stored settings as (name, value) pairs; absent settings have their default.
    fn setting_pairs(&self) -> Result<Vec<(String, String)>>;
    /// The settings in force (stored values over defaults), typed.
    fn settings(&self) -> Result<Settings> {
        read_settings(self)
    }
    /// Sets (`Some`) or resets to the default (`None`) one setting.
    fn set_setting(&mut self, name: &str, value: Option<&str>) -> Result<()>;

    fn insert_key(&mut self, key: &NewKey) -> Result<()>;
    /// Inserts new keys in order, as [`Txn::insert_key`] one by one would (`create
    /// --batch`); a backend may do it faster.
    fn insert_keys(&mut self, keys: &[&NewKey]) -> Result<()> {
        keys.iter().try_for_each(|key| self.insert_key(key))
    }
    /// About `keys` new keys follow in this transaction and no name is looked up
    /// meanwhile (`create --batch` into a store where no name is held): a backend may
    /// index them once, after the rows and before the commit, instead of row by row.
    /// Nothing by default.
    fn expect_new_keys(&mut self, keys: usize) -> Result<()> {
        let _ = keys;
        Ok(())
    }
    fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>>;
    fn keys_by_name(&self, name: &str) -> Result<Vec<KeyRecord>>;
    fn keys_by_prefix(&self, prefix: &str) -> Result<Vec<KeyRecord>>;
    /// The first `limit` distinct values of `column` that start with `typed` (as typed:
    /// no case folding), in byte order: a range scan of the column's index, so its cost
    /// does not grow with the store.
    fn values_starting(&self, column: Starting, typed: &str, limit: u32) -> Result<Vec<String>>;
    /// KEYREF completion's read: every key of the first `limit` values of `column`
    /// that start with `typed` (see [`Txn::values_starting`]), each value's keys in
    /// creation order, and whether more such values exist.
    fn keys_starting(
        &self,
        column: Starting,
        typed: &str,
        limit: u32,
    ) -> Result<(Vec<KeyRecord>, bool)> {
        // One more than `limit` tells whether there are more.
        let mut values = self.values_starting(column, typed, limit.saturating_add(1))?;
        let more = values.len() > limit as usize;
        values.truncate(limit as usize);
        let mut keys = Vec::new();
        for value in &values {
            match column {
                Starting::Name => keys.extend(self.keys_by_name(value)?),
                Starting::Id => keys.extend(self.key_by_id(value)?),
            }
        }
        Ok((keys, more))
    }
    /// The id of the key that holds `name` now (active or disabled, unexpired, not
    /// superseded by a rotation), if any. Names are claimed through
    /// `app::keys::claim_name`, which checks this and then the caller writes.
    ///
    /// Locking: that check-then-write is only safe when nothing another writer
    /// commits can slip in between. SQLite: an `Admin` or `Bulk` transaction holds
    /// the store's single write lock from `BEGIN IMMEDIATE` to commit, so the answer
    /// stays true until the insert or update commits. PostgreSQL (next issue): a
    /// unique partial index cannot express the rule (whether a key holds its name
    /// depends on `now` against its expiry, and an index predicate must be
    /// immutable), so this method must lock the name before it reads: a row per name
    /// (`INSERT ... ON CONFLICT DO NOTHING`, then `SELECT ... FOR UPDATE`) is portable
    /// to CockroachDB/YugabyteDB, unlike `pg_advisory_xact_lock`; two claims of one
    /// name then queue, and the second sees the first's key.
    fn name_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<String>>;
    /// Active and disabled, unexpired keys: what `max-keys` limits
    /// (`app::keys::KeyLimit` counts once and then adds as it inserts).
    ///
    /// Locking: as for [`Txn::name_holder`], the count must stay true until the
    /// transaction's inserts commit. SQLite: the `Admin`/`Bulk` write lock covers the
    /// whole store. PostgreSQL (next issue): the count is over every key, so this
    /// method must first take one store-wide lock that every key insert also takes
    /// (a row such as the `max-keys` settings row, `FOR UPDATE`; not an advisory
    /// lock, which CockroachDB lacks), so that concurrent creates count one after
    /// another.
    fn count_limited(&self, now: DateTime<Utc>) -> Result<u64>;
    /// One page of a scan over every key that is not revoked, in creation order: at
    /// most `limit` keys after the key with id `after` (None: from the first). Pass
    /// the last key's id as `after` for the next page; a page shorter than `limit` is
    /// the last. Call it in one `Read` transaction (one snapshot: the cursor's key is
    /// still there), so a whole scan (`report`) holds one page at a time, and between
    /// pages the caller may run other reads ([`Txn::pool_windows`]) on this
    /// transaction, which a row stream still open on the connection would forbid.
    fn keys_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<KeyRecord>>;
    /// Streams matching keys to `sink` in the query's order without collecting them.
    fn for_each_key(
        &self,
        query: &KeyQuery,
        now: DateTime<Utc>,
        sink: &mut dyn FnMut(&KeyRecord) -> std::io::Result<()>,
    ) -> Result<StatusCounts>;
    /// Exact requests and credits of one key in each window (since, now], one entry per
    /// start, at a cost independent of the key's history. `key` must have been read in
    /// this transaction: its running totals are the base each window is counted back
    /// from, so a record from another snapshot would give wrong figures.
    fn usage_windows(&self, key: &KeyRecord, starts: &[DateTime<Utc>])
        -> Result<Vec<UsageFigures>>;
    /// Exact accepted requests of the key's rotation lineage (its pool: the key, its
    /// predecessors and successors) in each window (since, now], one entry per start,
    /// at a cost independent of history and of the chain's length. Quotas and rate
    /// limits count these. As for [`Txn::usage_windows`], `key` comes from this
    /// transaction (its pool's total is the base).
    fn pool_windows(&self, key: &KeyRecord, starts: &[DateTime<Utc>]) -> Result<Vec<u64>>;
    /// Per-day figures (UTC days since the epoch, `from..=to`) of one key, or of every
    /// request when `key_id` is None; days without requests are left out.
    fn usage_by_day(
        &self,
        key_id: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, UsageFigures)>>;

    /// The key whose secret has this sha256, if any.
    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>>;
    /// [`Txn::key_by_hash`] for a verification. One that records nothing decides on
    /// the key's settings and its lineage's figures, never its own running totals
    /// (`events_total`, `accepted_total`, `credits_total`, the last use), so a backend
    /// may leave those as stored in the key row when `recording` is false (SQLite: the
    /// newest ledger row that carries them is not read).
    fn key_to_verify(&self, hash: &[u8; 32], recording: bool) -> Result<Option<KeyRecord>> {
        let _ = recording;
        self.key_by_hash(hash)
    }
    /// The keys whose secrets have these sha256s (`scan`), each with its hash; hashes
    /// of no key are left out, the order is the backend's. PostgreSQL asks for many
    /// at once (one round trip per batch); SQLite seeks the index once per hash.
    fn keys_by_hashes(&self, hashes: &[[u8; 32]]) -> Result<Vec<([u8; 32], KeyRecord)>>;
    /// The key prefixes (`sk` of `sk_live_4eC3`) the stored keys were made with, each
    /// once, in no order: with the `key-prefix` setting, the prefixes whose secrets
    /// are this store's (`scan`).
    fn key_prefixes(&self) -> Result<Vec<String>>;
    /// Until when this IP is blocked, if it is blocked at `now`.
    fn ip_blocked_until(&self, ip: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
    /// Invalid attempts from `ip` (a block subject) counted after `since` (what
    /// blocking counts against `failed-auth-limit`; `verify --explain` shows it).
    fn auth_failures_since(&self, ip: &str, since: DateTime<Utc>) -> Result<u64>;
    /// Counts an invalid attempt from `ip`; blocks the IP until `now + block` when the
    /// attempts within `window` reach `limit`. Returns true when it blocked.
    fn record_auth_failure(
        &mut self,
        ip: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        limit: u64,
        block: chrono::Duration,
    ) -> Result<bool>;
    /// Writes one request-log row and, for a known key, its counters, usage and (when
    /// accepted) last use and credits, all in this transaction.
    fn record_request(&mut self, request: &RequestRecord) -> Result<()>;
    /// Takes, before "now" is read, the locks one verification's decision rests on,
    /// so that the database's clock ([`Txn::db_clock`]) is read after them (SPEC §6):
    /// [`Txn::load_for_verify`] calls it first in a recording (`Verify`) transaction,
    /// then reads the clock; its own reads take the same locks again, at no cost.
    /// SQLite: nothing to do (`Intent::Verify` holds the whole store). PostgreSQL: the
    /// IP's block row, then the key row with this hash and its credit pool's row,
    /// `FOR UPDATE`.
    fn lock_for_verify(
        &mut self,
        hash: Option<&[u8; 32]>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let _ = (hash, ip);
        Ok(())
    }
    /// The settings, when a store-wide rate or credit limit is set or a multiplier
    /// for `group` (None when nothing store-wide applies): what a verification that
    /// did not read the settings (`--no-record`) asks. By default one read of the
    /// settings, kept when they apply; a backend may answer "nothing applies" more
    /// cheaply first.
    fn settings_if_store_limits_apply(&self, group: Option<&str>) -> Result<Option<Settings>> {
        let s = self.settings()?;
        let applies = s.store.counted() || s.store.multiplier_of(group).is_some();
        Ok(applies.then_some(s))
    }
    /// The store-wide figures as of now: accepted requests of every key after
    /// `rate_start` (0 without one) and the credits charged store-wide. Exact while
    /// the store-wide limits are set (their counter and ledger are kept only then).
    fn store_figures(&self, rate_start: Option<DateTime<Utc>>) -> Result<StoreFigures>;
    /// Locks the store-wide counter until the transaction ends, before "now" is read
    /// (a recording verification while a store-wide limit is set). SQLite: nothing
    /// to do (`Intent::Verify` holds the whole store). PostgreSQL: its row,
    /// `FOR UPDATE`.
    fn lock_store_usage(&mut self) -> Result<()> {
        Ok(())
    }
    /// Charges an accepted request to the store-wide counter; with `ledger`, also
    /// notes it in the store-wide rate window's ledger.
    fn record_store_usage(&mut self, at: DateTime<Utc>, credits: u64, ledger: bool) -> Result<()>;
    /// [`Txn::record_request`], then, for an accepted request while the store-wide
    /// counter is kept (`store_ledger` is [`VerdictRecord::store_ledger`]), its
    /// [`Txn::record_store_usage`]. A backend may do both at once (PostgreSQL: in one
    /// statement, a round trip fewer a request).
    fn record_request_charging_store(
        &mut self,
        request: &RequestRecord,
        store_ledger: Option<bool>,
    ) -> Result<()> {
        self.record_request(request)?;
        if let (true, Some(ledger)) = (request.accepted, store_ledger) {
            self.record_store_usage(request.at, request.credits, ledger)?;
        }
        Ok(())
    }
    /// Recomputes the store-wide counter when a limit is set (`config set`):
    /// `credits`: every credit ever charged (the usage figures of every key);
    /// `rate`: the ledger from the request log's accepted rows of the last minute
    /// before `now`.
    fn reset_store_usage(&mut self, now: DateTime<Utc>, credits: bool, rate: bool) -> Result<()>;
    /// What a verification of `key` checks store-wide ([`StoreView`]), None when
    /// nothing store-wide applies to it: the figures are read only for a store-wide
    /// rate or credit limit.
    fn store_view(
        &self,
        key: &KeyRecord,
        limits: &StoreLimits,
        now: DateTime<Utc>,
    ) -> Result<Option<StoreView>> {
        let multiplier = limits.multiplier_of(key.settings.group.as_deref());
        if !limits.counted() {
            return Ok(multiplier.map(|m| StoreView {
                multiplier: Some(m),
                ..StoreView::default()
            }));
        }
        let start = limits
            .rate_limit
            .map(|r| now - chrono::Duration::milliseconds(r.unit.millis()));
        let figures = self.store_figures(start)?;
        Ok(Some(StoreView {
            rate_limit: limits.rate_limit,
            credit_limit: limits.credit_limit,
            rate_window: figures.rate_window,
            credits_used: figures.credits_used,
            multiplier,
        }))
    }
    /// Everything one verification decides on (`core::policy::decide`), in one call:
    /// the settings (only when `ip` is IPv6, whose block is its network's, or when
    /// `recording`), the IP's block, and, unless the IP is blocked (then nothing else
    /// matters), the key with this secret hash (`hash` is None for a presented key
    /// that does not parse) and its lineage's counts in each window it limits, all as
    /// of the time `clock` gives once the rows are locked (`VerifyView::now`).
    ///
    /// Locks: in a `Verify` transaction the rows the outcome changes are locked first
    /// ([`Txn::lock_for_verify`]) and stay locked until commit, so the decision and
    /// [`Txn::record_verdict`] see the same store, and "now" is read after them.
    fn load_for_verify(
        &mut self,
        hash: Option<&[u8; 32]>,
        ip: Option<std::net::IpAddr>,
        recording: bool,
        clock: Clock,
    ) -> Result<VerifyView> {
        self.load_for_verify_cached(hash, ip, recording, clock, &mut None)
    }
    /// [`Txn::load_for_verify`] for one request of a group in this transaction: the
    /// settings are read into `settings` by the first request that needs them and
    /// reused by the next ones (no verification changes a setting, so every request of
    /// the transaction would read the same).
    fn load_for_verify_cached(
        &mut self,
        hash: Option<&[u8; 32]>,
        ip: Option<std::net::IpAddr>,
        recording: bool,
        clock: Clock,
        settings: &mut Option<Settings>,
    ) -> Result<VerifyView> {
        // The locks first and "now" after them (SPEC §6), so the decision's time is
        // never before that of a verification that held them first.
        if recording {
            self.lock_for_verify(hash, ip)?;
        }
        let loaded = match (recording, ip) {
            (true, _) | (_, Some(std::net::IpAddr::V6(_))) => match settings {
                Some(s) => Some(s.clone()),
                None => Some(settings.insert(self.settings()?).clone()),
            },
            _ => None,
        };
        // The store-wide counter is locked after the key's rows, before "now".
        if recording && loaded.as_ref().is_some_and(|s| s.store.counted()) {
            self.lock_store_usage()?;
        }
        let now = clock.read(self)?;
        let prefix = loaded.as_ref().map_or(0, |s| s.failed_auth_ipv6_prefix);
        let ip_subject = ip.map(|ip| block_subject(ip, prefix));
        let ip_blocked_until = match &ip_subject {
            Some(subject) => self.ip_blocked_until(subject, now)?,
            None => None,
        };
        let mut view = VerifyView {
            settings: loaded,
            ip_subject,
            ip_blocked_until,
            key: None,
            counts: Counts::default(),
            now,
            store: None,
        };
        // A blocked IP learns nothing about the key it presented.
        if view.ip_blocked_until.is_some() {
            return Ok(view);
        }
        self.load_key_for_verify(hash, recording, &mut view)?;
        if let Some(key) = &view.key {
            // Without the settings at hand (`--no-record`), one small read says
            // whether anything store-wide applies before they are read.
            let limits = match &view.settings {
                Some(s) => Some(&s.store),
                None if settings.is_some() => settings.as_ref().map(|s| &s.store),
                None => self
                    .settings_if_store_limits_apply(key.settings.group.as_deref())?
                    .map(|s| &settings.insert(s).store),
            };
            let store = match limits {
                Some(limits) => self.store_view(key, limits, now)?,
                None => None,
            };
            view.store = store;
        }
        Ok(view)
    }
    /// The key with this secret hash and its lineage's counts in each window it
    /// limits, as of `view.now`, into `view` (nothing for a None hash or no such key);
    /// its own running totals only when `recording` (see [`Txn::key_to_verify`]).
    fn load_key_for_verify(
        &self,
        hash: Option<&[u8; 32]>,
        recording: bool,
        view: &mut VerifyView,
    ) -> Result<()> {
        if let Some(mut found) = hash
            .map(|h| self.key_to_verify(h, recording))
            .transpose()?
            .flatten()
        {
            // The credits as of now (a refill is applied by whoever reads; nothing for
            // a key without one).
            crate::core::refill::catch_up(&mut found, view.now);
            let starts = window_starts(&found, view.now);
            // One seek per window; none for a key without window limits.
            let figures = if starts.is_empty() {
                Vec::new()
            } else {
                self.pool_windows(&found, &starts)?
            };
            view.counts = counts_from(&found, figures);
            view.key = Some(found);
        }
        Ok(())
    }
    /// What `verify --explain` evaluates (in a `Read` transaction, no locks): the
    /// view [`Txn::load_for_verify`] gives, with the settings always loaded and the
    /// key loaded also when the IP is blocked (every check is shown, not only the
    /// first failure), and the IP's failed attempts within `failed-auth-window`.
    fn load_for_explain(
        &mut self,
        hash: Option<&[u8; 32]>,
        ip: Option<std::net::IpAddr>,
        clock: Clock,
    ) -> Result<(VerifyView, Option<u64>)> {
        let now = clock.read(self)?;
        let settings = self.settings()?;
        let ip_subject = ip.map(|ip| block_subject(ip, settings.failed_auth_ipv6_prefix));
        let (ip_blocked_until, failures) = match &ip_subject {
            Some(subject) => (
                self.ip_blocked_until(subject, now)?,
                Some(self.auth_failures_since(subject, now - settings.failed_auth_window)?),
            ),
            None => (None, None),
        };
        let mut view = VerifyView {
            settings: Some(settings),
            ip_subject,
            ip_blocked_until,
            key: None,
            counts: Counts::default(),
            now,
            store: None,
        };
        self.load_key_for_verify(hash, true, &mut view)?;
        if let (Some(key), Some(settings)) = (&view.key, &view.settings) {
            let store = self.store_view(key, &settings.store, now)?;
            view.store = store;
        }
        Ok((view, failures))
    }
    /// Records one decided verification: its log row and counters, the IP's failed
    /// attempt, the pruning of old log rows. Call it in the transaction that loaded
    /// the view, so the rows it changes are still the ones decided on.
    fn record_verdict(&mut self, verdict: &VerdictRecord) -> Result<()> {
        self.record_request_charging_store(&verdict.request, verdict.store_ledger)?;
        if let Some(f) = &verdict.auth_failure {
            self.record_auth_failure(&f.subject, verdict.request.at, f.window, f.limit, f.block)?;
        }
        if let Some(before) = verdict.prune_before {
            self.prune_requests(before)?;
        }
        Ok(())
    }
    /// Streams the matching request-log rows, newest first (at most `query.limit`).
    fn for_each_request(
        &self,
        query: &RequestQuery,
        sink: &mut dyn FnMut(&RequestRow) -> std::io::Result<()>,
    ) -> Result<()>;
    /// The end of the request log as this transaction sees it: following from here
    /// returns exactly the rows this transaction does not see (in a `Read`
    /// transaction, those committed after its snapshot).
    fn log_cursor_now(&self) -> Result<LogCursor>;
    /// Streams the matching rows after `cursor`, oldest first (`query.limit` does not
    /// apply), and returns the cursor after the last row this transaction sees,
    /// matching or not, to follow from next time.
    fn requests_after(
        &self,
        cursor: &LogCursor,
        query: &RequestQuery,
        sink: &mut dyn FnMut(&RequestRow) -> std::io::Result<()>,
    ) -> Result<LogCursor>;
    /// Deletes request-log rows older than `before`; counters, usage and last use stay.
    fn prune_requests(&mut self, before: DateTime<Utc>) -> Result<u64>;

    /// Rewrites every mutable field of an existing key (by id), but not its credit
    /// pool's (balance and refill: [`Txn::set_refill`]).
    fn update_key(&mut self, key: &KeyRecord) -> Result<()>;
    /// The balance of the credit pool of key `key_id` as stored (None: no such key),
    /// read afresh and locked until the transaction ends, for [`Txn::set_refill`] to
    /// rewrite (`edit`): a concurrent verification of the other key of a rotated pair
    /// waits, so no charge is lost. SQLite: the write lock holds the whole store.
    fn credit_balance_for_update(&mut self, key_id: &str) -> Result<Option<Balance>>;
    /// Sets the refill and the balance (credits used, last boundary applied) of the
    /// credit pool of key `key_id`: for every key of a rotated pair at once.
    fn set_refill(&mut self, key_id: &str, refill: Option<&Refill>, balance: Balance)
        -> Result<()>;
    /// Removes a key; its request-log rows and audit events keep its id.
    fn delete_key(&mut self, id: &str) -> Result<()>;
    /// Sets a just-imported key's last use (`import`'s `last_used_at`); its counters
    /// and windows stay empty: no request of this store used it.
    fn set_imported_last_use(&mut self, id: &str, at: DateTime<Utc>) -> Result<()>;
    /// True when the key has any recorded request (in its counters or the log).
    fn has_requests(&self, key_id: &str) -> Result<bool>;

    /// The audit trail's newest event (None: empty), locked until this transaction
    /// ends so that no other writer can append after it meanwhile: the caller computes
    /// the next event from it (`core::audit::next`, through `app::audit`) and
    /// [`Txn::insert_audit`]s it. SQLite: a write transaction already holds the whole
    /// store's lock. PostgreSQL (next): the head row is read `FOR UPDATE`.
    fn audit_head_for_append(&mut self) -> Result<Option<AuditHead>>;
    /// Stores an event computed after the head this transaction locked, as given.
    fn insert_audit(&mut self, stored: &StoredAuditEvent) -> Result<()>;
    /// Streams audit events matching `query`.
    fn for_each_audit(
        &self,
        query: &AuditQuery,
        sink: &mut dyn FnMut(&StoredAuditEvent) -> std::io::Result<()>,
    ) -> Result<()>;

    /// The keys a rotation links `id` to directly. Read from its record and its
    /// audit events, so the links of a deleted key are still known.
    fn rotation_links(&self, id: &str) -> Result<RotationLinks> {
        let mut links = RotationLinks::default();
        if let Some(k) = self.key_by_id(id)? {
            links.from = k.rotated_from;
            links.to = k.rotated_to;
        }
        let query = AuditQuery {
            key_id: Some(id.to_string()),
            ..AuditQuery::default()
        };
        self.for_each_audit(&query, &mut |e| {
            let (slot, field) = match e.event.action.as_str() {
                "created" => (&mut links.from, "rotated_from"),
                "rotated" => (&mut links.to, "rotated_to"),
                _ => return Ok(()),
            };
            if slot.is_none() {
                *slot = serde_json::from_str::<serde_json::Value>(&e.event.details)
                    .ok()
                    .and_then(|d| d.get(field)?.as_str().map(str::to_string));
            }
            Ok(())
        })?;
        Ok(links)
    }

    /// The ids of every key `id` replaced through rotations, nearest first (deleted
    /// keys included: the chain goes on behind them).
    fn predecessors(&self, id: &str) -> Result<Vec<String>> {
        let mut chain: Vec<String> = Vec::new();
        let mut at = id.to_string();
        // A stored cycle (never written by keyctl) must not loop forever.
        while let Some(from) = self.rotation_links(&at)?.from {
            if from == id || chain.contains(&from) {
                break;
            }
            chain.push(from.clone());
            at = from;
        }
        Ok(chain)
    }

    /// `id` and every key linked to it through rotations, both ways, oldest first.
    fn rotation_chain(&self, id: &str) -> Result<Vec<String>> {
        let mut chain = self.predecessors(id)?;
        chain.reverse();
        chain.push(id.to_string());
        let mut at = id.to_string();
        while let Some(to) = self.rotation_links(&at)?.to {
            if chain.contains(&to) {
                break;
            }
            chain.push(to.clone());
            at = to;
        }
        Ok(chain)
    }

    /// The database's clock, when the backend has one every host shares (SPEC §6):
    /// read once, after the transaction's locks, and the same value on every later
    /// call in this transaction. None (SQLite): use the host's clock. `KEYCTL_NOW`
    /// overrides either, in the caller.
    fn db_clock(&mut self) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }

    /// Streams every row of every table ([`Table::ALL`] order, each table in
    /// [`Table::order`]), values verbatim, from this transaction's snapshot.
    fn dump(&self, sink: &mut dyn FnMut(Table, &[Value]) -> Result<()>) -> Result<()>;
    /// Writes rows (as [`Txn::dump`] gives them) into `table` verbatim, in a store
    /// that holds no such rows yet; numbering (rowids, identities) continues after
    /// them.
    fn load(&mut self, table: Table, rows: &[Vec<Value>]) -> Result<()>;

    fn commit(self: Box<Self>) -> Result<()>;
}

/// What a rotation links one key to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationLinks {
    /// The key it replaced.
    pub from: Option<String>,
    /// The key that replaced it.
    pub to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_location_shows_its_path_and_gives_it_to_backup() {
        let location = Location::Sqlite(PathBuf::from("/data/keyctl/keys.db"));
        assert_eq!(location.to_string(), "/data/keyctl/keys.db");
        assert_eq!(
            location.sqlite_path(),
            Some(Path::new("/data/keyctl/keys.db"))
        );
    }
}
