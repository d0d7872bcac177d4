//! The store file itself: the header check that refuses a foreign file untouched,
//! private creation under a temporary name, and SQLite's side files.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::migrate::migrate;
use super::{connect, sql_error, APPLICATION_ID};
use crate::store::{ErrorKind, OpenOptions, Remedy, Result, StoreError};

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

pub(super) fn io_error(path: &Path, e: &io::Error) -> StoreError {
    let shown = path.display();
    let problem = match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    StoreError::new(
        ErrorKind::Unavailable,
        path,
        format!("cannot access key store {shown}: {problem}"),
    )
}

/// Reads the 100-byte SQLite header without letting SQLite touch the file, so a
/// foreign or damaged file is refused by name and left exactly as it was.
pub(super) fn check_header(path: &Path) -> Result<()> {
    let shown = path.display();
    let mut header = Vec::with_capacity(100);
    fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| io_error(path, &e))?;
    if header.is_empty() {
        return Err(StoreError::new(
            ErrorKind::Refused,
            path,
            format!("{shown} is an empty file, not a keyctl store"),
        )
        .remedy(Remedy::RemoveOrPassDb));
    }
    if header.len() < 100 || &header[..16] != SQLITE_MAGIC {
        return Err(StoreError::new(
            ErrorKind::Refused,
            path,
            format!("{shown} is not an SQLite database, so not a keyctl store"),
        )
        .remedy(Remedy::PassRightFile));
    }
    let app_id = i32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    if app_id != APPLICATION_ID {
        return Err(StoreError::new(ErrorKind::Refused, path, format!(
            "{shown} is an SQLite database of another program (application_id {app_id:#x}), not a keyctl store"
        )));
    }
    Ok(())
}

/// SQLite gives a new `-wal`/`-shm` the mode of the store file, so a read while the file
/// was read-only (0400) leaves read-only side files behind, and once the file is
/// writable again every write would still fail on them. Side files this user owns are
/// put back to 0600 (what keyctl creates them with); anything else is left alone.
pub(super) fn repair_side_files(path: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        if let Ok(meta) = fs::symlink_metadata(&side) {
            if meta.is_file() && meta.uid() == me && meta.mode() & 0o200 == 0 {
                let _ = fs::set_permissions(&side, fs::Permissions::from_mode(0o600));
            }
        }
    }
}

/// Creates a store: a 0600 file, initialised under a temporary name and then linked
/// into place, so no other process ever sees a half-made store. Returns false when
/// another process created the store first.
pub(super) fn create_store(path: &Path, opts: &OpenOptions) -> Result<bool> {
    let shown = path.display();
    let dir = folder_of(path);
    if !dir.is_dir() {
        if !opts.create_parent {
            return Err(StoreError::new(
                ErrorKind::Unavailable,
                path,
                format!(
                    "cannot create key store {shown}: folder {} does not exist",
                    dir.display()
                ),
            )
            .remedy(Remedy::CreateFolderOrPassDb));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                StoreError::new(
                    ErrorKind::Unavailable,
                    path,
                    format!("cannot create folder {}: {e}", dir.display()),
                )
            })?;
    }
    let tmp = dir.join(format!(
        ".{}.{}.new",
        file_name_or(path, "keys.db"),
        std::process::id()
    ));
    let cannot_open = |e: io::Error| {
        let problem = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                format!("folder {} is not writable", dir.display())
            }
            _ => e.to_string(),
        };
        StoreError::new(
            ErrorKind::Unavailable,
            path,
            format!("cannot create key store {shown}: {problem}"),
        )
    };
    in_temp_file(&tmp, cannot_open, || {
        let mut conn = connect(&tmp)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(|e| sql_error(path, e))?;
        migrate(&mut conn, path, opts.prefix.as_deref())?;
        conn.close().map_err(|(_, e)| sql_error(path, e))?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // Filesystems without hard links: fall back to a rename.
            Err(_) if !path.exists() => fs::rename(&tmp, path).map(|_| true).map_err(|e| {
                StoreError::new(
                    ErrorKind::Unavailable,
                    path,
                    format!("cannot create key store {shown}: {e}"),
                )
            }),
            Err(_) => Ok(false),
        }
    })
}

/// The files SQLite may keep beside a database, as suffixes of its path.
pub const SIDE_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Where SQLite keeps the side file `suffix` (one of [`SIDE_SUFFIXES`]) of the
/// database at `path`: the path with the suffix appended to its file name.
pub fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}

/// Removes a database file and whatever side files SQLite left beside it.
pub(in crate::store) fn remove_with_side_files(path: &Path) {
    let _ = fs::remove_file(path);
    for suffix in SIDE_SUFFIXES {
        let _ = fs::remove_file(side_file(path, suffix));
    }
}

/// `path`'s file name, or `default` when it has none (a path ending in `..`).
pub(super) fn file_name_or(path: &Path, default: &str) -> String {
    path.file_name()
        .map_or_else(|| default.into(), |n| n.to_string_lossy().into_owned())
}

/// Creates `tmp` as a new private (0600) file and runs `fill`, which is to move it
/// into place; `tmp` and its side files are removed afterwards whatever happened, so
/// an interrupted run leaves nothing behind (and a stale one from a killed run goes).
pub(super) fn in_temp_file<T>(
    tmp: &Path,
    cannot_open: impl FnOnce(io::Error) -> StoreError,
    fill: impl FnOnce() -> Result<T>,
) -> Result<T> {
    remove_with_side_files(tmp);
    let result = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(cannot_open)
        .and_then(|_| fill());
    remove_with_side_files(tmp);
    result
}

/// The folder that holds `path` (`.` for a bare file name).
pub(super) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
