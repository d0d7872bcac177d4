//! The SQLite backend: one file (and SQLite's side files beside it), its connection's
//! pragmas, and each intent mapped to a transaction. [`files`] checks and creates the
//! file, [`migrate`] brings its schema up to date, [`queries`] holds every statement.

mod arena;
mod checkpointer;
mod files;
mod migrate;
mod page_cache;
mod queries;
mod transaction;
mod wal_writes;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::{ErrorKind, Intent, OpenOptions, Remedy, Result, Store, StoreError, Txn};
use checkpointer::Checkpointer;
pub(in crate::store) use files::remove_with_side_files;
use files::{
    check_header, create_store, file_name_or, folder_of, in_temp_file, io_error, repair_side_files,
};
pub use files::{side_file, SIDE_SUFFIXES};
use queries::SqliteTxn;

/// SQLite `application_id` of a keyctl store: "kyct".
pub const APPLICATION_ID: i32 = 0x6b79_6374;

/// Prepared statements a connection keeps (rusqlite's LRU cache).
const STATEMENT_CACHE: usize = 64;

/// The most verifications in one group-committed transaction (`Store::group_limit`).
/// One writer holds the whole store, and a commit writes each page it changed once,
/// however many requests of the group changed it: with keys drawn at random from a
/// large store, requests share pages only in groups of thousands (100k keys: 8192 a
/// group give 1.6-1.8x the requests a second of 256, docs/benchmarks.md).
const SQLITE_GROUP_LIMIT: usize = 8192;

/// The page cache for groups of `group` verifications, in KiB: 16 KiB a request (the
/// key, pool, ledger and log pages it reads and changes, so a group's pages are not
/// spilled and read back before its commit), at least 16 MiB (a stream of random keys
/// otherwise reads most key and pool pages back from the file on every request), at
/// most 128 MiB. Only pages touched take memory.
fn group_cache_kib(group: usize) -> u32 {
    let kib = u32::try_from(group.saturating_mul(16)).unwrap_or(u32::MAX);
    kib.clamp(16 * 1024, 128 * 1024)
}

/// How long a command waits for another process's write lock before giving up.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(30);

pub struct SqliteStore {
    /// Statements kept prepared between this store's transactions
    /// ([`queries::Kept`]). Declared before `conn`, so dropped before it.
    kept: queries::Kept,
    /// Boxed, so the connection never moves while `kept` points into it.
    conn: Box<Connection>,
    path: PathBuf,
    /// The connection's `Verify` pragmas are in force (else `Admin`'s: SQLite's
    /// defaults).
    relaxed: bool,
    /// The connection's page cache is `Bulk`'s.
    big_cache: bool,
    /// The page cache `serve_many` set, in KiB (0: SQLite's default).
    cache_kib: u32,
    /// The settings this connection's verifications last read ([`queries::SettingsCache`]).
    settings_cache: queries::SettingsCache,
    /// Checkpoints the WAL in a thread of its own under `Verify` (`serve_long`).
    /// Declared after `conn`, so the serving connection closes first and the thread's,
    /// the last one, checkpoints and removes the WAL as it closes.
    checkpointer: Option<Checkpointer>,
}

/// Opens (or, with `create`, creates) the store at `path`, checking that it is a
/// keyctl store of a known schema version and migrating an older one forward; true
/// when this open created it.
pub fn open(path: &Path, opts: &OpenOptions) -> Result<(Box<dyn Store>, bool)> {
    let (store, created) = open_sqlite(path, opts)?;
    Ok((Box::new(store), created))
}

/// `keyctl migrate` on an SQLite store: what opening it does anyway; the schema
/// versions before and after.
pub fn migrate_store(path: &Path) -> Result<(i64, i64)> {
    // The version before: only from a file that passes the checks open makes (a
    // missing file, a folder or a foreign file fail in open below, in its words).
    let from = match fs::metadata(path) {
        Ok(meta) if meta.is_file() && check_header(path).is_ok() => connect(path)?
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql_error(path, e))?,
        _ => 0,
    };
    open_sqlite(path, &OpenOptions::default())?;
    Ok((from, migrate::SCHEMA_VERSION))
}

/// Writes a new SQLite store at `dest` (mode 0600) whose rows `fill` loads in one
/// transaction: `backup` from another backend. As [`Store::backup_to`], through a
/// private temporary file renamed into place, so an interrupted run leaves nothing.
pub(super) fn write_new_store(
    dest: &Path,
    fill: &mut dyn FnMut(&mut dyn Txn) -> Result<()>,
) -> Result<()> {
    let (tmp, cannot) = temp_beside(dest)?;
    in_temp_file(&tmp, cannot, || {
        let mut conn = connect(&tmp)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(|e| sql_error(dest, e))?;
        migrate::migrate(&mut conn, dest, None)?;
        {
            let mut txn = SqliteTxn::begin(&conn, TransactionBehavior::Immediate, dest, None, None)
                .map_err(|e| sql_error(dest, e))?;
            fill(&mut txn)?;
            Box::new(txn).commit()?;
        }
        conn.close().map_err(|(_, e)| sql_error(dest, e))?;
        fs::rename(&tmp, dest).map_err(|e| cannot_write(dest, &e))
    })
}

fn cannot_write(dest: &Path, e: &io::Error) -> StoreError {
    StoreError::new(
        ErrorKind::Unavailable,
        dest,
        format!("cannot write backup {}: {e}", dest.display()),
    )
}

/// The private temporary file beside a backup at `dest` (whose folder must exist),
/// and the error for failing to create it.
#[allow(clippy::type_complexity)]
fn temp_beside(dest: &Path) -> Result<(PathBuf, Box<dyn FnOnce(io::Error) -> StoreError + '_>)> {
    let dir = folder_of(dest);
    if !dir.is_dir() {
        return Err(StoreError::new(
            ErrorKind::Unavailable,
            dest,
            format!(
                "cannot write backup {}: folder {} does not exist",
                dest.display(),
                dir.display()
            ),
        ));
    }
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        file_name_or(dest, "backup.db"),
        std::process::id()
    ));
    Ok((tmp, Box::new(move |e| cannot_write(dest, &e))))
}

fn open_sqlite(path: &Path, opts: &OpenOptions) -> Result<(SqliteStore, bool)> {
    let shown = path.display().to_string();
    let mut created = false;
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(StoreError::new(
                ErrorKind::Refused,
                path,
                format!("{shown} is a directory, not a key store file"),
            )
            .remedy(Remedy::PassFilePath))
        }
        Ok(_) => {
            check_header(path)?;
            repair_side_files(path);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !opts.create {
                return Err(StoreError::new(
                    ErrorKind::NotFound,
                    path,
                    format!("no key store at {shown}"),
                )
                .remedy(Remedy::InitOrPassDb));
            }
            created = create_store(path, opts)?;
            if !created {
                // Another process created it first: use theirs like any existing store.
                check_header(path)?;
            }
        }
        Err(e) => return Err(io_error(path, &e)),
    }
    let conn = connect(path)?;
    let mut store = SqliteStore {
        kept: queries::Kept::default(),
        settings_cache: queries::SettingsCache::default(),
        conn: Box::new(conn),
        path: path.to_path_buf(),
        relaxed: false,
        big_cache: false,
        cache_kib: 0,
        checkpointer: None,
    };
    store.check_and_migrate()?;
    Ok((store, created))
}

/// Process-wide SQLite settings, for a program's start, before any thread uses SQLite
/// (`sqlite3_config` is not thread-safe and works only before SQLite initialises):
/// no memory statistics. keyctl never reads them (no `sqlite3_memory_used`, no soft
/// heap limit), and keeping them takes a global mutex and a counter update on every
/// allocation: 8-10% of the instructions of a one-shot `verify`, most of them
/// parsing the schema.
pub fn setup_process() {
    // SAFETY: called from main before any other thread exists and before the first
    // connection; a call after initialisation just returns SQLITE_MISUSE, ignored.
    unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
    }
    // SQLite's page cache without its full scans at commit (`page_cache`).
    page_cache::install();
}

/// SQLite's allocator for a `verify` process ([`arena`]), installed when SQLite has not
/// started yet; call it after [`setup_process`] and before the first connection.
pub fn use_arena() -> bool {
    arena::install()
}

fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match wal_writes::name() {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
        None => Connection::open_with_flags(path, flags),
    }
    .map_err(|e| sql_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(path, e))?;
    // A recorded verification runs about twenty distinct statements (more with the
    // store-wide limits); with rusqlite's default of 16 a verify stream re-prepared
    // one of them on every request (45k instructions each).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Query-planner stability: with STAT4 compiled in, a cached statement would be
    // re-prepared whenever a bound value changes; keyctl's queries are all indexed
    // lookups whose plan does not depend on the values.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(|e| sql_error(path, e))?;
    // synchronous = FULL is SQLite's compiled default (so nothing to run here): a
    // committed key survives power loss, so a revealed secret always works. The
    // Verify intent relaxes it (SqliteStore::begin).
    Ok(conn)
}

/// Maps an SQLite failure to a one-line message naming the store and what to do.
fn sql_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let shown = path.display();
    let (code, extended) = match &e {
        rusqlite::Error::SqliteFailure(f, _) => (Some(f.code), f.extended_code),
        _ => (None, 0),
    };
    let failed = |kind, problem: String| StoreError::new(kind, path, problem);
    let no_space = || {
        failed(
            ErrorKind::Unavailable,
            format!("no space left for key store {shown}"),
        )
        .remedy(Remedy::FreeSpace)
    };
    match code {
        Some(ErrorCode::ReadOnly) => read_only_error(path, extended),
        // Extending the -shm file failed: on a full disk that is the first write.
        Some(ErrorCode::SystemIoFailure)
            if extended == rusqlite::ffi::SQLITE_IOERR_SHMSIZE || no_space_left(path) =>
        {
            no_space()
        }
        Some(ErrorCode::PermissionDenied) => failed(
            ErrorKind::Unavailable,
            format!("cannot access key store {shown}: permission denied"),
        ),
        // The busy timeout has already waited for the other writer.
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => failed(
            ErrorKind::Retry,
            format!(
                "key store {shown} stayed locked by another process for {}s",
                BUSY_TIMEOUT.as_secs()
            ),
        )
        .remedy(Remedy::TryAgain),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => failed(
            ErrorKind::Refused,
            format!("{shown} is corrupt or not a keyctl store"),
        )
        .because(&e)
        .remedy(Remedy::RestoreBackup),
        Some(ErrorCode::DiskFull) => no_space(),
        Some(ErrorCode::CannotOpen) => failed(
            ErrorKind::Unavailable,
            format!("cannot open key store {shown}"),
        )
        .because(&e)
        .remedy(Remedy::CheckReadable),
        // keyctl's statements are fixed, so one that no longer compiles, or a migration
        // that meets tables it should create, means the schema is not what the store's
        // version says (tampered `user_version`, a dropped or renamed column).
        _ if matches!(e, rusqlite::Error::SqlInputError { .. })
            || is_schema_problem(&sqlite_problem(&e)) =>
        {
            failed(
                ErrorKind::Refused,
                format!("key store {shown}: its schema does not match its version"),
            )
            .because(sqlite_problem(&e))
            .remedy(Remedy::RestoreBackup)
        }
        // A stored value keyctl could not have written (see json_list).
        _ if matches!(e, rusqlite::Error::FromSqlConversionFailure(..)) => {
            let why = match &e {
                rusqlite::Error::FromSqlConversionFailure(_, _, inner) => inner.to_string(),
                _ => String::new(),
            };
            failed(ErrorKind::Refused, format!("key store {shown}: {why}"))
                .remedy(Remedy::FixValueOrRestore)
        }
        Some(ErrorCode::ConstraintViolation) => failed(
            ErrorKind::Conflict,
            format!("key store {shown}: {}", sqlite_problem(&e)),
        ),
        _ => failed(
            ErrorKind::Other,
            format!("key store {shown}: {}", sqlite_problem(&e)),
        ),
    }
}

/// What an SQLite error says is wrong, in one line and without the statement text
/// (rusqlite's message for a statement that does not compile quotes all of it).
fn sqlite_problem(e: &rusqlite::Error) -> String {
    let text = match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    };
    let line = text.lines().next().unwrap_or_default();
    // `table settings already exists in CREATE TABLE ...`
    line.split(" in ").next().unwrap_or(line).trim().to_string()
}

/// True for SQLite's words for a table or column that is missing or already there.
fn is_schema_problem(problem: &str) -> bool {
    [
        "no such table",
        "no such column",
        "no such index",
        "has no column named",
        "already exists",
        "duplicate column name",
    ]
    .iter()
    .any(|words| problem.contains(words))
}

/// True when this process may write `path` (access(2) with W_OK: file modes, ACLs, a
/// read-only mount; root passes unless the mount is read-only).
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: access(2) only reads the NUL-terminated path, which outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// True when the filesystem holding the store has no free blocks or inodes left.
fn no_space_left(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(folder_of(path).as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs(3) reads the NUL-terminated path and fills the zeroed struct it is
    // given; both outlive the call.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        // Some filesystems (btrfs) report no inode counts at all: f_files 0.
        libc::statvfs(c.as_ptr(), &mut st) == 0
            && (st.f_bavail == 0 || (st.f_files > 0 && st.f_favail == 0))
    }
}

/// A read-only store, said precisely: a WAL store needs its folder writable even to be
/// read (SQLite creates `-wal` and `-shm` next to it), and only its file to be changed.
fn read_only_error(path: &Path, extended: std::ffi::c_int) -> StoreError {
    let shown = path.display();
    let dir = folder_of(path);
    let name = file_name_or(path, "keys.db");
    let failed = |problem: String, remedy| {
        StoreError::new(ErrorKind::Unavailable, path, problem).remedy(remedy)
    };
    if extended == rusqlite::ffi::SQLITE_READONLY_DIRECTORY || !writable(&dir) {
        let error = failed(
            format!(
                "cannot use key store {shown}: its folder {} is read-only, and SQLite must create {name}-wal and {name}-shm there even to read the store",
                dir.display()
            ),
            Remedy::MakeFolderWritable,
        );
        return if writable(path) {
            error
        } else {
            error.because("the file is read-only too")
        };
    }
    if !writable(path) {
        return failed(
            format!("key store {shown} is read-only (no write permission on the file)"),
            Remedy::MakeFileWritable,
        );
    }
    // File and folder are writable: a -shm or -wal file left read-only (by a run while
    // the store was read-only, or by another user) blocks writing.
    let stale: Vec<String> = ["-shm", "-wal"]
        .into_iter()
        .filter(|suffix| {
            let side = side_file(path, suffix);
            side.exists() && !writable(&side)
        })
        .map(|suffix| format!("{name}{suffix}"))
        .collect();
    if !stale.is_empty() {
        return failed(
            format!(
                "key store {shown} cannot be written: {} next to it is read-only",
                stale.join(" and ")
            ),
            Remedy::MakeSideFileWritable,
        );
    }
    failed(
        format!("key store {shown} is read-only"),
        Remedy::MakeWritable,
    )
}

impl SqliteStore {
    /// Under `Verify`, with a checkpoint thread: commits past
    /// [`checkpointer::CHECKPOINT_PAGES`] wake it instead of checkpointing themselves.
    fn hand_checkpoints_over(&mut self) -> Result<()> {
        if let Some(checkpointer) = &self.checkpointer {
            self.conn
                .wal_hook(Some(checkpointer.hook()))
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn serve_many(&mut self, group: usize) -> Result<()> {
        // Not for one request at a time (never called for it): a commit after some
        // b-tree splits walks every cached page, which costs such a verifier more than
        // the reads a big cache saves.
        let kib = group_cache_kib(group);
        if self.big_cache || kib <= self.cache_kib {
            return Ok(());
        }
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{kib}"))
            .map_err(|e| sql_error(&self.path, e))?;
        self.cache_kib = kib;
        Ok(())
    }

    fn group_limit(&self) -> usize {
        SQLITE_GROUP_LIMIT
    }

    fn serve_long(&mut self) -> Result<()> {
        if self.checkpointer.is_none() {
            self.checkpointer = Some(Checkpointer::start(&self.path)?);
            if self.relaxed {
                self.hand_checkpoints_over()?;
            }
        }
        Ok(())
    }

    fn begin(&mut self, intent: Intent) -> Result<Box<dyn Txn + '_>> {
        // Pragmas are connection-wide: run only when the intent needs another setting
        // than the connection has, so a verify stream pays for them once.
        let relax = intent == Intent::Verify;
        if intent != Intent::Read && relax != self.relaxed {
            self.conn
                .execute_batch(if relax {
                    // Checkpoints (which fsync the database file) every 8192 pages
                    // instead of 1000: a verify stream commits every request.
                    "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 8192;"
                } else {
                    "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 1000;"
                })
                .map_err(|e| sql_error(&self.path, e))?;
            self.relaxed = relax;
            // The pragma replaced any WAL hook: hand the checkpoints back to the thread.
            if relax {
                self.hand_checkpoints_over()?;
            }
        }
        if intent == Intent::Bulk && !self.big_cache {
            // 256 MiB (negative = KiB); only touched pages are allocated.
            self.conn
                .execute_batch("PRAGMA cache_size = -262144")
                .map_err(|e| sql_error(&self.path, e))?;
            self.big_cache = true;
        }
        let behavior = match intent {
            Intent::Read => TransactionBehavior::Deferred,
            Intent::Admin | Intent::Verify | Intent::Bulk => TransactionBehavior::Immediate,
        };
        // Only a verification may use the settings an earlier one read; any other
        // transaction may change them.
        if intent != Intent::Verify {
            self.settings_cache.get_mut().take();
        }
        let SqliteStore {
            conn,
            path,
            kept,
            settings_cache,
            ..
        } = self;
        let cache = (intent == Intent::Verify).then_some(&*settings_cache);
        let txn = SqliteTxn::begin(conn, behavior, path, Some(kept), cache)
            .map_err(|e| sql_error(path, e))?;
        Ok(Box::new(txn))
    }

    fn backup_to(&mut self, dest: &Path) -> Result<()> {
        // Copy into a private temporary file, then rename into place, so a reader never
        // sees a half-written backup and an interrupted one leaves nothing behind.
        let (tmp, cannot) = temp_beside(dest)?;
        in_temp_file(&tmp, cannot, || {
            let mut dst = connect(&tmp)?;
            {
                let backup = rusqlite::backup::Backup::new(&self.conn, &mut dst)
                    .map_err(|e| sql_error(&self.path, e))?;
                // All pages in one step: one read transaction, so one consistent snapshot
                // even while other processes commit (WAL readers never block writers).
                backup.step(-1).map_err(|e| sql_error(&self.path, e))?;
            }
            dst.close().map_err(|(_, e)| sql_error(dest, e))?;
            fs::rename(&tmp, dest).map_err(|e| cannot_write(dest, &e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_store(dir: &Path) -> SqliteStore {
        let opts = OpenOptions {
            create: true,
            ..OpenOptions::default()
        };
        let (store, created) = open_sqlite(&dir.join("keys.db"), &opts).unwrap();
        assert!(created);
        store
    }

    /// synchronous, wal_autocheckpoint, cache_size of the store's connection.
    fn tuning(store: &SqliteStore) -> [i64; 3] {
        ["synchronous", "wal_autocheckpoint", "cache_size"].map(|name| {
            store
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        })
    }

    #[test]
    fn each_intent_sets_its_durability_once_per_connection() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = new_store(dir.path());
        let default = tuning(&store);
        assert_eq!(default[..2], [2, 1000], "FULL, SQLite's checkpoint");
        drop(store.begin(Intent::Read).unwrap());
        assert_eq!(tuning(&store), default);
        drop(store.begin(Intent::Verify).unwrap());
        assert_eq!(
            tuning(&store),
            [1, checkpointer::CHECKPOINT_PAGES.into(), default[2]]
        );
        // A second Verify runs no pragma: a value changed behind its back stays.
        store
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint = 77")
            .unwrap();
        drop(store.begin(Intent::Verify).unwrap());
        assert_eq!(tuning(&store)[1], 77);
        drop(store.begin(Intent::Admin).unwrap());
        assert_eq!(tuning(&store), default);
        drop(store.begin(Intent::Bulk).unwrap());
        assert_eq!(tuning(&store), [2, 1000, -262_144]);
    }

    #[test]
    fn the_page_cache_follows_the_largest_group_and_never_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = new_store(dir.path());
        let default = tuning(&store)[2];
        store.serve_many(2).unwrap();
        assert_eq!(tuning(&store)[2], -16_384, "16 MiB at least");
        store.serve_many(4096).unwrap();
        assert_eq!(tuning(&store)[2], -65_536, "16 KiB a request");
        store.serve_many(100).unwrap();
        assert_eq!(tuning(&store)[2], -65_536, "a smaller group keeps it");
        store.serve_many(SQLITE_GROUP_LIMIT * 4).unwrap();
        assert_eq!(tuning(&store)[2], -131_072, "128 MiB at most");
        assert_ne!(default, -131_072);
    }

    #[test]
    fn a_long_running_verifier_checkpoints_in_its_own_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = new_store(dir.path());
        store.serve_long().unwrap();
        drop(store.begin(Intent::Verify).unwrap());
        let db = dir.path().join("keys.db");
        let small = fs::metadata(&db).unwrap().len();
        // One commit of more WAL pages than the threshold: its hook wakes the thread.
        let pages = checkpointer::CHECKPOINT_PAGES + 100;
        store
            .conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; CREATE TABLE scratch (b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {pages})
                 INSERT INTO scratch SELECT zeroblob(3000) FROM n; COMMIT;"
            ))
            .unwrap();
        // The thread checkpointed them, with no further commit (the serving
        // connection's own automatic checkpoint is replaced by the hook).
        let thread = |store: &SqliteStore| {
            let c = store.checkpointer.as_ref().unwrap();
            (c.copied(), c.checkpoints())
        };
        let waited = (0..6000).find(|_| {
            thread(&store).0 || {
                std::thread::sleep(StdDuration::from_millis(10));
                false
            }
        });
        assert!(waited.is_some(), "no checkpoint by the thread");
        // Nothing was written during its first round: the second copied nothing and
        // ended the cycle.
        assert_eq!(thread(&store).1, 2);
        let now = fs::metadata(&db).unwrap().len();
        assert!(
            now > small + u64::try_from(pages).unwrap() * 3000,
            "{now} bytes"
        );
        // Closing leaves no WAL behind: the thread's connection closes last.
        drop(store);
        assert!(!side_file(&db, "-wal").exists());
    }

    #[test]
    fn every_intent_but_read_takes_the_write_lock_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let mut holder = new_store(dir.path());
        let (mut other, _) =
            open_sqlite(&dir.path().join("keys.db"), &OpenOptions::default()).unwrap();
        other.conn.busy_timeout(StdDuration::ZERO).unwrap();
        for intent in [Intent::Read, Intent::Admin, Intent::Verify, Intent::Bulk] {
            let held = holder.begin(intent).unwrap();
            let writer = other.begin(Intent::Admin).map(drop);
            assert_eq!(writer.is_ok(), intent == Intent::Read, "{intent:?}");
            drop(held);
        }
    }
}
