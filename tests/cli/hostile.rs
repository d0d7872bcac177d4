//! Hostile input (issue 7, SPEC §4 "Bad input"): every case gets exactly one `error:`
//! line on stderr (no panic, no backtrace), the exit code SPEC §2 gives it, and leaves
//! every byte of the store (and of the folder around it) as it was. `verify`, whose
//! answer is its exit code, answers garbage with `Invalid API Key` (exit 10) instead.
//!
//! `bad_input.rs` and `store_files.rs` cover the first bad value of each kind; this file
//! adds what they do not: bytes that are not UTF-8, impossible dates and numbers past
//! u64 on every command that takes them, malformed NDJSON, stdin that is binary, empty
//! or huge, damaged store files under every command, and ambiguous KEYREFs.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::*;

/// One hostile run of keyctl.
struct Case {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Vec<u8>,
    code: i32,
    /// Text the error line must contain.
    says: Vec<String>,
}

fn raw(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}

impl Case {
    fn new(code: i32, args: &[&str], says: &[&str]) -> Case {
        Case::raw(code, args.iter().map(OsString::from).collect(), says)
    }

    fn raw(code: i32, args: Vec<OsString>, says: &[&str]) -> Case {
        Case {
            args,
            env: Vec::new(),
            stdin: Vec::new(),
            code,
            says: says.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn stdin(mut self, bytes: &[u8]) -> Case {
        self.stdin = bytes.to_vec();
        self
    }

    fn env(mut self, name: &str, value: OsString) -> Case {
        self.env.push((name.into(), value));
        self
    }
}

/// Runs `case` against `env`'s store; returns a report of everything it did wrong
/// (None: it behaved).
fn misbehaviour(env: &TestEnv, case: &Case) -> Option<String> {
    let before = env.snapshot();
    let mut command = env.command();
    command.args(&case.args);
    for (k, v) in &case.env {
        command.env(k, v);
    }
    let (out, utf8) = Outcome::lossy(&case.args, Run::new(command).stdin(&case.stdin).output());
    let mut wrong = Vec::new();
    if out.code != Some(case.code) {
        wrong.push(format!("exit {:?}, want {}", out.code, case.code));
    }
    if !out.stdout.is_empty() {
        wrong.push("printed to stdout".to_string());
    }
    if !out.stderr.ends_with('\n')
        || out.stderr.lines().count() != 1
        || !out.stderr.starts_with("error: ")
    {
        wrong.push("stderr is not exactly one 'error: ' line".to_string());
    }
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        if out.stderr.contains(bad) {
            wrong.push(format!("stderr mentions {bad:?}"));
        }
    }
    if !utf8 {
        wrong.push("output is not UTF-8".to_string());
    }
    for text in &case.says {
        if !out.stderr.contains(text.as_str()) {
            wrong.push(format!("the error does not say {text:?}"));
        }
    }
    if env.snapshot() != before {
        wrong.push("the store (or its folder) changed".to_string());
    }
    (!wrong.is_empty()).then(|| format!("{}\n{out}", wrong.join("; ")))
}

/// Runs every case and reports every misbehaving one at once.
fn check_all(env: &TestEnv, cases: &[Case]) {
    let problems: Vec<String> = cases.iter().filter_map(|c| misbehaviour(env, c)).collect();
    assert!(
        problems.is_empty(),
        "{} of {} hostile case(s) misbehave:\n\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n\n")
    );
}

/// A store with keys (`alpha` with a secret at hand; `gamma` and `delta`, which the
/// ambiguity test forces to share a display prefix), a request-log row, settings and
/// audit events.
struct Fixture {
    env: TestEnv,
    alpha: Created,
    gamma: Created,
    delta: Created,
}

fn fixture() -> Fixture {
    let env = TestEnv::initialized();
    let alpha = env.create("alpha", &["--expires", "30d", "--quota-daily", "5"]);
    env.create("beta", &["--allow-ip", "10.0.0.0/8"]);
    let gamma = env.create("gamma", &[]);
    let delta = env.create("delta", &[]);
    env.run(&["config", "set", "max-keys", "20"]).ok();
    env.expect_verify(NOW, &alpha.secret, &[], "valid", "OK");
    Fixture {
        env,
        alpha,
        gamma,
        delta,
    }
}

#[test]
fn flag_values_that_are_not_utf8_are_refused() {
    let fx = fixture();
    let ff = || raw(b"\xff\xfe");
    let a = |s: &str| OsString::from(s);
    let secret_line = format!("{}\n", fx.alpha.secret);
    let cases = vec![
        Case::raw(
            2,
            vec![a("create"), a("--name"), raw(b"a\xffb")],
            &["UTF-8"],
        ),
        Case::raw(
            2,
            vec![a("create"), a("--name"), a("ok"), a("--description"), ff()],
            &["UTF-8"],
        ),
        Case::raw(2, vec![a("show"), ff()], &["UTF-8"]),
        Case::raw(
            2,
            vec![a("edit"), a("alpha"), a("--owner"), ff()],
            &["UTF-8"],
        ),
        Case::raw(
            2,
            vec![a("--actor"), ff(), a("disable"), a("alpha")],
            &["UTF-8"],
        ),
        Case::new(2, &["create", "--name", "x"], &["UTF-8"]).env("KEYCTL_ACTOR", ff()),
        Case::raw(2, vec![a("verify"), a("--ip"), ff()], &["UTF-8"]).stdin(secret_line.as_bytes()),
        Case::raw(2, vec![a("verify"), a("--key-env"), ff()], &["UTF-8"]),
        Case::raw(
            2,
            vec![a("config"), a("set"), a("key-prefix"), ff()],
            &["UTF-8"],
        ),
        Case::raw(2, vec![a("logs"), a("--since"), ff()], &["UTF-8"]),
        Case::raw(
            2,
            vec![a("--format"), ff(), a("list")],
            &["table", "json", "csv"],
        ),
        Case::raw(2, vec![a("create"), a("--batch"), ff()], &["UTF-8"]),
        Case::raw(
            2,
            vec![a("revoke"), a("--yes"), a("--reason"), ff(), a("alpha")],
            &["UTF-8"],
        ),
        // A path need not be UTF-8: a store that is not there is reported, not made.
        Case::raw(
            1,
            vec![a("--db"), raw(b"/nonexistent-\xff/keys.db"), a("list")],
            &["no key store"],
        ),
        Case::new(1, &["show", "alpha"], &["no key store"])
            .env("KEYCTL_DB", raw(b"/nonexistent-\xff.db")),
    ];
    check_all(&fx.env, &cases);
}

#[test]
fn impossible_dates_are_refused_by_every_command_that_takes_a_time() {
    let fx = fixture();
    let cases = vec![
        Case::new(
            2,
            &["edit", "alpha", "--expires", "2027-02-30"],
            &["--expires", "'2027-02-30'"],
        ),
        Case::new(
            2,
            &["rotate", "--yes", "alpha", "--grace", "2027-02-30"],
            &["--grace", "'2027-02-30'"],
        ),
        // 2027 is not a leap year.
        Case::new(
            2,
            &["rotate", "--yes", "alpha", "--expires", "2027-02-29"],
            &["--expires", "'2027-02-29'"],
        ),
        Case::new(
            2,
            &["logs", "--since", "2027-02-30"],
            &["--since", "'2027-02-30'"],
        ),
        Case::new(
            2,
            &["logs", "--until", "2026-02-29T10:00:00Z"],
            &["--until", "'2026-02-29T10:00:00Z'"],
        ),
        Case::new(
            2,
            &["audit", "--since", "2027-13-01"],
            &["--since", "'2027-13-01'"],
        ),
        Case::new(
            2,
            &["logs", "prune", "--before", "2027-04-31"],
            &["--before", "'2027-04-31'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--expires", "2027-02-30T24:00:00Z"],
            &["'2027-02-30T24:00:00Z'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--expires", "0000-00-00"],
            &["'0000-00-00'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--expires", "2027-01-31T12:61:00Z"],
            &["'2027-01-31T12:61:00Z'"],
        ),
    ];
    check_all(&fx.env, &cases);
}

#[test]
fn numbers_past_u64_are_refused_by_every_command_that_takes_one() {
    let fx = fixture();
    const PAST_U64: &str = "18446744073709551616";
    const U64_MAX: &str = "18446744073709551615";
    const PAST_U128: &str = "340282366920938463463374607431768211456";
    let cases = vec![
        Case::new(
            2,
            &["edit", "alpha", "--quota-total", PAST_U64],
            &["--quota-total", PAST_U64],
        ),
        Case::new(
            2,
            &["edit", "alpha", "--quota-daily", U64_MAX],
            &["--quota-daily", U64_MAX],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--quota-monthly", PAST_U128],
            &["--quota-monthly", PAST_U128],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--credits", PAST_U64],
            &["--credits", PAST_U64],
        ),
        Case::new(
            2,
            &["edit", "alpha", "--credits", "99999999999999999999"],
            &["--credits", "99999999999999999999"],
        ),
        Case::new(
            2,
            &[
                "create",
                "--name",
                "x",
                "--rate-limit",
                "18446744073709551616/s",
            ],
            &["--rate-limit", "'18446744073709551616/s'"],
        ),
        Case::new(2, &["logs", "--limit", PAST_U64], &["--limit", PAST_U64]),
        Case::new(
            2,
            &["audit", "--limit", "99999999999999999999"],
            &["--limit", "99999999999999999999"],
        ),
        // --days runs from 1 to 3660: the error must say so, not offer 2^63-1.
        Case::new(
            2,
            &["usage", "--days", PAST_U64],
            &["--days", PAST_U64, "3660"],
        ),
        Case::new(2, &["verify", "--cost", PAST_U64], &["--cost", PAST_U64])
            .stdin(format!("{}\n", fx.alpha.secret).as_bytes()),
        Case::new(
            2,
            &["verify", "--duration-ms", PAST_U64],
            &["--duration-ms", PAST_U64],
        )
        .stdin(format!("{}\n", fx.alpha.secret).as_bytes()),
        Case::new(
            2,
            &["config", "set", "max-keys", PAST_U64],
            &["max-keys", PAST_U64],
        ),
        Case::new(
            2,
            &["config", "set", "failed-auth-limit", PAST_U64],
            &["failed-auth-limit", PAST_U64],
        ),
        Case::new(
            2,
            &[
                "config",
                "set",
                "failed-auth-window",
                "18446744073709551616s",
            ],
            &["failed-auth-window", "18446744073709551616s"],
        ),
        Case::new(
            2,
            &[
                "create",
                "--name",
                "x",
                "--expires",
                "18446744073709551616d",
            ],
            &["--expires", "18446744073709551616d"],
        ),
    ];
    check_all(&fx.env, &cases);
}

#[test]
fn bad_ips_and_cidrs_are_refused() {
    let fx = fixture();
    let key = format!("{}\n", fx.alpha.secret);
    let cases = vec![
        Case::new(
            2,
            &["edit", "alpha", "--allow-ip", "300.1.1.1/24"],
            &["--allow-ip", "'300.1.1.1/24'"],
        ),
        Case::new(
            2,
            &["edit", "alpha", "--allow-ip", "10.0.0.0/-1"],
            &["'10.0.0.0/-1'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "::1/129"],
            &["'::1/129'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "10.0.0.0/8/8"],
            &["'10.0.0.0/8/8'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "fe80::1%eth0"],
            &["'fe80::1%eth0'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "1.2.3"],
            &["'1.2.3'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "0x7f.0.0.1"],
            &["'0x7f.0.0.1'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "010.0.0.1"],
            &["'010.0.0.1'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "10.0.0.0/"],
            &["'10.0.0.0/'"],
        ),
        Case::new(
            2,
            &["create", "--name", "x", "--allow-ip", "10.0.0.1, ,10.0.0.2"],
            &["--allow-ip"],
        ),
        Case::new(
            2,
            &["verify", "--ip", "999.1.1.1"],
            &["--ip", "'999.1.1.1'"],
        )
        .stdin(key.as_bytes()),
        Case::new(
            2,
            &["verify", "--ip", "10.0.0.0/8"],
            &["--ip", "'10.0.0.0/8'"],
        )
        .stdin(key.as_bytes()),
        Case::new(2, &["logs", "--ip", "bogus"], &["--ip", "'bogus'"]),
    ];
    check_all(&fx.env, &cases);
}

#[test]
fn unknown_settings_shells_formats_sorts_and_choices() {
    let fx = fixture();
    let cases = vec![
        // A setting that matches nothing is "not found" (exit 3, docs/decisions.md).
        Case::new(
            3,
            &["config", "get", "max_keys"],
            &["'max_keys'", "max-keys"],
        ),
        Case::new(3, &["config", "get", ""], &["''", "max-keys"]),
        Case::new(3, &["config", "set", "MAX-KEYS", "3"], &["'MAX-KEYS'"]),
        Case::new(3, &["config", "set", "nosuch", ""], &["'nosuch'"]),
        Case::new(
            2,
            &["completions", "tcsh"],
            &["'tcsh'", "bash", "zsh", "fish"],
        ),
        Case::new(2, &["completions", "BASH"], &["'BASH'", "bash"]),
        // A missing argument is named in the one line (clap puts it on a second line).
        Case::new(2, &["completions"], &["<SHELL>"]),
        Case::new(2, &["show"], &["<KEYREF>"]),
        Case::new(2, &["logs", "prune"], &["--before"]),
        Case::new(2, &["config", "set", "max-keys"], &["<VALUE>"]),
        Case::new(
            2,
            &["--format", "XML", "list"],
            &["'XML'", "table", "json", "csv"],
        ),
        Case::new(2, &["show", "alpha", "--format", "yaml"], &["'yaml'"]),
        Case::new(2, &["--format", "", "audit"], &["table", "json", "csv"]),
        Case::new(2, &["list", "--sort", "NAME"], &["'NAME'", "last-used"]),
        Case::new(
            2,
            &["list", "--sort", "last_used"],
            &["'last_used'", "last-used"],
        ),
        Case::new(2, &["list", "--sort", ""], &["name", "created"]),
        Case::new(2, &["list", "--status", "Active"], &["'Active'", "active"]),
        Case::new(2, &["audit", "--action", "bogus"], &["'bogus'", "created"]),
        Case::new(2, &["logs", "--status", "bogus"], &["'bogus'"]),
        Case::new(2, &["logs", "--status", "999"], &["'999'"]),
        Case::new(2, &["usage", "--days", "0"], &["--days", "'0'"]),
        Case::new(2, &["audit", "verify", "--expect-head", "zz"], &["'zz'"]),
        Case::new(
            2,
            &["verify", "--key-env", "KEYCTL_NO_SUCH_VAR"],
            &["KEYCTL_NO_SUCH_VAR"],
        ),
    ];
    check_all(&fx.env, &cases);
}

/// A secret passed as an argument is refused without being echoed anywhere.
#[test]
fn a_secret_given_as_an_argument_is_refused_and_not_echoed() {
    let fx = fixture();
    let s = fx.alpha.secret.as_str();
    let cases = vec![
        Case::new(2, &["verify", s], &["verify takes no key argument"]),
        Case::new(2, &["show", "alpha", s], &[]),
        Case::new(2, &["list", &format!("--search={s}"), "--bogus"], &[]),
    ];
    check_all(&fx.env, &cases);
    for case in &cases {
        let mut c = fx.env.command();
        c.args(&case.args);
        let (out, _) = Outcome::lossy(&case.args, Run::new(c).stdin(b"").output());
        assert!(!out.stderr.contains(s), "the secret is echoed\n{out}");
        assert!(!has_secret_shape(&out.stderr), "a secret is echoed\n{out}");
    }
}

#[test]
fn malformed_batch_input_fails_the_batch_and_creates_nothing() {
    let fx = fixture();
    let batch =
        |input: &[u8], says: &[&str]| Case::new(2, &["create", "--batch", "-"], says).stdin(input);
    let mut deep = b"{\"name\": \"deep\", \"unknown\": ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 20_000));
    deep.extend(std::iter::repeat_n(b']', 20_000));
    deep.extend(b"}\n");
    let mut long_name = b"{\"name\": \"".to_vec();
    long_name.extend(std::iter::repeat_n(b'n', 1 << 20));
    long_name.extend(b"\"}\n");
    let cases = vec![
        batch(b"not json\n", &["line 1"]),
        batch(b"{\"name\": \"ok\"}\n\x00\x00\x00\n", &["line 2"]),
        batch(
            b"{\"name\": \"ok\"}\n\xff\xfe{\"name\": \"x\"}\n",
            &["line 2", "UTF-8"],
        ),
        batch(b"{\"name\": \"x\"} {\"name\": \"y\"}\n", &["line 1"]),
        batch(b"{\"name\": \"x\", \"name\": \"y\"}\n", &["line 1"]),
        batch(b"{\"name\": \"x\"\n", &["line 1"]),
        batch(b"null\n", &["line 1"]),
        batch(b"[{\"name\": \"x\"}]\n", &["line 1"]),
        batch(b"\"name\"\n", &["line 1"]),
        batch(b"{\"name\": 5}\n", &["line 1"]),
        batch(b"{}\n", &["line 1"]),
        batch(
            b"{\"name\": \"x\", \"quota_total\": 18446744073709551616}\n",
            &["line 1"],
        ),
        batch(b"{\"name\": \"x\", \"credits\": -1}\n", &["line 1"]),
        batch(
            b"{\"name\": \"x\", \"allowed_ips\": [\"10.0.0.5/8\"]}\n",
            &["line 1", "10.0.0.5/8"],
        ),
        batch(
            b"{\"name\": \"a\"}\n{\"name\": \"b\", \"expires\": \"2027-02-30\"}\n",
            &["line 2", "2027-02-30"],
        ),
        batch(b"{\"name\": \"a\\u0000b\"}\n", &["line 1"]),
        batch(&deep, &["line 1"]),
        batch(&long_name, &["line 1"]),
        // A folder is not a batch file: a bad --batch value, like a missing file.
        Case::new(
            2,
            &["create", "--batch", fx.env.root().to_str().unwrap()],
            &[fx.env.root().to_str().unwrap()],
        ),
    ];
    check_all(&fx.env, &cases);
    assert_eq!(fx.env.count_rows("keys"), 4, "a batch created keys");
}

/// `create --batch` on input with no line end (here /dev/zero) must give up on an
/// over-long line with one error line, not buffer it until memory runs out. The run
/// is capped at 1 GiB of address space and 60 s.
#[test]
fn batch_input_without_line_ends_is_refused_in_bounded_memory() {
    let fx = fixture();
    let before = fx.env.snapshot();
    let mut c = fx.env.command();
    c.args(["create", "--batch", "/dev/zero"]);
    // SAFETY: runs between fork and exec and calls only setrlimit, which is
    // async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let args = [
        OsString::from("create"),
        "--batch".into(),
        "/dev/zero".into(),
    ];
    let (out, _) = Outcome::lossy(&args, Run::new(c).stdin(b"").output());
    let line = out.fails(2);
    assert!(line.contains("line 1"), "{out}");
    assert_eq!(fx.env.snapshot(), before);
}

#[test]
fn ambiguous_keyrefs_change_nothing_and_list_the_candidates() {
    let fx = fixture();
    // Two keys sharing a display prefix, which random secrets almost never do.
    fx.env.fixture(
        &format!(
            "UPDATE keys SET key_prefix = '{}' WHERE id = ?1",
            fx.gamma.prefix()
        ),
        fx.delta.id(),
    );
    let p = fx.gamma.prefix().to_string();
    let dotted = format!("{p}...");
    let says = [fx.gamma.id(), fx.delta.id(), "gamma", "delta"];
    let mut cases = Vec::new();
    for args in [
        vec!["show", &p],
        vec!["show", &dotted],
        vec!["edit", &p, "--description", "x"],
        vec!["disable", &p],
        vec!["enable", &p],
        vec!["revoke", "--yes", &p],
        vec!["delete", "--yes", "--force", &p],
        vec!["rotate", "--yes", &p],
        vec!["logs", &p],
        vec!["usage", &p],
        vec!["audit", &p],
        // One good KEYREF does not let an ambiguous one through.
        vec!["disable", "alpha", &p],
    ] {
        cases.push(Case::new(4, &args, &says));
    }
    check_all(&fx.env, &cases);
}

/// KEYREFs are matched literally: SQL and LIKE wildcards match nothing.
#[test]
fn keyrefs_with_sql_and_wildcards_match_nothing() {
    let fx = fixture();
    let mut cases = Vec::new();
    for keyref in [
        "%",
        "_",
        "sk_live_%",
        "sk_live_____...",
        "' OR 1=1 --",
        "alpha%",
        "ALPHA",
    ] {
        cases.push(Case::new(3, &["show", keyref], &[&format!("'{keyref}'")]));
        cases.push(Case::new(
            3,
            &["disable", keyref],
            &[&format!("'{keyref}'")],
        ));
    }
    cases.push(Case::new(3, &["edit", "%", "--description", "x"], &["'%'"]));
    cases.push(Case::new(3, &["logs", "_"], &["'_'"]));
    check_all(&fx.env, &cases);
}

// ---- files that are not a usable store, under every command ----

/// Every command that touches the store, with what it reads on stdin.
fn store_commands(root: &Path) -> Vec<(Vec<String>, Vec<u8>)> {
    let backup = root.join("backup.db").display().to_string();
    let plain = |a: &[&str]| (a.iter().map(|s| s.to_string()).collect(), Vec::new());
    let fed =
        |a: &[&str], input: &[u8]| (a.iter().map(|s| s.to_string()).collect(), input.to_vec());
    vec![
        plain(&["init"]),
        plain(&["create", "--name", "z"]),
        fed(&["create", "--batch", "-"], b"{\"name\": \"q\"}\n"),
        plain(&["list"]),
        plain(&["list", "--json"]),
        plain(&["show", "k"]),
        plain(&["edit", "k", "--description", "x"]),
        plain(&["disable", "k"]),
        plain(&["enable", "k"]),
        plain(&["revoke", "--yes", "k"]),
        plain(&["delete", "--yes", "--force", "k"]),
        plain(&["rotate", "--yes", "k"]),
        fed(&["verify"], b"sk_live_garbage\n"),
        fed(&["verify", "--no-record"], b"sk_live_garbage\n"),
        fed(&["verify", "--stream"], b"{\"key\": \"sk_live_garbage\"}\n"),
        plain(&["logs"]),
        plain(&["logs", "prune", "--before", "1d"]),
        plain(&["usage"]),
        plain(&["audit"]),
        plain(&["audit", "verify"]),
        plain(&["backup", &backup]),
        plain(&["config", "list"]),
        plain(&["config", "get", "max-keys"]),
        plain(&["config", "set", "max-keys", "3"]),
    ]
}

/// A store path that is a directory, a truncated store (at three lengths), a store
/// from a newer keyctl, another program's SQLite file and a path in a missing folder:
/// every command refuses it (exit 1) in one line naming the path and what is wrong,
/// and changes nothing — no store, folder, backup or side file appears.
#[test]
fn store_paths_that_are_not_stores_are_refused_by_every_command() {
    let env = TestEnv::new();
    let p = |name: &str| env.root().join(name);
    let good = p("good.db");
    let out = env.run(&["--db", good.to_str().unwrap(), "init"]);
    out.ok();
    for name in ["k", "k2", "k3"] {
        env.run(&["--db", good.to_str().unwrap(), "create", "--name", name])
            .ok();
    }
    let bytes = fs::read(&good).unwrap();
    assert!(bytes.len() > 16 * 4096, "a store of several pages");
    fs::write(p("cut-50.db"), &bytes[..50]).unwrap();
    fs::write(p("cut-page.db"), &bytes[..4096]).unwrap();
    fs::write(p("cut-half.db"), &bytes[..bytes.len() / 2]).unwrap();
    fs::write(p("cut-last.db"), &bytes[..bytes.len() - 4096]).unwrap();
    fs::write(p("newer.db"), &bytes).unwrap();
    rusqlite::Connection::open(p("newer.db"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let foreign = rusqlite::Connection::open(p("foreign.db")).unwrap();
    foreign
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(foreign);
    fs::remove_file(&good).unwrap();
    fs::create_dir(p("folder.db")).unwrap();

    let kinds: [(&str, &[&str]); 8] = [
        ("folder.db", &["directory"]),
        ("cut-50.db", &["not an SQLite database"]),
        ("cut-page.db", &["corrupt"]),
        ("cut-half.db", &["corrupt"]),
        ("cut-last.db", &["corrupt"]),
        ("newer.db", &["newer keyctl", "upgrade"]),
        ("foreign.db", &["another program"]),
        ("missing/keys.db", &[]),
    ];
    let mut problems = Vec::new();
    let mut runs = 0;
    for (file, says) in kinds {
        let path = p(file);
        for (command, input) in store_commands(env.root()) {
            let mut args = vec!["--db".to_string(), path.display().to_string()];
            args.extend(command);
            let mut case = Case::new(
                1,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
                says,
            )
            .stdin(&input);
            case.says.push(path.display().to_string());
            runs += 1;
            if let Some(report) = misbehaviour(&env, &case) {
                problems.push(format!("{file}: {report}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {runs} run(s) misbehave:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

// ---- verify: garbage on stdin is an invalid key, never a crash ----

/// Binary, empty and megabyte-long stdin: `verify` answers `Invalid API Key` on one
/// stdout line with exit 10 and nothing on stderr; with `--no-record` nothing changes.
#[test]
fn verify_answers_binary_empty_and_huge_stdin_with_invalid() {
    let fx = fixture();
    let mut rng = SplitMix64::new(0x5eed_0007);
    let binary: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    let random_mb: Vec<u8> = (0..1 << 20).map(|_| rng.next_u64() as u8).collect();
    let mut secret_then_junk = fx.alpha.secret.as_bytes().to_vec();
    secret_then_junk.extend(std::iter::repeat_n(b'x', 1 << 20));
    let mut long_first_line = vec![b'A'; 2048];
    long_first_line.push(b'\n');
    long_first_line.extend(format!("{}\n", fx.alpha.secret).bytes());
    let mut nul_inside = fx.alpha.secret.as_bytes().to_vec();
    nul_inside.insert(20, 0);
    nul_inside.push(b'\n');
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("binary", binary),
        ("empty", Vec::new()),
        ("a lone newline", b"\n".to_vec()),
        ("NUL bytes", vec![0; 64]),
        ("a megabyte of A, no newline", vec![b'A'; 1 << 20]),
        ("a megabyte of random bytes", random_mb),
        (
            "the secret, then a megabyte on the same line",
            secret_then_junk,
        ),
        (
            "a 2 KiB first line, the secret on the second",
            long_first_line,
        ),
        ("the secret with a NUL inside", nul_inside),
        ("Bearer and nothing", b"Bearer \n".to_vec()),
        (
            "UTF-16 text",
            "sk_live_x"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
        ),
    ];
    let before = fx.env.snapshot();
    let mut problems = Vec::new();
    for (what, input) in &inputs {
        for json in [false, true] {
            let mut args = vec!["verify", "--no-record"];
            if json {
                args.push("--json");
            }
            let out = fx.env.run_at_with_stdin(NOW, &args, input);
            let answer_ok = if json {
                out.stdout.lines().count() == 1
                    && serde_json::from_str::<Value>(out.stdout.trim_end())
                        .map(|v| v["code"] == "invalid" && v["status"] == 401)
                        .unwrap_or(false)
            } else {
                out.stdout == "Invalid API Key\n"
            };
            if out.code != Some(10) || !answer_ok || !out.stderr.is_empty() {
                problems.push(format!("{what}:\n{out}"));
            }
        }
        if fx.env.snapshot() != before {
            problems.push(format!("{what}: --no-record changed the store"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Recorded, the same garbage is one `invalid` log row with no key, hash or prefix.
#[test]
fn recorded_garbage_is_one_anonymous_invalid_row() {
    let fx = fixture();
    let rows_before = fx.env.count_rows("requests");
    let mut junk = vec![0xffu8, 0xfe, 0, 1, 2];
    junk.extend(std::iter::repeat_n(b'z', 1 << 20));
    for input in [junk.as_slice(), b"", b"sk_live_\xff\xff\n"] {
        let out = fx
            .env
            .run_at_with_stdin(NOW, &["verify", "--ip", "198.51.100.9"], input);
        assert_says(&out, 10, "Invalid API Key");
    }
    assert_eq!(fx.env.count_rows("requests"), rows_before + 3);
    let rows = fx.env.logs_json(&["--status", "invalid"]);
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["key_id"], Value::Null, "{row}");
        assert_eq!(row["ip"], "198.51.100.9", "{row}");
    }
    fx.env.run(&["audit", "verify"]).ok();
}

// ---- verify --stream: a malformed line is a bad_request and the stream goes on ----

#[test]
fn stream_answers_malformed_lines_with_bad_request_and_goes_on() {
    let fx = fixture();
    // gamma has no quota, so every good line is accepted.
    let good = json!({"key": fx.gamma.secret}).to_string();
    let mut deep_key = b"{\"key\": ".to_vec();
    deep_key.extend(std::iter::repeat_n(b'[', 20_000));
    let mut over_long = b"{\"key\": \"".to_vec();
    over_long.extend(std::iter::repeat_n(b'A', 70_000));
    over_long.extend(b"\"}");
    let malformed: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"\xff\xfe{}".to_vec(),
        b"\x00\x00\x00".to_vec(),
        b"[1, 2]".to_vec(),
        b"null".to_vec(),
        b"{}".to_vec(),
        b"{\"key\": 5}".to_vec(),
        b"{\"key\": null}".to_vec(),
        b"{\"key\": \"x\"".to_vec(),
        b"{\"key\": \"x\"}}".to_vec(),
        b"{\"key\": \"x\", \"key\": \"y\"}".to_vec(),
        b"{\"key\": \"x\", \"cost\": 18446744073709551616}".to_vec(),
        b"{\"key\": \"x\", \"cost\": -1}".to_vec(),
        b"{\"key\": \"x\", \"cost\": 1.5}".to_vec(),
        b"{\"key\": \"x\", \"duration_ms\": \"fast\"}".to_vec(),
        b"{\"key\": \"x\", \"ip\": \"999.1.1.1\"}".to_vec(),
        b"{\"key\": \"x\", \"ip\": \"10.0.0.0/8\"}".to_vec(),
        b"{\"key\": \"x\", \"scope\": \"a\\nb\"}".to_vec(),
        b"{\"key\": 1e999}".to_vec(),
        b"\xef\xbb\xbf{\"key\": \"x\"}".to_vec(),
        deep_key,
        over_long,
    ];
    let mut input = Vec::new();
    let mut expected = Vec::new();
    input.extend(format!("{good}\n").bytes());
    expected.push("valid");
    for line in &malformed {
        input.extend(line);
        input.push(b'\n');
        expected.push("bad_request");
        input.extend(format!("{good}\n").bytes());
        expected.push("valid");
    }

    let check = |args: &[&str]| -> Outcome {
        let out = fx.env.run_at_with_stdin(NOW, args, &input);
        out.ok();
        assert_eq!(out.stderr, "", "{out}");
        let codes: Vec<String> = out
            .stdout
            .lines()
            .map(|l| {
                assert_verdict_line(&out, l)["code"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(codes, expected, "{out}");
        for line in out.stdout.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["code"] == "bad_request" {
                assert_eq!(v["status"], 400, "{v}");
                assert_eq!(v["key_id"], Value::Null, "{v}");
            }
        }
        out
    };
    let before = fx.env.snapshot();
    check(&["verify", "--stream", "--no-record"]);
    assert_eq!(fx.env.snapshot(), before, "--no-record changed the store");

    // Recorded: only the good requests are logged; a bad line records nothing.
    let rows = fx.env.count_rows("requests");
    check(&["verify", "--stream"]);
    assert_eq!(
        fx.env.count_rows("requests"),
        rows + 1 + malformed.len() as i64
    );
    fx.env.run(&["audit", "verify"]).ok();
}

/// An over-long stream line is skipped without holding it in memory: after a 256 MiB
/// line the process has never used more than 64 MiB, and still answers.
#[test]
fn stream_skips_an_overlong_line_in_bounded_memory() {
    let fx = fixture();
    let mut c = fx.env.command();
    c.args(["verify", "--stream", "--no-record"]);
    let mut stream = LiveProcess::spawn(c);
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..256 {
        stream.write_raw(&chunk).expect("feed the stream");
    }
    stream.write_raw(b"\n").unwrap();
    let answer: Value = serde_json::from_str(&stream.next_line()).unwrap();
    assert_eq!(answer["code"], "bad_request", "{answer}");
    let answer: Value =
        serde_json::from_str(&stream.ask(&json!({"key": fx.alpha.secret}).to_string())).unwrap();
    assert_eq!(answer["code"], "valid", "{answer}");
    let status = fs::read_to_string(format!("/proc/{}/status", stream.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    assert_eq!(stream.finish(), Some(0));
    assert!(
        peak_kib < 64 * 1024,
        "verify --stream held {} MiB at its peak while skipping a 256 MiB line: the rest of \
         an over-long line must be discarded as it is read, not buffered",
        peak_kib / 1024
    );
}
