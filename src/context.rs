//! Global settings resolved in one place: store location, actor, format, colour, clock.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::core::text::for_terminal;
use crate::core::time::parse_datetime;
use crate::error::{Error, Result};
use crate::global::{Format, GlobalArgs};
use crate::store::{self, Location, OpenOptions, Store};

/// What every command needs to know about how it was run.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub db: Location,
    /// True when no `--db`/`KEYCTL_DB` was given (the default folder may be created).
    pub db_is_default: bool,
    /// `--actor` / `KEYCTL_ACTOR` when given; otherwise looked up on first use (the OS
    /// user lookup reads /etc/passwd, which `verify` never needs).
    actor: std::sync::OnceLock<String>,
    pub format: Format,
    /// True when `--format`/`--json` was given explicitly.
    pub format_explicit: bool,
    pub color: bool,
    pub quiet: bool,
    /// The one "now" of this command ([`Ctx::now`]).
    now: std::cell::Cell<DateTime<Utc>>,
    /// True when `KEYCTL_NOW` fixed the clock (long-running commands then keep it).
    pub now_fixed: bool,
    pub stdout_tty: bool,
    pub stdin_tty: bool,
    pub stderr_tty: bool,
}

/// The one clock: `KEYCTL_NOW` when set (tests fix time with it), else the system
/// clock. Returns the time and whether it is fixed; every reader of "now" starts here.
pub fn start_clock() -> std::result::Result<(DateTime<Utc>, bool), String> {
    match std::env::var("KEYCTL_NOW") {
        Ok(v) if !v.is_empty() => parse_datetime(&v)
            .map(|t| (t, true))
            .map_err(|e| format!("invalid KEYCTL_NOW: {e}")),
        _ => Ok((Utc::now(), false)),
    }
}

fn os_user_name() -> Option<String> {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return Some(v);
            }
        }
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy the name
    // out at once and keyctl reads it from one thread only.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr((*pw).pw_name);
        Some(name.to_string_lossy().into_owned())
    }
}

/// The store `--db`/`KEYCTL_DB` names (`given`; empty counts as unset: a path, or a
/// PostgreSQL URL), else the default one, and whether it is the default; None when
/// there is no home folder for the default. `flag` names where it came from for
/// messages; `from_argv` refuses a password in it (SPEC §6).
pub fn locate(
    given: Option<&Path>,
    flag: &str,
    from_argv: bool,
) -> Result<Option<(Location, bool)>> {
    match given {
        Some(p) if !p.as_os_str().is_empty() => {
            Ok(Some((parse_location(p, flag, from_argv)?, false)))
        }
        _ => Ok(store::default_path().map(|p| (Location::Sqlite(p), true))),
    }
}

/// A store location from its text (`--db`, `KEYCTL_DB`, `copy --to`): a `postgres://`
/// URL or a file path. A password inside a URL on the command line is refused
/// (exit 2) without echoing it: argv is visible to every user of the machine.
pub fn parse_location(text: &Path, flag: &str, from_argv: bool) -> Result<Location> {
    // A path that is not UTF-8 cannot be a URL.
    let Some(text) = text.to_str() else {
        return Ok(Location::Sqlite(text.to_path_buf()));
    };
    let location =
        Location::parse(text).map_err(|e| Error::usage(format!("invalid {flag}: {e}")))?;
    if from_argv && location.password_in_url() {
        return Err(Error::usage(format!(
            "{flag} holds a password, and a command line is visible to every user of this machine: \
             leave it out of the URL and put it in PGPASSWORD or ~/.pgpass (or the whole URL in KEYCTL_DB)"
        )));
    }
    Ok(location)
}

impl Ctx {
    pub fn from_globals(cli: &GlobalArgs) -> Result<Ctx> {
        let flag = if cli.db_from_argv {
            "--db"
        } else {
            "KEYCTL_DB"
        };
        let (db, db_is_default) =
            locate(cli.db.as_deref(), flag, cli.db_from_argv)?.ok_or_else(|| {
                Error::runtime(
                "cannot find a home folder for the default key store: pass --db or set KEYCTL_DB",
            )
            })?;
        let actor = std::sync::OnceLock::new();
        if let Some(a) = cli
            .actor
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            crate::core::names::validate_text("--actor", a).map_err(Error::usage)?;
            let _ = actor.set(a.to_string());
        }
        let (now, now_fixed) = start_clock().map_err(Error::usage)?;
        let stdout_tty = io::stdout().is_terminal();
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let format_explicit = cli.json || cli.format.is_some();
        let format = if cli.json {
            Format::Json
        } else {
            cli.format.unwrap_or(Format::Table)
        };
        Ok(Ctx {
            db,
            db_is_default,
            actor,
            format,
            format_explicit,
            color: stdout_tty && !cli.no_color && !no_color_env,
            quiet: cli.quiet,
            now: std::cell::Cell::new(now),
            now_fixed,
            stdout_tty,
            stdin_tty: io::stdin().is_terminal(),
            stderr_tty: io::stderr().is_terminal(),
        })
    }

    /// A context not built from a command line (fuzzing, embedding): no store path,
    /// actor "keyctl", table output, no terminal, the given clock.
    pub fn detached(now: DateTime<Utc>) -> Ctx {
        let actor = std::sync::OnceLock::new();
        let _ = actor.set("keyctl".to_string());
        Ctx {
            db: Location::Sqlite(Default::default()),
            db_is_default: false,
            actor,
            format: Format::Table,
            format_explicit: false,
            color: false,
            quiet: true,
            now: std::cell::Cell::new(now),
            now_fixed: true,
            stdout_tty: false,
            stdin_tty: false,
            stderr_tty: false,
        }
    }

    /// Who performs admin actions: `--actor`, else `KEYCTL_ACTOR`, else the OS user.
    pub fn actor(&self) -> &str {
        self.actor.get_or_init(|| {
            os_user_name()
                .filter(|n| crate::core::names::validate_text("user", n).is_ok())
                .unwrap_or_else(|| "unknown".into())
        })
    }

    /// The one "now" of this command: `KEYCTL_NOW` when set (tests fix time with it),
    /// else the host's clock at the start, replaced by the database's clock when a
    /// PostgreSQL store is opened (SPEC §6: one clock for every host of a fleet).
    pub fn now(&self) -> DateTime<Utc> {
        self.now.get()
    }

    /// The time now, for commands that run on (`verify --stream`, `logs --follow`).
    pub fn clock(&self) -> DateTime<Utc> {
        if self.now_fixed {
            self.now()
        } else {
            Utc::now()
        }
    }

    /// Where a store transaction takes "now" from: `KEYCTL_NOW` when it fixed the
    /// clock, else the store's own clock (PostgreSQL's), else the host's.
    pub fn store_clock(&self) -> store::Clock {
        if self.now_fixed {
            store::Clock::Fixed(self.now())
        } else {
            store::Clock::Host(Utc::now())
        }
    }

    /// True when prompts may be shown: stdin and stderr are both terminals.
    pub fn interactive(&self) -> bool {
        self.stdin_tty && self.stderr_tty
    }

    /// Opens the store for reading; a missing store is an error.
    pub fn open_read(&self) -> Result<Box<dyn Store>> {
        let mut store = self.open_for_verify()?;
        self.take_store_clock(store.as_mut())?;
        Ok(store)
    }

    /// [`Ctx::open_read`] without reading the store's clock: verification reads it in
    /// its own transaction, after locking the key ([`Ctx::store_clock`]).
    pub fn open_for_verify(&self) -> Result<Box<dyn Store>> {
        Ok(store::open(&self.db, &OpenOptions::default())?.0)
    }

    /// Makes the store's clock this command's "now" when it has one (PostgreSQL) and
    /// `KEYCTL_NOW` did not fix it. Read once, when the store is opened: every time
    /// the command stores is then the database's. (Relative inputs checked before the
    /// store was opened, like `--expires 30d`, count from the host's clock.)
    fn take_store_clock(&self, store: &mut dyn Store) -> Result<()> {
        if self.now_fixed || self.db.sqlite_path().is_some() {
            return Ok(());
        }
        let mut tx = store.begin(store::Intent::Read)?;
        if let Some(now) = tx.db_clock()? {
            self.now.set(now);
        }
        Ok(())
    }

    /// Opens the store for writing. A missing SQLite store is created (and said so);
    /// on PostgreSQL only `init` and `copy` create one (SPEC §6: a database is the
    /// administrator's, and a mistyped URL must not grow tables somewhere).
    pub fn open_write(&self) -> Result<Box<dyn Store>> {
        let create = self.db.sqlite_path().is_some();
        Ok(self.open_store(create, None)?.0)
    }

    /// Opens the store for `init`, creating it with `prefix` when missing; true when
    /// this open created the store.
    pub fn open_for_init(&self, prefix: Option<String>) -> Result<(Box<dyn Store>, bool)> {
        self.open_store(true, prefix)
    }

    fn open_store(&self, create: bool, prefix: Option<String>) -> Result<(Box<dyn Store>, bool)> {
        let opts = OpenOptions {
            create,
            create_parent: self.db_is_default,
            prefix,
        };
        let (mut store, created) = store::open(&self.db, &opts)?;
        self.take_store_clock(store.as_mut())?;
        if created {
            self.note(&format!("created key store at {}", self.db));
        }
        Ok((store, created))
    }

    /// A message for people on stderr, unless `--quiet`. Like every stderr line, it
    /// never shows a secret or a stored name's hidden characters raw.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "{}", for_terminal(message));
        }
    }

    /// A warning on stderr; shown even with `--quiet`.
    pub fn warn(&self, message: &str) {
        let _ = writeln!(io::stderr(), "warning: {}", for_terminal(message));
    }
}
