//! Shell completion (SPEC §2 `completions`): the checked-in scripts load in the real
//! bash, zsh and fish with nothing on stderr; KEYREF arguments complete with the names
//! of the keys in the store the completed command would use, asked through each
//! shell's protocol without a shell (the way jj tests dynamic completion); and a real
//! interactive bash on a pseudo-terminal lists the names on Tab Tab.
//!
//! A missing shell fails these tests (never skips them): `bash scripts/test.sh`
//! installs zsh and fish.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// The shells whose registration script calls keyctl back for KEYREF candidates.
const DYNAMIC_SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The folder of the keyctl binary under test, put first in a shell's PATH so the
/// registration scripts call this build back.
fn keyctl_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_keyctl"))
        .parent()
        .expect("the keyctl binary has a folder")
        .to_path_buf()
}

/// `tool ARGS` run from the repository root with an environment as bare as
/// `TestEnv::command`'s: HOME, ZDOTDIR and the XDG folders inside the test's temp
/// root, keyctl's folder first in PATH, KEYCTL_DB the test's store.
fn shell_command(env: &TestEnv, tool: &str, args: &[&str]) -> Command {
    let mut c = Command::new(require_tool(tool));
    let config = env.root().join("config");
    let cache = env.root().join("cache");
    for dir in [&config, &cache] {
        std::fs::create_dir_all(dir).unwrap();
    }
    c.args(args)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", keyctl_dir().display()))
        .env("HOME", env.home())
        .env("ZDOTDIR", env.home())
        .env("XDG_DATA_HOME", env.data_home())
        .env("XDG_CONFIG_HOME", &config)
        .env("XDG_CACHE_HOME", &cache)
        .env("KEYCTL_DB", &env.db)
        .env("KEYCTL_NOW", NOW)
        .env("TZ", "UTC")
        .current_dir(repo())
        .stdin(std::process::Stdio::null());
    c
}

fn run_shell(env: &TestEnv, tool: &str, args: &[&str]) -> Outcome {
    let output = shell_command(env, tool, args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let mut all = vec![tool];
    all.extend_from_slice(args);
    Outcome::new(&all, output)
}

/// Asserts a shell run exited 0 with nothing at all on stderr.
fn assert_clean(out: &Outcome) {
    assert_eq!(out.code, Some(0), "the shell failed\n{out}");
    assert_eq!(out.stderr, "", "the shell wrote to stderr\n{out}");
}

// ---- each shell loads the checked-in script ----

#[test]
fn bash_loads_the_completion_script_with_nothing_on_stderr() {
    let env = TestEnv::new();
    let out = run_shell(
        &env,
        "bash",
        &[
            "--norc",
            "--noprofile",
            "-c",
            "source completions/keyctl.bash && complete -p keyctl",
        ],
    );
    assert_clean(&out);
    assert!(
        out.stdout.contains("-F _clap_complete_keyctl keyctl"),
        "the script did not register a completion function for keyctl\n{out}"
    );
}

#[test]
fn zsh_loads_the_completion_script_with_nothing_on_stderr() {
    let env = TestEnv::new();
    // compinit writes its dump file to $ZDOTDIR, the test's temp home.
    let out = run_shell(
        &env,
        "zsh",
        &[
            "-f",
            "-c",
            "autoload -Uz compinit && compinit -u && source completions/_keyctl \
             && print -r -- \"${_comps[keyctl]}\"",
        ],
    );
    assert_clean(&out);
    assert_eq!(
        out.stdout, "_clap_dynamic_completer_keyctl\n",
        "the script did not register its completer for keyctl\n{out}"
    );
}

#[test]
fn fish_loads_the_completion_script_with_nothing_on_stderr() {
    let env = TestEnv::new();
    let out = run_shell(
        &env,
        "fish",
        &[
            "--no-config",
            "-c",
            "source completions/keyctl.fish; and complete --command keyctl",
        ],
    );
    assert_clean(&out);
    assert!(
        out.stdout.contains("KEYCTL_COMPLETE=fish keyctl"),
        "the script did not register a completion for keyctl\n{out}"
    );
}

/// A shell that is not installed fails the tests that need it, saying how to get it.
#[test]
#[should_panic(expected = "run `bash scripts/test.sh`")]
fn a_missing_shell_fails_and_says_how_to_install_it() {
    require_tool("keyctl-test-no-such-shell");
}

// ---- candidates through each shell's protocol, without a shell ----

/// What keyctl offers for the command line `words` (its last word the one being
/// completed, possibly empty) when `shell`'s registration script calls it back:
/// the same variables and arguments the checked-in script passes. Asserts exit 0
/// and an empty stderr; returns the candidate values, in order.
fn candidates_with(
    env: &TestEnv,
    shell: &str,
    words: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> Vec<String> {
    let mut c = env.command();
    c.env("KEYCTL_COMPLETE", shell).arg("--").args(words);
    let index = (words.len() - 1).to_string();
    match shell {
        // completions/keyctl.bash: IFS is \v; COMP_CWORD, COMP_TYPE (9: a first Tab),
        // and whether the shell can turn the trailing space off.
        "bash" => {
            c.env("_CLAP_IFS", "\u{b}")
                .env("_CLAP_COMPLETE_INDEX", &index)
                .env("_CLAP_COMPLETE_COMP_TYPE", "9")
                .env("_CLAP_COMPLETE_SPACE", "false");
        }
        // completions/_keyctl: one candidate per line, the index is $CURRENT - 1.
        "zsh" => {
            c.env("_CLAP_IFS", "\n").env("_CLAP_COMPLETE_INDEX", &index);
        }
        // completions/keyctl.fish: the tokens before the cursor and the current
        // token; no index, no IFS.
        "fish" => {}
        other => panic!("no protocol for {other}"),
    }
    adjust(&mut c);
    let mut args = vec!["--"];
    args.extend_from_slice(words);
    let out = Outcome::new(&args, c.output().expect("run keyctl"));
    out.no_panic();
    assert_eq!(
        out.code,
        Some(0),
        "KEYCTL_COMPLETE={shell}: a completion failed\n{out}"
    );
    assert_eq!(
        out.stderr, "",
        "KEYCTL_COMPLETE={shell}: completion wrote to stderr\n{out}"
    );
    parse_candidates(shell, &out.stdout)
}

fn candidates(env: &TestEnv, shell: &str, words: &[&str]) -> Vec<String> {
    candidates_with(env, shell, words, |_| {})
}

/// The values of a completion answer: bash's are separated by \v; zsh's are lines of
/// `value:help` (`:` and `\` in the value escaped); fish's are lines of `value\thelp`.
fn parse_candidates(shell: &str, stdout: &str) -> Vec<String> {
    if stdout.is_empty() {
        return Vec::new();
    }
    match shell {
        "bash" => stdout.split('\u{b}').map(str::to_string).collect(),
        "zsh" => stdout
            .lines()
            .map(|line| {
                let mut value = String::new();
                let mut chars = line.chars();
                while let Some(ch) = chars.next() {
                    match ch {
                        '\\' => value.extend(chars.next()),
                        ':' => break,
                        _ => value.push(ch),
                    }
                }
                value
            })
            .collect(),
        "fish" => stdout
            .lines()
            .map(|line| line.split('\t').next().unwrap_or("").to_string())
            .collect(),
        other => panic!("no protocol for {other}"),
    }
}

/// The candidates that are not flags (`--db`, `--help`, ...).
fn non_flags(all: &[String]) -> Vec<String> {
    all.iter()
        .filter(|c| !c.starts_with('-'))
        .cloned()
        .collect()
}

/// A store with two active keys and a revoked one; returns (alpha, beta, gone) ids.
fn two_keys_and_a_revoked_one(env: &TestEnv) -> (String, String, String) {
    let alpha = env.create("alpha-key", &[]);
    let beta = env.create("beta-key", &[]);
    let gone = env.create("gone-key", &[]);
    env.run(&["revoke", "--yes", "gone-key"]).ok();
    (
        alpha.id().to_string(),
        beta.id().to_string(),
        gone.id().to_string(),
    )
}

#[test]
fn keyrefs_complete_with_the_names_of_the_stores_unrevoked_keys() {
    let env = TestEnv::initialized();
    let (alpha, beta, gone) = two_keys_and_a_revoked_one(&env);
    for shell in DYNAMIC_SHELLS {
        let all = candidates(&env, shell, &["keyctl", "revoke", ""]);
        assert_eq!(
            non_flags(&all),
            ["alpha-key", "beta-key"],
            "KEYCTL_COMPLETE={shell} `keyctl revoke <Tab>`: the names of the active keys, \
             not the revoked one's, and no ids (they are hidden): {all:?}"
        );
        assert!(!all.contains(&gone), "{shell}: {all:?}");
        assert_eq!(
            candidates(&env, shell, &["keyctl", "revoke", "al"]),
            ["alpha-key"],
            "{shell}: a typed prefix narrows the names"
        );
        assert_eq!(
            candidates(&env, shell, &["keyctl", "revoke", "gon"]),
            Vec::<String>::new(),
            "{shell}: a revoked key's name is never offered"
        );
        // Ids are hidden candidates: offered once the word starts like one.
        let mut ids = candidates(&env, shell, &["keyctl", "revoke", "key_"]);
        ids.sort();
        let mut want = vec![alpha.clone(), beta.clone()];
        want.sort();
        assert_eq!(ids, want, "{shell}: `key_<Tab>` offers the unrevoked ids");
    }
}

#[test]
fn every_keyref_argument_completes_with_key_names() {
    let env = TestEnv::initialized();
    two_keys_and_a_revoked_one(&env);
    for words in [
        &["keyctl", "show", ""][..],
        &["keyctl", "edit", ""],
        &["keyctl", "disable", ""],
        &["keyctl", "enable", ""],
        &["keyctl", "revoke", "alpha-key", ""],
        &["keyctl", "delete", ""],
        &["keyctl", "rotate", ""],
        &["keyctl", "logs", ""],
        &["keyctl", "usage", ""],
        &["keyctl", "audit", ""],
    ] {
        for shell in DYNAMIC_SHELLS {
            let all = candidates(&env, shell, words);
            for name in ["alpha-key", "beta-key"] {
                assert!(
                    all.iter().any(|c| c == name),
                    "{shell}: {words:?} does not offer {name}: {all:?}"
                );
            }
            assert!(
                !all.iter().any(|c| c == "gone-key"),
                "{shell}: {words:?} offers the revoked key: {all:?}"
            );
        }
    }
}

#[test]
fn the_db_on_the_completed_line_chooses_the_store() {
    let env = TestEnv::initialized();
    two_keys_and_a_revoked_one(&env);
    let other = env.root().join("other.db");
    let other_s = other.to_str().unwrap();
    env.run(&["--db", other_s, "create", "--name", "other-key"])
        .ok();
    let db_eq = format!("--db={other_s}");
    for shell in DYNAMIC_SHELLS {
        for words in [
            &["keyctl", "--db", other_s, "revoke", ""][..],
            &["keyctl", db_eq.as_str(), "revoke", ""],
            &["keyctl", "revoke", "--db", other_s, ""],
        ] {
            assert_eq!(
                non_flags(&candidates(&env, shell, words)),
                ["other-key"],
                "{shell}: {words:?} must read the --db store, not KEYCTL_DB's"
            );
        }
    }
}

#[test]
fn without_db_or_keyctl_db_the_default_store_is_read() {
    let env = TestEnv::new();
    let out = env.run_with(&["create", "--name", "default-key"], |c| {
        c.env_remove("KEYCTL_DB");
    });
    out.ok();
    assert!(
        env.data_home().join("keyctl").join("keys.db").is_file(),
        "the default store is keys.db in XDG_DATA_HOME/keyctl\n{out}"
    );
    for shell in DYNAMIC_SHELLS {
        let all = candidates_with(&env, shell, &["keyctl", "show", ""], |c| {
            c.env_remove("KEYCTL_DB");
        });
        assert_eq!(non_flags(&all), ["default-key"], "{shell}: {all:?}");
    }
}

#[test]
fn a_missing_or_unreadable_store_offers_no_names_and_stays_quiet() {
    let env = TestEnv::new();
    std::fs::write(env.root().join("garbage.db"), b"this is not a database\n").unwrap();
    std::fs::create_dir(env.root().join("a-folder.db")).unwrap();
    let before = env.snapshot();
    let stores = [
        env.db.clone(), // KEYCTL_DB names a store that does not exist
        env.root().join("garbage.db"),
        env.root().join("a-folder.db"),
    ];
    for shell in DYNAMIC_SHELLS {
        for store in &stores {
            let db = store.to_str().unwrap();
            for words in [
                &["keyctl", "revoke", ""][..],
                &["keyctl", "--db", db, "revoke", ""],
            ] {
                let all = candidates_with(&env, shell, words, |c| {
                    c.env("KEYCTL_DB", store);
                });
                assert_eq!(
                    non_flags(&all),
                    Vec::<String>::new(),
                    "{shell}: {words:?} with store {db}: only flags, no names"
                );
                let none = candidates_with(
                    &env,
                    shell,
                    &[&words[..words.len() - 1], &["a"]].concat(),
                    |c| {
                        c.env("KEYCTL_DB", store);
                    },
                );
                assert_eq!(none, Vec::<String>::new(), "{shell}: {words:?} + 'a'");
            }
        }
    }
    // Completion only reads: no store, WAL or folder was made along the way.
    assert_eq!(env.snapshot(), before);
}

// ---- real shells asking keyctl ----

#[test]
fn fish_itself_completes_key_names_through_the_script() {
    let env = TestEnv::initialized();
    two_keys_and_a_revoked_one(&env);
    let script = "source completions/keyctl.fish; and complete --do-complete 'keyctl revoke '";
    let out = run_shell(&env, "fish", &["--no-config", "-c", script]);
    assert_clean(&out);
    let offered = parse_candidates("fish", &out.stdout);
    assert_eq!(non_flags(&offered), ["alpha-key", "beta-key"], "{out}");

    std::fs::remove_file(&env.db).unwrap();
    let out = run_shell(&env, "fish", &["--no-config", "-c", script]);
    assert_clean(&out);
    assert_eq!(
        non_flags(&parse_candidates("fish", &out.stdout)),
        Vec::<String>::new(),
        "{out}"
    );
}

/// An interactive bash (no rc files, a fixed inputrc) on a pseudo-terminal, with the
/// checked-in script sourced and keyctl's folder first in PATH.
fn interactive_bash(env: &TestEnv) -> Pty {
    let inputrc = env.root().join("inputrc");
    // Readline's defaults, pinned: Tab Tab lists, no pager, no bell.
    std::fs::write(
        &inputrc,
        "set show-all-if-ambiguous off\nset completion-query-items 1000\n\
         set page-completions off\nset bell-style none\nset enable-bracketed-paste off\n",
    )
    .unwrap();
    let mut c = shell_command(env, "bash", &["--norc", "--noprofile", "-i"]);
    c.env("TERM", "dumb")
        .env("INPUTRC", &inputrc)
        .env("PS1", "$ ")
        .env("HISTFILE", env.root().join("bash_history"));
    let mut bash = Pty::spawn(c, 200);
    // The echo's output ("sourced-42") differs from its typed text, so seeing it
    // means the line ran.
    bash.send(b"source completions/keyctl.bash && echo sourced-$((6*7))\n");
    bash.expect("sourced-42");
    bash
}

/// Types `line` and `tabs` at bash, then clears the line and runs a marker echo;
/// returns what the terminal showed in between (the listing, if any).
fn press_tabs(bash: &mut Pty, line: &str, tabs: &str) -> String {
    bash.send(line.as_bytes());
    bash.send(tabs.as_bytes());
    // Ctrl-U clears the typed line; the marker's output proves the listing is done.
    bash.send(b"\x15echo listed-$((2*3))\n");
    bash.expect("listed-6")
}

fn exit_bash(mut bash: Pty) {
    bash.send(b"exit\n");
    let (code, screen) = bash.wait();
    assert_eq!(code, Some(0), "bash did not exit cleanly:\n{screen}");
}

#[test]
fn interactive_bash_lists_the_stores_key_names_on_tab_tab() {
    let env = TestEnv::initialized();
    two_keys_and_a_revoked_one(&env);
    let mut bash = interactive_bash(&env);
    let shown = press_tabs(&mut bash, "keyctl revoke ", "\t\t");
    for name in ["alpha-key", "beta-key"] {
        assert!(
            shown.contains(name),
            "Tab Tab did not list {name}:\n{shown}"
        );
    }
    assert!(
        !shown.contains("gone-key"),
        "a revoked key was listed:\n{shown}"
    );
    assert!(
        !shown.contains("error"),
        "error text on the terminal:\n{shown}"
    );

    // One match completes in place: the line becomes `keyctl show beta-key `.
    let (shown, rc) = complete_and_run(&mut bash, "keyctl show be");
    assert!(
        shown.contains("keyctl show beta-key"),
        "`keyctl show be<Tab>` did not complete to beta-key:\n{shown}"
    );
    assert_eq!(rc, "0", "`keyctl show beta-key` failed:\n{shown}");
    exit_bash(bash);
}

#[test]
fn interactive_bash_lists_no_names_and_no_errors_without_a_store() {
    let env = TestEnv::new();
    let before = env.snapshot();
    let mut bash = interactive_bash(&env);
    // Only flags are offered, so the first Tab inserts their common start `--`
    // (with any key name among the candidates there would be none); the next two
    // list them.
    let shown = press_tabs(&mut bash, "keyctl revoke ", "\t\t\t");
    assert!(
        shown.contains("keyctl revoke --"),
        "the first Tab did not complete to the flags' `--`:\n{shown}"
    );
    assert!(
        shown.contains("--reason"),
        "Tab Tab listed nothing:\n{shown}"
    );
    for bad in ["alpha-key", "error", "no key store", "keys.db", "panicked"] {
        assert!(!shown.contains(bad), "{bad:?} on the terminal:\n{shown}");
    }
    exit_bash(bash);
    assert!(!env.db.exists(), "completion created the store");
    let after = env.snapshot();
    let made: Vec<_> = after
        .paths()
        .into_iter()
        .filter(|p| !before.paths().contains(p))
        .filter(|p| !p.starts_with("config") && !p.starts_with("cache"))
        .filter(|p| *p != "bash_history" && *p != "inputrc")
        .map(str::to_string)
        .collect();
    assert_eq!(made, Vec::<String>::new(), "completion made files");
}

/// Types `partial` and one Tab at bash, then runs the completed line (its output
/// thrown away); returns the terminal's text and the line's exit status.
fn complete_and_run(bash: &mut Pty, partial: &str) -> (String, String) {
    bash.send(partial.as_bytes());
    bash.send(b"\t");
    // Ctrl-E: to the end of the line, whatever the Tab inserted.
    bash.send(b"\x05 >/dev/null; echo done-$((4*4)) rc-$?\n");
    let shown = bash.expect("done-16 rc-");
    let rc = bash.expect("\n").trim_end().to_string();
    (shown, rc)
}

/// Names may hold spaces (SPEC: a name is free text): the completed word must reach
/// keyctl as one argument, so Tab has to insert it quoted or escaped.
#[test]
fn interactive_bash_completes_a_name_with_a_space_to_one_word() {
    let env = TestEnv::initialized();
    env.create("deploy bot", &[]);
    env.create("alpha-key", &[]);
    let mut bash = interactive_bash(&env);
    let (shown, rc) = complete_and_run(&mut bash, "keyctl show depl");
    assert_eq!(
        rc, "0",
        "`keyctl show depl<Tab>` did not make a command that shows 'deploy bot' \
         (the name must be inserted as one word, e.g. deploy\\ bot):\n{shown}"
    );
    exit_bash(bash);
}

/// Bash splits words at `:` (COMP_WORDBREAKS); a name holding one must still complete
/// once the colon has been typed.
#[test]
fn interactive_bash_completes_a_name_after_its_colon() {
    let env = TestEnv::initialized();
    env.create("team:ci", &[]);
    let mut bash = interactive_bash(&env);
    let (shown, rc) = complete_and_run(&mut bash, "keyctl show team:");
    assert!(
        shown.contains("keyctl show team:ci"),
        "`keyctl show team:<Tab>` did not complete to team:ci:\n{shown}"
    );
    assert_eq!(rc, "0", "{shown}");
    exit_bash(bash);
}
