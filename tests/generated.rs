//! Generated files never drift: the man pages under man/ and the completion scripts
//! under completions/ must equal what the current clap definitions produce.
//!
//! Regenerate them with: `KEYCTL_BLESS=1 cargo test --test generated`

use std::path::{Path, PathBuf};

use clap_mangen::Man;
use roff::{bold, roman, Roff};

const EXIT_CODES: &[(&str, &str)] = &[
    ("0", "success (also when a reader closes stdout early)"),
    ("1", "runtime failure: store missing, unreadable, foreign, corrupt, newer or read-only; I/O"),
    ("2", "usage: bad flag or value, malformed time, IP or number, --yes needed"),
    ("3", "not found: a KEYREF or setting that matches nothing"),
    ("4", "conflict: ambiguous KEYREF, name taken, key limit reached, refused transition"),
    ("8", "audit verify: the chain is broken or the expected head is not in it"),
    ("10-21", "verify outcomes: 10 invalid, 11 inactive, 12 expired, 13 revoked, 14 quota exceeded, 15 credits exhausted, 16 IP not allowed, 17 IP blocked, 18 deployment, 19 scope, 20 model, 21 rate limited"),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    ("KEYCTL_DB", "path of the key store (like --db)"),
    (
        "KEYCTL_ACTOR",
        "who performs admin actions (like --actor); default: the OS user name",
    ),
    (
        "KEYCTL_CLIP_TIME",
        "seconds before a copied secret is cleared from the clipboard (default 45)",
    ),
    (
        "NO_COLOR",
        "when set and not empty, disables colour (like --no-color)",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn definition_list(roff: &mut Roff, title: &str, items: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

/// One page per command and subcommand: `keyctl.1`, `keyctl-create.1`, ...
fn man_pages() -> Vec<(String, Vec<u8>)> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out);
        }
        let man = Man::new(cmd.clone())
            .source(format!("keyctl {}", env!("CARGO_PKG_VERSION")))
            .manual("keyctl manual");
        let mut page = Vec::new();
        man.render(&mut page).expect("render man page");
        let mut extra = Roff::new();
        definition_list(&mut extra, "EXIT STATUS", EXIT_CODES);
        definition_list(&mut extra, "ENVIRONMENT", ENVIRONMENT);
        extra.control("SH", ["SEE ALSO"]);
        extra.text([roman(
            "keyctl(1) is also the name of the keyutils kernel key tool; this page documents the API key manager. See README.md.",
        )]);
        page.extend_from_slice(extra.to_roff().as_bytes());
        out.push((man.get_filename(), page));
    }
    let mut cmd = keyctl::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, &mut out);
    out.sort();
    out
}

fn completion_scripts() -> Vec<(String, Vec<u8>)> {
    [
        ("bash", "keyctl.bash"),
        ("zsh", "_keyctl"),
        ("fish", "keyctl.fish"),
        ("powershell", "_keyctl.ps1"),
        ("elvish", "keyctl.elv"),
    ]
    .into_iter()
    .map(|(shell, file)| {
        let mut buf = Vec::new();
        keyctl::complete::registration_script(shell, &mut buf).expect("registration script");
        (file.to_string(), buf)
    })
    .collect()
}

/// Compares `files` with the checked-in copies in `dir` (or rewrites them when
/// KEYCTL_BLESS is set); extra files in `dir` are stale too.
fn check(dir: &Path, files: Vec<(String, Vec<u8>)>) {
    let bless = std::env::var_os("KEYCTL_BLESS").is_some();
    if bless {
        std::fs::create_dir_all(dir).unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }
    let mut problems = Vec::new();
    for (name, want) in &files {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, want).unwrap();
            continue;
        }
        match std::fs::read(&path) {
            Ok(have) if &have == want => {}
            Ok(have) => {
                let have = String::from_utf8_lossy(&have);
                let want = String::from_utf8_lossy(want);
                let line = have
                    .lines()
                    .zip(want.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
                problems.push(format!(
                    "{} is stale: first difference at line {}:\n  checked in: {:?}\n  generated:  {:?}",
                    path.display(),
                    line + 1,
                    have.lines().nth(line).unwrap_or("<end of file>"),
                    want.lines().nth(line).unwrap_or("<end of file>")
                ));
            }
            Err(_) => problems.push(format!("{} is missing", path.display())),
        }
    }
    if !bless {
        for entry in std::fs::read_dir(dir).into_iter().flatten() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !files.iter().any(|(n, _)| *n == name) {
                problems.push(format!(
                    "{}/{name} is not generated any more",
                    dir.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nregenerate with: KEYCTL_BLESS=1 cargo test --test generated",
        problems.join("\n")
    );
}

#[test]
fn man_pages_are_current() {
    check(&root().join("man"), man_pages());
}

#[test]
fn completion_scripts_are_current() {
    check(&root().join("completions"), completion_scripts());
}

#[test]
fn every_subcommand_has_a_man_page() {
    let names: Vec<String> = man_pages().into_iter().map(|(n, _)| n).collect();
    for sub in [
        "create",
        "list",
        "show",
        "edit",
        "rotate",
        "verify",
        "logs",
        "audit",
        "config",
        "completions",
    ] {
        assert!(names.contains(&format!("keyctl-{sub}.1")), "{names:?}");
    }
    assert!(names.contains(&"keyctl.1".to_string()));
}

#[test]
fn the_main_page_documents_exit_codes_and_environment() {
    let pages = man_pages();
    let main = &pages.iter().find(|(n, _)| n == "keyctl.1").unwrap().1;
    let text = String::from_utf8_lossy(main);
    for needle in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "KEYCTL_DB",
        "KEYCTL_ACTOR",
        "NO_COLOR",
        "10\\-21",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
}

/// `man -l` renders every page without warnings (man-db and groff come from
/// scripts/test.sh).
#[test]
fn man_renders_every_page_without_warnings() {
    let have_man = std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        have_man,
        "the man command is missing: run scripts/test.sh, which installs man-db"
    );
    for (name, _) in man_pages() {
        let path = root().join("man").join(&name);
        let out = std::process::Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("run man");
        assert!(
            out.status.success(),
            "man -l {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "man -l {name} warned:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "man -l {name} printed nothing");
    }
}
