//! Shared test harness: a `TestEnv` that owns a temporary folder and runs the real
//! `keyctl` binary in it with a cleared environment and a fixed clock.
//!
//! One concern per file, one way to do each thing:
//! - `env`: the temporary world and the `keyctl` command in it;
//! - `run`: running a command (optional stdin, always bounded) into an `Outcome`;
//! - `commands`: typed wrappers of keyctl commands (`create`, `list --json`, ...);
//! - `verdict`: `verify` and its result shape;
//! - `store`: the backend switch (`KEYCTL_TEST_BACKEND`), the SQLite-only markers,
//!   reading and forging the store on either backend;
//! - `pg`: a fresh PostgreSQL database per test (tests/common/pg.rs) and SQL on it;
//! - `fs`: file-tree snapshots, modes, full filesystems and devices;
//! - `json`: json with its member order;
//! - `secret`: the secret format and checksums, recomputed independently;
//! - `proc`: waiting for conditions and processes, long-running processes, tools;
//! - `pty`: pseudo-terminals;
//! - `nobody`: running keyctl as another user;
//! - `rng`: the one seeded random generator;
//! - `serve`: `keyctl serve` running, and a small HTTP/1.1 client for it.
//!
//! Every test module says `use crate::support::*;`.

mod commands;
mod env;
mod fs;
mod json;
mod nobody;
mod pg;
mod proc;
mod pty;
mod rng;
mod run;
mod secret;
mod serve;
mod store;
mod verdict;

pub use commands::*;
pub use env::*;
pub use fs::*;
pub use json::*;
pub use nobody::*;
pub use pg::*;
pub use proc::*;
pub use pty::*;
pub use rng::*;
pub use run::*;
pub use secret::*;
pub use serve::*;
pub use store::*;
pub use verdict::*;

/// The one "now" of every command unless a test says otherwise.
pub const NOW: &str = "2026-11-23T12:00:00Z";
/// `NOW` in unix milliseconds, as the store keeps times.
pub const NOW_MS: i64 = 1_795_435_200_000;
/// The actor every command runs as (`KEYCTL_ACTOR`).
pub const ACTOR: &str = "tester";

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// `NOW` plus `secs` seconds, as RFC 3339 UTC with whole seconds (keyctl's json form).
pub fn now_plus(secs: i64) -> String {
    now_plus_in(chrono::Duration::seconds(secs), chrono::SecondsFormat::Secs)
}

/// `NOW` plus `ms` milliseconds, as RFC 3339 UTC with milliseconds (for `KEYCTL_NOW`
/// at a window's edge).
pub fn now_plus_ms(ms: i64) -> String {
    now_plus_in(
        chrono::Duration::milliseconds(ms),
        chrono::SecondsFormat::Millis,
    )
}

fn now_plus_in(delta: chrono::Duration, form: chrono::SecondsFormat) -> String {
    let base = chrono::DateTime::parse_from_rfc3339(NOW).unwrap();
    (base + delta)
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(form, true)
}
