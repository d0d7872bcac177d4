//! Generated files never drift: the man pages under man/ and the completion scripts
//! under completions/ must equal what the current clap definitions produce.
//!
//! Regenerate them with: `KEYCTL_BLESS=1 cargo test --test generated`

#[path = "man/mod.rs"]
mod man;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keyctl::core::exit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
    check(&root().join("man"), man::man_pages());
}

#[test]
fn completion_scripts_are_current() {
    check(&root().join("completions"), completion_scripts());
}

/// A page as the text a reader sees, roughly: macro lines dropped, lines joined,
/// common escapes undone, so phrases can be searched across line breaks.
fn readable(roff: &str) -> String {
    let text: Vec<&str> = roff.lines().filter(|l| !l.starts_with('.')).collect();
    text.join(" ")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\-", "-")
        .replace("\\(dq", "\"")
        .replace("\\(aq", "'")
        .replace("\\&", "")
        .replace("\\%", "")
        .replace("\\e", "\\")
}

/// Asserts that page `name` says each of `needles` (in its readable text); returns that text.
fn assert_mentions(name: &str, needles: &[&str]) -> String {
    let text = readable(&page(name));
    for needle in needles {
        assert!(text.contains(needle), "{name} lacks {needle:?}");
    }
    text
}

fn page(name: &str) -> String {
    let (_, bytes) = man::man_pages()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no page {name}"));
    String::from_utf8(bytes).expect("pages are UTF-8")
}

/// The section titles of a page, in order.
fn headings(roff: &str) -> Vec<String> {
    roff.lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .map(|h| h.trim_matches('"').to_string())
        .collect()
}

#[test]
fn every_subcommand_has_a_man_page() {
    let names: Vec<String> = man::man_pages().into_iter().map(|(n, _)| n).collect();
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
    assert!(names.contains(&"keyctl.7".to_string()));
}

#[test]
fn the_main_page_documents_exit_codes_and_environment() {
    let text = page("keyctl.1");
    for needle in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "KEYCTL_DB",
        "KEYCTL_ACTOR",
        "KEYCTL_CLIP_TIME",
        "NO_COLOR",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    // Every code of the one table, each an entry of its own.
    for e in exit::all() {
        assert!(
            text.contains(&format!(".TP\n\\fB{}\\fR\n", e.code)),
            "keyctl.1 lacks exit status {}",
            e.code
        );
    }
}

#[test]
fn every_page_has_the_sections_a_reader_expects_once_each() {
    let pages = man::man_pages();
    let names: Vec<&String> = pages.iter().map(|(n, _)| n).collect();
    for (name, bytes) in &pages {
        let text = String::from_utf8_lossy(bytes);
        let have = headings(&text);
        let want: &[&str] = if name.ends_with(".7") {
            &[
                "NAME",
                "DESCRIPTION",
                "KEYS",
                "KEY REFERENCES",
                "TIMES",
                "TEXT AND NUMBERS",
                "EXAMPLES",
                "ENVIRONMENT",
                "FILES",
                "SEE ALSO",
            ]
        } else {
            &[
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "EXAMPLES",
                "EXIT STATUS",
                "ENVIRONMENT",
                "FILES",
                "SEE ALSO",
            ]
        };
        let mut at = 0;
        for w in want {
            match have[at..].iter().position(|h| h == w) {
                Some(i) => at += i + 1,
                None => panic!("{name}: no {w} section in order; sections: {have:?}"),
            }
        }
        for (i, h) in have.iter().enumerate() {
            assert!(!have[..i].contains(h), "{name}: {h} twice");
        }
        assert!(
            !text.contains("README"),
            "{name} sends the reader to README.md"
        );
        // SEE ALSO names every other page.
        let see_also = &text[text.find(".SH \"SEE ALSO\"").unwrap()..];
        for other in names.iter().filter(|n| **n != name) {
            let (stem, section) = other.rsplit_once('.').unwrap();
            let reference = format!("\\fB{}\\fR({section})", stem.replace('-', "\\-"));
            assert!(
                see_also.contains(&reference),
                "{name}: SEE ALSO lacks {other}"
            );
        }
        // A date mandoc can parse, from a constant (not the build clock).
        let th = text.lines().find(|l| l.starts_with(".TH ")).unwrap();
        assert!(th.contains(&format!(" {} ", man::pages::DATE)), "{th}");
        chrono::NaiveDate::parse_from_str(man::pages::DATE, "%Y-%m-%d").unwrap();
    }
}

/// Each command page lists every option of its command, its own apart from the global
/// ones.
#[test]
fn every_option_is_on_its_page_under_the_right_heading() {
    for node in man::nodes() {
        let text = page(&node.file_name());
        let global_at = text.find(".SH \"GLOBAL OPTIONS\"");
        let own_at = text.find(".SH OPTIONS");
        for arg in node.cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let Some(long) = arg.get_long() else { continue };
            let term = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
            let at = text
                .find(&format!(".TP\n{term}"))
                .or_else(|| {
                    text.find(&format!(
                        ".TP\n\\fB\\-{}\\fR, {term}",
                        arg.get_short().unwrap_or('?')
                    ))
                })
                .unwrap_or_else(|| panic!("{}: no entry for --{long}", node.file_name()));
            let global = arg.is_global_set() || matches!(long, "help" | "version");
            let heading = if global && !node.words.is_empty() {
                global_at
            } else {
                own_at
            };
            let heading =
                heading.unwrap_or_else(|| panic!("{}: no heading for --{long}", node.file_name()));
            assert!(
                at > heading,
                "{}: --{long} under the wrong heading",
                node.file_name()
            );
            if !global || node.words.is_empty() {
                assert!(
                    global_at.is_none_or(|g| at < g),
                    "{}: --{long} among the global options",
                    node.file_name()
                );
            }
        }
    }
}

#[test]
fn the_verify_page_documents_stream_mode() {
    assert!(headings(&page("keyctl-verify.1")).contains(&"STREAM MODE".to_string()));
    let text = assert_mentions(
        "keyctl-verify.1",
        &[
            "\"key\"",
            "ip",
            "duration_ms",
            "a whole number from 0 to 2^53-1",
            "Only key is required",
            "ignored",
            "exactly one result line, in the order of the requests, written and flushed",
            "bad_request",
            "a blank line (answered too",
            "64 KiB",
            "Each request is its own transaction",
            "0 when standard input ends, or when the reader closes standard output",
            "1 when the store cannot be opened at the start",
            "never ends the stream",
            "2 for a bad option",
            "cannot be combined with --stream",
        ],
    );
    // Every answer of the policy, with its exit status in RESULTS and EXIT STATUS.
    let roff = page("keyctl-verify.1");
    for e in [exit::SUCCESS, exit::USAGE]
        .iter()
        .chain(exit::VERIFY_ANSWERS)
    {
        assert!(
            text.contains(&format!("exit {})", e.code)),
            "no result exits {}",
            e.code
        );
        assert!(
            roff.contains(&format!(".TP\n\\fB{}\\fR\n", e.code)),
            "no exit status {}",
            e.code
        );
    }
    assert!(text.contains("valid (200, exit 0)") && text.contains("bad_request (400, exit 2)"));
}

#[test]
fn the_concepts_page_covers_keys_references_times_and_text() {
    assert_mentions(
        "keyctl.7",
        &[
            "CRC32",
            "sk_live_4eC3...",
            "key_ and 12 characters of a-z and 2-7",
            "ambiguous",
            "exits 4",
            "matches nothing exits 3",
            "90m, 12h, 30d, 2w",
            "2027-01-31T12:00:00Z",
            "never",
            "relative phrases",
            "U+202E",
            "2^53-1",
            "leading '",
            "PostgreSQL",
        ],
    );
}

#[test]
fn the_page_texts_are_complete() {
    let problems = man::check_texts();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Writes the generated pages to a temporary folder (so the checks below see what
/// the generator makes, blessed or not).
fn written_pages() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = man::man_pages()
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    (dir, paths)
}

/// `mandoc -T lint` finds nothing worse than a style note on any page (mandoc comes
/// from scripts/test.sh).
#[test]
fn mandoc_lint_finds_no_warnings() {
    let have = Command::new("mandoc").arg("-V").output().is_ok();
    assert!(
        have,
        "mandoc is missing: run scripts/test.sh, which installs it"
    );
    let (_dir, paths) = written_pages();
    for path in paths {
        let out = Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(&path)
            .output()
            .expect("run mandoc");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.is_empty(),
            "mandoc -T lint {}:\n{said}",
            path.display()
        );
    }
}

/// `man -l` renders every page without warnings (man-db and groff come from
/// scripts/test.sh).
#[test]
fn man_renders_every_page_without_warnings() {
    let have_man = Command::new("man").arg("--version").output().is_ok();
    assert!(
        have_man,
        "the man command is missing: run scripts/test.sh, which installs man-db"
    );
    for (name, _) in man::man_pages() {
        let path = root().join("man").join(&name);
        let out = Command::new("man")
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

/// Runs one page's examples in order against a fresh store, each in a subshell with
/// `set -e -o pipefail`; returns the problems.
fn run_examples(name: &str, text: &man::pages::PageText) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_keyctl"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut script = format!("set -e -o pipefail\n{}\nset +e\n", text.setup);
    for (i, ex) in text.examples.iter().enumerate() {
        script.push_str(&format!(
            "( set -e -o pipefail\n{}\n) >out.{i} 2>&1 </dev/null\necho $? >status.{i}\n",
            ex.run
        ));
    }
    let out = Command::new("timeout")
        .args(["120", "bash", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("LANG", "C.UTF-8")
        .env("KEYCTL_DB", dir.path().join("keys.db"))
        .env("KEYCTL_ACTOR", "alice")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    if !out.status.success() {
        return vec![format!(
            "{name}: the setup or the script failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let mut problems = Vec::new();
    for (i, ex) in text.examples.iter().enumerate() {
        let read = |f: &str| {
            std::fs::read_to_string(dir.path().join(format!("{f}.{i}"))).unwrap_or_default()
        };
        let status = read("status");
        if status.trim() != ex.exit.to_string() {
            problems.push(format!(
                "{name}, example {}: exit status {}, the page says {}\n$ {}\n{}",
                i + 1,
                status.trim(),
                ex.exit,
                ex.run,
                read("out")
            ));
        }
    }
    problems
}

#[test]
fn every_man_page_example_runs() {
    let mut problems = Vec::new();
    for text in man::pages::PAGES {
        let name = man::text_name(text);
        problems.extend(run_examples(&name, text));
    }
    problems.extend(run_examples("keyctl.7", &man::pages::CONCEPTS));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The top-level help renders the same exit-code table and names every environment
/// variable the man pages list.
#[test]
fn the_top_level_help_shows_the_exit_table_and_every_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyctl"))
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .expect("run keyctl --help");
    assert!(out.status.success());
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = words(&String::from_utf8_lossy(&out.stdout));
    assert!(help.contains(&words(&exit::help_text())), "{help}");
    for e in exit::VERIFY_ANSWERS {
        assert!(help.contains(&format!("{} {}", e.code, e.name)), "{help}");
    }
    for var in keyctl::cli::ENVIRONMENT {
        assert!(help.contains(var.name), "--help lacks {}", var.name);
    }
}

/// The README's exit-code table is for people reading the repository; it must name
/// every code of the one table (`core::exit`) and no other.
#[test]
fn the_readme_exit_table_names_every_code() {
    use keyctl::core::exit;
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Exit codes section");
    let verify_row = section
        .lines()
        .find(|l| l.starts_with("| 10"))
        .expect("README has a row for verify's answers");
    for e in exit::all() {
        let named = if exit::VERIFY_ANSWERS.iter().any(|v| v.code == e.code) && e.code != 0 {
            verify_row.contains(&format!("{} {}", e.code, e.name))
        } else {
            section.contains(&format!("| {} |", e.code))
        };
        assert!(named, "README's exit table lacks {} ({})", e.code, e.name);
    }
    for line in section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| code"))
    {
        let first = line[2..].split(' ').next().unwrap_or("");
        if let Ok(code) = first.parse::<i32>() {
            assert!(
                exit::all().any(|e| e.code == code),
                "README lists exit code {code}, which keyctl does not use"
            );
        }
    }
}
