//! The options every command takes (`--db`, `--actor`, `--format`, ...) and the output
//! format: defined here so the parser (`cli`, which flattens them) and the context
//! (`context`, which resolves them) both use them without depending on each other.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// The heading the global options show under in every command's help.
const HEADING: &str = "Global Options";

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Key store: an SQLite file, or a postgres:// URL [default: keys.db in the
    /// platform data folder]
    ///
    /// A URL given here must not hold a password (every user of the machine can read a
    /// command line): put it in KEYCTL_DB, PGPASSWORD or ~/.pgpass.
    #[arg(long, global = true, env = "KEYCTL_DB", value_name = "PATH|URL", help_heading = HEADING)]
    pub db: Option<PathBuf>,

    /// True when `--db` came from the command line, not from `KEYCTL_DB`.
    #[arg(skip)]
    pub db_from_argv: bool,

    /// Who performs admin actions [default: the OS user name]
    #[arg(long, global = true, env = "KEYCTL_ACTOR", value_name = "NAME", help_heading = HEADING)]
    pub actor: Option<String>,

    /// Output format for commands that print records
    ///
    /// In csv, a cell that begins with =, +, -, @, tab or carriage return is written
    /// with a leading ' so a spreadsheet shows it as text, not a formula (OWASP CSV
    /// injection). In every format, control and invisible characters of stored text
    /// are escaped (\u{202e}; \u202e in json).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", help_heading = HEADING)]
    pub format: Option<Format>,

    /// Short for --format json
    #[arg(long, global = true, help_heading = HEADING)]
    pub json: bool,

    /// Disable colour (also when NO_COLOR is set)
    #[arg(long, global = true, help_heading = HEADING)]
    pub no_color: bool,

    /// Print no messages on stderr, only data on stdout and errors
    #[arg(short, long, global = true, help_heading = HEADING)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}
