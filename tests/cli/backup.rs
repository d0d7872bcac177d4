//! `keyctl backup PATH`: a consistent copy that opens as a store with the same keys
//! and audit chain, mode 0600, no clobbering without `--force`, and consistency while
//! other keyctl processes write.

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::*;

/// `keyctl --db PATH ARGS`.
fn run_on(env: &TestEnv, db: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    env.run(&all)
}

/// A store with keys in every state, settings and a non-trivial audit chain.
fn busy_store(env: &TestEnv) {
    env.run(&["config", "set", "max-keys", "50"]).ok();
    env.create("active", &["--scope", "read", "--credits", "10"]);
    env.create("disabled", &["--expires", "30d"]);
    env.create("revoked", &[]);
    env.create("rotated", &["--allow-ip", "10.0.0.0/8"]);
    env.run(&["disable", "disabled"]).ok();
    env.run(&["revoke", "--yes", "revoked", "--reason", "r"])
        .ok();
    env.run(&["rotate", "--yes", "--grace", "1d", "rotated"])
        .ok();
    env.create("gone", &[]);
    env.run(&["delete", "--yes", "gone"]).ok();
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn integrity(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).expect("open the backup");
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

#[test]
fn the_copy_is_a_store_with_the_same_keys_settings_and_audit_chain() {
    let env = TestEnv::initialized();
    busy_store(&env);
    let dir = env.root().join("backups");
    fs::create_dir(&dir).unwrap();
    let copy = dir.join("keys-copy.db");
    let out = env.run(&["backup", copy.to_str().unwrap()]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!("backed up {} to {}\n", env.shown(), copy.display())
    );
    assert_eq!(mode(&copy), 0o600);
    assert_eq!(
        files_in(&dir),
        ["keys-copy.db"],
        "no temporary or journal file is left behind"
    );
    assert_eq!(integrity(&copy), "ok");

    for args in [
        &["list", "--json", "--all"][..],
        &["list", "--json"],
        &["audit", "--json"],
        &["audit", "verify"],
        &["config", "list", "--json"],
        &["show", "--json", "active"],
    ] {
        let original = env.run(args);
        original.ok();
        let copied = run_on(&env, &copy, args);
        copied.ok();
        assert_eq!(copied.stdout, original.stdout, "{args:?}");
    }
    assert_eq!(env.list_json(&["--all"]).len(), 5);

    // The copy is a working store of its own: it takes writes, the original does not
    // see them.
    run_on(&env, &copy, &["create", "--name", "only-in-copy"]).ok();
    assert!(!env.list_names(&[]).contains(&"only-in-copy".to_string()));
    run_on(&env, &copy, &["audit", "verify"]).ok();
}

#[test]
fn the_copy_holds_no_secret() {
    let env = TestEnv::initialized();
    let k = env.create("k", &[]);
    let copy = env.root().join("copy.db");
    env.run(&["backup", copy.to_str().unwrap()]).ok();
    let bytes = fs::read(&copy).unwrap();
    assert!(contains_bytes(&bytes, k.id().as_bytes()));
    assert!(!contains_bytes(&bytes, &k.secret.as_bytes()[8..]));
}

#[test]
fn an_existing_file_is_refused_unless_force() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let target = env.root().join("precious.db");
    fs::write(&target, "not yours to overwrite").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let before = env.snapshot();
    let out = env.run(&["backup", target.to_str().unwrap()]);
    assert_eq!(
        out.fails(4),
        format!(
            "error: {} already exists: pass --force to replace it",
            target.display()
        )
    );
    assert_eq!(env.snapshot(), before);

    let out = env.run(&["backup", "--force", target.to_str().unwrap()]);
    out.ok();
    assert_eq!(mode(&target), 0o600, "the replaced file is private too");
    assert_eq!(integrity(&target), "ok");
    assert_eq!(
        run_on(&env, &target, &["list", "--json"]).stdout,
        env.run(&["list", "--json"]).stdout
    );
    // An older backup is replaced by a newer one.
    env.create("later", &[]);
    env.run(&["backup", "--force", target.to_str().unwrap()])
        .ok();
    assert_eq!(
        run_on(&env, &target, &["list", "--json"]).stdout,
        env.run(&["list", "--json"]).stdout
    );
}

#[test]
fn unusable_destinations_and_sources_are_refused() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let folder = env.root().join("a-folder");
    fs::create_dir(&folder).unwrap();
    let in_missing = env.root().join("no-such-folder").join("copy.db");
    let before = env.snapshot();
    let mut cases: Vec<(Vec<String>, i32, String)> = vec![
        (
            vec!["backup".into(), folder.display().to_string()],
            4,
            "is a directory".into(),
        ),
        (
            vec!["backup".into(), in_missing.display().to_string()],
            1,
            "does not exist".into(),
        ),
    ];
    if sqlite_only_test("a backup over the store's own file") {
        cases.push((
            vec![
                "backup".into(),
                "--force".into(),
                env.db_file().display().to_string(),
            ],
            4,
            "is the key store itself: choose another file".into(),
        ));
    }
    for (args, code, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&args);
        let line = out.fails(*code);
        assert!(line.contains(says.as_str()), "{args:?}: {line}");
        assert_eq!(env.snapshot(), before, "{args:?} changed something");
    }
    assert!(!in_missing.parent().unwrap().exists());

    // No store to copy.
    let empty = TestEnv::new();
    let dest = empty.root().join("copy.db");
    let out = empty.run(&["backup", dest.to_str().unwrap()]);
    assert_eq!(out.fails(1), empty.no_store_error());
    assert!(!dest.exists());
}

/// A loop of `keyctl create` runs in another thread while backups are taken: each
/// backup is a consistent snapshot (integrity check, intact audit chain, one created
/// event per key) and no writer fails.
#[test]
fn backups_are_consistent_while_another_process_writes() {
    let env = Arc::new(TestEnv::initialized());
    env.create("seed", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (env, stop, written) = (env.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < 2000 {
                let name = format!("w{i}");
                let out = env.run(&["create", "--name", &name, "--scope", "read"]);
                if out.code != Some(0) {
                    failures.push(out.to_string());
                }
                // An edit too, so pages are rewritten, not only appended.
                let out = env.run(&["edit", &name, "--description", "edited"]);
                if out.code != Some(0) {
                    failures.push(out.to_string());
                }
                written.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
            failures
        })
    };
    let wait_for_rounds = |n: usize| {
        wait_for("the writer's progress", || {
            written.load(Ordering::SeqCst) >= n
        });
    };
    let mut copies: Vec<PathBuf> = Vec::new();
    let mut done = written.load(Ordering::SeqCst);
    for round in 0..4 {
        // When the last backup ended, the writer had finished `done` rounds and was
        // perhaps in round done + 1; round done + 2 commits strictly after that
        // backup, so each backup races fresh writes and sees more than the last.
        wait_for_rounds(done + 2);
        let copy = env.root().join(format!("during-{round}.db"));
        let out = env.run(&["backup", copy.to_str().unwrap()]);
        out.ok();
        copies.push(copy);
        done = written.load(Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    let failures = writer.join().expect("writer thread");
    assert!(
        failures.is_empty(),
        "writers failed while backups ran:\n{}",
        failures.join("\n")
    );

    let mut sizes = Vec::new();
    for copy in &copies {
        assert_eq!(integrity(copy), "ok", "{}", copy.display());
        assert_eq!(mode(copy), 0o600);
        let (events, _) = parse_verify_line(&run_on(&env, copy, &["audit", "verify"]).stdout);
        let c = rusqlite::Connection::open(copy).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        let keys = count("SELECT count(*) FROM keys");
        let created = count("SELECT count(*) FROM audit_events WHERE action = 'created'");
        let edited = count("SELECT count(*) FROM audit_events WHERE action = 'edited'");
        let described = count("SELECT count(*) FROM keys WHERE description = 'edited'");
        assert_eq!(keys, created, "each key came with its event");
        assert_eq!(described, edited, "each edit came with its event");
        assert_eq!(events as i64, created + edited);
        sizes.push(keys);
    }
    assert!(
        sizes.windows(2).all(|w| w[0] < w[1]),
        "each backup saw later writes: {sizes:?}"
    );
    // The live store is whole too.
    env.audit_head();
    if sqlite_only_test("PRAGMA integrity_check of the live store's file") {
        assert_eq!(integrity(env.db_file()), "ok");
    }
}

/// Runs a system tool that makes a test fixture (`mkfifo`, `mknod`).
fn make(tool: &str, args: &[&str]) {
    let status = Command::new(tool).args(args).status().expect(tool);
    assert!(status.success(), "{tool} {args:?} failed");
}

/// The file type of `path` itself (a symlink is not followed), for "still a FIFO".
fn file_type(path: &Path) -> fs::FileType {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .file_type()
}

/// Issue 10: `backup /dev/null --force` replaced the device node, a FIFO or a socket
/// would be replaced alike, and the store's side files were accepted. Each is refused
/// with exit 4, with and without --force, directly and through a symlink, and nothing
/// changes: the special file keeps its type, the store its bytes.
#[test]
fn special_files_and_the_stores_own_files_are_refused() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    // Special files live outside the store's folder, whose snapshot reads every file.
    let odd = tempfile::tempdir().unwrap();
    let fifo = odd.path().join("fifo");
    make("mkfifo", &[fifo.to_str().unwrap()]);
    let nulldev = odd.path().join("nulldev");
    make("mknod", &[nulldev.to_str().unwrap(), "c", "1", "3"]);
    let socket = odd.path().join("socket");
    let _listener = UnixListener::bind(&socket).unwrap();
    let folder = odd.path().join("folder");
    fs::create_dir(&folder).unwrap();

    let mut cases: Vec<(PathBuf, String)> = vec![
        (
            fifo.clone(),
            "is a FIFO: backup writes only to a new or regular file".into(),
        ),
        (nulldev.clone(), "is a character device".into()),
        (socket.clone(), "is a socket".into()),
        (folder.clone(), "is a directory".into()),
    ];
    let store_files = sqlite_only_test("a backup over the store's own file and side files");
    if store_files {
        cases.push((
            env.db_file().to_path_buf(),
            "is the key store itself".into(),
        ));
        for (suffix, what) in [
            ("-wal", "write-ahead log"),
            ("-shm", "shared-memory index"),
            ("-journal", "rollback journal"),
        ] {
            cases.push((
                with_suffix(env.db_file(), suffix),
                format!("is the key store's {what}"),
            ));
        }
    }
    // The same through a symlink each, and the store through a relative path.
    let links = cases.len();
    for (i, (path, says)) in cases.clone().into_iter().enumerate() {
        let link = odd.path().join(format!("link{i}"));
        symlink(&path, &link).unwrap();
        let says = format!("links to {}, which {says}", path.display());
        cases.push((link, says));
    }
    if store_files {
        cases.push((
            "./keys.db-wal".into(),
            "is the key store's write-ahead log".into(),
        ));
    }

    let before = env.snapshot();
    for (path, says) in &cases {
        for force in [true, false] {
            let mut args = vec!["backup", path.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            let out = env.run(&args);
            let line = out.fails(4);
            assert!(line.contains(says.as_str()), "{args:?}: {line}");
            assert_eq!(env.snapshot(), before, "{args:?} changed the store");
        }
    }
    assert!(file_type(&fifo).is_fifo(), "the FIFO is still a FIFO");
    assert!(
        file_type(&nulldev).is_char_device(),
        "the node is still a device"
    );
    assert!(file_type(&socket).is_socket());
    assert_eq!(files_in(&folder), Vec::<String>::new());
    if store_files {
        assert!(!with_suffix(env.db_file(), "-journal").exists());
    }
    for i in 0..links {
        assert!(file_type(&odd.path().join(format!("link{i}"))).is_symlink());
    }
}

/// A symlink is written through to its target, as `cp` does: the target is replaced
/// (with --force when it exists), the link stays a link, and the temporary copy is made
/// beside the target, not beside the link.
#[test]
fn a_symlink_is_written_through_to_its_target() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let links = env.root().join("links");
    let real = env.root().join("real");
    fs::create_dir(&links).unwrap();
    fs::create_dir(&real).unwrap();
    let target = real.join("backup.db");
    fs::write(&target, "an older backup").unwrap();
    let link = links.join("latest.db");
    symlink("../real/backup.db", &link).unwrap();

    let before = env.snapshot();
    let out = env.run(&["backup", link.to_str().unwrap()]);
    assert_eq!(
        out.fails(4),
        format!(
            "error: {} links to ../real/backup.db, which already exists: pass --force to replace it",
            link.display()
        )
    );
    assert_eq!(env.snapshot(), before);

    let out = env.run(&["backup", "--force", link.to_str().unwrap()]);
    out.ok();
    assert!(file_type(&link).is_symlink(), "the link is kept");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("../real/backup.db")
    );
    assert!(file_type(&target).is_file());
    assert_eq!(mode(&target), 0o600);
    assert_eq!(integrity(&target), "ok");
    assert_eq!(
        run_on(&env, &target, &["list", "--json"]).stdout,
        env.run(&["list", "--json"]).stdout
    );
    assert_eq!(files_in(&links), ["latest.db"]);
    assert_eq!(files_in(&real), ["backup.db"], "no temporary file is left");
}

/// A dangling symlink is refused (as GNU cp refuses to write through one): no file
/// appears at the link's target.
#[test]
fn a_dangling_symlink_is_refused() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let link = env.root().join("dangling.db");
    let nowhere = env.root().join("nowhere.db");
    symlink(&nowhere, &link).unwrap();
    for args in [
        vec!["backup", link.to_str().unwrap()],
        vec!["backup", "--force", link.to_str().unwrap()],
    ] {
        let out = env.run(&args);
        assert_eq!(
            out.fails(4),
            format!(
                "error: {} links to {}, which does not exist: backup does not write through a dangling symlink; remove the link or give another path",
                link.display(),
                nowhere.display()
            )
        );
        assert!(!nowhere.exists());
        assert!(file_type(&link).is_symlink());
    }
    // A link that leads to itself is refused alike.
    let looped = env.root().join("loop.db");
    symlink(&looped, &looped).unwrap();
    let out = env.run(&["backup", "--force", looped.to_str().unwrap()]);
    assert!(
        out.fails(4)
            .contains("loop.db is a symlink that cannot be followed"),
        "{out}"
    );
    assert!(file_type(&looped).is_symlink());
}

/// Issue 10: `backup STORE-wal --force` was accepted and then broke a running
/// `verify --stream` ("disk I/O error"). Refused now, the stream keeps answering.
#[test]
fn a_running_stream_keeps_answering_after_a_refused_backup_over_its_wal() {
    sqlite_only!("the store's WAL file");
    let env = TestEnv::initialized();
    let k = env.create("svc", &[]);
    let mut command = env.command();
    command.args(["verify", "--stream"]);
    let mut stream = LiveProcess::spawn(command);
    let request = serde_json::json!({"key": k.secret}).to_string();
    let mut ask = || -> serde_json::Value {
        let line = stream.ask(&request);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not json ({e}): {line:?}"))
    };
    assert_eq!(ask()["code"], "valid");
    let wal = with_suffix(env.db_file(), "-wal");
    assert!(wal.exists(), "the stream holds the store open in WAL mode");
    for suffix in ["-wal", "-shm"] {
        let side = with_suffix(env.db_file(), suffix);
        env.run(&["backup", "--force", side.to_str().unwrap()])
            .fails(4);
    }
    for _ in 0..3 {
        assert_eq!(ask()["code"], "valid");
    }
    assert_eq!(stream.finish(), Some(0), "the stream ends at end of input");
    assert_eq!(env.count_rows("requests"), 4);
    env.run(&["audit", "verify"]).ok();
}
