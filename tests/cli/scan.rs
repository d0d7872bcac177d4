//! `keyctl scan`: a generated tree with keys in every status, a foreign secret (right
//! format and checksum, not this store's), a near miss (one character of the random
//! part changed: the checksum fails) and strings that break the format; ignored,
//! hidden and binary files; stdin. The outputs, exit codes 0/9, `--revoke` and its
//! confirmation, bad paths. Then `--rules`: each scanner's file parsed, its regex
//! compiled with the `regex` crate (RE2 syntax) and run over the same tree, and the
//! detect-secrets plugin run by the real detect-secrets.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// The tree and what was planted in it.
struct Tree {
    env: TestEnv,
    active: Created,
    disabled: Created,
    expired: Created,
    revoked: Created,
    foreign: String,
    /// `active` with one character of its random part changed: the checksum fails, so
    /// `scan` does not report it; a regex, which cannot check the checksum, matches it.
    near_miss: String,
    /// Strings that break the format (mode, length, alphabet, prefix, a glued word
    /// character): no rule matches them and `scan` reports none.
    broken: Vec<String>,
}

impl Tree {
    fn dir(&self) -> PathBuf {
        self.env.root().join("tree")
    }

    /// Every keyctl-format string in the tree's text files: what every rule matches.
    fn format_strings(&self) -> BTreeSet<String> {
        [
            &self.active.secret,
            &self.disabled.secret,
            &self.expired.secret,
            &self.revoked.secret,
            &self.foreign,
            &self.near_miss,
        ]
        .into_iter()
        .cloned()
        .collect()
    }

    /// Asserts a run's exit status, and that no planted secret shows in its output.
    fn answered(&self, out: &Outcome, code: i32) {
        assert_eq!(out.code, Some(code), "{out}");
        self.no_secret_in(out);
    }

    /// Asserts that no planted secret shows in what a run printed.
    fn no_secret_in(&self, out: &Outcome) {
        for s in self.format_strings() {
            assert!(!out.stdout.contains(&s), "a secret on stdout\n{out}");
            assert!(!out.stderr.contains(&s), "a secret on stderr\n{out}");
        }
    }
}

/// One character of the random part changed (the checksum then fails).
fn one_changed(secret: &str, at: usize) -> String {
    let mut b = secret.as_bytes().to_vec();
    b[at] = if b[at] == b'Q' { b'R' } else { b'Q' };
    String::from_utf8(b).unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn tree() -> Tree {
    let env = TestEnv::initialized();
    let active = env.create("leaky", &[]);
    let disabled = env.create("paused", &["--test"]);
    env.disable("paused");
    let expired = env.create_at(&now_plus(-10 * DAY), "stale", &["--expires", "1d"]);
    let revoked = env.create("gone", &[]);
    env.revoke("gone");
    let foreign = forge_secret("sk", "live", "F0re1gnF0re1gnF0re1gnF0re1gnF0re");
    let a = &active.secret;
    let near_miss = one_changed(a, 8 + 5);
    let body = &a["sk_live_".len()..];
    let broken = vec![
        format!("sk_prod_{body}"),
        a[..a.len() - 1].to_string(),
        format!("{}Q{}", &a[..18], &a[18..]),
        format!("pk_live_{body}"),
        format!("SK_live_{body}"),
        format!("{}-{}", &a[..11], &a[12..]),
        format!("x{near_miss}"),
    ];
    let root = env.root().join("tree");
    write(
        &root.join("app.env"),
        format!("# deploy settings\nLEAKY_KEY={a}\n").as_bytes(),
    );
    write(
        &root.join("src/config.json"),
        format!(
            "{{\"old\": \"{}\",\n \"older\": \"{}\"}}\n",
            disabled.secret, expired.secret
        )
        .as_bytes(),
    );
    write(
        &root.join("notes.md"),
        format!(
            "revoked long ago: {}\n\nsomeone else's: {foreign}\ntypo: {near_miss}\n",
            revoked.secret
        )
        .as_bytes(),
    );
    let lines: String = broken.iter().map(|b| format!("neg: {b}\n")).collect();
    write(&root.join("near-misses.txt"), lines.as_bytes());
    write(&root.join(".gitignore"), b"ignored.log\n");
    write(&root.join("ignored.log"), format!("{a}\n").as_bytes());
    write(&root.join(".hidden.env"), format!("KEY={a}\n").as_bytes());
    let mut blob = b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec();
    blob.extend_from_slice(format!("{a}\n").as_bytes());
    write(&root.join("blob.bin"), &blob);
    Tree {
        env,
        active,
        disabled,
        expired,
        revoked,
        foreign,
        near_miss,
        broken,
    }
}

/// (location, status, key id or "-") of each finding in `scan --json` output.
fn findings(out: &Outcome) -> Vec<(String, String, String)> {
    match out.json() {
        Value::Array(items) => items
            .iter()
            .map(|f| {
                (
                    format!(
                        "{}:{}:{}",
                        f["path"].as_str().unwrap(),
                        f["line"],
                        f["column"]
                    ),
                    f["status"].as_str().unwrap().to_string(),
                    f["key_id"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect(),
        other => panic!("not an array: {other}\n{out}"),
    }
}

fn row(location: &str, status: &str, id: &str) -> (String, String, String) {
    (location.to_string(), status.to_string(), id.to_string())
}

#[test]
fn scan_names_each_key_with_its_status_and_place_and_exits_9_for_an_active_one() {
    let t = tree();
    let out = t.env.run(&["scan", "tree", "--json"]);
    t.answered(&out, 9);
    assert_eq!(
        findings(&out),
        vec![
            row("tree/app.env:2:11", "active", t.active.id()),
            row("tree/notes.md:1:19", "revoked", t.revoked.id()),
            row("tree/notes.md:3:17", "unknown", "-"),
            row("tree/src/config.json:1:10", "disabled", t.disabled.id()),
            row("tree/src/config.json:2:12", "expired", t.expired.id()),
        ]
    );
    let first = &out.json()[0];
    assert_eq!(first["name"], "leaky");
    assert_eq!(first["key_prefix"], t.active.prefix());
    let foreign = &out.json()[2];
    assert_eq!(foreign["name"], Value::Null);
    assert_eq!(foreign["key_prefix"], &t.foreign[..12]);
    assert_eq!(out.json()[3]["key_prefix"], t.disabled.prefix());
    assert!(t.disabled.prefix().starts_with("sk_test_"));
    assert!(
        out.stderr
            .contains("5 secrets in 3 files (4 files searched, 1 binary file skipped): 1 active, 1 revoked, 1 unknown, 1 disabled, 1 expired"),
        "{out}"
    );

    // The table: one row per finding, the secret as its display prefix.
    let out = t.env.run(&["scan", "tree"]);
    t.answered(&out, 9);
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 6, "{out}");
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(words, ["Location", "Key", "Status", "Id", "Name"]);
    let words: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        words,
        [
            "tree/app.env:2:11",
            &format!("{}...", t.active.prefix()),
            "active",
            t.active.id(),
            "leaky"
        ]
    );
    let words: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        words,
        [
            "tree/notes.md:3:17",
            &format!("{}...", &t.foreign[..12]),
            "unknown",
            "-",
            "-"
        ]
    );

    // csv: a header and the same rows.
    let out = t.env.run(&["scan", "tree", "--format", "csv"]);
    assert_eq!(out.code, Some(9), "{out}");
    let lines = out.stdout_lines();
    assert_eq!(lines[0], "path,line,column,key_prefix,status,key_id,name");
    assert_eq!(
        lines[1],
        format!(
            "tree/app.env,2,11,{},active,{},leaky",
            t.active.prefix(),
            t.active.id()
        )
    );
    assert_eq!(lines.len(), 6, "{out}");
}

#[test]
fn ignored_and_hidden_files_are_scanned_only_with_all_and_binary_files_never() {
    let t = tree();
    let out = t.env.run(&["scan", "tree", "--all", "--json"]);
    t.answered(&out, 9);
    let places: Vec<String> = findings(&out).into_iter().map(|f| f.0).collect();
    assert_eq!(
        places,
        [
            "tree/.hidden.env:1:5",
            "tree/app.env:2:11",
            "tree/ignored.log:1:1",
            "tree/notes.md:1:19",
            "tree/notes.md:3:17",
            "tree/src/config.json:1:10",
            "tree/src/config.json:2:12",
        ]
    );
    // A file named on the command line is scanned even when .gitignore lists it.
    let out = t.env.run(&["scan", "tree/ignored.log", "--json"]);
    assert_eq!(out.code, Some(9), "{out}");
    assert_eq!(findings(&out)[0].0, "tree/ignored.log:1:1");
    // A binary file is skipped, named or not.
    let out = t.env.run(&["scan", "tree/blob.bin"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("no secrets of this store found (0 files searched, 1 binary file skipped)"),
        "{out}"
    );
}

#[test]
fn without_an_active_key_the_scan_exits_0() {
    let t = tree();
    fs::remove_file(t.dir().join("app.env")).unwrap();
    let out = t.env.run(&["scan", "tree", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(findings(&out).len(), 4, "{out}");
    // Nothing of the store's format at all: an empty list, exit 0.
    fs::create_dir(t.env.root().join("clean")).unwrap();
    write(&t.env.root().join("clean/a.txt"), b"nothing here\n");
    let out = t.env.run(&["scan", "clean", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json(), Value::Array(vec![]));
    let out = t.env.run(&["scan", "clean"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout, "");
}

#[test]
fn stdin_is_scanned_with_a_dash() {
    let t = tree();
    let input = format!(
        "line one\nexport K={}\n{}\n",
        t.revoked.secret, t.active.secret
    );
    let out = t
        .env
        .run_with_stdin(&["scan", "-", "--json"], input.as_bytes());
    t.answered(&out, 9);
    assert_eq!(
        findings(&out),
        vec![
            row("<stdin>:2:10", "revoked", t.revoked.id()),
            row("<stdin>:3:1", "active", t.active.id()),
        ]
    );
    let out = t
        .env
        .run_with_stdin(&["scan", "-", "tree/notes.md", "--json"], b"nothing\n");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(findings(&out).len(), 2, "{out}");
}

#[test]
fn revoke_with_yes_revokes_the_active_keys_found_and_audits_where() {
    let t = tree();
    let out = t.env.run(&["scan", "tree", "--revoke", "--yes", "--json"]);
    // An active key was found: still exit 9, after revoking it.
    t.answered(&out, 9);
    assert!(
        out.stderr
            .contains(&format!("revoked key \"leaky\" ({})", t.active.id())),
        "{out}"
    );
    assert_eq!(t.env.key_json(t.active.id())["status"], "revoked");
    // Only the active one: the disabled and expired keys are as they were.
    assert_eq!(t.env.key_json(t.disabled.id())["status"], "disabled");
    assert_eq!(t.env.key_json(t.expired.id())["status"], "expired");
    let events = t.env.audit_json(&["--action", "revoked"]);
    assert_eq!(events[0]["key_id"], t.active.id());
    assert_eq!(events[0]["actor"], ACTOR);
    assert_eq!(
        events[0]["details"]["reason"],
        "found by keyctl scan at tree/app.env:2"
    );
    // Now nothing active is exposed.
    let out = t.env.run(&["scan", "tree", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        findings(&out)[0],
        row("tree/app.env:2:11", "revoked", t.active.id())
    );

    // Found in several places: the first, and how many more.
    let t = tree();
    let out = t
        .env
        .run(&["scan", "tree", "--all", "--revoke", "--yes", "-q"]);
    assert_eq!(out.code, Some(9), "{out}");
    let events = t.env.audit_json(&["--action", "revoked"]);
    assert_eq!(
        events[0]["details"]["reason"],
        "found by keyctl scan at tree/.hidden.env:1 (and 2 more places)"
    );
}

#[test]
fn revoke_without_a_terminal_needs_yes_and_changes_nothing() {
    let t = tree();
    let before = t.env.snapshot();
    let out = t.env.run(&["scan", "tree", "--revoke"]);
    let line = out.fails(2);
    assert_eq!(
        line,
        "error: scan --revoke needs confirmation: pass --yes (there is no terminal to ask on)"
    );
    assert_eq!(t.env.snapshot(), before);
    assert_eq!(t.env.key_json(t.active.id())["status"], "active");
}

/// `scan tree --revoke` at a terminal, answering the question; it exits 9 either way.
fn revoke_at_a_terminal(t: &Tree, answer: &[u8]) -> Outcome {
    let out = Pty::run_answering(
        t.env.command(),
        &["scan", "tree", "--revoke"],
        "cannot be undone",
        answer,
    );
    assert_eq!(out.code, Some(9), "{out}");
    out
}

#[test]
fn at_a_terminal_revoke_asks_first() {
    let t = tree();
    let before = t.env.snapshot();
    let out = revoke_at_a_terminal(&t, b"n");
    assert!(
        out.stdout.contains(&format!(
            "Revoke key \"leaky\" ({}..., active)? This cannot be undone.",
            t.active.prefix()
        )),
        "{out}"
    );
    assert!(out.stdout.contains("nothing revoked"), "{out}");
    t.no_secret_in(&out);
    assert_eq!(t.env.snapshot(), before);

    revoke_at_a_terminal(&t, b"y");
    assert_eq!(t.env.key_json(t.active.id())["status"], "revoked");
}

#[test]
fn bad_paths_and_flags_are_one_line_errors() {
    let t = tree();
    let line = t
        .env
        .run(&["scan", "tree", "no-such-folder"])
        .fails(2)
        .to_string();
    assert_eq!(
        line,
        "error: cannot scan 'no-such-folder': no such file or folder"
    );
    t.env.run(&["scan", "-", "-"]).fails(2);
    t.env.run(&["scan", "tree", "--yes"]).fails(2);
    t.env.run(&["scan", "--rules", "semgrep"]).fails(2);
    t.env.run(&["scan", "--rules", "gitleaks", "tree"]).fails(2);
    // A file that cannot be read (even by root: reading /proc/self/mem from its
    // start fails) is named; the scan goes on, and then fails (exit 1) unless an
    // active key was found, which decides (9).
    let out = t.env.run(&["scan", "tree", "/proc/self/mem"]);
    assert_eq!(out.code, Some(9), "{out}");
    assert!(
        out.stderr
            .contains("warning: could not read /proc/self/mem: "),
        "{out}"
    );
    fs::remove_file(t.dir().join("app.env")).unwrap();
    let out = t.env.run(&["scan", "tree", "/proc/self/mem", "-q"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .ends_with("error: scan incomplete: 1 file or folder could not be read\n"),
        "{out}"
    );

    // No store: said in one line, nothing scanned.
    let empty = TestEnv::new();
    fs::create_dir(empty.root().join("t")).unwrap();
    let line = empty.run(&["scan", "t"]).fails(1).to_string();
    assert!(line.contains("run 'keyctl init'"), "{line}");
}

#[test]
fn a_changed_key_prefix_keeps_finding_the_older_keys() {
    let env = TestEnv::initialized();
    let old = env.create("old-prefix", &[]);
    env.run(&["config", "set", "key-prefix", "acme"]).ok();
    let new = env.create("new-prefix", &[]);
    assert!(new.secret.starts_with("acme_live_"));
    write(
        &env.root().join("t/both.txt"),
        format!("{}\n{}\n", old.secret, new.secret).as_bytes(),
    );
    let out = env.run(&["scan", "t", "--json"]);
    assert_eq!(out.code, Some(9), "{out}");
    assert_eq!(
        findings(&out),
        vec![
            row("t/both.txt:1:1", "active", old.id()),
            row("t/both.txt:2:1", "active", new.id()),
        ]
    );
    let rule = env.run(&["scan", "--rules", "github"]);
    rule.ok();
    assert!(
        rule.stdout
            .contains("Secret format: (?:acme|sk)_(?:live|test)_[0-9A-Za-z]{38}\n"),
        "{rule}"
    );
}

// ---- --rules ----

/// Every (file, group 1) the regex finds in the tree's text files, hidden and ignored
/// ones included.
fn regex_matches(t: &Tree, pattern: &str) -> BTreeSet<(String, String)> {
    let re = regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    let mut found = BTreeSet::new();
    for file in [
        "app.env",
        "src/config.json",
        "notes.md",
        "near-misses.txt",
        "ignored.log",
        ".hidden.env",
    ] {
        let text = fs::read_to_string(t.dir().join(file)).unwrap();
        for line in text.lines() {
            for c in re.captures_iter(line) {
                found.insert((file.to_string(), c[1].to_string()));
            }
        }
    }
    found
}

/// The regex matches every keyctl-format string of the tree (the near miss too: a
/// regex cannot check the checksum) and none of the strings that break the format.
fn assert_rule_regex(t: &Tree, pattern: &str) {
    let found = regex_matches(t, pattern);
    let matched: BTreeSet<String> = found.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(matched, t.format_strings(), "{pattern}");
    assert!(
        !found.iter().any(|(f, _)| f == "near-misses.txt"),
        "{pattern} matched a string that breaks the format: {found:?}"
    );
    for broken in &t.broken {
        let re = regex::Regex::new(pattern).unwrap();
        assert!(!re.is_match(broken), "{pattern} matches {broken}");
        assert!(
            !re.is_match(&format!("k = {broken} ")),
            "{pattern}: {broken}"
        );
    }
    assert!(matched.contains(&t.near_miss));
}

fn rules(t: &Tree, scanner: &str) -> String {
    let out = t.env.run(&["scan", "--rules", scanner]);
    out.ok();
    assert!(
        out.stdout.contains(
            "A regex cannot check the key's CRC32 checksum: run 'keyctl scan' on a match"
        ),
        "{out}"
    );
    out.stdout
}

#[test]
fn the_gitleaks_rule_is_a_gitleaks_config_whose_regex_matches_the_format() {
    let t = tree();
    let text = rules(&t, "gitleaks");
    let config: toml::Table = toml::from_str(&text).expect("the rule is TOML");
    assert_eq!(config["extend"]["useDefault"].as_bool(), Some(true));
    let rules = config["rules"].as_array().expect("[[rules]]");
    assert_eq!(rules.len(), 1);
    let rule = rules[0].as_table().unwrap();
    assert_eq!(rule["id"].as_str(), Some("keyctl-api-key"));
    assert!(rule["description"].as_str().unwrap().contains("CRC32"));
    assert_eq!(rule["secretGroup"].as_integer(), Some(1));
    let keywords: Vec<&str> = rule["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keywords, ["sk_live_", "sk_test_"]);
    assert_rule_regex(&t, rule["regex"].as_str().unwrap());
}

#[test]
fn the_trufflehog_rule_is_a_custom_detector_whose_regex_matches_the_format() {
    let t = tree();
    let text = rules(&t, "trufflehog");
    let config: serde_yaml::Value = serde_yaml::from_str(&text).expect("the rule is YAML");
    let detectors = config["detectors"].as_sequence().expect("detectors");
    assert_eq!(detectors.len(), 1);
    let d = &detectors[0];
    assert_eq!(d["name"].as_str(), Some("keyctl-api-key"));
    let keywords: Vec<&str> = d["keywords"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keywords, ["sk_live_", "sk_test_"]);
    let regexes = d["regex"].as_mapping().expect("a map of named regexes");
    assert_eq!(regexes.len(), 1);
    assert_rule_regex(&t, d["regex"]["key"].as_str().unwrap());
}

#[test]
fn the_github_pattern_fields_match_the_format() {
    let t = tree();
    let text = rules(&t, "github");
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} field\n{text}"))
            .to_string()
    };
    assert!(field("Pattern name").starts_with("keyctl API key"));
    let secret = field("Secret format");
    assert_eq!(secret, "sk_(?:live|test)_[0-9A-Za-z]{38}");
    // GitHub puts the three fields together around the secret.
    let whole = format!(
        "(?:{})({secret})(?:{})",
        field("Before secret"),
        field("After secret")
    );
    assert_rule_regex(&t, &whole);
}

/// The regex of the detect-secrets plugin: the raw string in `re.compile(r"...")`.
fn plugin_regex(text: &str) -> String {
    let start = text.find("re.compile(r\"").expect("a compiled regex") + "re.compile(r\"".len();
    let len = text[start..].find("\")").expect("its end");
    text[start..start + len].to_string()
}

#[test]
fn the_detect_secrets_plugin_runs_in_detect_secrets_and_reports_the_secret_lines() {
    let t = tree();
    let text = rules(&t, "detect-secrets");
    assert_rule_regex(&t, &plugin_regex(&text));
    let plugin = t.env.root().join("keyctl_plugin.py");
    fs::write(&plugin, &text).unwrap();
    let tool =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/venv/bin/detect-secrets");
    assert!(
        tool.exists(),
        "detect-secrets is not installed at {}: run `bash scripts/test.sh`, which installs it and then runs every test",
        tool.display()
    );
    let out = Command::new(&tool)
        .args(["scan", "--all-files", "--plugin"])
        .arg(&plugin)
        .arg("tree")
        .current_dir(t.env.root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", t.env.home())
        .output()
        .expect("run detect-secrets");
    assert!(
        out.status.success(),
        "detect-secrets failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("detect-secrets prints json");
    assert!(
        report["plugins_used"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "KeyctlDetector"),
        "{report}"
    );
    let mut lines = BTreeSet::new();
    for (file, results) in report["results"].as_object().unwrap() {
        for r in results.as_array().unwrap() {
            if r["type"] == "keyctl API key" {
                lines.insert((file.clone(), r["line_number"].as_u64().unwrap()));
            }
        }
    }
    // With --all-files it reads hidden and ignored files too, and skips binary ones.
    let want: BTreeSet<(String, u64)> = [
        ("tree/.hidden.env", 1),
        ("tree/app.env", 2),
        ("tree/ignored.log", 1),
        ("tree/notes.md", 1),
        ("tree/notes.md", 3),
        // The near miss: a regex cannot check the checksum (keyctl scan does).
        ("tree/notes.md", 4),
        ("tree/src/config.json", 1),
        ("tree/src/config.json", 2),
    ]
    .into_iter()
    .map(|(f, l)| (f.to_string(), l))
    .collect();
    assert_eq!(lines, want);
}

#[test]
fn a_closed_stdout_keeps_the_answer() {
    let t = tree();
    let out = crate::pipes::run_closed(&t.env, &["scan", "tree", "--json"], b"");
    t.answered(&out, 9);
    fs::remove_file(t.dir().join("app.env")).unwrap();
    let out = crate::pipes::run_closed(&t.env, &["scan", "tree"], b"");
    t.answered(&out, 0);
}
