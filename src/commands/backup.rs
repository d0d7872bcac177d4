//! `keyctl backup PATH`: a consistent online copy of the store, mode 0600.
//!
//! SPEC §5: the copy goes only to a new or regular file. A symlink is written through
//! to its target (as `cp` does); anything else (a directory, a device, a FIFO, a socket,
//! the store or one of its side files, a dangling link) is refused with exit 4, so a
//! backup can never replace a device node or pull a live `-wal` from under a running
//! verifier.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::cli::BackupArgs;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::store::side_file;

/// The files SQLite keeps for a store, as suffixes of its path (the store itself and
/// every one of [`crate::store::SIDE_SUFFIXES`]).
const STORE_FILES: [(&str, &str); 4] = [
    ("", "the key store itself"),
    ("-wal", "the key store's write-ahead log"),
    ("-shm", "the key store's shared-memory index"),
    ("-journal", "the key store's rollback journal"),
];

/// What a backup path leads to, as far as the refusal rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Missing,
    File,
    Directory,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Other,
}

/// A backup path looked at: where the copy would go and what is there now.
#[derive(Debug)]
struct Target {
    /// Where the copy is renamed to: the path itself, or a symlink's resolved target.
    path: PathBuf,
    /// The symlink's target as written in the link, when the path is a symlink.
    link: Option<PathBuf>,
    found: Found,
    /// Which of the store's files the target is (a `STORE_FILES` description).
    store_file: Option<&'static str>,
}

pub fn run(ctx: &Ctx, args: BackupArgs) -> Result<()> {
    let dest = &args.path;
    // The refusals compare paths with the store's files; a PostgreSQL store has none
    // here, and its backup is an SQLite file with `copy`'s content (SPEC §6).
    let target = inspect(dest, ctx.db.sqlite_path())?;
    if let Some(refused) = refusal(dest, &target, args.force) {
        return Err(refused);
    }
    let mut store = ctx.open_read()?;
    store.backup_to(&target.path)?;
    ctx.note(&format!("backed up {} to {}", ctx.db, dest.display()));
    Ok(())
}

/// Why a backup must not be written to `target` (None: it may). Pure: decides from
/// what `inspect` found.
fn refusal(dest: &Path, target: &Target, force: bool) -> Option<Error> {
    let subject = match &target.link {
        Some(link) => format!("{} links to {}, which", dest.display(), link.display()),
        None => dest.display().to_string(),
    };
    if let Some(what) = target.store_file {
        return Some(Error::conflict(format!(
            "{subject} is {what}: choose another file"
        )));
    }
    let kind = match target.found {
        Found::Missing if target.link.is_some() => {
            return Some(Error::conflict(format!(
                "{subject} does not exist: backup does not write through a dangling symlink; remove the link or give another path"
            )))
        }
        Found::Missing => return None,
        Found::File if force => return None,
        Found::File => {
            return Some(Error::conflict(format!(
                "{subject} already exists: pass --force to replace it"
            )))
        }
        Found::Directory => {
            return Some(Error::conflict(format!(
                "{subject} is a directory: give the backup a file name, like {}",
                target.path.join("keys-backup.db").display()
            )))
        }
        Found::CharDevice => "a character device",
        Found::BlockDevice => "a block device",
        Found::Fifo => "a FIFO",
        Found::Socket => "a socket",
        Found::Other => "a special file",
    };
    Some(Error::conflict(format!(
        "{subject} is {kind}: backup writes only to a new or regular file"
    )))
}

/// Looks at `dest` (following a symlink) and at where `store` and its side files are
/// (an SQLite store's; None for a store that is not a file).
fn inspect(dest: &Path, store: Option<&Path>) -> Result<Target> {
    let cannot = |e: io::Error| Error::runtime(format!("cannot inspect {}: {e}", dest.display()));
    let link = match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => Some(fs::read_link(dest).map_err(cannot)?),
        _ => None,
    };
    let (path, found) = match fs::metadata(dest) {
        Ok(meta) => {
            let path = match link {
                Some(_) => fs::canonicalize(dest).map_err(cannot)?,
                None => dest.to_path_buf(),
            };
            (path, found_of(meta.file_type()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (dest.to_path_buf(), Found::Missing),
        // A link loop: as refused as a dangling link.
        Err(e) if link.is_some() => {
            return Err(Error::conflict(format!(
                "{} is a symlink that cannot be followed ({e}): give another path",
                dest.display()
            )))
        }
        Err(e) => return Err(cannot(e)),
    };
    // A dangling link's target, for naming it when it is a store file (`-journal` only
    // exists during a write).
    let at = match &link {
        Some(to) if found == Found::Missing => in_resolved_folder(&folder_of(dest).join(to)),
        _ => where_is(&path),
    };
    let store_file = at.and_then(|at| which_store_file(&at, store?));
    Ok(Target {
        path,
        link,
        found,
        store_file,
    })
}

fn found_of(t: fs::FileType) -> Found {
    if t.is_file() {
        Found::File
    } else if t.is_dir() {
        Found::Directory
    } else if t.is_char_device() {
        Found::CharDevice
    } else if t.is_block_device() {
        Found::BlockDevice
    } else if t.is_fifo() {
        Found::Fifo
    } else if t.is_socket() {
        Found::Socket
    } else {
        Found::Other
    }
}

/// `path` resolved; when it does not exist, its folder resolved.
fn where_is(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path)
        .ok()
        .or_else(|| in_resolved_folder(path))
}

/// `path`'s folder resolved, the file name kept as it is.
fn in_resolved_folder(path: &Path) -> Option<PathBuf> {
    Some(
        fs::canonicalize(folder_of(path))
            .ok()?
            .join(path.file_name()?),
    )
}

/// The folder that holds `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Which of the store's files `at` (a resolved path) is. The store is compared both
/// as given and resolved, as SQLite names the side files after the resolved path.
fn which_store_file(at: &Path, store: &Path) -> Option<&'static str> {
    let bases: Vec<PathBuf> = [in_resolved_folder(store), fs::canonicalize(store).ok()]
        .into_iter()
        .flatten()
        .collect();
    STORE_FILES.iter().find_map(|(suffix, what)| {
        bases
            .iter()
            .any(|base| side_file(base, suffix) == at)
            .then_some(*what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_are_the_store_and_every_side_file() {
        let suffixes: Vec<&str> = STORE_FILES.iter().map(|(suffix, _)| *suffix).collect();
        let expected: Vec<&str> = std::iter::once("")
            .chain(crate::store::SIDE_SUFFIXES)
            .collect();
        assert_eq!(suffixes, expected);
    }
}
