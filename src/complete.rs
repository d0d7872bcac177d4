//! Shell completion: registration scripts (`keyctl completions SHELL`) and KEYREF
//! candidates read from the store the completed command would use. A candidate lookup
//! never fails loudly: no store, no candidates.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap_complete::env::Shells;
use clap_complete::CompletionCandidate;

use crate::core::model::Status;
use crate::store::{self, KeyQuery, OpenOptions, SortBy};

/// The environment variable the registration scripts set when they call keyctl back
/// (keyctl's own name, so a `COMPLETE` set for another tool cannot trigger it).
pub const COMPLETE_VAR: &str = "KEYCTL_COMPLETE";

/// `--db` from the command line being completed, when it names one.
static COMPLETION_DB: OnceLock<PathBuf> = OnceLock::new();

/// Handles a completion request (`KEYCTL_COMPLETE=bash keyctl -- ...`) and exits; returns
/// when this is a normal run. Called first thing in `main`.
pub fn handle_request(args: &[OsString]) {
    if std::env::var_os(COMPLETE_VAR).is_none_or(|v| v.is_empty() || v == "0") {
        return;
    }
    let mut words = args.iter().skip_while(|a| *a != "--");
    while let Some(w) = words.next() {
        let w = w.to_string_lossy();
        if w == "--db" {
            if let Some(v) = words.next() {
                let _ = COMPLETION_DB.set(PathBuf::from(v));
            }
        } else if let Some(v) = w.strip_prefix("--db=") {
            let _ = COMPLETION_DB.set(PathBuf::from(v));
        }
    }
    clap_complete::CompleteEnv::with_factory(crate::cli::command)
        .var(COMPLETE_VAR)
        .completer("keyctl")
        .complete();
}

/// The registration script for a shell (bash, zsh, fish, powershell, elvish); it calls
/// `keyctl` back for candidates, so KEYREFs complete with the store's key names.
pub fn registration_script(shell: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let shells = Shells::builtins();
    let Some(completer) = shells.completer(shell) else {
        return Err(std::io::Error::other(format!("unknown shell '{shell}'")));
    };
    if shell != "bash" {
        return completer.write_registration(COMPLETE_VAR, "keyctl", "keyctl", "keyctl", out);
    }
    let mut script = Vec::new();
    completer.write_registration(COMPLETE_VAR, "keyctl", "keyctl", "keyctl", &mut script)?;
    out.write_all(patch_bash(&String::from_utf8_lossy(&script)).as_bytes())
}

/// Two fixes to clap's bash script, so key names complete as one word: replies are
/// shell-quoted (a name with spaces), and `:` no longer splits words (a name like
/// `team:ci`; the same COMP_WORDBREAKS change npm's completion makes).
fn patch_bash(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 512);
    out.push_str(
        "# keyctl: key names may contain ':'; keep them one word.\n\
         COMP_WORDBREAKS=${COMP_WORDBREAKS//:}\n",
    );
    for line in script.lines() {
        if line.trim() == "if [[ $? != 0 ]]; then" {
            out.push_str("    local _keyctl_status=$? _keyctl_i\n");
            out.push_str(
                "    for _keyctl_i in \"${!COMPREPLY[@]}\"; do printf -v \"COMPREPLY[_keyctl_i]\" %q \"${COMPREPLY[_keyctl_i]}\"; done\n",
            );
            out.push_str("    if [[ $_keyctl_status != 0 ]]; then\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn store_path() -> Option<PathBuf> {
    if let Some(p) = COMPLETION_DB.get() {
        return Some(p.clone());
    }
    match std::env::var_os("KEYCTL_DB") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => crate::context::default_db_path(),
    }
}

/// Candidates for a KEYREF: the names and ids of the store's keys that are not revoked.
pub fn keyrefs() -> Vec<CompletionCandidate> {
    let Some(path) = store_path() else {
        return Vec::new();
    };
    if !path.is_file() {
        return Vec::new();
    }
    let Ok(mut store) = store::open(&path, &OpenOptions::default()) else {
        return Vec::new();
    };
    let Ok(tx) = store.read() else {
        return Vec::new();
    };
    let now = chrono::Utc::now();
    let query = KeyQuery {
        sort: SortBy::Name,
        ..KeyQuery::default()
    };
    let mut names = Vec::new();
    let mut ids = Vec::new();
    let _ = tx.for_each_key(&query, now, &mut |k| {
        let status = k.status(now);
        if status != Status::Revoked {
            names.push(
                CompletionCandidate::new(k.name.clone())
                    .help(Some(format!("{} {}", k.id, status.as_str()).into())),
            );
            ids.push(
                CompletionCandidate::new(k.id.clone())
                    .help(Some(k.name.clone().into()))
                    .hide(true),
            );
        }
        Ok(())
    });
    names.extend(ids);
    names
}
