//! `keyctl [global options] verify [options]` read without building a clap parser.
//!
//! A service runs one `verify` process per request, and even the verify-only clap
//! command cost it about a tenth of its instructions (docs/benchmarks.md). This reads
//! the plain forms a service writes — `--flag value`, `--flag=value`, the global flags
//! before or after `verify` — through the same value checks clap calls
//! (`core::inputs`), and gives up (None) on anything else: help, a repeated flag, a
//! value that starts with `-`, a flag it does not know, conflicting flags, a bad value,
//! an empty or non-UTF-8 environment value. clap then reads the arguments and gives
//! its one-line error or its help, so nothing a user sees depends on this module; the
//! unit tests hold it to clap's result on every form it accepts.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, VerifyArgs};
use crate::core::inputs;
use crate::global::{Format, GlobalArgs};

/// `verify`'s flags that take a value, as `--stream` refuses them (cli.rs).
const STREAM_CONFLICTS: [&str; 7] = [
    "--key-env",
    "--ip",
    "--scope",
    "--deployment",
    "--model",
    "--endpoint",
    "--duration-ms",
];

/// The parsed command, or None when clap must read these arguments.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let mut global = GlobalArgs::default();
    let mut verify = VerifyArgs {
        key_env: None,
        ip: None,
        scope: None,
        deployment: None,
        model: None,
        endpoint: None,
        cost: 1,
        duration_ms: None,
        no_record: false,
        stream: false,
        // `--explain` is left to clap (a flag this module does not know).
        explain: false,
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut in_verify = false;
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let arg = arg.to_str()?;
        if !in_verify && arg == "verify" {
            in_verify = true;
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        // `-q` and `--quiet` are one flag: given both, clap refuses the repeat.
        let flag = if flag == "-q" { "--quiet" } else { flag };
        if !flag.starts_with('-') || flag == "--" || seen.contains(&flag) {
            return None;
        }
        seen.push(flag);
        if let Some(switch) = switch(&mut global, &mut verify, flag, in_verify) {
            if inline.is_some() {
                return None;
            }
            *switch = true;
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => rest.next()?.to_str()?,
        };
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        match (flag, in_verify) {
            ("--db", _) => {
                global.db = Some(PathBuf::from(value));
                global.db_from_argv = true;
            }
            ("--actor", _) => global.actor = Some(value.to_string()),
            ("--format", _) => {
                global.format = Some(match value {
                    "table" => Format::Table,
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    _ => return None,
                })
            }
            ("--key-env", true) => verify.key_env = Some(value.to_string()),
            ("--ip", true) => verify.ip = Some(inputs::ip(flag, value).ok()?),
            ("--scope", true) => verify.scope = Some(inputs::request_text(flag, value).ok()?),
            ("--deployment", true) => {
                verify.deployment = Some(inputs::request_text(flag, value).ok()?)
            }
            ("--model", true) => verify.model = Some(inputs::request_text(flag, value).ok()?),
            ("--endpoint", true) => verify.endpoint = Some(inputs::request_text(flag, value).ok()?),
            ("--cost", true) => verify.cost = inputs::amount(flag, value).ok()?,
            ("--duration-ms", true) => verify.duration_ms = Some(inputs::amount(flag, value).ok()?),
            _ => return None,
        }
    }
    if !in_verify || (verify.stream && STREAM_CONFLICTS.iter().any(|f| seen.contains(f))) {
        return None;
    }
    // What clap takes from the environment when the command line does not say.
    if global.db.is_none() {
        global.db = from_env("KEYCTL_DB")?.map(PathBuf::from);
    }
    if global.actor.is_none() {
        global.actor = from_env("KEYCTL_ACTOR")?;
    }
    Some(Cli {
        global,
        command: Command::Verify(verify),
    })
}

/// The variable's value: Some(None) when unset, None (clap must read the arguments)
/// when it is empty or not UTF-8, which clap has rules of its own for.
fn from_env(name: &str) -> Option<Option<String>> {
    match std::env::var_os(name) {
        None => Some(None),
        Some(value) => value.into_string().ok().filter(|v| !v.is_empty()).map(Some),
    }
}

/// The flag's switch (a flag without a value), if it is one here.
fn switch<'a>(
    global: &'a mut GlobalArgs,
    verify: &'a mut VerifyArgs,
    flag: &str,
    in_verify: bool,
) -> Option<&'a mut bool> {
    match (flag, in_verify) {
        ("--json", _) => Some(&mut global.json),
        ("--no-color", _) => Some(&mut global.no_color),
        ("--quiet", _) => Some(&mut global.quiet),
        ("--no-record", true) => Some(&mut verify.no_record),
        ("--stream", true) => Some(&mut verify.stream),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &[&str]) -> Vec<OsString> {
        std::iter::once("keyctl")
            .chain(line.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What clap's verify-only command makes of the same arguments.
    fn by_clap(args: &[OsString]) -> Option<String> {
        crate::cli::parse(args.iter().cloned())
            .ok()
            .map(|cli| format!("{cli:?}"))
    }

    // One test, so the environment it sets is not seen by another test thread.
    #[test]
    fn every_form_it_accepts_is_read_as_clap_reads_it_and_the_rest_goes_to_clap() {
        let accepted: &[&[&str]] = &[
            &["verify"],
            &["verify", "--no-record"],
            &["verify", "--json", "--no-record"],
            &["--json", "verify"],
            &["--db", "/tmp/k.db", "verify", "--ip", "10.0.0.1"],
            &[
                "verify",
                "--db=/tmp/k.db",
                "--ip=2001:db8::1",
                "--scope",
                "read",
            ],
            &["-q", "verify", "--cost", "5", "--duration-ms", "12"],
            &[
                "verify",
                "--key-env",
                "KEY",
                "--deployment",
                "prod",
                "--model",
                "m",
            ],
            &["verify", "--endpoint", "POST /v1/chat", "--format", "csv"],
            &[
                "--format=table",
                "verify",
                "--no-color",
                "--quiet",
                "--actor",
                "ci",
            ],
            &["verify", "--stream"],
            &["verify", "--stream", "--cost", "3", "--no-record", "--json"],
            &["verify", "--scope", " padded "],
            &["--db", "verify", "verify"],
        ];
        let refused: &[&[&str]] = &[
            &[],
            &["list"],
            &["verify", "--help"],
            &["verify", "-h"],
            &["--version"],
            &["verify", "sk_live_secret"],
            &["verify", "--ip"],
            &["verify", "--ip", "not-an-ip"],
            &["verify", "--ip", "-1"],
            &["verify", "--cost", "-1"],
            &["verify", "--cost", "x"],
            &["verify", "--json", "--json"],
            &["verify", "--json=true"],
            &["verify", "--stream", "--ip", "10.0.0.1"],
            &["verify", "--stream", "--key-env", "K"],
            &["verify", "--format", "yaml"],
            &["verify", "--scope", ""],
            &["verify", "--", "--ip"],
            &["verify", "--explain"],
            &["verify", "--explainx"],
            &["--ip", "10.0.0.1", "verify"],
            &["verify", "verify"],
            &["-q", "verify", "--quiet"],
        ];
        for env in [None, Some(("/tmp/from-env.db", "robot")), Some(("", ""))] {
            // SAFETY: the only test here that touches these variables.
            unsafe {
                match env {
                    Some((db, actor)) => {
                        std::env::set_var("KEYCTL_DB", db);
                        std::env::set_var("KEYCTL_ACTOR", actor);
                    }
                    None => {
                        std::env::remove_var("KEYCTL_DB");
                        std::env::remove_var("KEYCTL_ACTOR");
                    }
                }
            }
            let empty_env = env.is_some_and(|(db, _)| db.is_empty());
            for line in accepted {
                let args = argv(line);
                let ours = parse(&args).map(|cli| format!("{cli:?}"));
                if empty_env {
                    assert_eq!(ours, None, "{line:?} with empty environment values");
                    continue;
                }
                assert!(ours.is_some(), "{line:?} was not read");
                assert_eq!(ours, by_clap(&args), "{line:?} with {env:?}");
            }
            for line in refused {
                assert_eq!(parse(&argv(line)).map(|_| ()), None, "{line:?}");
            }
        }
        unsafe {
            std::env::remove_var("KEYCTL_DB");
            std::env::remove_var("KEYCTL_ACTOR");
        }
    }
}
