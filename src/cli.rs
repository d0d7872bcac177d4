//! Command-line definitions only (clap derive). One source for parsing, `--help`,
//! and later the man pages and completions.

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Arg, Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter};
use clap_complete::CompletionCandidate;

use crate::complete;
use crate::core::inputs::{self, Cap, IpList, Rate, RefillRate, Text, When};
use crate::core::meta;
use crate::core::refill::Mode as RefillMode;

pub use crate::global::{Format, GlobalArgs};

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

/// Every environment variable a user may set. Not listed: `KEYCTL_NOW` (a test clock,
/// hidden per SPEC) and the variables keyctl sets for itself (`KEYCTL_COMPLETE` from
/// the completion scripts, the clipboard helper's).
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        name: "KEYCTL_DB",
        short: "the key store (a file or a postgres:// URL), like --db",
        long: "The key store, like --db (which wins when both are given): a file path, \
               or a postgres:// URL, which here may hold its password.",
    },
    EnvVar {
        name: "PGPASSWORD, PGPASSFILE",
        short: "the PostgreSQL password, or the file of passwords (~/.pgpass)",
        long: "The password of a PostgreSQL store whose URL has none: PGPASSWORD, else \
               the matching line of PGPASSFILE (default ~/.pgpass, used only when its \
               mode is 0600 or stricter), as libpq reads them.",
    },
    EnvVar {
        name: "KEYCTL_ACTOR",
        short: "who performs admin actions, like --actor",
        long: "Who performs admin actions, like --actor; default: the OS user name. \
               Recorded in the audit trail and as the owner of new keys.",
    },
    EnvVar {
        name: "KEYCTL_CLIP_TIME",
        short: "seconds a copied secret stays on the clipboard (default 45)",
        long: "Seconds, 1 to 86400, before a secret copied by create or rotate is \
               cleared from the clipboard if it still holds it; default 45.",
    },
    EnvVar {
        name: "NO_COLOR",
        short: "disable colour, like --no-color",
        long: "When set and not empty, disables colour, like --no-color.",
    },
    EnvVar {
        name: "DISPLAY, WAYLAND_DISPLAY",
        short: "the display whose clipboard create and rotate copy to",
        long: "The X11 or Wayland display whose clipboard create and rotate copy a new \
               secret to; with neither set, the default copy is off.",
    },
    EnvVar {
        name: "USER, LOGNAME",
        short: "the actor when neither --actor nor KEYCTL_ACTOR is given",
        long: "The actor when neither --actor nor KEYCTL_ACTOR is given.",
    },
    EnvVar {
        name: "XDG_DATA_HOME, HOME",
        short: "where the default key store lives (keys.db in the data folder)",
        long: "Where the default key store lives: keys.db in the platform data folder \
               ($XDG_DATA_HOME/keyctl, else ~/.local/share/keyctl on Linux).",
    },
];

/// The top-level help's epilogue: the exit codes, from their table.
fn after_help() -> String {
    crate::core::exit::help_text()
}

/// clap's default layout with the environment list after the exit codes.
fn root_help_template() -> String {
    let width = ENVIRONMENT.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut t = String::from(
        "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}\n\nEnvironment:",
    );
    for v in ENVIRONMENT {
        t.push_str(&format!("\n  {:width$}  {}", v.name, v.short));
    }
    t
}

#[derive(Debug, Parser)]
#[command(
    name = "keyctl",
    version = VERSION,
    about = "Administer API keys in an SQLite file or a shared PostgreSQL database",
    long_about = "Administer API keys in an SQLite file or a shared PostgreSQL database: create keys and see them once, \
                  list, inspect and configure them. Only SHA-256 hashes of secrets are stored.",
    after_help = after_help(),
    help_template = root_help_template(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
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
    ///
    /// Each flag given replaces that setting; the others stay as they are.
    Edit(Box<EditArgs>),
    /// Deactivate keys (reversible with enable)
    Disable(KeyRefsArgs),
    /// Reactivate disabled keys
    Enable(KeyRefsArgs),
    /// Revoke keys permanently
    Revoke(RevokeArgs),
    /// Remove keys (an active key is revoked first)
    Delete(DeleteArgs),
    /// Replace a key with a new secret that keeps every setting
    Rotate(RotateArgs),
    /// Check a presented key (from stdin or --key-env) and record the request
    Verify(VerifyArgs),
    /// Answer verifications over HTTP (for proxies, services and Unkey clients)
    ///
    /// Routes: POST /v1/verify (a stream request as json, the --json verdict back),
    /// GET /auth (forward auth for nginx, Traefik and Caddy: 204, 401 or 403),
    /// POST /v2/keys.verifyKey (Unkey's verify API), GET /healthz, GET /metrics,
    /// GET /openapi.json (an OpenAPI 3 description of these routes). Concurrent requests are decided and recorded in one
    /// transaction (group commit). SIGTERM or SIGINT stops accepting, answers the
    /// requests in flight and exits 0.
    Serve(ServeArgs),
    /// Show the request log, or prune it
    Logs(LogsArgs),
    /// Requests per day (accepted, rejected) and credits
    Usage(UsageArgs),
    /// Show the audit trail of admin actions, or verify its hash chain
    Audit(AuditArgs),
    /// Find this store's secrets in files and name their keys
    ///
    /// Walks the PATHs (default: the current folder) as ripgrep does: files and folders
    /// that .gitignore or .ignore exclude and hidden ones are skipped unless --all, and
    /// binary files (a NUL byte) always. A string of the key format with a valid
    /// checksum is looked up by its hash and reported with file:line:column, the key's
    /// id, name and status (active, disabled, expired, revoked, or unknown: not this
    /// store's), shown as its display prefix only. Exit 9 when an active key is found
    /// (also after --revoke), 0 otherwise; 1 when some file could not be read and no
    /// active key was found.
    Scan(ScanArgs),
    /// Bring keys from another system: their secrets or sha256 hashes, json lines
    ///
    /// One json object per line: `secret` (hashed on the way in, never kept) or
    /// `sha256` (64 hex digits), the fields of `create --batch`, and optional
    /// `created_at` / `last_used_at` (RFC 3339). Keys of another format (`sk-...`,
    /// `sk_live_...` without keyctl's checksum) verify by their hash alone; a key of
    /// keyctl's format must pass its checksum. One transaction: a bad line, a key or
    /// name the store already has, or the key limit fails the whole import, naming
    /// the line, and nothing is written. The imported keys are printed as `list`
    /// prints keys (never a secret); each gets a `created` audit event.
    Import(ImportArgs),
    /// Write a consistent copy of the store
    Backup(BackupArgs),
    /// Copy the whole store into a new one, SQLite or PostgreSQL
    ///
    /// Keys, settings, the request log, counters and the audit trail are copied
    /// verbatim from one consistent snapshot, so `keyctl audit verify` prints the same
    /// head on both; the head is printed. The target must hold no keyctl store yet.
    Copy(CopyStoreArgs),
    /// Bring the store's schema up to this keyctl's
    ///
    /// On PostgreSQL the only way an existing schema changes: the hosts of a fleet
    /// never upgrade it by themselves. On SQLite every command migrates on open.
    Migrate,
    /// Read and change store settings
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the completion script for a shell
    Completions(CompletionsArgs),
    /// Key hygiene: never-used, unused, expiring, unrestricted keys and more
    ///
    /// Findings: never-used, unused (no use within --unused), expiring (within
    /// --expiring), no-expiry, unrestricted (no scope, IP allowlist, deployment or
    /// model), near-limit (--near of a quota window or the credit limit), in-grace
    /// (replaced by a rotation, still verifying). Active and disabled keys are
    /// checked; revoked and expired ones, and disabled ones replaced by a rotation,
    /// cannot verify again and are left out. A table grouped by finding, or one row
    /// per finding as json or csv.
    Report(ReportArgs),
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
    #[arg(required = true)]
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
    #[arg(required = true)]
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
    #[arg(required = true)]
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
    pub keyref: String,
    /// Keep the old key working until then (a duration like 24h, or a date); without it
    /// the old key is disabled at once
    #[arg(long, value_name = "WHEN", value_parser = Core(inputs::grace))]
    pub grace: Option<When>,
    /// Expiry of the new key [default: the old key's lifetime, counted from now]
    #[arg(long, value_name = "WHEN", value_parser = Core(inputs::expiry))]
    pub expires: Option<When>,
    #[command(flatten)]
    pub copy: CopyArgs,
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
    pub keyref: Option<String>,
    /// Only events since then (a duration like 7d, or a date)
    #[arg(long, value_name = "WHEN", value_parser = Core(inputs::window))]
    pub since: Option<When>,
    /// Only this action: created, edited, disabled, enabled, revoked, rotated, deleted, config
    #[arg(long, value_name = "ACTION", add = ArgValueCandidates::new(crate::complete::audit_actions))]
    pub action: Option<String>,
    /// At most N events, newest first
    #[arg(long, value_name = "N", default_value = "100", allow_negative_numbers = true, value_parser = Core(inputs::count))]
    pub limit: u64,
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
    #[arg(long, value_name = "ADDR", value_parser = Core(inputs::ip))]
    pub ip: Option<IpAddr>,
    /// The scope the request needs
    #[arg(long, value_name = "S", value_parser = Core(inputs::request_text))]
    pub scope: Option<String>,
    /// The deployment the request is for
    #[arg(long, value_name = "D", value_parser = Core(inputs::request_text))]
    pub deployment: Option<String>,
    /// The model the request uses
    #[arg(long, value_name = "M", value_parser = Core(inputs::request_text))]
    pub model: Option<String>,
    /// The endpoint, like "POST /v1/chat" (recorded)
    #[arg(long, value_name = "ENDPOINT", value_parser = Core(inputs::request_text))]
    pub endpoint: Option<String>,
    /// Credits the request costs
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true,
        value_parser = Core(inputs::amount)
    )]
    pub cost: u64,
    /// How long the request took (recorded)
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = Core(inputs::amount)
    )]
    pub duration_ms: Option<u64>,
    /// Check only: count and log nothing
    #[arg(long)]
    pub no_record: bool,
    /// Serve many requests: one json request per stdin line, one json result per line
    #[arg(long, conflicts_with_all = ["key_env", "ip", "scope", "deployment", "model", "endpoint", "duration_ms", "explain"])]
    pub stream: bool,
    /// Show every check with its result (pass, fail, n.a.) and figures, and exit with
    /// the verdict's code; records and counts nothing (implies --no-record)
    // Its conflict with --stream is on --stream's list (one list, no second one).
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The first line on stderr is 'listening on http://ADDR:PORT' (or \
'listening on unix:PATH'). An address beyond loopback needs --caller-token-env: /v1/verify then \
wants 'Authorization: Bearer TOKEN', and /auth answers only loopback peers and --trust-proxy ranges."
)]
pub struct ServeArgs {
    /// The address and port to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8787", value_parser = Core(inputs::listen_addr))]
    pub listen: std::net::SocketAddr,
    /// Listen on this Unix socket instead (created mode 0660; an old socket is replaced)
    #[arg(long, value_name = "PATH", conflicts_with = "listen")]
    pub socket: Option<PathBuf>,
    /// Believe X-Real-IP / X-Forwarded-For from peers in this range (repeatable)
    #[arg(long, value_name = "CIDR", value_parser = Core(inputs::proxy_range))]
    pub trust_proxy: Vec<ipnet::IpNet>,
    /// Require this environment variable's value as 'Authorization: Bearer' on /v1 and /v2
    #[arg(long, value_name = "VAR")]
    pub caller_token_env: Option<String>,
    /// Credits a request costs when it does not say
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true,
        value_parser = Core(inputs::amount)
    )]
    pub cost: u64,
    /// Check only: count and log nothing
    #[arg(long)]
    pub no_record: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    /// Only requests of this key (an id also matches deleted keys)
    pub keyref: Option<String>,
    /// Only requests since then (a duration like 1h, or a date)
    #[arg(long, value_name = "WHEN", value_parser = Core(inputs::window))]
    pub since: Option<When>,
    /// Only requests before then
    #[arg(long, value_name = "WHEN", value_parser = Core(inputs::window))]
    pub until: Option<When>,
    /// Only this HTTP status (401) or result code (quota_exceeded)
    #[arg(long, value_name = "CODE")]
    pub status: Option<String>,
    /// Only requests from this IP
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// At most N rows, newest first
    #[arg(long, value_name = "N", default_value = "100", allow_negative_numbers = true, value_parser = Core(inputs::count))]
    pub limit: u64,
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
pub struct CopyStoreArgs {
    /// The new store: a file path or a postgres:// URL (no password in it)
    #[arg(long, value_name = "PATH|URL")]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and folders to scan, '-' for stdin [default: .]
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub paths: Vec<PathBuf>,
    /// Also scan hidden files and those .gitignore or .ignore exclude
    #[arg(long)]
    pub all: bool,
    /// Revoke the active keys found, with the file and line as the audited reason
    #[arg(long)]
    pub revoke: bool,
    /// Do not ask before --revoke (required without a terminal)
    #[arg(short, long, requires = "revoke")]
    pub yes: bool,
    /// Print a rule that finds this store's keys for another scanner, and exit
    #[arg(
        long,
        value_enum,
        value_name = "SCANNER",
        conflicts_with_all = ["paths", "all", "revoke"]
    )]
    pub rules: Option<RulesFor>,
}

/// The scanners `scan --rules` writes a rule for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFor {
    /// A gitleaks config with a [[rules]] entry
    Gitleaks,
    /// A TruffleHog custom regex detector (YAML)
    Trufflehog,
    /// The fields of a GitHub custom secret scanning pattern
    Github,
    /// A detect-secrets plugin (Python)
    DetectSecrets,
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

/// `edit` takes the fields of `create` (each replaces that setting), the clearing
/// forms `none` and `""`, and flags that empty a list or remove the credit limit.
#[derive(Debug, Args, Default)]
#[command(mut_args(edit_forms))]
pub struct EditArgs {
    /// The key to change
    pub keyref: String,
    #[command(flatten)]
    pub fields: KeyFields,
    /// Remove every scope (unrestricted)
    #[arg(long, conflicts_with = "scopes")]
    pub clear_scopes: bool,
    /// Allow any model
    #[arg(long, conflicts_with = "allow_models")]
    pub clear_models: bool,
    /// Allow any IP
    #[arg(long, conflicts_with = "allow_ips")]
    pub clear_ips: bool,
    /// Remove the credit limit (and the credit refill with it)
    #[arg(long, conflicts_with_all = ["credits", "refill", "refill_mode"])]
    pub unlimited: bool,
    /// Remove a metadata entry (repeatable)
    #[arg(long = "unset-meta", value_name = "KEY", value_parser = Core(meta::parse_key))]
    pub unset_meta: Vec<String>,
}

/// The settings of a key, as `create` takes them and `edit` changes them; each value is
/// parsed beside its flag by the core parser that `create --batch` uses for its fields.
#[derive(Debug, Clone, Args, Default)]
pub struct KeyFields {
    /// Name of the key (required without a terminal)
    #[arg(long, value_parser = Core(inputs::name))]
    pub name: Option<String>,
    /// Free-text description ("" for none)
    #[arg(long, value_parser = Core(inputs::text))]
    pub description: Option<Text>,
    /// Owner of the key [default: the actor]
    #[arg(long, value_parser = Core(inputs::text))]
    pub owner: Option<Text>,
    /// Category tag: production, staging, development or any text ("" for none)
    #[arg(long, value_parser = Core(inputs::text))]
    pub category: Option<Text>,
    /// Pricing or organisational group tag ("" for none)
    #[arg(long, value_parser = Core(inputs::text))]
    pub group: Option<Text>,
    /// Scope the key is limited to (repeatable; no scope = unrestricted)
    #[arg(long = "scope", value_name = "S", value_parser = Core(inputs::token))]
    pub scopes: Vec<String>,
    /// The one deployment or workspace the key is bound to ("" for project-wide)
    #[arg(long, value_name = "D", value_parser = Core(inputs::text))]
    pub deployment: Option<Text>,
    /// Model the key may use (repeatable; no model = any)
    #[arg(long = "allow-model", value_name = "M", value_parser = Core(inputs::token))]
    pub allow_models: Vec<String>,
    /// Allowed IPs and CIDR ranges, comma-separated (repeatable; no list = any)
    #[arg(long = "allow-ip", value_name = "LIST", value_parser = Core(inputs::ip_list))]
    pub allow_ips: Vec<IpList>,
    /// Expiry: a duration (30d), a date (2027-01-31), a date-time, or never
    #[arg(long, value_name = "WHEN", value_parser = Core(inputs::expiry))]
    pub expires: Option<When>,
    /// Cap on accepted requests over the key's lifetime
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = Core(inputs::cap))]
    pub quota_total: Option<Cap>,
    /// Cap on accepted requests in any 24 hours
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = Core(inputs::cap))]
    pub quota_daily: Option<Cap>,
    /// Cap on accepted requests in any 7 days
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = Core(inputs::cap))]
    pub quota_weekly: Option<Cap>,
    /// Cap on accepted requests in any 30 days
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = Core(inputs::cap))]
    pub quota_monthly: Option<Cap>,
    /// Rate limit: N/s or N/m
    #[arg(long, value_name = "N/s|N/m", allow_hyphen_values = true, value_parser = Core(inputs::rate))]
    pub rate_limit: Option<Rate>,
    /// Credit limit [default: unlimited]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = Core(inputs::count))]
    pub credits: Option<u64>,
    /// Metadata entry verification hands back (repeatable; keys a-z 0-9 _ . -)
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = Core(meta::parse_entry))]
    pub meta: Vec<meta::Entry>,
    /// Credit refill at 00:00 UTC daily or on the 1st: N/day or N/month (needs --credits)
    #[arg(long, value_name = "N/day|N/month", allow_hyphen_values = true, value_parser = Core(inputs::refill))]
    pub refill: Option<RefillRate>,
    /// What a refill does: set the remaining credits to N, or add N up to the limit [default: set]
    #[arg(long, value_name = "add|set", value_parser = Core(inputs::refill_mode))]
    pub refill_mode: Option<RefillMode>,
}

impl KeyFields {
    /// True when no field was given.
    pub fn is_empty(&self) -> bool {
        let KeyFields {
            name,
            description,
            owner,
            category,
            group,
            scopes,
            deployment,
            allow_models,
            allow_ips,
            expires,
            quota_total,
            quota_daily,
            quota_weekly,
            quota_monthly,
            rate_limit,
            credits,
            meta,
            refill,
            refill_mode,
        } = self;
        name.is_none()
            && [description, owner, category, group, deployment]
                .iter()
                .all(|t| t.is_none())
            && scopes.is_empty()
            && allow_models.is_empty()
            && allow_ips.is_empty()
            && expires.is_none()
            && [quota_total, quota_daily, quota_weekly, quota_monthly]
                .iter()
                .all(|c| c.is_none())
            && rate_limit.is_none()
            && credits.is_none()
            && meta.is_empty()
            && refill.is_none()
            && refill_mode.is_none()
    }
}

/// `edit`'s words for the fields it changes: no defaults (a field not given stays),
/// and `none` removes a cap or the rate limit.
fn edit_forms(arg: Arg) -> Arg {
    let (parser, value_name) = match arg.get_id().as_str() {
        "name" => return arg.help("New name"),
        "owner" => return arg.help("New owner"),
        "credits" => return arg.help("Credit limit"),
        "quota_total" | "quota_daily" | "quota_weekly" | "quota_monthly" => {
            (Core(inputs::cap_or_none).into(), "N|none")
        }
        "rate_limit" => (
            clap::builder::ValueParser::from(Core(inputs::rate_or_none)),
            "N/s|N/m|none",
        ),
        "refill" => (
            clap::builder::ValueParser::from(Core(inputs::refill_or_none)),
            "N/day|N/month|none",
        ),
        "refill_mode" => {
            return arg.help(
                "What a refill does: set the remaining credits to N, or add N up to the limit",
            )
        }
        _ => return arg,
    };
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    arg.value_parser(parser)
        .value_name(value_name)
        .help(format!("{help}, or none"))
}

/// A clap value parser around one of core's parsers, handing it the flag's name so
/// its message names the flag; the message is the whole error line (see main).
#[derive(Clone)]
struct Core<T>(fn(&str, &str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Core<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg
            .and_then(Arg::get_long)
            .map(|long| format!("--{long}"))
            .unwrap_or_default();
        let Some(text) = value.to_str() else {
            return Err(clap::Error::new(ErrorKind::InvalidUtf8).with_cmd(cmd));
        };
        (self.0)(&flag, text)
            .map_err(|message| clap::Error::raw(ErrorKind::ValueValidation, message))
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Prefix of the store's secrets: 1-16 characters of a-z and 0-9
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The json lines to import (- for stdin)
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Check every line and the store, print what would be imported, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Default)]
pub struct CreateArgs {
    /// Create many keys from json lines in FILE (- for stdin), in one transaction
    #[arg(long, value_name = "FILE")]
    pub batch: Option<String>,
    #[command(flatten)]
    pub fields: KeyFields,
    /// Make a test-mode key (<prefix>_test_...)
    #[arg(long)]
    pub test: bool,
    #[command(flatten)]
    pub copy: CopyArgs,
}

/// Whether `create` and `rotate` copy the new secret to the clipboard.
#[derive(Debug, Clone, Copy, Args, Default)]
pub struct CopyArgs {
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
pub struct ReportArgs {
    /// A key used, but not within this long, is `unused` (a duration like 30d)
    #[arg(long, value_name = "DURATION", default_value = crate::core::report::DEFAULT_UNUSED, value_parser = Core(crate::core::report::parse_span))]
    pub unused: chrono::Duration,
    /// A key that expires within this long is `expiring` (a duration like 14d)
    #[arg(long, value_name = "DURATION", default_value = crate::core::report::DEFAULT_EXPIRING, value_parser = Core(crate::core::report::parse_span))]
    pub expiring: chrono::Duration,
    /// A quota window or credit limit used to this percentage is `near-limit`
    #[arg(long, value_name = "PERCENT", default_value = crate::core::report::DEFAULT_NEAR, value_parser = Core(crate::core::report::parse_percent))]
    pub near: u64,
    /// Only these findings (comma-separated names; repeatable)
    #[arg(long, value_name = "LIST", value_parser = Core(crate::core::report::Findings::parse), add = ArgValueCandidates::new(finding_names))]
    pub only: Vec<crate::core::report::Findings>,
    /// Exit 5 when any of these findings (comma-separated names; repeatable) is present
    #[arg(long, value_name = "LIST", value_parser = Core(crate::core::report::Findings::parse), add = ArgValueCandidates::new(finding_names))]
    pub fail_on: Vec<crate::core::report::Findings>,
}

/// `report --only` / `--fail-on` complete with the finding names (one per value).
fn finding_names() -> Vec<CompletionCandidate> {
    crate::core::report::Finding::ALL
        .iter()
        .map(|f| CompletionCandidate::new(f.as_str()))
        .collect()
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The key: its id, exact name, or display prefix (with or without "...")
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
    #[command(after_help = crate::core::settings::help_text())]
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

/// Completion candidates for an argument, from the text typed so far.
type Candidates = fn(&std::ffi::OsStr) -> Vec<CompletionCandidate>;

/// Which keys each command's KEYREF completes with: the keys it would act on.
const KEYREF_CANDIDATES: &[(&str, Candidates)] = &[
    ("show", complete::any_key),
    ("logs", complete::any_key),
    ("usage", complete::any_key),
    ("audit", complete::any_key),
    ("delete", complete::any_key),
    ("edit", complete::unrevoked_keys),
    ("revoke", complete::unrevoked_keys),
    ("disable", complete::keys_to_disable),
    ("enable", complete::keys_to_enable),
    ("rotate", complete::keys_to_rotate),
];

/// The one KEYREF argument definition: every command's `keyref`/`keyrefs` argument is
/// shown as KEYREF and completes with that command's candidates.
fn with_keyrefs(cmd: clap::Command) -> clap::Command {
    cmd.mut_subcommands(|sub| {
        let candidates = KEYREF_CANDIDATES
            .iter()
            .find(|(name, _)| *name == sub.get_name())
            .map(|(_, candidates)| *candidates);
        let id = sub
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .find(|id| matches!(*id, "keyref" | "keyrefs"))
            .map(str::to_string);
        match (id, candidates) {
            (Some(id), Some(candidates)) => sub.mut_arg(id, |a| {
                a.value_name("KEYREF")
                    .add(ArgValueCompleter::new(candidates))
            }),
            _ => sub,
        }
    })
}

/// The clap command tree (for parsing, help hints, man pages and completions).
pub fn command() -> clap::Command {
    with_keyrefs(<Cli as clap::CommandFactory>::command())
}

/// Parses arguments; errors come back as clap errors for main to report in one line.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    // A password may come from KEYCTL_DB but never from argv: remember which it was.
    let from_argv = matches.value_source("db") == Some(clap::parser::ValueSource::CommandLine);
    let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)?;
    cli.global.db_from_argv = from_argv;
    Ok(cli)
}

/// The global options and `verify` alone, from the same definitions as [`command`].
fn verify_command() -> clap::Command {
    let verify = <VerifyArgs as Args>::augment_args(clap::Command::new("verify"));
    <GlobalArgs as Args>::augment_args(clap::Command::new("keyctl"))
        .subcommand_required(true)
        .disable_help_subcommand(true)
        .subcommand(verify)
}

/// `keyctl [global options] verify ...` parsed by a command of only the global options
/// and `verify`'s (the same derive definitions as [`command`]'s, so the same flags,
/// values and conflicts): a service runs verify once per request, and building the
/// whole tree cost it more than its lookup. None when these arguments are anything
/// else, `--help`/`--version` or a mistake: [`parse`] then reads them with the whole
/// tree, so every help text and error message is the one tree's.
pub fn parse_verify(args: &[OsString]) -> Option<Cli> {
    // Cheap refusal first: no `verify` word, no verify (the common admin case).
    if !args.iter().skip(1).any(|a| a == "verify") {
        return None;
    }
    // The plain forms without clap at all; the rest through the verify-only command.
    if let Some(cli) = crate::verify_argv::parse(args) {
        return Some(cli);
    }
    let mut matches = verify_command().try_get_matches_from(args).ok()?;
    let from_argv = matches.value_source("db") == Some(clap::parser::ValueSource::CommandLine);
    let mut global =
        <GlobalArgs as clap::FromArgMatches>::from_arg_matches_mut(&mut matches).ok()?;
    global.db_from_argv = from_argv;
    let (name, mut sub) = matches.remove_subcommand()?;
    if name != "verify" {
        return None;
    }
    let args = <VerifyArgs as clap::FromArgMatches>::from_arg_matches_mut(&mut sub).ok()?;
    Some(Cli {
        global,
        command: Command::Verify(args),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_consistent() {
        command().debug_assert();
        verify_command().debug_assert();
    }

    #[test]
    fn every_keyref_has_its_candidates() {
        let root = command();
        for (name, _) in KEYREF_CANDIDATES {
            let sub = root.find_subcommand(name).unwrap();
            let arg = sub
                .get_arguments()
                .find(|a| a.get_id() == "keyref" || a.get_id() == "keyrefs")
                .unwrap_or_else(|| panic!("{name} has no KEYREF"));
            assert_eq!(arg.get_value_names().unwrap()[0], "KEYREF", "{name}");
        }
        let with_keyref = root
            .get_subcommands()
            .filter(|s| {
                s.get_arguments()
                    .any(|a| a.get_id().as_str().starts_with("keyref"))
            })
            .count();
        assert_eq!(with_keyref, KEYREF_CANDIDATES.len());
    }
}
