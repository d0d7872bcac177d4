//! Command-line definitions only (clap derive). One source for parsing, `--help`,
//! and later the man pages and completions.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (API key manager; not the keyutils keyctl)"
);

/// An environment variable keyctl reads: its name, a few words for `--help`, and a
/// sentence for the man pages.
pub struct EnvVar {
    pub name: &'static str,
    pub short: &'static str,
    pub long: &'static str,
}

/// Every environment variable a user may set (the test clock `KEYCTL_NOW` is not one).
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        name: "KEYCTL_DB",
        short: "store path",
        long: "Path of the key store, like --db (which wins when both are given).",
    },
    EnvVar {
        name: "KEYCTL_ACTOR",
        short: "actor name",
        long: "Who performs admin actions, like --actor; default: the OS user name. \
               Recorded in the audit trail and as the owner of new keys.",
    },
    EnvVar {
        name: "KEYCTL_CLIP_TIME",
        short: "seconds a copied secret stays on the clipboard",
        long: "Seconds, 1 to 86400, before a secret copied by create or rotate is \
               cleared from the clipboard if it still holds it; default 45.",
    },
    EnvVar {
        name: "NO_COLOR",
        short: "disable colour",
        long: "When set and not empty, disables colour, like --no-color.",
    },
];

/// The top-level help's epilogue: exit codes and environment, from their tables.
fn after_help() -> String {
    let env: Vec<String> = ENVIRONMENT
        .iter()
        .map(|v| format!("{} ({})", v.name, v.short))
        .collect();
    format!(
        "{}\n\nEnvironment: {}.",
        crate::core::exit::help_text(),
        env.join(", ")
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "keyctl",
    version = VERSION,
    about = "Administer API keys in a local SQLite store",
    long_about = "Administer API keys in a local SQLite store: create keys and see them once, \
                  list, inspect and configure them. Only SHA-256 hashes of secrets are stored.",
    after_help = after_help(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Key store file [default: keys.db in the platform data folder]
    #[arg(long, global = true, env = "KEYCTL_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Who performs admin actions [default: the OS user name]
    #[arg(long, global = true, env = "KEYCTL_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,

    /// Output format for commands that print records
    ///
    /// In csv, a cell that begins with =, +, -, @, tab or carriage return is written
    /// with a leading ' so a spreadsheet shows it as text, not a formula (OWASP CSV
    /// injection). In every format, control and invisible characters of stored text
    /// are escaped (\u{202e}; \u202e in json).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Short for --format json
    #[arg(long, global = true)]
    pub json: bool,

    /// Disable colour (also when NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Print no messages on stderr, only data on stdout and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the key store (refuses to overwrite one)
    Init(InitArgs),
    /// Create a key and show its secret once
    Create(Box<CreateArgs>),
    /// List keys with their prefixes, status and last use
    List(ListArgs),
    /// Show every field of one key and its recent usage
    Show(ShowArgs),
    /// Change a key's settings (never its secret)
    Edit(Box<EditArgs>),
    /// Deactivate keys (reversible with enable)
    #[command(mut_arg("keyrefs", |a| a.add(ArgValueCandidates::new(crate::complete::keys_to_disable))))]
    Disable(KeyRefsArgs),
    /// Reactivate disabled keys
    #[command(mut_arg("keyrefs", |a| a.add(ArgValueCandidates::new(crate::complete::keys_to_enable))))]
    Enable(KeyRefsArgs),
    /// Revoke keys permanently
    Revoke(RevokeArgs),
    /// Remove keys (an active key is revoked first)
    Delete(DeleteArgs),
    /// Replace a key with a new secret that keeps every setting
    Rotate(RotateArgs),
    /// Check a presented key (from stdin or --key-env) and record the request
    Verify(VerifyArgs),
    /// Show the request log, or prune it
    Logs(LogsArgs),
    /// Requests per day (accepted, rejected) and credits
    Usage(UsageArgs),
    /// Show the audit trail of admin actions, or verify its hash chain
    Audit(AuditArgs),
    /// Write a consistent copy of the store
    Backup(BackupArgs),
    /// Read and change store settings
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the completion script for a shell
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Install: see README.md, section Shell completions. In bash, zsh and fish, \
key arguments complete with the names of the keys in the store (--db / KEYCTL_DB / default)."
)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

impl ShellArg {
    pub fn name(self) -> &'static str {
        match self {
            ShellArg::Bash => "bash",
            ShellArg::Zsh => "zsh",
            ShellArg::Fish => "fish",
            ShellArg::Powershell => "powershell",
            ShellArg::Elvish => "elvish",
        }
    }
}

#[derive(Debug, Args)]
pub struct KeyRefsArgs {
    /// Keys: ids, exact names, or display prefixes
    #[arg(value_name = "KEYREF", required = true)]
    pub keyrefs: Vec<String>,
    #[command(flatten)]
    pub chain: PredecessorArgs,
}

/// `--with-predecessor` of `revoke`, `disable` and `enable`.
#[derive(Debug, Clone, Copy, Args)]
pub struct PredecessorArgs {
    /// Also act on every key these keys replaced in rotations (the whole chain back)
    /// that is not revoked
    #[arg(long)]
    pub with_predecessor: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Keys: ids, exact names, or display prefixes
    #[arg(value_name = "KEYREF", required = true, add = ArgValueCandidates::new(crate::complete::unrevoked_keys))]
    pub keyrefs: Vec<String>,
    #[command(flatten)]
    pub chain: PredecessorArgs,
    /// Why the keys are revoked (kept in the audit trail)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Keys: ids, exact names, or display prefixes
    #[arg(value_name = "KEYREF", required = true, add = ArgValueCandidates::new(crate::complete::any_key))]
    pub keyrefs: Vec<String>,
    /// Delete keys that have request history too
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The key to replace
    #[arg(value_name = "KEYREF", add = ArgValueCandidates::new(crate::complete::keys_to_rotate))]
    pub keyref: String,
    /// Keep the old key working until then (a duration like 24h, or a date); without it
    /// the old key is disabled at once
    #[arg(long, value_name = "WHEN")]
    pub grace: Option<String>,
    /// Expiry of the new key [default: the old key's lifetime, counted from now]
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Copy the new secret to the clipboard [default: when stdout is a terminal]
    #[arg(long, overrides_with = "no_copy")]
    pub copy: bool,
    /// Do not copy the new secret to the clipboard
    #[arg(long, overrides_with = "copy")]
    pub no_copy: bool,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only events of this key (an id also matches deleted keys)
    #[arg(value_name = "KEYREF", add = ArgValueCandidates::new(crate::complete::any_key))]
    pub keyref: Option<String>,
    /// Only events since then (a duration like 7d, or a date)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only this action: created, edited, disabled, enabled, revoked, rotated, deleted, config
    #[arg(long, value_name = "ACTION", add = ArgValueCandidates::new(crate::complete::audit_actions))]
    pub action: Option<String>,
    /// At most N events, newest first
    #[arg(
        long,
        value_name = "N",
        default_value = "100",
        allow_negative_numbers = true
    )]
    pub limit: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; print the event count and head hash
    Verify {
        /// Also fail unless the chain contains this head hash (detects a cut-off tail)
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Read the presented key from this environment variable instead of stdin
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// The client's IP address
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// The scope the request needs
    #[arg(long, value_name = "S")]
    pub scope: Option<String>,
    /// The deployment the request is for
    #[arg(long, value_name = "D")]
    pub deployment: Option<String>,
    /// The model the request uses
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// The endpoint, like "POST /v1/chat" (recorded)
    #[arg(long, value_name = "ENDPOINT")]
    pub endpoint: Option<String>,
    /// Credits the request costs
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub cost: String,
    /// How long the request took (recorded)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub duration_ms: Option<String>,
    /// Check only: count and log nothing
    #[arg(long)]
    pub no_record: bool,
    /// Serve many requests: one json request per stdin line, one json result per line
    #[arg(long, conflicts_with_all = ["key_env", "ip", "scope", "deployment", "model", "endpoint", "duration_ms"])]
    pub stream: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    /// Only requests of this key (an id also matches deleted keys)
    #[arg(value_name = "KEYREF", add = ArgValueCandidates::new(crate::complete::any_key))]
    pub keyref: Option<String>,
    /// Only requests since then (a duration like 1h, or a date)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only requests before then
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only this HTTP status (401) or result code (quota_exceeded)
    #[arg(long, value_name = "CODE")]
    pub status: Option<String>,
    /// Only requests from this IP
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// At most N rows, newest first
    #[arg(
        long,
        value_name = "N",
        default_value = "100",
        allow_negative_numbers = true
    )]
    pub limit: String,
    /// Keep printing new rows until interrupted
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Delete older request-log rows (counters, usage and last use stay)
    Prune {
        /// Delete rows older than this (a duration like 90d, or a date)
        #[arg(long, value_name = "WHEN", required = true)]
        before: String,
    },
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only this key (default: every request)
    #[arg(value_name = "KEYREF", add = ArgValueCandidates::new(crate::complete::any_key))]
    pub keyref: Option<String>,
    /// How many days, ending today (UTC)
    #[arg(
        long,
        value_name = "N",
        default_value = "30",
        allow_negative_numbers = true
    )]
    pub days: String,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Default)]
pub struct EditArgs {
    /// The key to change
    #[arg(value_name = "KEYREF", add = ArgValueCandidates::new(crate::complete::unrevoked_keys))]
    pub keyref: String,
    /// New name
    #[arg(long)]
    pub name: Option<String>,
    /// New description ("" clears it)
    #[arg(long)]
    pub description: Option<String>,
    /// New owner
    #[arg(long)]
    pub owner: Option<String>,
    /// New category ("" clears it)
    #[arg(long)]
    pub category: Option<String>,
    /// New group ("" clears it)
    #[arg(long)]
    pub group: Option<String>,
    /// Replace the scopes (repeatable)
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// Remove every scope (unrestricted)
    #[arg(long, conflicts_with = "scopes")]
    pub clear_scopes: bool,
    /// Bind to this deployment ("" makes the key project-wide)
    #[arg(long, value_name = "D")]
    pub deployment: Option<String>,
    /// Replace the allowed models (repeatable)
    #[arg(long = "allow-model", value_name = "M")]
    pub allow_models: Vec<String>,
    /// Allow any model
    #[arg(long, conflicts_with = "allow_models")]
    pub clear_models: bool,
    /// Replace the allowed IPs and CIDR ranges (comma-separated, repeatable)
    #[arg(long = "allow-ip", value_name = "LIST")]
    pub allow_ips: Vec<String>,
    /// Allow any IP
    #[arg(long, conflicts_with = "allow_ips")]
    pub clear_ips: bool,
    /// New expiry: a duration, a date, or never
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Lifetime request cap, or none
    #[arg(long, value_name = "N|none", allow_negative_numbers = true)]
    pub quota_total: Option<String>,
    /// 24-hour request cap, or none
    #[arg(long, value_name = "N|none", allow_negative_numbers = true)]
    pub quota_daily: Option<String>,
    /// 7-day request cap, or none
    #[arg(long, value_name = "N|none", allow_negative_numbers = true)]
    pub quota_weekly: Option<String>,
    /// 30-day request cap, or none
    #[arg(long, value_name = "N|none", allow_negative_numbers = true)]
    pub quota_monthly: Option<String>,
    /// Rate limit N/s or N/m, or none
    #[arg(long, value_name = "N/s|N/m|none", allow_hyphen_values = true)]
    pub rate_limit: Option<String>,
    /// Credit limit
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "unlimited",
        allow_negative_numbers = true
    )]
    pub credits: Option<String>,
    /// Remove the credit limit
    #[arg(long)]
    pub unlimited: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Prefix of the store's secrets: 1-16 characters of a-z and 0-9
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct CreateArgs {
    /// Create many keys from json lines in FILE (- for stdin), in one transaction
    #[arg(long, value_name = "FILE")]
    pub batch: Option<String>,
    /// Name of the key (required without a terminal)
    #[arg(long)]
    pub name: Option<String>,
    /// Free-text description
    #[arg(long)]
    pub description: Option<String>,
    /// Owner of the key [default: the actor]
    #[arg(long)]
    pub owner: Option<String>,
    /// Category tag: production, staging, development or any text
    #[arg(long)]
    pub category: Option<String>,
    /// Pricing or organisational group tag
    #[arg(long)]
    pub group: Option<String>,
    /// Scope the key is limited to (repeatable; none = unrestricted)
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// The one deployment or workspace the key is bound to
    #[arg(long, value_name = "D")]
    pub deployment: Option<String>,
    /// Model the key may use (repeatable; none = any)
    #[arg(long = "allow-model", value_name = "M")]
    pub allow_models: Vec<String>,
    /// Allowed IPs and CIDR ranges, comma-separated (repeatable; none = any)
    #[arg(long = "allow-ip", value_name = "LIST")]
    pub allow_ips: Vec<String>,
    /// Expiry: a duration (30d), a date (2027-01-31), a date-time, or never
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Cap on accepted requests over the key's lifetime
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub quota_total: Option<String>,
    /// Cap on accepted requests in any 24 hours
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub quota_daily: Option<String>,
    /// Cap on accepted requests in any 7 days
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub quota_weekly: Option<String>,
    /// Cap on accepted requests in any 30 days
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub quota_monthly: Option<String>,
    /// Rate limit: N/s or N/m
    #[arg(long, value_name = "N/s|N/m", allow_hyphen_values = true)]
    pub rate_limit: Option<String>,
    /// Credit limit (none = unlimited)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub credits: Option<String>,
    /// Make a test-mode key (<prefix>_test_...)
    #[arg(long)]
    pub test: bool,
    /// Copy the secret to the clipboard [default: when stdout is a terminal]
    #[arg(long, overrides_with = "no_copy")]
    pub copy: bool,
    /// Do not copy the secret to the clipboard
    #[arg(long, overrides_with = "copy")]
    pub no_copy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Active,
    Disabled,
    Expired,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SortArg {
    Name,
    #[default]
    Created,
    LastUsed,
    Expires,
}

#[derive(Debug, Args, Default)]
pub struct ListArgs {
    /// Only keys with this status (repeatable or comma-separated)
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    /// Only keys with this category
    #[arg(long)]
    pub category: Option<String>,
    /// Only keys with this owner
    #[arg(long)]
    pub owner: Option<String>,
    /// Only keys bound to this deployment
    #[arg(long)]
    pub deployment: Option<String>,
    /// Only keys in this group
    #[arg(long)]
    pub group: Option<String>,
    /// Only keys whose name, description, id or prefix contains TEXT (any case)
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Include revoked keys
    #[arg(long)]
    pub all: bool,
    /// Order: name, created (newest first), last-used (latest first), expires (soonest first)
    #[arg(long, value_enum, default_value_t = SortArg::Created)]
    pub sort: SortArg,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key: its id, exact name, or display prefix (with or without "...")
    #[arg(value_name = "KEYREF", add = ArgValueCandidates::new(crate::complete::any_key))]
    pub keyref: String,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print one setting's value
    Get {
        /// key-prefix, max-keys, failed-auth-limit, failed-auth-ipv6-prefix, failed-auth-window, block-duration or log-retention
        #[arg(add = ArgValueCandidates::new(crate::complete::setting_names))]
        name: String,
    },
    /// Change one setting
    Set {
        /// The setting to change
        #[arg(add = ArgValueCandidates::new(crate::complete::setting_names))]
        name: String,
        /// Its new value
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// List every setting with its value and default
    List,
}

/// The clap command tree (for help hints, man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses arguments; errors come back as clap errors for main to report in one line.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
