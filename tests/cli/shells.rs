//! Shell completion (SPEC §2 `completions`): the checked-in scripts load in the real
//! bash, zsh and fish with nothing on stderr; KEYREF arguments complete with the names
//! of the keys in the store the completed command would use, asked through each
//! shell's protocol without a shell (the way jj tests dynamic completion), each
//! command offering the keys it can act on; and a real interactive bash on a
//! pseudo-terminal completes names holding `:`, `=`, spaces and glob characters as one
//! word, without changing COMP_WORDBREAKS.
//!
//! A missing shell fails these tests (never skips them): `bash scripts/test.sh`
//! installs zsh, fish and shellcheck.

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
        .env("KEYCTL_DB", env.location())
        .env("KEYCTL_NOW", NOW)
        .env("TZ", "UTC")
        .current_dir(repo())
        .stdin(std::process::Stdio::null());
    c
}

fn run_shell(env: &TestEnv, tool: &str, args: &[&str]) -> Outcome {
    let output = Run::new(shell_command(env, tool, args)).output();
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
    let out = Outcome::new(&args, Run::new(c).output());
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

/// Two days after `NOW`: `late-key` (1 day) has expired by then.
const LATER: &str = "2026-11-25T12:00:00Z";

/// A store with a key in every state a command treats differently, as the names and
/// ids each KEYREF argument should offer (at `LATER`).
struct EachKind {
    /// (name, id) of: active, disabled, revoked, expired (still in state active), the
    /// key a plain rotation replaced (disabled) and its successor (same name).
    active: (String, String),
    disabled: (String, String),
    revoked: (String, String),
    expired: (String, String),
    superseded: (String, String),
    successor: (String, String),
}

fn one_key_of_each_kind(env: &TestEnv) -> EachKind {
    let made =
        |name: &str, extra: &[&str]| (name.to_string(), env.create(name, extra).id().to_string());
    let active = made("alpha-key", &[]);
    let disabled = made("off-key", &[]);
    env.run(&["disable", "off-key"]).ok();
    let revoked = made("gone-key", &[]);
    env.run(&["revoke", "--yes", "gone-key"]).ok();
    let expired = made("late-key", &["--expires", "1d"]);
    let superseded = made("rot-key", &[]);
    let out = env.run(&["rotate", "--yes", "--json", "rot-key"]);
    out.ok();
    let successor = (
        "rot-key".to_string(),
        out.json()["key_details"]["id"]
            .as_str()
            .expect("rotate --json gives the new key's id")
            .to_string(),
    );
    EachKind {
        active,
        disabled,
        revoked,
        expired,
        superseded,
        successor,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Each KEYREF argument offers the keys its command can act on (disable: active;
/// enable: disabled, not one a rotation replaced; revoke and edit: not revoked; rotate:
/// not revoked, not replaced; show, logs, usage, audit and delete: every key, revoked
/// ones too), by name, and by id once the word starts like one.
#[test]
fn each_keyref_argument_offers_the_keys_its_command_can_act_on() {
    let env = TestEnv::initialized();
    let k = one_key_of_each_kind(&env);
    let all = [
        &k.active,
        &k.disabled,
        &k.revoked,
        &k.expired,
        &k.superseded,
        &k.successor,
    ];
    let not_revoked = [
        &k.active,
        &k.disabled,
        &k.expired,
        &k.superseded,
        &k.successor,
    ];
    let rotatable = [&k.active, &k.disabled, &k.expired, &k.successor];
    // (the words, the (name, id) of each key they offer)
    type Case<'a> = (&'a [&'a str], &'a [&'a (String, String)]);
    let cases: [Case; 11] = [
        (
            &["keyctl", "disable", ""],
            &[&k.active, &k.expired, &k.successor],
        ),
        (&["keyctl", "enable", ""], &[&k.disabled]),
        (&["keyctl", "revoke", ""], &not_revoked),
        (&["keyctl", "revoke", "alpha-key", ""], &not_revoked),
        (&["keyctl", "edit", ""], &not_revoked),
        (&["keyctl", "rotate", ""], &rotatable),
        (&["keyctl", "show", ""], &all),
        (&["keyctl", "logs", ""], &all),
        (&["keyctl", "usage", ""], &all),
        (&["keyctl", "audit", ""], &all),
        (&["keyctl", "delete", ""], &all),
    ];
    for (words, keys) in cases {
        let names = sorted(keys.iter().map(|(n, _)| n.clone()).collect());
        let ids = sorted(keys.iter().map(|(_, id)| id.clone()).collect());
        let mut id_words = words.to_vec();
        *id_words.last_mut().unwrap() = "key_";
        for shell in DYNAMIC_SHELLS {
            let at_later = |c: &mut Command| {
                c.env("KEYCTL_NOW", LATER);
            };
            let offered = candidates_with(&env, shell, words, at_later);
            let offered: Vec<String> = non_flags(&offered)
                .into_iter()
                .filter(|c| !["verify", "prune", "help"].contains(&c.as_str()))
                .collect();
            assert_eq!(
                sorted(offered.clone()),
                names,
                "{shell}: {words:?} offered {offered:?}"
            );
            assert_eq!(
                sorted(candidates_with(&env, shell, &id_words, at_later)),
                ids,
                "{shell}: {id_words:?} must offer the ids of exactly these keys"
            );
        }
    }
}

/// Completion reads the commands' one clock: with a `KEYCTL_NOW` the commands would
/// refuse, it offers no keys (the command would not run), not keys by the system clock.
#[test]
fn completion_reads_the_commands_clock() {
    let env = TestEnv::initialized();
    env.create("alpha-key", &[]);
    for shell in DYNAMIC_SHELLS {
        let words = ["keyctl", "show", ""];
        assert!(candidates(&env, shell, &words).contains(&"alpha-key".to_string()));
        let offered = candidates_with(&env, shell, &words, |c| {
            c.env("KEYCTL_NOW", "yesterday");
        });
        assert!(
            !offered.contains(&"alpha-key".to_string()),
            "{shell}: {offered:?}"
        );
    }
}

/// The two examples of issue 10: `enable <Tab>` offered the active keys and not the
/// disabled ones, `show <Tab>` left out the revoked ones.
#[test]
fn enable_offers_disabled_keys_and_show_offers_revoked_ones_in_fish_and_bash() {
    let env = TestEnv::initialized();
    one_key_of_each_kind(&env);
    for (line, want) in [
        ("keyctl enable ", vec!["off-key"]),
        (
            "keyctl show ",
            vec!["alpha-key", "gone-key", "late-key", "off-key", "rot-key"],
        ),
    ] {
        assert_eq!(fish_offers(&env, repo(), line), want, "fish `{line}<Tab>`");
    }
    let mut bash = interactive_bash(&env);
    let shown = press_tabs(&mut bash, "keyctl enable ", "\t\t");
    assert!(
        shown.contains("off-key"),
        "enable did not list the disabled key:\n{shown}"
    );
    for active in ["alpha-key", "late-key", "rot-key"] {
        assert!(!shown.contains(active), "enable listed {active}:\n{shown}");
    }
    let shown = press_tabs(&mut bash, "keyctl show ", "\t\t");
    assert!(
        shown.contains("gone-key"),
        "show did not list the revoked key:\n{shown}"
    );
    exit_bash(bash);
}

/// The setting names `config get` and `config set` offer are the ones `config list`
/// shows, in its order; the value of `config set NAME` offers none of them.
#[test]
fn config_get_and_set_complete_setting_names() {
    let env = TestEnv::initialized();
    let out = env.run(&["config", "list", "--json"]);
    out.ok();
    let settings: Vec<String> = out
        .json()
        .as_array()
        .expect("config list --json is an array")
        .iter()
        .map(|s| {
            s["name"]
                .as_str()
                .expect("a setting has a name")
                .to_string()
        })
        .collect();
    assert!(settings.contains(&"max-keys".to_string()), "{settings:?}");
    // Then the prefix of every group's multiplier (`group-multiplier.GROUP`).
    let mut settings = settings;
    settings.push("group-multiplier.".to_string());
    for shell in DYNAMIC_SHELLS {
        for sub in ["get", "set"] {
            assert_eq!(
                non_flags(&candidates(&env, shell, &["keyctl", "config", sub, ""])),
                settings,
                "{shell}: `config {sub} <Tab>`"
            );
            assert_eq!(
                candidates(&env, shell, &["keyctl", "config", sub, "max"]),
                ["max-keys"],
                "{shell}: `config {sub} max<Tab>`"
            );
        }
        assert_eq!(
            non_flags(&candidates(
                &env,
                shell,
                &["keyctl", "config", "set", "max-keys", ""]
            )),
            Vec::<String>::new(),
            "{shell}: a setting's value is not a setting name"
        );
    }
    assert_eq!(fish_offers(&env, repo(), "keyctl config set "), settings);
    // Without a store too: the names come from keyctl, not from the store.
    env.remove_store();
    assert_eq!(
        non_flags(&candidates(&env, "bash", &["keyctl", "config", "get", ""])),
        settings
    );
    let mut bash = interactive_bash(&env);
    let done = complete_and_run(&mut bash, "keyctl config get failed-auth-w");
    assert_eq!(
        done.line, "keyctl config get failed-auth-window ",
        "{}",
        done.shown
    );
    exit_bash(bash);
}

/// The actions `audit --action` accepts (the ones its error lists) are its candidates,
/// as `--action X` and as `--action=X`.
#[test]
fn audit_action_completes_the_actions_audit_accepts() {
    let env = TestEnv::initialized();
    let error = env.run(&["audit", "--action", "nope"]).fails(2).to_string();
    let actions: Vec<String> = error
        .split("use one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("the error lists the actions: {error}"))
        .trim()
        .split(", ")
        .map(str::to_string)
        .collect();
    assert!(actions.contains(&"rotated".to_string()), "{actions:?}");
    for shell in DYNAMIC_SHELLS {
        assert_eq!(
            candidates(&env, shell, &["keyctl", "audit", "--action", ""]),
            actions,
            "{shell}: `audit --action <Tab>`"
        );
        assert_eq!(
            candidates(&env, shell, &["keyctl", "audit", "--action", "rot"]),
            ["rotated"],
            "{shell}"
        );
    }
    assert_eq!(fish_offers(&env, repo(), "keyctl audit --action "), actions);
    let mut bash = interactive_bash(&env);
    for line in ["keyctl audit --action rot", "keyctl audit --action=rot"] {
        assert_completes(&mut bash, line, &format!("{line}ated "));
    }
    exit_bash(bash);
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
    let out = env
        .keyctl(&["create", "--name", "default-key"])
        .with(|c| {
            c.env_remove("KEYCTL_DB");
        })
        .run();
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
        env.root().join("keys.db"), // a store that does not exist
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

/// What a real fish, in `cwd` with the checked-in script sourced, offers for `line`
/// (flags left out); asserts exit 0 and nothing on stderr.
fn fish_offers(env: &TestEnv, cwd: &Path, line: &str) -> Vec<String> {
    let script = format!(
        "source {}; and complete --do-complete {}",
        shell_quote(&repo().join("completions/keyctl.fish").to_string_lossy()),
        shell_quote(line)
    );
    let mut fish = shell_command(env, "fish", &["--no-config", "-c", &script]);
    fish.current_dir(cwd);
    let out = Outcome::new(&["fish", "-c", &script], Run::new(fish).output());
    assert_clean(&out);
    non_flags(&parse_candidates("fish", &out.stdout))
}

#[test]
fn fish_itself_completes_key_names_through_the_script() {
    let env = TestEnv::initialized();
    two_keys_and_a_revoked_one(&env);
    let line = "keyctl revoke ";
    assert_eq!(fish_offers(&env, repo(), line), ["alpha-key", "beta-key"]);

    env.remove_store();
    assert_eq!(fish_offers(&env, repo(), line), Vec::<String>::new());
}

/// An interactive bash (no rc files, a fixed inputrc) on a pseudo-terminal, with the
/// checked-in script sourced and keyctl's folder first in PATH.
fn interactive_bash(env: &TestEnv) -> Pty {
    let mut bash = bare_interactive_bash(env, repo());
    source_the_script(&mut bash);
    bash
}

/// The same bash in `cwd`, before the script is sourced.
fn bare_interactive_bash(env: &TestEnv, cwd: &Path) -> Pty {
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
        .env("HISTFILE", env.root().join("bash_history"))
        .current_dir(cwd);
    Pty::spawn(c, 200)
}

fn source_the_script(bash: &mut Pty) {
    let script = repo().join("completions/keyctl.bash");
    // The echo's output ("sourced-42") differs from its typed text, so seeing it
    // means the line ran.
    bash.send(format!("source '{}' && echo sourced-$((6*7))\n", script.display()).as_bytes());
    bash.expect("sourced-42");
    at_prompt(bash);
}

/// Waits for bash's next prompt after a command's output. Readline puts the terminal
/// in raw mode before it prints the prompt; keys typed earlier meet the kernel's
/// line editing instead (a Tab is echoed as is, Ctrl-U erases the typed line), so
/// nothing but a whole plain line may be sent before this.
fn at_prompt(bash: &mut Pty) {
    bash.expect("\n$ ");
}

/// Types `line` and `tabs` at bash, then clears the line and runs a marker echo;
/// returns what the terminal showed in between (the listing, if any).
fn press_tabs(bash: &mut Pty, line: &str, tabs: &str) -> String {
    bash.send(line.as_bytes());
    bash.send(tabs.as_bytes());
    // Ctrl-U clears the typed line; the marker's output proves the listing is done.
    bash.send(b"\x15echo listed-$((2*3))\n");
    let shown = bash.expect("listed-6");
    at_prompt(bash);
    shown
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
    assert_completes(&mut bash, "keyctl show be", "keyctl show beta-key ");
    exit_bash(bash);
}

#[test]
fn interactive_bash_lists_no_names_and_no_errors_without_a_store() {
    let env = TestEnv::new();
    let before = env.snapshot();
    let mut bash = interactive_bash(&env);
    // Only flags are offered, so Tab inserts their common start `--` (with any key
    // name among the candidates there would be none); Tab Tab lists them.
    let first = complete_and_run(&mut bash, "keyctl revoke ");
    assert_eq!(
        first.line, "keyctl revoke --",
        "the first Tab did not complete to the flags' `--`:\n{}",
        first.shown
    );
    let shown = first.shown + &press_tabs(&mut bash, "keyctl revoke --", "\t\t");
    assert!(
        shown.contains("--reason"),
        "Tab Tab listed nothing:\n{shown}"
    );
    for bad in ["alpha-key", "error", "no key store", "keys.db", "panicked"] {
        assert!(!shown.contains(bad), "{bad:?} on the terminal:\n{shown}");
    }
    exit_bash(bash);
    assert!(!env.store_exists(), "completion created the store");
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

/// What one Tab made of a typed line.
struct Completed {
    /// The command line as bash ran it, read back from its history: exactly what Tab
    /// inserted (quoting and trailing space included), whatever the screen drew.
    line: String,
    /// The line's exit status (its output and errors are thrown away).
    rc: String,
    /// The terminal's text meanwhile.
    shown: String,
}

/// The text of `expr` (a bash word, like "$COMP_WORDBREAKS") printed by `bash`.
fn bash_value(bash: &mut Pty, expr: &str) -> String {
    // The printed `>25` differs from the typed `>%s` ... `$((5*5))`.
    bash.send(format!("printf 'value<%s>%s\\n' {expr} $((5*5))\n").as_bytes());
    let seen = bash.expect(">25");
    at_prompt(bash);
    let start = seen.rfind("value<").expect("the printf's output") + "value<".len();
    seen[start..seen.len() - ">25".len()].to_string()
}

/// Types `partial` and one Tab at bash, then runs the completed line (its output
/// thrown away).
fn complete_and_run(bash: &mut Pty, partial: &str) -> Completed {
    const RUN: &str = " >/dev/null 2>&1; echo done-$((4*4)) rc-$?";
    bash.send(partial.as_bytes());
    bash.send(b"\t");
    // Ctrl-E: to the end of the line, whatever the Tab inserted.
    bash.send(format!("\x05{RUN}\n").as_bytes());
    let shown = bash.expect("done-16 rc-");
    let rc = bash.expect("\n").trim_end().to_string();
    let ran = bash_value(bash, "\"$(fc -ln -1)\"");
    let line = ran
        .trim_start()
        .strip_suffix(RUN)
        .unwrap_or(&ran)
        .to_string();
    Completed { line, rc, shown }
}

/// Asserts that `partial` + Tab makes the line `want` and that the line succeeds.
fn assert_completes(bash: &mut Pty, partial: &str, want: &str) {
    let done = complete_and_run(bash, partial);
    assert_eq!(
        done.line, want,
        "`{partial}<Tab>` made the wrong line; the terminal showed:\n{}",
        done.shown
    );
    assert_eq!(done.rc, "0", "`{want}` failed:\n{}", done.shown);
}

/// Names may hold spaces (SPEC: a name is free text): the completed word must reach
/// keyctl as one argument, so Tab has to insert it quoted or escaped.
#[test]
fn interactive_bash_completes_a_name_with_a_space_to_one_word() {
    let env = TestEnv::initialized();
    env.create("deploy bot", &[]);
    env.create("alpha-key", &[]);
    let mut bash = interactive_bash(&env);
    assert_completes(&mut bash, "keyctl show depl", "keyctl show deploy\\ bot ");
    exit_bash(bash);
}

/// Bash splits words at `:` (COMP_WORDBREAKS); a name holding one must still complete
/// once the colon has been typed.
#[test]
fn interactive_bash_completes_a_name_after_its_colon() {
    let env = TestEnv::initialized();
    env.create("team:ci", &[]);
    let mut bash = interactive_bash(&env);
    assert_completes(&mut bash, "keyctl show team:", "keyctl show team:ci ");
    exit_bash(bash);
}

// ---- bash: glob characters, COMP_WORDBREAKS, words bash splits ----

/// What the sourced script's completion function puts in COMPREPLY for one
/// completion, called the way bash calls it: COMP_WORDS split as bash splits them (at
/// `:` and `=` too), the line, the cursor at its end, and `$2`, the text bash
/// completes. Run by a non-interactive bash in `cwd`; asserts exit 0 and nothing on
/// stderr.
fn bash_reply(
    env: &TestEnv,
    cwd: &Path,
    comp_words: &[&str],
    current: &str,
    line: &str,
    comp_type: u32,
) -> Vec<String> {
    let quoted: Vec<String> = comp_words.iter().map(|w| shell_quote(w)).collect();
    let script = format!(
        "source {} || exit 9\n\
         COMP_WORDS=({}) COMP_CWORD={} COMP_LINE={} COMP_POINT={} COMP_TYPE={comp_type}\n\
         _clap_complete_keyctl keyctl {} {}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        shell_quote(&repo().join("completions/keyctl.bash").to_string_lossy()),
        quoted.join(" "),
        comp_words.len() - 1,
        shell_quote(line),
        line.len(),
        shell_quote(current),
        shell_quote(comp_words[comp_words.len().saturating_sub(2)]),
    );
    let mut c = shell_command(env, "bash", &["--norc", "--noprofile", "-c", &script]);
    c.current_dir(cwd);
    let out = Outcome::new(&["bash", "-c", &script], Run::new(c).output());
    assert_clean(&out);
    out.stdout.lines().map(str::to_string).collect()
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A folder whose files a glob-expanded candidate would turn into: `*` matches both,
/// `?` matches `a`, `[ab]` matches `a`.
fn folder_with_files(env: &TestEnv) -> PathBuf {
    let dir = env.root().join("cwd");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["a", "file-in-cwd"] {
        std::fs::write(dir.join(file), b"").unwrap();
    }
    dir
}

/// Issue 10: `COMPREPLY=( $(...) )` glob-expanded the candidates, so a key named `*`
/// completed to the files in the current folder. Every glob character is a key here.
#[test]
fn bash_completes_glob_character_names_as_themselves_not_as_files() {
    let env = TestEnv::initialized();
    let globs = ["*", "?", "[ab]"];
    for name in globs {
        env.create(name, &[]);
    }
    let cwd = folder_with_files(&env);
    let line = "keyctl show ";
    let words = ["keyctl", "show", ""];
    // Tab (COMP_TYPE 9) inserts the name quoted for the command line.
    let inserted = non_flags(&bash_reply(&env, &cwd, &words, "", line, 9));
    assert_eq!(sorted(inserted), [r"\*", r"\?", r"\[ab\]"]);
    // Tab Tab (63) lists the names as they are.
    let listed = non_flags(&bash_reply(&env, &cwd, &words, "", line, 63));
    assert_eq!(sorted(listed), sorted(globs.map(str::to_string).to_vec()));

    // A real bash lists them, never the folder's files.
    let mut bash = bare_interactive_bash(&env, &cwd);
    source_the_script(&mut bash);
    let shown = press_tabs(&mut bash, line, "\t\t");
    assert!(
        shown.contains("[ab]"),
        "Tab Tab did not list the keys:\n{shown}"
    );
    assert!(
        !shown.contains("file-in-cwd"),
        "a key name was globbed into the folder's files:\n{shown}"
    );
    // and the inserted text runs: `keyctl show \[a` completes to `\[ab\]`.
    assert_completes(&mut bash, r"keyctl show \[a", r"keyctl show \[ab\] ");
    exit_bash(bash);

    // fish and zsh get the names unchanged.
    for shell in ["zsh", "fish"] {
        assert_eq!(
            sorted(non_flags(&candidates(&env, shell, &words))),
            sorted(globs.map(str::to_string).to_vec()),
            "{shell}"
        );
    }
    assert_eq!(
        sorted(fish_offers(&env, &cwd, line)),
        sorted(globs.map(str::to_string).to_vec()),
        "fish in a folder with files"
    );
}

/// COMP_WORDBREAKS in `bash`, shell-quoted (`printf %q`).
fn wordbreaks(bash: &mut Pty) -> String {
    bash_value(bash, "\"$(printf %q \"$COMP_WORDBREAKS\")\"")
}

/// Issue 10: sourcing the script removed `:` from COMP_WORDBREAKS for the whole
/// shell, changing how every other command completes. It stays as the user had it,
/// after sourcing and after completions; and a user who removed `:` themselves (as
/// npm's completion does) still gets `team:ci` completed once, not `team:team:ci`.
#[test]
fn bash_comp_wordbreaks_is_left_as_the_user_had_it() {
    let env = TestEnv::initialized();
    env.create("team:ci", &[]);
    let mut bash = bare_interactive_bash(&env, repo());
    let before = wordbreaks(&mut bash);
    assert!(
        before.contains(':') && before.contains('='),
        "bash's default: {before}"
    );
    source_the_script(&mut bash);
    assert_eq!(
        wordbreaks(&mut bash),
        before,
        "sourcing changed COMP_WORDBREAKS"
    );
    assert_completes(&mut bash, "keyctl show team:", "keyctl show team:ci ");
    press_tabs(&mut bash, "keyctl --db=", "\t\t");
    assert_eq!(
        wordbreaks(&mut bash),
        before,
        "a completion changed COMP_WORDBREAKS"
    );

    bash.send(b"COMP_WORDBREAKS=${COMP_WORDBREAKS//:}\n");
    let without_colon = wordbreaks(&mut bash);
    assert!(!without_colon.contains(':'), "{without_colon}");
    for partial in ["keyctl show team:", "keyctl show te"] {
        assert_completes(&mut bash, partial, "keyctl show team:ci ");
    }
    assert_eq!(wordbreaks(&mut bash), without_colon);
    exit_bash(bash);
}

/// Bash splits words at `:` and `=`; keyctl must still see `team:ci` and `--db=PATH`
/// as one word, and what Tab inserts must make the whole name.
#[test]
fn interactive_bash_completes_words_bash_splits_at_colons_and_equals_signs() {
    let env = TestEnv::initialized();
    env.create("team:ci", &[]);
    env.create("team:cd", &[]);
    env.create("x=y", &[]);
    env.create("ci-bot", &[]);
    let mut bash = interactive_bash(&env);
    let db = env.location();
    let db = db.to_str().unwrap();
    let mut cases = vec![
        (
            "keyctl show team:ci".to_string(),
            "keyctl show team:ci ".to_string(),
        ),
        ("keyctl show team:cd".into(), "keyctl show team:cd ".into()),
        ("keyctl show x".into(), "keyctl show x=y ".into()),
        ("keyctl show x=".into(), "keyctl show x=y ".into()),
        (
            "keyctl show 'team:ci".into(),
            "keyctl show 'team:ci' ".into(),
        ),
    ];
    // On PostgreSQL `db` is a URL, which bash also splits at '@'.
    cases.push((
        format!("keyctl --db={db} show x="),
        format!("keyctl --db={db} show x=y "),
    ));
    for (partial, want) in &cases {
        assert_completes(&mut bash, partial, want);
    }
    // Tab Tab after `team:c` lists what can follow the colon.
    let shown = press_tabs(&mut bash, "keyctl show team:c", "\t\t");
    assert!(shown.contains("cd") && shown.contains("ci"), "{shown}");
    exit_bash(bash);

    // A blank after the colon starts a new word: `team: c` completes `c` alone.
    let cwd = env.root().to_path_buf();
    let glued = bash_reply(
        &env,
        &cwd,
        &["keyctl", "revoke", "team", ":", "c"],
        "c",
        "keyctl revoke team:c",
        9,
    );
    assert_eq!(
        non_flags(&glued),
        ["cd", "ci"],
        "`team:c`: bash replaces the text after the colon"
    );
    let apart = bash_reply(
        &env,
        &cwd,
        &["keyctl", "revoke", "team", ":", "c"],
        "c",
        "keyctl revoke team: c",
        9,
    );
    assert_eq!(non_flags(&apart), ["ci-bot"], "`team: c` is two words");
}

/// Words typed with quotes or backslashes reach keyctl dequoted (never evaluated): a
/// `--db` path with a space chooses that store, and `deploy\ b` completes.
#[test]
fn interactive_bash_dequotes_the_words_it_passes_to_keyctl() {
    let env = TestEnv::initialized();
    env.create("deploy bot", &[]);
    let spaced = env.root().join("a folder");
    std::fs::create_dir(&spaced).unwrap();
    let other = spaced.join("other.db");
    let other_s = other.to_str().unwrap();
    env.run(&["--db", other_s, "create", "--name", "other-key"])
        .ok();
    let marker = env.root().join("evaluated");
    let mut bash = interactive_bash(&env);
    for (partial, want) in [
        (
            r"keyctl show deploy\ b".to_string(),
            r"keyctl show deploy\ bot ".to_string(),
        ),
        (
            r#"keyctl show "dep"#.to_string(),
            r#"keyctl show "deploy bot" "#.to_string(),
        ),
        (
            format!("keyctl --db '{other_s}' show oth"),
            format!("keyctl --db '{other_s}' show other-key "),
        ),
        (
            format!("keyctl --db {} show oth", other_s.replace(' ', r"\ ")),
            format!(
                "keyctl --db {} show other-key ",
                other_s.replace(' ', r"\ ")
            ),
        ),
    ] {
        assert_completes(&mut bash, &partial, &want);
    }
    // A command substitution on the line is text to the completion, never run.
    press_tabs(
        &mut bash,
        &format!("keyctl --db \"$(touch '{}')\" show ", marker.display()),
        "\t\t",
    );
    exit_bash(bash);
    assert!(
        !marker.exists(),
        "completion ran a command substitution from the line"
    );
}

/// shellcheck passes on the generated bash script with every check, the optional ones
/// too, except SC2250 (braces around every variable: a style choice, off by default).
/// SC2207 (`COMPREPLY=( $(...) )`) was issue 10's glob bug.
#[test]
fn shellcheck_passes_on_the_bash_script() {
    let env = TestEnv::new();
    let script = env.root().join("keyctl.bash");
    let out = env.run(&["completions", "bash"]);
    out.ok();
    std::fs::write(&script, &out.stdout).unwrap();
    let out = run_shell(
        &env,
        "shellcheck",
        &[
            "--shell=bash",
            "--severity=style",
            "--enable=all",
            "--exclude=SC2250",
            script.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(0), "shellcheck found problems\n{out}");
    assert_eq!(
        std::fs::read(&script).unwrap(),
        std::fs::read(repo().join("completions/keyctl.bash")).unwrap(),
        "the checked-in script is the generated one"
    );
}

/// bash-completion's main script, which scripts/test.sh installs.
const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

/// The script needs no bash-completion (every test above runs without it) and works
/// beside it, sourced before or after it; COMP_WORDBREAKS stays as bash-completion
/// left it.
#[test]
fn bash_completion_works_beside_the_bash_completion_package() {
    assert!(
        Path::new(BASH_COMPLETION).is_file(),
        "{BASH_COMPLETION} is missing, so this test cannot run: run `bash scripts/test.sh`, \
         which installs the bash-completion package"
    );
    let env = TestEnv::initialized();
    env.create("team:ci", &[]);
    env.create("*", &[]);
    let cwd = folder_with_files(&env);
    for package_first in [true, false] {
        let mut bash = bare_interactive_bash(&env, &cwd);
        let load_package = format!("source {BASH_COMPLETION} && echo loaded-$((3*3))\n");
        if package_first {
            bash.send(load_package.as_bytes());
            bash.expect("loaded-9");
            at_prompt(&mut bash);
        }
        let before = wordbreaks(&mut bash);
        source_the_script(&mut bash);
        assert_eq!(
            wordbreaks(&mut bash),
            before,
            "package first: {package_first}"
        );
        if !package_first {
            bash.send(load_package.as_bytes());
            bash.expect("loaded-9");
            at_prompt(&mut bash);
        }
        assert_completes(&mut bash, "keyctl show team:", "keyctl show team:ci ");
        let shown = press_tabs(&mut bash, "keyctl show ", "\t\t");
        assert!(shown.contains("team:ci") && shown.contains('*'), "{shown}");
        assert!(!shown.contains("file-in-cwd"), "{shown}");
        assert_eq!(wordbreaks(&mut bash).contains(':'), before.contains(':'));
        exit_bash(bash);
    }
}

// ---- a store with more keys than a completion reads ----

/// How many names a completion offers at most (`complete::CANDIDATE_CAP`).
const CAP: usize = 200;
/// The last candidate of a list that was cut (`complete::MORE_HINT`).
const MORE_HINT: &str = "…and more";

/// A store with `CAP + 5` keys named `svc-000`, `svc-001`, ...; returns the names.
fn more_keys_than_the_cap(env: &TestEnv) -> Vec<String> {
    let names: Vec<String> = (0..CAP + 5).map(|n| format!("svc-{n:03}")).collect();
    let lines: String = names
        .iter()
        .map(|n| format!("{{\"name\": \"{n}\"}}\n"))
        .collect();
    env.run_with_stdin(&["create", "--batch", "-"], lines.as_bytes())
        .ok();
    names
}

#[test]
fn a_store_with_more_keys_than_the_cap_offers_the_first_names_and_says_more_exist() {
    let env = TestEnv::initialized();
    let names = more_keys_than_the_cap(&env);
    let mut want: Vec<String> = names[..CAP].to_vec();
    want.push(MORE_HINT.to_string());
    for shell in DYNAMIC_SHELLS {
        for typed in ["", "s", "svc-"] {
            assert_eq!(
                non_flags(&candidates(&env, shell, &["keyctl", "show", typed])),
                want,
                "KEYCTL_COMPLETE={shell} `keyctl show {typed}<Tab>`: the first {CAP} names \
                 in order, then the hint (which shares no start with them, so no shell \
                 inserts a start the unread names may not have)"
            );
        }
        // Ids (hidden candidates) are cut and hinted alike.
        let ids = candidates(&env, shell, &["keyctl", "show", "key_"]);
        assert_eq!(ids.len(), CAP + 1, "{shell}: {ids:?}");
        assert!(
            ids[..CAP].iter().all(|id| id.starts_with("key_")),
            "{shell}: {ids:?}"
        );
        assert_eq!(ids[CAP], MORE_HINT, "{shell}");
    }
}

#[test]
fn a_typed_prefix_offers_only_the_keys_that_start_with_it() {
    let env = TestEnv::initialized();
    let names = more_keys_than_the_cap(&env);
    env.create("Svc-upper", &[]);
    for shell in DYNAMIC_SHELLS {
        assert_eq!(
            candidates(&env, shell, &["keyctl", "show", "svc-20"]),
            names[CAP..],
            "{shell}: `svc-20<Tab>` offers svc-200 to svc-204 and no hint: all were read"
        );
        assert_eq!(
            candidates(&env, shell, &["keyctl", "show", "svc-01"]),
            names[10..20],
            "{shell}: `svc-01<Tab>` offers svc-010 to svc-019"
        );
        assert_eq!(
            candidates(&env, shell, &["keyctl", "show", "Svc"]),
            ["Svc-upper"],
            "{shell}: the case as typed"
        );
    }
}

#[test]
fn interactive_bash_inserts_nothing_past_what_was_typed_when_the_list_is_cut() {
    let env = TestEnv::initialized();
    more_keys_than_the_cap(&env);
    env.create("zz-last", &[]);
    let mut bash = interactive_bash(&env);
    // Every name read starts with `svc-`, but an unread one does not: one Tab must
    // leave the word as typed rather than insert `svc-`.
    let done = complete_and_run(&mut bash, "keyctl show ");
    assert_eq!(
        done.line, "keyctl show ",
        "the terminal showed:\n{}",
        done.shown
    );
    exit_bash(bash);
}

#[test]
fn a_name_that_is_another_keys_id_or_prefix_is_not_offered() {
    let env = TestEnv::initialized();
    let first = env.create("first", &[]);
    let second = env.create("second", &[]);
    // Names the commands would refuse as ambiguous (create refuses them; an older
    // keyctl did not): another key's prefix, with and without the `...` it is shown
    // with, and another key's id.
    for (n, name) in [
        first.prefix().to_string(),
        format!("{}...", second.prefix()),
        first.id().to_string(),
    ]
    .iter()
    .enumerate()
    {
        env.create(&format!("renamed-{n}"), &[]);
        env.tamper(&format!(
            "UPDATE keys SET name = '{name}' WHERE name = 'renamed-{n}'"
        ));
    }
    for shell in DYNAMIC_SHELLS {
        let all = non_flags(&candidates(&env, shell, &["keyctl", "show", ""]));
        assert_eq!(all, ["first", "second"], "{shell}: {all:?}");
    }
}
