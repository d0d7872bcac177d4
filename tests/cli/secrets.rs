//! Secrets (issue 7; SPEC §1 "Key secret", §4 "No secret at rest"): after a scripted
//! session of every command that handles one, no issued secret — nor its body, nor its
//! 32 random characters — is in the store, its WAL, a backup, any output other than
//! its own reveal, or the argv and environment of a process keyctl started; no
//! rejected presented key is kept either. And the commands that hold a secret make
//! themselves non-dumpable (PR_SET_DUMPABLE 0).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::*;

/// The forms of a secret that must not leak: all of it, its body (after
/// `<prefix>_<mode>_`) and the 32 random characters. (The display prefix, 4 body
/// characters, is public.)
fn forms(secret: &str) -> Vec<String> {
    let body = secret.splitn(3, '_').nth(2).expect("a secret has a body");
    assert!(body.len() >= 32, "{secret:?}");
    vec![secret.to_string(), body.to_string(), body[..32].to_string()]
}

/// Where `bytes` holds any form of `secret`, if anywhere.
fn leak(bytes: &[u8], secret: &str) -> Option<String> {
    forms(secret)
        .into_iter()
        .find(|f| contains_bytes(bytes, f.as_bytes()))
}

/// `secret` with one of its 32 random characters changed (still base62): a typo a
/// client could present, which must be refused and never stored.
fn mistyped(secret: &str) -> String {
    let cut = secret.len() - 6 - 10;
    let mut chars: Vec<char> = secret.chars().collect();
    chars[cut] = if chars[cut] == 'Q' { 'R' } else { 'Q' };
    chars.into_iter().collect()
}

/// One command of the session: its output, and the secrets it revealed (the only
/// ones that may appear in that output).
struct Step {
    out: Outcome,
    reveals: Vec<String>,
}

/// The one secret a plain (piped) reveal printed on stdout.
fn piped_secret(out: &Outcome) -> String {
    out.ok();
    let secret = out.stdout.trim_end().to_string();
    assert_secret(&secret, "sk", "live");
    secret
}

/// Every keyctl process serving this store (the clipboard helpers `--copy` leaves
/// behind): none may carry a secret in its argv or environment.
fn assert_no_secret_in_processes(db: &std::ffi::OsStr, secrets: &[String]) -> usize {
    let found = keyctl_processes_on(db);
    for (pid, cmdline, environ) in &found {
        for secret in secrets {
            if let Some(form) = leak(cmdline, secret) {
                panic!("process {pid} has {form:?} in its argv");
            }
            if let Some(form) = leak(environ, secret) {
                panic!("process {pid} has {form:?} in its environment");
            }
        }
    }
    found.len()
}

#[test]
fn a_whole_session_leaves_no_secret_anywhere_but_its_reveal() {
    let x = XServer::start();
    let env = TestEnv::initialized();
    // On SQLite another connection holds the store open throughout, so the session's
    // commits stay in the WAL where its bytes can be searched.
    let holder = env.sqlite_only("searches the SQLite file's WAL and -shm for secrets");
    if let Some(holder) = &holder {
        let _: i64 = holder
            .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
            .unwrap();
    }
    let clip = |c: &mut std::process::Command| {
        c.env("DISPLAY", &x.display).env("KEYCTL_CLIP_TIME", "20");
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut issued: Vec<String> = Vec::new();
    let mut presented: Vec<String> = Vec::new();
    let mut record = |out: Outcome, reveals: Vec<String>, issued: &mut Vec<String>| {
        issued.extend(reveals.iter().cloned());
        steps.push(Step { out, reveals });
    };

    // ---- create: json, piped, copied to the clipboard, a batch ----
    let out = env.run(&[
        "create",
        "--json",
        "--name",
        "web",
        "--scope",
        "read",
        "--allow-ip",
        "10.0.0.0/8",
    ]);
    out.ok();
    let web = out.json()["key"].as_str().unwrap().to_string();
    record(out, vec![web.clone()], &mut issued);

    let out = env.run(&["create", "--name", "ci", "--description", "pipeline"]);
    let ci = piped_secret(&out);
    record(out, vec![ci.clone()], &mut issued);

    let out = env
        .keyctl(&["create", "--copy", "--name", "copied"])
        .with(clip)
        .run();
    let copied = piped_secret(&out);
    assert!(out.stderr.contains("copied to clipboard"), "{out}");
    record(out, vec![copied.clone()], &mut issued);
    assert!(
        assert_no_secret_in_processes(&env.location(), &issued) >= 1,
        "the clipboard helper is running"
    );

    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        b"{\"name\": \"b1\", \"credits\": 10}\n{\"name\": \"b2\", \"test\": true}\n{\"name\": \"b3\"}\n",
    );
    out.ok();
    let batch: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(batch.len(), 3, "{out}");
    record(out, batch.clone(), &mut issued);

    // ---- rotate: with a grace period, and copied without one ----
    let out = env.run(&["rotate", "--yes", "--grace", "1h", "web"]);
    let web2 = piped_secret(&out);
    record(out, vec![web2.clone()], &mut issued);
    let out = env
        .keyctl(&["rotate", "--yes", "--copy", "ci"])
        .with(clip)
        .run();
    let ci2 = piped_secret(&out);
    record(out, vec![ci2.clone()], &mut issued);
    assert!(assert_no_secret_in_processes(&env.location(), &issued) >= 1);

    // ---- verify: good and failed, from stdin and from --key-env ----
    let forged = forge_secret("sk", "live", "0123456789abcdefghijABCDEFGHIJkl");
    let typo = mistyped(&batch[2]);
    let typo2 = mistyped(&copied);
    presented.extend([forged.clone(), typo.clone(), typo2.clone()]);
    let ip = ["--ip", "10.1.2.3"];
    let cases: Vec<(String, Vec<&str>, bool, &str)> = vec![
        (
            web2.clone(),
            vec!["--ip", "10.1.2.3", "--scope", "read"],
            false,
            "valid",
        ),
        (web.clone(), ip.to_vec(), true, "valid"), // in its grace hour
        (batch[0].clone(), vec!["--json"], false, "valid"),
        (format!("Bearer {copied}"), vec![], true, "valid"),
        (ci.clone(), vec![], false, "inactive"),
        (web.clone(), vec![], false, "ip_not_allowed"),
        (
            web2.clone(),
            vec!["--ip", "10.1.2.3", "--scope", "admin"],
            true,
            "forbidden_scope",
        ),
        (typo.clone(), ip.to_vec(), false, "invalid"),
        (typo2.clone(), vec![], true, "invalid"),
        (forged.clone(), ip.to_vec(), false, "invalid"),
    ];
    for (key, args, from_env, code) in cases {
        let mut all = vec!["verify"];
        all.extend(args);
        let out = if from_env {
            all.extend(["--key-env", "PRESENTED"]);
            env.keyctl(&all)
                .with(|c| {
                    c.env("PRESENTED", &key);
                })
                .run()
        } else {
            env.run_at_with_stdin(NOW, &all, format!("{key}\n").as_bytes())
        };
        assert_eq!(out.code, Some(status_and_exit(code).1), "{code}\n{out}");
        record(out, vec![], &mut issued);
    }
    // A secret as an argument is refused, and not repeated.
    let out = env.run(&["verify", &batch[1]]);
    out.fails(2);
    record(out, vec![], &mut issued);
    // A stream: good, mistyped, malformed.
    let lines = format!(
        "{}\n{}\n{{\"key\": \"{}\"\n",
        json!({"key": batch[2]}),
        json!({"key": typo, "ip": "192.0.2.1"}),
        batch[2]
    );
    let out = env.run_with_stdin(&["verify", "--stream"], lines.as_bytes());
    out.ok();
    let codes: Vec<String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["code"].to_string())
        .collect();
    assert_eq!(
        codes,
        ["\"valid\"", "\"invalid\"", "\"bad_request\""],
        "{out}"
    );
    record(out, vec![], &mut issued);

    // ---- backup, logs, audit, list, show, usage, config ----
    let backup = env.root().join("backup.db");
    let out = env.run(&["backup", backup.to_str().unwrap()]);
    out.ok();
    record(out, vec![], &mut issued);
    for args in [
        &["logs"][..],
        &["logs", "--json"],
        &["logs", "--format", "csv"],
        &["logs", "web"],
        &["logs", "--status", "invalid"],
        &["audit"],
        &["audit", "--json"],
        &["audit", "--format", "csv"],
        &["audit", "web"],
        &["audit", "verify"],
        &["list", "--all"],
        &["list", "--all", "--json"],
        &["list", "--all", "--format", "csv"],
        &["show", "web"],
        &["show", "--json", "web"],
        &["usage"],
        &["usage", "--json", "web"],
        &["config", "list"],
    ] {
        let out = env.run(args);
        out.ok();
        record(out, vec![], &mut issued);
    }
    assert_eq!(issued.len(), 8);

    // ---- the outputs ----
    let mut problems = Vec::new();
    for step in &steps {
        for secret in issued.iter().chain(&presented) {
            if step.reveals.contains(secret) {
                continue;
            }
            for (stream, text) in [("stdout", &step.out.stdout), ("stderr", &step.out.stderr)] {
                if let Some(form) = leak(text.as_bytes(), secret) {
                    problems.push(format!("{stream} holds {form:?}\n{}", step.out));
                }
            }
        }
        if step.reveals.is_empty()
            && (has_secret_shape(&step.out.stdout) || has_secret_shape(&step.out.stderr))
        {
            problems.push(format!("something secret-shaped in\n{}", step.out));
        }
    }

    // ---- the store (file, WAL, -shm; or every table), the backup; then the store
    // once checkpointed ----
    let newest = env.key_json("web")["id"].as_str().unwrap().to_string();
    let mut places: Vec<(String, Vec<u8>)> = env.stored_bytes();
    assert!(
        places
            .iter()
            .any(|(_, bytes)| contains_bytes(bytes, newest.as_bytes())),
        "the session's rows are stored (else searching them proves nothing)"
    );
    places.push((backup.display().to_string(), fs::read(&backup).unwrap()));
    if let Some(holder) = holder {
        let wal = with_suffix(env.db_file(), "-wal");
        let shm = with_suffix(env.db_file(), "-shm");
        let wal_bytes = fs::read(&wal).expect("the WAL is there while the holder is open");
        assert!(
            contains_bytes(&wal_bytes, newest.as_bytes()),
            "the session's rows are in the WAL (else searching it proves nothing)"
        );
        places.push((
            shm.display().to_string(),
            fs::read(&shm).unwrap_or_default(),
        ));
        drop(holder);
        assert!(!wal.exists(), "the last connection checkpointed the WAL");
        places.extend(env.stored_bytes());
    }
    for (place, bytes) in &places {
        for secret in issued.iter().chain(&presented) {
            if let Some(form) = leak(bytes, secret) {
                problems.push(format!("{place} holds {form:?}"));
            }
        }
    }
    // ---- the processes keyctl started ----
    assert_no_secret_in_processes(&env.location(), &issued);
    assert!(
        problems.is_empty(),
        "{} leak(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

// ---- PR_SET_DUMPABLE ----

/// True once `pid` runs the keyctl binary (not `setpriv` before its exec) as nobody.
fn is_keyctl_as_nobody(pid: u32) -> bool {
    let bin = fs::canonicalize(nobody_binary()).unwrap();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
    let uid_line = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(str::to_string)
        });
    exe.as_deref() == Some(bin.as_path())
        && uid_line.is_some_and(|l| l.split_whitespace().nth(1) == Some(&NOBODY.to_string()))
}

/// The kernel gives a non-dumpable process's /proc files to root: a keyctl running as
/// nobody whose /proc/PID/environ is root's has made itself non-dumpable, and another
/// process of the same user can no longer read its environment (or memory).
fn assert_not_dumpable(pid: u32, what: &str) {
    let environ = PathBuf::from(format!("/proc/{pid}/environ"));
    let made = poll_until(WAIT_LIMIT, || {
        is_keyctl_as_nobody(pid) && owner_of(&environ) == Some(0)
    });
    assert!(
        made,
        "{what} (pid {pid}, running as nobody: {}) did not make itself non-dumpable: \
         /proc/{pid}/environ belongs to uid {:?}",
        is_keyctl_as_nobody(pid),
        owner_of(&environ)
    );
    let mut cat = std::process::Command::new(require_tool("setpriv"));
    cat.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg(require_tool("cat"))
        .arg(&environ)
        .env_clear();
    let out = Run::new(cat).output();
    assert!(
        !out.status.success(),
        "nobody can still read {what}'s environment"
    );
}

#[test]
fn commands_holding_a_secret_are_not_dumpable() {
    let env = TestEnv::new();
    let dir = env.nobody_folder("dumpable");
    let db = dir.join("keys.db");
    env.run_as_nobody(&db, &["init"], b"").ok();
    let out = env.run_as_nobody(&db, &["create", "--json", "--name", "k"], b"");
    out.ok();
    let secret = out.json()["key"].as_str().unwrap().to_string();
    let spawn = |args: &[&str]| {
        let mut c = env.command_as_nobody(&db, None);
        c.args(args);
        LiveProcess::spawn(c)
    };

    // verify --stream, between requests.
    let mut stream = spawn(&["verify", "--stream"]);
    let answer: Value = serde_json::from_str(&stream.ask(&json!({"key": secret}).to_string()))
        .expect("a verdict line");
    assert_eq!(answer["code"], "valid", "{answer}");
    assert_not_dumpable(stream.pid(), "verify --stream");

    // verify, waiting for its key on stdin.
    let mut single = spawn(&["verify"]);
    assert_not_dumpable(single.pid(), "verify");
    single.send(&secret);
    assert_eq!(single.next_line(), "OK");
    assert_eq!(single.finish(), Some(0));

    // create --batch, waiting for its input.
    let mut batch = spawn(&["create", "--batch", "-"]);
    assert_not_dumpable(batch.pid(), "create --batch");
    batch.send(r#"{"name": "from-batch"}"#);
    assert_eq!(batch.finish(), Some(0));

    // create and rotate, waiting for the write lock another connection holds. Only
    // this step is skipped on another backend: the checks after it still run.
    if sqlite_only_test("holds SQLite's write lock from another connection") {
        let lock = rusqlite::Connection::open(&db).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        let create = spawn(&["create", "--name", "waiting"]);
        let rotate = spawn(&["rotate", "--yes", "k"]);
        assert_not_dumpable(create.pid(), "create");
        assert_not_dumpable(rotate.pid(), "rotate");
        lock.execute_batch("COMMIT").unwrap();
        drop(lock);
        assert_eq!(create.finish(), Some(0));
        assert_eq!(rotate.finish(), Some(0));
    }

    // The check can tell: a command that holds no secret stays dumpable.
    let follow = spawn(&["logs", "--follow"]);
    // Asleep between polls, it is past every step that could have changed it.
    wait_for("logs --follow polling as nobody", || {
        is_keyctl_as_nobody(follow.pid()) && in_timed_sleep(follow.pid())
    });
    assert_eq!(
        owner_of(Path::new(&format!("/proc/{}/environ", follow.pid()))),
        Some(NOBODY),
        "logs --follow holds no secret and stays dumpable"
    );
    follow.kill();
    assert_eq!(stream.finish(), Some(0));
    env.run_as_nobody(&db, &["audit", "verify"], b"").ok();
}

// ---- SPEC §5: pasted secrets ----

/// `sk_live_` and the first 4 body characters, then `...`: how a message shows it.
fn shown_as(secret: &str) -> String {
    let mode_end = secret
        .find("_live_")
        .or_else(|| secret.find("_test_"))
        .unwrap()
        + 6;
    format!("{}...", &secret[..mode_end + 4])
}

/// No form of `secret` and nothing secret-shaped on stdout or stderr.
fn assert_not_echoed(out: &Outcome, secret: &str) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert_eq!(
            leak(text.as_bytes(), secret),
            None,
            "{stream} echoes the secret\n{out}"
        );
        assert!(
            !has_secret_shape(text),
            "{stream} holds something secret-shaped\n{out}"
        );
    }
}

/// No form of `secret` in the store (or its WAL).
fn assert_not_stored(env: &TestEnv, secret: &str) {
    for (place, bytes) in env.stored_bytes() {
        assert_eq!(leak(&bytes, secret), None, "{place} holds the secret");
    }
}

#[test]
fn a_secret_given_as_a_keyref_is_shown_as_its_display_prefix() {
    let env = TestEnv::initialized();
    let k = env.create("alpha", &[]);
    let forged = forge_secret("sk", "test", "4eC39HqLyjWDarjtT1zdp7dcQQQQQQQQ");
    let before = env.snapshot();
    for secret in [k.secret.clone(), forged, mistyped(&k.secret)] {
        let s = secret.as_str();
        for args in [
            vec!["show", s],
            vec!["revoke", "--yes", s],
            vec!["disable", s],
            vec!["enable", s],
            vec!["delete", "--yes", s],
            vec!["edit", s, "--description", "x"],
            vec!["rotate", "--yes", s],
            vec!["logs", s],
            vec!["audit", s],
            vec!["usage", s],
        ] {
            let out = env.run(&args);
            let line = out.fails(3);
            assert!(
                line.contains(&format!("no key matches '{}'", shown_as(s))),
                "{out}"
            );
            assert_not_echoed(&out, s);
        }
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_secret_pasted_into_a_text_field_is_refused_without_echo_and_never_stored() {
    let env = TestEnv::initialized();
    let k = env.create("alpha", &[]);
    let forged = forge_secret("acme", "live", "Zx81kLmNoPqRsTuVwXyZ0123456789ab");
    let events = env.audit_json(&[]).len();
    for secret in [k.secret.clone(), forged] {
        let s = secret.as_str();
        let says = format!("contains a key secret ({}); never paste", shown_as(s));
        for value in [s.to_string(), format!("prod key {s} (do not share)")] {
            let v = value.as_str();
            let mut runs: Vec<Outcome> = Vec::new();
            for &flag in crate::text::CREATE_TEXT_FLAGS {
                let name_first = if flag == "--name" {
                    "--owner"
                } else {
                    "--name"
                };
                runs.push(env.run(&["create", name_first, "n", flag, v]));
                runs.push(env.run(&["edit", "alpha", flag, v]));
                let field = match flag {
                    "--scope" => "scopes",
                    "--allow-model" => "allowed_models",
                    f => f.trim_start_matches("--"),
                };
                let mut line = json!({ "name": "b" });
                line[field] = json!(v);
                runs.push(
                    env.run_with_stdin(&["create", "--batch", "-"], format!("{line}\n").as_bytes()),
                );
            }
            runs.push(env.run(&["revoke", "--yes", "alpha", "--reason", v]));
            runs.push(env.run(&["--actor", v, "disable", "alpha"]));
            runs.push(
                env.keyctl(&["disable", "alpha"])
                    .with(|c| {
                        c.env("KEYCTL_ACTOR", v);
                    })
                    .run(),
            );
            for flag in ["--endpoint", "--scope", "--deployment", "--model"] {
                runs.push(env.verify(NOW, &k.secret, &[flag, v]));
            }
            for out in &runs {
                let line = out.fails(2);
                assert!(line.contains(&says), "{out}");
                assert_not_echoed(out, s);
            }
            for field in ["endpoint", "scope", "deployment", "model"] {
                let mut line = json!({ "key": k.secret });
                line[field] = json!(v);
                let out =
                    env.run_with_stdin(&["verify", "--stream"], format!("{line}\n").as_bytes());
                out.ok();
                let answer: Value = serde_json::from_str(out.stdout.trim()).expect("json");
                assert_eq!(answer["code"], "bad_request", "{out}");
                assert_not_echoed(&out, s);
            }
        }
        assert_not_stored(&env, s);
    }
    assert_eq!(env.audit_json(&[]).len(), events);
    assert_eq!(env.list_names(&["--all"]), ["alpha"]);
    assert_eq!(env.count_rows("requests"), 0);
}

/// A stream answer quotes a bad value (a cost, an IP): a secret pasted there is shown
/// as its display prefix.
#[test]
fn a_stream_answer_never_quotes_a_secret() {
    let env = TestEnv::initialized();
    let k = env.create("alpha", &[]);
    let s = k.secret.as_str();
    let input: String = ["cost", "ip", "duration_ms", "scope", "key"]
        .iter()
        .map(|field| {
            let mut line = json!({ "key": s });
            line[*field] = json!(s);
            if *field == "key" {
                line[*field] = json!([s]);
            }
            format!("{line}\n")
        })
        .collect();
    let out = env.run_with_stdin(&["verify", "--stream"], input.as_bytes());
    out.ok();
    assert_eq!(out.stdout.lines().count(), 5, "{out}");
    for line in out.stdout.lines() {
        let answer: Value = serde_json::from_str(line).expect("json");
        assert_eq!(answer["code"], "bad_request", "{out}");
    }
    assert_not_echoed(&out, s);
}
