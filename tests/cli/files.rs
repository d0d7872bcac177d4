//! Files, permissions and space (issue 7): what keyctl does when the store's file or
//! folder is read-only, under a permissive umask, on a full disk, and when the store
//! file is empty, text, truncated, bit-rotten or missing its newest WAL frames.
//!
//! The tests run as root, which ignores file modes, so every permission case runs
//! keyctl as `nobody` through util-linux `setpriv` on a folder that user owns.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::*;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// `create --json --name NAME` as nobody on `db`; returns the secret.
fn create_as_nobody(env: &TestEnv, db: &Path, name: &str) -> String {
    let out = env.run_as_nobody(db, &["create", "--json", "--name", name], b"");
    out.ok();
    out.json()["key"].as_str().expect("key").to_string()
}

/// A store made by nobody in a folder nobody owns, with keys `a` and `b`, one
/// recorded request and a setting. Returns the store and a's secret.
fn nobody_store(env: &TestEnv, folder: &str) -> (PathBuf, String) {
    let dir = env.nobody_folder(folder);
    let db = dir.join("keys.db");
    env.run_as_nobody(&db, &["init"], b"").ok();
    let a = create_as_nobody(env, &db, "a");
    create_as_nobody(env, &db, "b");
    let out = env.run_as_nobody(&db, &["verify"], format!("{a}\n").as_bytes());
    assert_says(&out, 0, "OK");
    env.run_as_nobody(&db, &["config", "set", "max-keys", "10"], b"")
        .ok();
    (db, a)
}

/// The write commands of SPEC §2 with their stdin.
fn write_commands(secret: &str) -> Vec<(Vec<&'static str>, Vec<u8>)> {
    vec![
        (vec!["create", "--name", "new"], vec![]),
        (
            vec!["create", "--batch", "-"],
            b"{\"name\": \"d\"}\n{\"name\": \"e\"}\n".to_vec(),
        ),
        (vec!["edit", "a", "--description", "changed"], vec![]),
        (vec!["disable", "a"], vec![]),
        (vec!["revoke", "--yes", "b"], vec![]),
        (vec!["delete", "--yes", "b"], vec![]),
        (vec!["rotate", "--yes", "a"], vec![]),
        (vec!["verify"], format!("{secret}\n").into_bytes()),
        (vec!["config", "set", "max-keys", "5"], vec![]),
    ]
}

/// Read commands: each must work on a store whose file is read-only.
fn read_commands(secret: &str, backup: &Path) -> Vec<(Vec<String>, Vec<u8>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (v(&["list"]), vec![]),
        (v(&["list", "--json"]), vec![]),
        (v(&["show", "a"]), vec![]),
        (v(&["logs"]), vec![]),
        (v(&["usage"]), vec![]),
        (v(&["audit"]), vec![]),
        (v(&["audit", "verify"]), vec![]),
        (v(&["config", "list"]), vec![]),
        (v(&["config", "get", "max-keys"]), vec![]),
        (
            v(&["verify", "--no-record"]),
            format!("{secret}\n").into_bytes(),
        ),
        (
            vec!["backup".to_string(), backup.display().to_string()],
            vec![],
        ),
    ]
}

/// A read-only store file (0400): every write command fails with one clear line
/// (exit 1), every read command still works, and the file is not touched. Made
/// writable again, the store takes writes (a read while it was read-only must not
/// leave read-only -wal/-shm files behind that block them).
#[test]
fn a_read_only_store_file_refuses_writes_and_still_serves_reads() {
    let env = TestEnv::new();
    let (db, secret) = nobody_store(&env, "ro-file");
    chmod(&db, 0o400);
    let bytes = fs::read(&db).unwrap();
    let mut problems = Vec::new();
    for (args, input) in write_commands(&secret) {
        let out = env.run_as_nobody(&db, &args, &input);
        let ok = out.code == Some(1)
            && out.stdout.is_empty()
            && out.stderr.lines().count() == 1
            && out.stderr.starts_with("error: ")
            && out.stderr.contains("read-only")
            && out.stderr.contains(&db.display().to_string())
            && !out.stderr.contains("attempt to write");
        if !ok {
            problems.push(format!("{out}"));
        }
        out.no_panic();
        if fs::read(&db).unwrap() != bytes {
            problems.push(format!("{args:?} changed the read-only file"));
        }
    }
    let backup = db.with_file_name("copy.db");
    for (args, input) in read_commands(&secret, &backup) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run_as_nobody(&db, &args, &input);
        if out.code != Some(0) || out.stderr.contains("error") {
            problems.push(format!("a read command failed on a read-only file:\n{out}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(fs::read(&db).unwrap(), bytes, "the read-only file changed");
    assert_eq!(mode(&backup), 0o600);

    // Writable again: writes work at once.
    chmod(&db, 0o600);
    let out = env.run_as_nobody(&db, &["create", "--name", "after"], b"");
    out.ok();
    let out = env.run_as_nobody(&db, &["edit", "a", "--description", "x"], b"");
    out.ok();
    env.run_as_nobody(&db, &["audit", "verify"], b"").ok();
}

/// A read-only folder (0500) with a writable store file: SQLite must create the
/// -wal and -shm files next to a WAL store even to read it, so every command fails.
/// The one line says that, not SQLite's "attempt to write a readonly database".
#[test]
fn a_read_only_folder_is_named_as_the_problem() {
    let env = TestEnv::new();
    let (db, secret) = nobody_store(&env, "ro-folder");
    let dir = db.parent().unwrap().to_path_buf();
    chmod(&dir, 0o500);
    let before = env.snapshot();
    let backup = env.root().join("elsewhere.db");
    let mut commands: Vec<(Vec<String>, Vec<u8>)> = write_commands(&secret)
        .into_iter()
        .map(|(a, i)| (a.iter().map(|s| s.to_string()).collect(), i))
        .collect();
    commands.extend(read_commands(&secret, &backup));
    let mut problems = Vec::new();
    for (args, input) in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run_as_nobody(&db, &args, input);
        out.no_panic();
        let line = out.stderr.trim_end();
        let ok = out.code == Some(1)
            && out.stdout.is_empty()
            && out.stderr.lines().count() == 1
            && line.starts_with("error: ")
            && line.contains(&dir.display().to_string())
            && line.contains("folder")
            && line.contains("read-only")
            && line.contains("keys.db-wal")
            && line.contains("keys.db-shm")
            && !line.contains("attempt to write a readonly database");
        if !ok {
            problems.push(format!("{out}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} command(s) misreport a read-only folder:\n\n{}",
        problems.len(),
        commands.len(),
        problems.join("\n\n")
    );
    assert_eq!(env.snapshot(), before, "something changed");

    // A new store cannot be made there either; the folder is named.
    let new = dir.join("new.db");
    let out = env.run_as_nobody(&new, &["create", "--name", "x"], b"");
    let line = out.fails(1);
    assert!(line.contains(&dir.display().to_string()), "{line}");
    assert!(
        line.contains("not writable") || line.contains("read-only"),
        "{line}"
    );
    assert_eq!(env.snapshot(), before);

    chmod(&dir, 0o700);
    env.run_as_nobody(&db, &["list"], b"").ok();
    env.run_as_nobody(&db, &["create", "--name", "after"], b"")
        .ok();
}

/// Under umask 000 a new store is 0600, and so are the -wal and -shm files SQLite
/// makes while a command runs (watched through a `verify --stream` kept open), a
/// backup, and the default folder (0700).
#[test]
fn new_files_are_private_even_under_umask_000() {
    let env = TestEnv::new();
    let dir = env.nobody_folder("umask");
    let db = dir.join("keys.db");
    let mut c = env.command_as_nobody(&db, Some("000"));
    c.args(["create", "--json", "--name", "k"]);
    let out = Outcome::new(&["create"], Run::new(c).stdin(b"").output());
    out.ok();
    let secret = out.json()["key"].as_str().unwrap().to_string();
    assert_eq!(mode(&db), 0o600, "the store");

    let mut c = env.command_as_nobody(&db, Some("000"));
    c.args(["verify", "--stream"]);
    let mut stream = LiveProcess::spawn(c);
    let answer: Value =
        serde_json::from_str(&stream.ask(&serde_json::json!({"key": secret}).to_string())).unwrap();
    assert_eq!(answer["code"], "valid", "{answer}");
    let (wal, shm) = (with_suffix(&db, "-wal"), with_suffix(&db, "-shm"));
    assert!(wal.exists() && shm.exists(), "the stream has the WAL open");
    assert_eq!(mode(&wal), 0o600, "keys.db-wal");
    assert_eq!(mode(&shm), 0o600, "keys.db-shm");
    for side in [&wal, &shm] {
        assert_eq!(owner_of(side), Some(NOBODY), "{}", side.display());
    }

    let backup = dir.join("backup.db");
    let mut c = env.command_as_nobody(&db, Some("000"));
    c.args(["backup", backup.to_str().unwrap()]);
    Outcome::new(&["backup"], Run::new(c).stdin(b"").output()).ok();
    assert_eq!(mode(&backup), 0o600, "the backup");
    assert_eq!(stream.finish(), Some(0));

    // The default location: folders 0700, store 0600.
    let mut c = env.command_as_nobody(&db, Some("000"));
    c.env_remove("KEYCTL_DB").args(["init"]);
    Outcome::new(&["init"], Run::new(c).stdin(b"").output()).ok();
    let data = dir.join("data");
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    assert_eq!(mode(&data.join("keyctl")), 0o700);
    assert_eq!(mode(&data.join("keyctl").join("keys.db")), 0o600);
}

// ---- a full disk ----

/// On a full 512 KiB tmpfs every write command fails with one line saying there is
/// no space (exit 1) — both when the first write is SQLite growing its -shm and when
/// it is a WAL frame — the store file is untouched, and once space is freed the store
/// is intact (integrity_check, audit chain, the same keys) and takes writes again.
#[test]
fn a_full_disk_fails_every_write_in_one_line_and_loses_nothing() {
    if !sqlite_only_test("fills the filesystem under the SQLite file and its WAL") {
        return;
    }
    let env = TestEnv::new();
    let small = Tmpfs::mount(&env.root().join("small"), "512k");
    let db = small.dir.join("keys.db");
    let run = |now: &str, args: &[&str], input: &[u8]| {
        env.keyctl(args)
            .at(now)
            .stdin(input)
            .with(|c| {
                c.env("KEYCTL_DB", &db);
            })
            .run()
    };
    run(NOW, &["init"], b"").ok();
    let out = run(NOW, &["create", "--json", "--name", "a"], b"");
    out.ok();
    let secret = out.json()["key"].as_str().unwrap().to_string();
    for name in ["b", "c"] {
        run(NOW, &["create", "--name", name], b"").ok();
    }
    // An old request, so that pruning has something to delete.
    let old = now_plus(-2 * DAY);
    assert_says(
        &run(&old, &["verify"], format!("{secret}\n").as_bytes()),
        0,
        "OK",
    );
    let head = env
        .keyctl(&["audit", "verify"])
        .with(|c| {
            c.env("KEYCTL_DB", &db);
        })
        .run();
    head.ok();
    let head = head.stdout.clone();

    let mut writes = write_commands(&secret);
    writes.push((vec!["logs", "prune", "--before", "1d"], vec![]));
    let mut problems = Vec::new();
    for phase in ["first write grows the -shm", "first write is a WAL frame"] {
        // In the second phase another connection has the WAL and -shm allocated.
        let holder = (phase == "first write is a WAL frame").then(|| {
            let c = rusqlite::Connection::open(&db).unwrap();
            let n: i64 = c
                .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 3);
            c
        });
        let bytes = fs::read(&db).unwrap();
        let filler = small.fill("filler");
        for (args, input) in &writes {
            let out = run(NOW, args, input);
            out.no_panic();
            let ok = out.code == Some(1)
                && out.stderr.lines().count() == 1
                && out.stderr.starts_with("error: ")
                && out.stderr.contains("no space")
                && out.stderr.contains(&db.display().to_string())
                // create and rotate write the secret before they commit (SPEC §4), so
                // a commit that fails may follow a shown (dead) secret; nothing else
                // prints.
                && (out.stdout.is_empty() || args[0] == "create" || args[0] == "rotate");
            if !ok {
                problems.push(format!("{phase}:\n{out}"));
            }
            if fs::read(&db).unwrap() != bytes {
                problems.push(format!("{phase}: {args:?} changed the store file"));
            }
        }
        drop(holder);
        fs::remove_file(filler).unwrap();
    }
    assert!(
        problems.is_empty(),
        "{} failure(s) on a full disk:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );

    // Space is back: the store is whole and as it was.
    let c = rusqlite::Connection::open(&db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(c);
    let out = env
        .keyctl(&["audit", "verify"])
        .with(|c| {
            c.env("KEYCTL_DB", &db);
        })
        .run();
    out.ok();
    assert_eq!(out.stdout, head, "the audit trail changed");
    let out = run(NOW, &["list", "--json"], b"");
    out.ok();
    let keys: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(names(&keys), ["c", "b", "a"]);
    assert!(keys
        .iter()
        .all(|k| k["status"] == "active" && k["description"].is_null()));
    // And usable.
    run(NOW, &["create", "--name", "d"], b"").ok();
    assert_says(
        &run(NOW, &["verify"], format!("{secret}\n").as_bytes()),
        0,
        "OK",
    );
    run(NOW, &["audit", "verify"], b"").ok();
}

// ---- damaged store files ----

/// An empty file, a text file and truncated stores, owned by nobody and writable by
/// it: every command refuses them in one line (exit 1) and leaves them as they were.
#[test]
fn empty_text_and_truncated_files_are_refused_and_left_alone() {
    sqlite_only!("cuts copies of the store's SQLite file");
    let env = TestEnv::initialized();
    env.create("k", &[]);
    env.create("k2", &["--scope", "read"]);
    let good = fs::read(env.db_file()).unwrap();
    let dir = env.nobody_folder("damaged");
    let files: [(&str, Vec<u8>); 5] = [
        ("empty.db", Vec::new()),
        ("notes.db", b"this is a note, not a key store\n".to_vec()),
        ("cut-header.db", good[..60].to_vec()),
        ("cut-page.db", good[..4096].to_vec()),
        ("cut-half.db", good[..good.len() / 2].to_vec()),
    ];
    let backup = dir.join("backup.db");
    let mut problems = Vec::new();
    for (name, bytes) in &files {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        chmod(&path, 0o600);
        let mut commands: Vec<(Vec<String>, Vec<u8>)> = write_commands("sk_live_x")
            .into_iter()
            .map(|(a, i)| (a.iter().map(|s| s.to_string()).collect(), i))
            .collect();
        commands.extend(read_commands("sk_live_x", &backup));
        for (args, input) in commands {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = env.run_as_nobody(&path, &args, &input);
            out.no_panic();
            if out.code != Some(1)
                || !out.stdout.is_empty()
                || out.stderr.lines().count() != 1
                || !out.stderr.starts_with("error: ")
                || !out.stderr.contains(name)
            {
                problems.push(format!("{name}:\n{out}"));
            }
            if &fs::read(&path).unwrap() != bytes {
                problems.push(format!("{name}: {args:?} modified it"));
            }
        }
        assert!(!backup.exists(), "a backup of {name} was written");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// A few hundred seeded single-byte changes to a valid store (a third in the header,
/// a third in the schema page, a third anywhere): `list`, `show`, `audit verify` and
/// `verify` never panic or print more than one line, every failure is one `error:`
/// line, and no command modifies the file except a recorded `verify` that succeeded
/// in recording (SQLite may add -wal/-shm files next to it; those are removed between
/// runs).
#[test]
fn random_byte_flips_are_reported_without_a_panic_or_a_write() {
    sqlite_only!("flips bytes of the store's SQLite file");
    const FLIPS: u64 = 300;
    const WORKERS: u64 = 4;
    let env = TestEnv::initialized();
    let k1 = env.create(
        "k1",
        &["--scope", "read", "--quota-daily", "100", "--credits", "50"],
    );
    env.create("k2", &["--allow-ip", "10.0.0.0/8", "--expires", "30d"]);
    env.create("k3", &["--test", "--description", "third"]);
    env.run(&["edit", "k2", "--description", "edited"]).ok();
    env.run(&["disable", "k3"]).ok();
    for i in 0..5 {
        env.expect_verify(
            &now_plus(-i * HOUR),
            &k1.secret,
            &["--scope", "read"],
            "valid",
            "OK",
        );
    }
    assert!(
        !with_suffix(env.db_file(), "-wal").exists(),
        "the store is checkpointed"
    );
    let good = fs::read(env.db_file()).unwrap();

    let mut rng = SplitMix64::new(0xB17_F11B5);
    let flips: Vec<(usize, u8)> = (0..FLIPS)
        .map(|i| {
            let offset = match i % 3 {
                0 => rng.below(100),
                1 => 100 + rng.below(4096 - 100),
                _ => rng.below(good.len() as u64),
            } as usize;
            (offset, 1 + rng.below(255) as u8)
        })
        .collect();
    let key_line = format!("{}\n", k1.secret);
    let commands: [(&[&str], &[i32]); 5] = [
        (&["list"], &[0, 1]),
        (&["show", "k1"], &[0, 1, 3, 4]),
        (&["audit", "verify"], &[0, 1, 8]),
        (
            &["verify", "--no-record"],
            &[0, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
        ),
        (
            &["verify"],
            &[0, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
        ),
    ];
    let problems = std::sync::Mutex::new(Vec::new());
    let outcomes = std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new());
    std::thread::scope(|scope| {
        for worker in 0..WORKERS {
            let (env, good, flips, problems, outcomes, key_line) =
                (&env, &good, &flips, &problems, &outcomes, &key_line);
            scope.spawn(move || {
                let dir = env.root().join(format!("flips-{worker}"));
                fs::create_dir(&dir).unwrap();
                let path = dir.join("flipped.db");
                for (i, &(offset, xor)) in flips.iter().enumerate() {
                    if i as u64 % WORKERS != worker {
                        continue;
                    }
                    let mut bytes = good.clone();
                    bytes[offset] ^= xor;
                    for (args, allowed) in commands {
                        for entry in fs::read_dir(&dir).unwrap() {
                            fs::remove_file(entry.unwrap().path()).unwrap();
                        }
                        fs::write(&path, &bytes).unwrap();
                        let out = env
                            .keyctl(args)
                            .at(NOW)
                            .stdin(key_line.as_bytes())
                            .with(|c| {
                                c.env("KEYCTL_DB", &path);
                            })
                            .run();
                        let label = format!("flip {i} (byte {offset} ^ {xor:#04x}) {args:?}");
                        *outcomes
                            .lock()
                            .unwrap()
                            .entry(format!("{args:?} exit {:?}", out.code))
                            .or_default() += 1;
                        let mut wrong = Vec::new();
                        let panicked = ["panicked", "backtrace"]
                            .iter()
                            .any(|w| out.stderr.contains(w));
                        if out.code.is_none() || out.code == Some(101) || panicked {
                            wrong.push("crashed".to_string());
                        }
                        if !out.code.is_some_and(|c| allowed.contains(&c)) {
                            wrong.push(format!("exit {:?}", out.code));
                        }
                        if out.stderr.lines().count() > 1 {
                            wrong.push("more than one stderr line".to_string());
                        }
                        let failed = matches!(out.code, Some(1..=9));
                        if failed && !out.stderr.starts_with("error: ") {
                            wrong.push("a failure without an 'error: ' line".to_string());
                        }
                        let recorded = args == ["verify"] && !failed;
                        if !recorded && fs::read(&path).unwrap() != bytes {
                            wrong.push("modified the file".to_string());
                        }
                        if !wrong.is_empty() {
                            problems
                                .lock()
                                .unwrap()
                                .push(format!("{label}: {}\n{out}", wrong.join("; ")));
                        }
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problem(s) in {FLIPS} flips (outcomes: {:?}):\n\n{}",
        problems.len(),
        outcomes.into_inner().unwrap(),
        problems.join("\n\n")
    );
    // The flips must have reached the checks: some runs failed, most succeeded.
    let outcomes = outcomes.into_inner().unwrap();
    let count = |pred: &dyn Fn(&str) -> bool| -> u32 {
        outcomes
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(count(&|k| k.ends_with("exit Some(1)")) > 0, "{outcomes:?}");
    assert!(
        count(&|k| k.starts_with("[\"list\"] exit Some(0)")) > 0,
        "{outcomes:?}"
    );
}

// ---- a store copied without its WAL ----

/// A store whose newest commits were only in its -wal when a process holding it was
/// SIGKILLed, copied without that -wal: the copy's audit chain is intact but short,
/// and `audit verify --expect-head` with the head recorded before catches it (exit 8).
#[test]
fn a_copy_without_its_wal_is_caught_by_expect_head() {
    sqlite_only!("copies the store's SQLite file without its WAL");
    let env = TestEnv::initialized();
    env.create("a", &[]);
    env.create("b", &[]);
    let (old_count, _) = env.audit_head();

    // A long-running keyctl holds the store open, so no later command is the last
    // connection to close: their commits stay in the -wal.
    let mut c = env.command();
    c.args(["verify", "--stream", "--no-record"]);
    let mut holder = LiveProcess::spawn(c);
    let answer: Value = serde_json::from_str(&holder.ask(r#"{"key": "sk_live_nothing"}"#)).unwrap();
    assert_eq!(answer["code"], "invalid");

    env.create("c", &[]);
    env.run(&["edit", "a", "--description", "newest"]).ok();
    env.run(&["revoke", "--yes", "b"]).ok();
    let (count, head) = env.audit_head();
    assert!(count >= old_count + 3, "created, edited, revoked: {count}");
    let wal = with_suffix(env.db_file(), "-wal");
    assert!(
        fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false),
        "the newest commits are in the -wal (else this test proves nothing)"
    );
    holder.kill();

    // Copied without the -wal (a careless backup, a lost file).
    let copy = env.root().join("copy.db");
    fs::copy(env.db_file(), &copy).unwrap();
    let copy = copy.to_str().unwrap();
    let out = env.run(&["--db", copy, "audit", "verify"]);
    out.ok();
    let (copied_count, _) = parse_verify_line(&out.stdout);
    assert!(copied_count < count, "the copy lost events: {out}");
    let out = env.run(&["--db", copy, "audit", "verify", "--expect-head", &head]);
    let line = out.fails(8);
    assert!(line.contains(&head), "{line}");

    // The store itself, with its -wal, still has them.
    env.run(&["audit", "verify", "--expect-head", &head]).ok();
}
