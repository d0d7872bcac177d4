//! The one bounded retry of a whole transaction, for failures the store calls Retry.

use crate::store::{ErrorKind, StoreError};

/// An error that may say "running the whole transaction again may succeed".
pub trait Retryable {
    fn retryable(&self) -> bool;
}

impl Retryable for crate::error::Error {
    fn retryable(&self) -> bool {
        self.retryable
    }
}

impl Retryable for StoreError {
    fn retryable(&self) -> bool {
        self.kind() == Some(ErrorKind::Retry)
    }
}

/// Runs `transaction` (all of it: begin, work, commit) until it succeeds, fails with
/// an error that is not retryable, or has run `attempts` times (at least once).
/// Nothing it does may be seen outside before its commit: print afterwards.
/// A transaction that has shown something that cannot be taken back (a secret) must
/// make its later errors final ([`crate::error::Error::final_attempt`]).
pub fn with_retry<T, E: Retryable>(
    attempts: u32,
    mut transaction: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut left = attempts.max(1);
    loop {
        match transaction() {
            Err(e) if e.retryable() && left > 1 => left -= 1,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::{Error, Result};

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
    fn a_failure_after_a_secret_was_shown_is_final() {
        let mut runs = 0;
        let out: Result<()> = with_retry(3, || {
            runs += 1;
            Err(failure(ErrorKind::Retry).final_attempt())
        });
        assert_eq!(runs, 1);
        assert!(out.is_err());
    }

    #[test]
    fn a_store_error_asking_for_a_retry_is_retried_as_it_is() {
        let mut runs = 0;
        let out = with_retry(2, || {
            runs += 1;
            if runs == 1 {
                Err(StoreError::new(ErrorKind::Retry, Path::new("k.db"), "busy"))
            } else {
                Ok(runs)
            }
        });
        assert_eq!(out.ok(), Some(2));
    }

    #[test]
    fn other_failures_and_the_sqlite_bound_run_once() {
        for (kind, attempts) in [
            (ErrorKind::Other, 5),
            (ErrorKind::Conflict, 5),
            (ErrorKind::Unavailable, 5),
            (ErrorKind::Retry, 1),
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
