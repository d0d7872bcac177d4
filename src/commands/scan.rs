//! `keyctl scan [PATH...]`: find this store's secrets in files (`scan_files`), look
//! their hashes up in one read transaction, and say whose keys they are; exit 9 when
//! an active key is exposed. `--revoke` revokes those (the `revoke` path, one
//! transaction, audited with where each was found). `--rules SCANNER` prints a rule
//! for another scanner instead (`core::scan_rules`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use super::lifecycle::{describe_keys, revoke_with_reasons};
use super::scan_files::{scan_paths, scan_stdin, Hit, Walked};
use crate::cli::{RulesFor, ScanArgs};
use crate::context::Ctx;
use crate::core::exit;
use crate::core::key::validate_prefix;
use crate::core::model::{KeyRecord, Status};
use crate::core::scan::Finder;
use crate::core::scan_rules::{rule, Scanner};
use crate::core::text::{for_terminal, MAX_TEXT};
use crate::error::{Error, Kind, Result};
use crate::store::{Intent, Txn};
use crate::ui::output::{answer_written, plural, stdout};
use crate::ui::records::RecordWriter;
use crate::ui::scan::{Finding, FindingRows};

/// The PATH that means stdin.
const STDIN: &str = "-";

pub fn run(ctx: &Ctx, args: ScanArgs) -> Result<()> {
    if let Some(scanner) = args.rules {
        return rules(ctx, scanner);
    }
    // Refused before any work: nothing is read or changed (SPEC §2).
    if args.revoke && !args.yes && !ctx.interactive() {
        return Err(Error::usage(
            "scan --revoke needs confirmation: pass --yes (there is no terminal to ask on)",
        ));
    }
    let (roots, stdin, default_root) = roots(&args.paths)?;
    let prefixes = {
        let mut store = ctx.open_read()?;
        let tx = store.begin(Intent::Read)?;
        store_prefixes(tx.as_ref())?
    };
    let finder = Finder::new(&prefixes).map_err(Error::runtime)?;
    // No transaction is held while files are read: a walk may take minutes.
    let mut walked = if stdin {
        scan_stdin(&finder)
    } else {
        Walked::default()
    };
    let files = scan_paths(&finder, &roots, args.all, default_root);
    walked.hits.extend(files.hits);
    walked.files += files.files;
    walked.binary += files.binary;
    walked.unreadable.extend(files.unreadable);
    walked
        .hits
        .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));

    let keys = look_up(ctx, &walked.hits)?;
    let findings: Vec<Finding> = walked
        .hits
        .iter()
        .map(|h| finding(ctx, h, keys.get(&h.hash)))
        .collect();
    for problem in &walked.unreadable {
        ctx.warn(&format!("could not read {problem}"));
    }
    // The exit status is the answer: a reader that closed stdout does not change it.
    answer_written(print(ctx, &findings))?;
    summarize(ctx, &walked, &findings);

    let exposed = active_keys(ctx, &walked.hits, &keys);
    if args.revoke && !exposed.is_empty() {
        revoke(ctx, args.yes, &exposed)?;
    }
    if !exposed.is_empty() {
        return Err(Error::new(Kind::Exit(exit::LIVE_KEY_FOUND.code), ""));
    }
    if !walked.unreadable.is_empty() {
        let what = match walked.unreadable.len() {
            1 => "1 file or folder".to_string(),
            n => format!("{n} files or folders"),
        };
        return Err(Error::runtime(format!(
            "scan incomplete: {what} could not be read"
        )));
    }
    Ok(())
}

/// The roots to walk, whether stdin is scanned too, and whether the root is the
/// default `.`. A PATH that does not exist is a usage error (exit 2): a typo must not
/// pass as a clean scan.
fn roots(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, bool, bool)> {
    let stdin = paths.iter().filter(|p| p.as_os_str() == STDIN).count();
    if stdin > 1 {
        return Err(Error::usage(
            "'-' (stdin) may be given once: it can be read only once",
        ));
    }
    let files: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.as_os_str() != STDIN)
        .cloned()
        .collect();
    for p in &files {
        if let Err(e) = std::fs::metadata(p) {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or folder".to_string(),
                _ => e.to_string(),
            };
            return Err(Error::usage(format!(
                "cannot scan '{}': {why}",
                p.display()
            )));
        }
    }
    if paths.is_empty() {
        return Ok((vec![PathBuf::from(".")], false, true));
    }
    Ok((files, stdin == 1, false))
}

/// The prefixes whose secrets are this store's: the `key-prefix` setting and those
/// the stored keys were made with (the setting may have changed since).
fn store_prefixes(tx: &dyn Txn) -> Result<Vec<String>> {
    let mut prefixes = tx.key_prefixes()?;
    prefixes.push(tx.settings()?.key_prefix);
    prefixes.retain(|p| validate_prefix(p).is_ok());
    prefixes.sort();
    prefixes.dedup();
    Ok(prefixes)
}

/// Every key found, by secret hash, from one read transaction.
fn look_up(ctx: &Ctx, hits: &[Hit]) -> Result<HashMap<[u8; 32], KeyRecord>> {
    if hits.is_empty() {
        return Ok(HashMap::new());
    }
    let mut hashes: Vec<[u8; 32]> = hits.iter().map(|h| h.hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    Ok(tx.keys_by_hashes(&hashes)?.into_iter().collect())
}

fn finding(ctx: &Ctx, hit: &Hit, key: Option<&KeyRecord>) -> Finding {
    Finding {
        path: hit.path.clone(),
        line: hit.line,
        column: hit.column,
        key_prefix: hit.display.clone(),
        status: key.map_or("unknown", |k| k.status(ctx.now()).as_str()),
        key_id: key.map(|k| k.id.clone()),
        name: key.map(|k| k.settings.name.clone()),
    }
}

fn print(ctx: &Ctx, findings: &[Finding]) -> std::io::Result<()> {
    let mut out = stdout();
    let mut writer = RecordWriter::new(&mut out, FindingRows, ctx.format, ctx.color)?;
    for f in findings {
        writer.add(f)?;
    }
    writer.finish()?;
    out.flush()
}

/// One line on stderr: what was searched and found.
fn summarize(ctx: &Ctx, walked: &Walked, findings: &[Finding]) {
    let searched = match walked.binary {
        0 => format!("{} searched", plural(walked.files, "file")),
        n => format!(
            "{} searched, {} skipped",
            plural(walked.files, "file"),
            plural(n, "binary file")
        ),
    };
    if findings.is_empty() {
        ctx.note(&format!("no secrets of this store found ({searched})"));
        return;
    }
    let mut by_status: Vec<(&str, u64)> = Vec::new();
    for f in findings {
        match by_status.iter_mut().find(|(s, _)| *s == f.status) {
            Some((_, n)) => *n += 1,
            None => by_status.push((f.status, 1)),
        }
    }
    let counts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let mut files: Vec<&str> = findings.iter().map(|f| f.path.as_str()).collect();
    files.dedup();
    ctx.note(&format!(
        "{} in {} ({searched}): {}",
        plural(findings.len() as u64, "secret"),
        plural(files.len() as u64, "file"),
        counts.join(", ")
    ));
}

/// The active keys found, each once (in the order first found), with where.
fn active_keys<'a>(
    ctx: &Ctx,
    hits: &'a [Hit],
    keys: &'a HashMap<[u8; 32], KeyRecord>,
) -> Vec<(&'a KeyRecord, Vec<&'a Hit>)> {
    let mut exposed: Vec<(&KeyRecord, Vec<&Hit>)> = Vec::new();
    for hit in hits {
        let Some(key) = keys.get(&hit.hash) else {
            continue;
        };
        if key.status(ctx.now()) != Status::Active {
            continue;
        }
        match exposed.iter_mut().find(|(k, _)| k.id == key.id) {
            Some((_, at)) => at.push(hit),
            None => exposed.push((key, vec![hit])),
        }
    }
    exposed
}

/// The audited reason: where the key was found (shown safely: a path is not checked
/// text, so hidden characters are escaped and anything secret-shaped cut).
fn reason(at: &[&Hit]) -> String {
    let first = at
        .first()
        .map(|h| format!("{}:{}", h.path, h.line))
        .unwrap_or_default();
    let more = match at.len() {
        0 | 1 => String::new(),
        2 => " (and 1 more place)".to_string(),
        n => format!(" (and {} more places)", n - 1),
    };
    let text = for_terminal(&format!("found by keyctl scan at {first}{more}"));
    text.chars().take(MAX_TEXT).collect()
}

/// Revokes the exposed keys after asking at a terminal (or with `--yes`).
fn revoke(ctx: &Ctx, yes: bool, exposed: &[(&KeyRecord, Vec<&Hit>)]) -> Result<()> {
    if !yes {
        let keys: Vec<KeyRecord> = exposed.iter().map(|(k, _)| (*k).clone()).collect();
        let question = format!(
            "Revoke {}? This cannot be undone.",
            describe_keys(&keys, ctx)
        );
        if !crate::ui::prompt::confirm(&question)? {
            ctx.note("nothing revoked");
            return Ok(());
        }
    }
    let reasons: Vec<(String, String)> = exposed
        .iter()
        .map(|(k, at)| (k.id.clone(), reason(at)))
        .collect();
    revoke_with_reasons(ctx, &reasons)
}

/// `--rules`: the rule for this store's prefixes, on stdout.
fn rules(ctx: &Ctx, which: RulesFor) -> Result<()> {
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let prefixes = store_prefixes(tx.as_ref())?;
    drop(tx);
    let scanner = match which {
        RulesFor::Gitleaks => Scanner::Gitleaks,
        RulesFor::Trufflehog => Scanner::Trufflehog,
        RulesFor::Github => Scanner::Github,
        RulesFor::DetectSecrets => Scanner::DetectSecrets,
    };
    let mut out = stdout();
    out.write_all(rule(scanner, &prefixes).as_bytes())?;
    out.flush()?;
    Ok(())
}
