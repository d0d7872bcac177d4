//! Error kinds and their exit codes (the table is `core::exit`). Every failure a user
//! can cause ends up here as one line on stderr and a documented exit code.

use std::fmt;

use crate::core::exit;

use crate::store::{ErrorKind, Remedy, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: the store is unreadable, foreign, corrupt, newer or read-only; I/O.
    Runtime,
    /// 2: a bad flag or value, or `--yes` needed.
    Usage,
    /// 3: a KEYREF or setting that matches nothing.
    NotFound,
    /// 4: ambiguous KEYREF, name taken, key limit, refused transition.
    Conflict,
    /// 8: `audit verify` found a broken chain or a different head.
    AuditBroken,
    /// A finished command whose exit code says its answer (`verify`): nothing to print.
    Exit(i32),
    /// stdout was closed by its reader (`keyctl list | head`): end quietly, exit 0.
    ClosedOutput,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Runtime => exit::RUNTIME.code,
            Kind::Usage => exit::USAGE.code,
            Kind::NotFound => exit::NOT_FOUND.code,
            Kind::Conflict => exit::CONFLICT.code,
            Kind::AuditBroken => exit::AUDIT_BROKEN.code,
            Kind::Exit(code) => code,
            Kind::ClosedOutput => exit::SUCCESS.code,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// The store said running the transaction again may succeed (`app::with_retry`).
    pub retryable: bool,
    /// The store could not be reached or stayed busy (`ErrorKind::Unavailable` or
    /// `Retry`): `verify` answers `unavailable` (SPEC §6).
    pub unavailable: bool,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            retryable: false,
            unavailable: false,
        }
    }
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message)
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(Kind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(Kind::Conflict, message)
    }
    pub fn runtime(message: impl Into<String>) -> Error {
        Error::new(Kind::Runtime, message)
    }
    /// The same error, never retried: the transaction has shown something (a secret)
    /// that running it again would contradict.
    pub fn final_attempt(self) -> Error {
        Error {
            retryable: false,
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// True when `e` says the reader of our output went away. Writers that wrap an io error
/// (serde_json's, `io::Error::other(..)`) hide its kind one or more levels down, so the
/// whole chain of inner errors is searched, not just the outer kind.
pub fn is_closed_output(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
        || e.get_ref()
            .is_some_and(|inner| closed_cause(inner as &(dyn std::error::Error + 'static)))
}

fn closed_cause(cause: &(dyn std::error::Error + 'static)) -> bool {
    // An io::Error's own source() skips the error it wraps: look inside it directly.
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        return is_closed_output(io);
    }
    if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
        if json.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe) {
            return true;
        }
    }
    cause.source().is_some_and(closed_cause)
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if is_closed_output(&e) {
            Error::new(Kind::ClosedOutput, "output closed")
        } else {
            Error::runtime(format!("could not write output: {e}"))
        }
    }
}

/// A store failure as the user reads it: the store's problem with its cause, and the
/// words for the remedy, added here. Every kind is a runtime failure (exit 1).
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        let (kind, problem, cause, remedy) = match e {
            StoreError::Sink(io) => return io.into(),
            StoreError::Failed {
                kind,
                problem,
                cause,
                remedy,
                ..
            } => (kind, problem, cause, remedy),
        };
        let cause = cause.map(|c| format!(" ({c})")).unwrap_or_default();
        let message = match remedy.map(remedy_words) {
            Some((words, true)) => format!("{problem}{words}{cause}"),
            Some((words, false)) => format!("{problem}{cause}{words}"),
            None => format!("{problem}{cause}"),
        };
        Error {
            retryable: kind == ErrorKind::Retry,
            unavailable: matches!(kind, ErrorKind::Unavailable | ErrorKind::Retry),
            ..Error::runtime(message)
        }
    }
}

/// The words for what a user can do about a store failure, with their joint to the
/// problem, and whether the failure's cause is shown after them (else before).
fn remedy_words(remedy: Remedy) -> (&'static str, bool) {
    match remedy {
        Remedy::InitOrPassDb => (" (run 'keyctl init' or pass --db)", false),
        Remedy::CreateFolderOrPassDb => (" (create it first or pass another --db)", false),
        Remedy::PassFilePath => (": pass a file path with --db", false),
        Remedy::RemoveOrPassDb => (": remove it or pass another --db", false),
        Remedy::PassRightFile => (": pass the right file with --db", false),
        Remedy::Upgrade => (": upgrade keyctl", false),
        Remedy::RestoreBackup => (": restore it from a backup", false),
        Remedy::FixValueOrRestore => (": fix that value or restore the store from a backup", false),
        Remedy::FreeSpace => (": free some disk space and try again", false),
        Remedy::TryAgain => (": try again", false),
        Remedy::CheckReadable => (": check that it and its folder are readable", true),
        Remedy::MakeFolderWritable => ("; make the folder writable", true),
        Remedy::MakeFileWritable => (
            ": make it writable to change keys; read commands still work",
            false,
        ),
        Remedy::MakeSideFileWritable => (
            "; make it writable (or remove it while no keyctl uses the store)",
            false,
        ),
        Remedy::MakeWritable => (
            ": make the file and its folder writable, or use a read command",
            false,
        ),
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use std::io::{self, ErrorKind, Write};

    use super::{is_closed_output, Error, Kind};

    /// A writer whose reader went away.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Every remedy: the store's problem, its cause and the remedy's words read as
    /// the one line the store assembled before (its old format strings, filled in).
    #[test]
    fn a_store_failure_reads_as_one_line_with_its_remedy_after_or_around_the_cause() {
        use crate::store::{ErrorKind as K, Remedy as R, StoreError};

        /// Kind, problem, cause, remedy, and the line users read.
        type Case = (
            K,
            &'static str,
            Option<&'static str>,
            Option<R>,
            &'static str,
        );
        let cases: &[Case] = &[
            (K::NotFound, "no key store at k.db", None, Some(R::InitOrPassDb),
             "no key store at k.db (run 'keyctl init' or pass --db)"),
            (K::Unavailable, "cannot create key store k.db: folder d does not exist", None,
             Some(R::CreateFolderOrPassDb),
             "cannot create key store k.db: folder d does not exist (create it first or pass another --db)"),
            (K::Refused, "k.db is a directory, not a key store file", None, Some(R::PassFilePath),
             "k.db is a directory, not a key store file: pass a file path with --db"),
            (K::Refused, "k.db is an empty file, not a keyctl store", None, Some(R::RemoveOrPassDb),
             "k.db is an empty file, not a keyctl store: remove it or pass another --db"),
            (K::Refused, "k.db is not an SQLite database, so not a keyctl store", None,
             Some(R::PassRightFile),
             "k.db is not an SQLite database, so not a keyctl store: pass the right file with --db"),
            (K::Refused, "k.db was written by a newer keyctl (schema 9; this keyctl 0.1.0 knows up to 3)",
             None, Some(R::Upgrade),
             "k.db was written by a newer keyctl (schema 9; this keyctl 0.1.0 knows up to 3): upgrade keyctl"),
            (K::Refused, "k.db is corrupt or not a keyctl store", Some("file is not a database"),
             Some(R::RestoreBackup),
             "k.db is corrupt or not a keyctl store (file is not a database): restore it from a backup"),
            (K::Refused, "key store k.db: its schema does not match its version", Some("no such table: keys"),
             Some(R::RestoreBackup),
             "key store k.db: its schema does not match its version (no such table: keys): restore it from a backup"),
            (K::Refused, "key store k.db: bad scopes", None, Some(R::FixValueOrRestore),
             "key store k.db: bad scopes: fix that value or restore the store from a backup"),
            (K::Unavailable, "no space left for key store k.db", None, Some(R::FreeSpace),
             "no space left for key store k.db: free some disk space and try again"),
            (K::Retry, "key store k.db stayed locked by another process for 30s", None, Some(R::TryAgain),
             "key store k.db stayed locked by another process for 30s: try again"),
            (K::Unavailable, "cannot open key store k.db", Some("unable to open database file"),
             Some(R::CheckReadable),
             "cannot open key store k.db: check that it and its folder are readable (unable to open database file)"),
            (K::Unavailable, "cannot use key store k.db: its folder d is read-only", Some("the file is read-only too"),
             Some(R::MakeFolderWritable),
             "cannot use key store k.db: its folder d is read-only; make the folder writable (the file is read-only too)"),
            (K::Unavailable, "cannot use key store k.db: its folder d is read-only", None,
             Some(R::MakeFolderWritable),
             "cannot use key store k.db: its folder d is read-only; make the folder writable"),
            (K::Unavailable, "key store k.db is read-only (no write permission on the file)", None,
             Some(R::MakeFileWritable),
             "key store k.db is read-only (no write permission on the file): make it writable to change keys; read commands still work"),
            (K::Unavailable, "key store k.db cannot be written: k.db-shm next to it is read-only", None,
             Some(R::MakeSideFileWritable),
             "key store k.db cannot be written: k.db-shm next to it is read-only; make it writable (or remove it while no keyctl uses the store)"),
            (K::Unavailable, "key store k.db is read-only", None, Some(R::MakeWritable),
             "key store k.db is read-only: make the file and its folder writable, or use a read command"),
            (K::Conflict, "key store k.db: UNIQUE constraint failed: keys.id", None, None,
             "key store k.db: UNIQUE constraint failed: keys.id"),
        ];
        for &(kind, problem, cause, remedy, shown) in cases {
            let mut e = StoreError::new(kind, std::path::Path::new("k.db"), problem);
            if let Some(c) = cause {
                e = e.because(c);
            }
            let inside = e.to_string();
            assert!(
                !inside.contains("keyctl init") && !inside.contains("backup"),
                "{inside}"
            );
            if let Some(r) = remedy {
                e = e.remedy(r);
            }
            let e = Error::from(e);
            assert_eq!(e.message, shown);
            assert_eq!((e.kind, e.retryable), (Kind::Runtime, kind == K::Retry));
        }
    }

    #[test]
    fn a_closed_pipe_is_found_however_it_was_wrapped() {
        let json = serde_json::to_writer(Closed, &[1, 2]).unwrap_err();
        let wrapped = [
            io::Error::from(ErrorKind::BrokenPipe),
            io::Error::other(io::Error::from(ErrorKind::BrokenPipe)),
            io::Error::other(io::Error::other(io::Error::from(ErrorKind::BrokenPipe))),
            io::Error::other(json),
        ];
        for e in wrapped {
            assert!(is_closed_output(&e), "{e:?}");
            assert_eq!(Error::from(e).kind, Kind::ClosedOutput);
        }
        for e in [
            io::Error::from(ErrorKind::StorageFull),
            io::Error::other("Broken pipe"),
            io::Error::other(io::Error::from(ErrorKind::PermissionDenied)),
        ] {
            assert!(!is_closed_output(&e), "{e:?}");
            assert_eq!(Error::from(e).kind, Kind::Runtime);
        }
    }
}
