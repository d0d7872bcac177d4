//! Error kinds and the exit codes of SPEC §2. Every failure a user can cause ends up
//! here as one line on stderr and a documented exit code.

use std::fmt;

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
            Kind::Runtime => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Conflict => 4,
            Kind::AuditBroken => 8,
            Kind::Exit(code) => code,
            Kind::ClosedOutput => 0,
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
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return true;
    }
    let mut inner: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    while let Some(cause) = inner {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            if json.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe) {
                return true;
            }
        }
        inner = cause.source();
    }
    false
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
