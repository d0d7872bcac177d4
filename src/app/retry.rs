//! The one bounded retry of a whole transaction, for failures the store calls Retry.

use crate::error::Result;

/// How many times a transaction runs at most. SQLite: once, with no retry, because its
/// busy timeout (30 s) already waited for the other writer inside the attempt, and the
/// message says how long. PostgreSQL (next issue) raises it to a few attempts, for
/// serialization failures and deadlocks.
pub const ATTEMPTS: u32 = 1;

/// Runs `transaction` (all of it: begin, work, commit) until it succeeds, fails with
/// an error that is not retryable, or has run `attempts` times (at least once).
/// Nothing it does may be seen outside before its commit: print afterwards.
pub fn with_retry<T>(attempts: u32, mut transaction: impl FnMut() -> Result<T>) -> Result<T> {
    let mut left = attempts.max(1);
    loop {
        match transaction() {
            Err(e) if e.retryable && left > 1 => left -= 1,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::Error;
    use crate::store::{ErrorKind, StoreError};

    fn failure(kind: ErrorKind) -> Error {
        StoreError::new(kind, Path::new("k.db"), "key store k.db failed").into()
    }

    #[test]
    fn a_retry_failure_runs_the_transaction_again_up_to_the_bound() {
        let mut runs = 0;
        let out = with_retry(3, || {
            runs += 1;
            if runs < 3 {
                Err(failure(ErrorKind::Retry))
            } else {
                Ok(runs)
            }
        });
        assert_eq!(out.ok(), Some(3));

        let mut runs = 0;
        let out: Result<()> = with_retry(2, || {
            runs += 1;
            Err(failure(ErrorKind::Retry))
        });
        assert_eq!(runs, 2, "bounded");
        assert_eq!(
            out.err().map(|e| e.message).as_deref(),
            Some("key store k.db failed")
        );
    }

    #[test]
    fn other_failures_and_the_sqlite_bound_run_once() {
        for (kind, attempts) in [
            (ErrorKind::Other, 5),
            (ErrorKind::Conflict, 5),
            (ErrorKind::Unavailable, 5),
            (ErrorKind::Retry, ATTEMPTS),
            (ErrorKind::Retry, 0),
        ] {
            let mut runs = 0;
            let out: Result<()> = with_retry(attempts, || {
                runs += 1;
                Err(failure(kind))
            });
            assert_eq!(runs, 1, "{kind:?} with {attempts} attempts");
            assert!(out.is_err());
        }
    }
}
