//! Error kinds and their exit codes (the table is `core::exit`). Every failure a user
//! can cause ends up here as one line on stderr and a documented exit code.

use std::fmt;

use crate::core::exit;

use crate::store::StoreError;

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
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
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

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Sink(io) => io.into(),
            other => Error::runtime(other.to_string()),
        }
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
