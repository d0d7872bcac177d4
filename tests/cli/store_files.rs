//! The store on disk: default location, file and folder modes, no secret at rest
//! (file and WAL), and refusals of files that are not a usable keyctl store.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::*;

#[test]
fn store_file_is_private() {
    sqlite_only!("the store file's mode and the files beside it");
    let env = TestEnv::new();
    env.run(&["create", "--name", "k"]).ok();
    assert_eq!(mode(env.db_file()), 0o600);
    // No temporary files are left next to it.
    let mut names: Vec<String> = fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "home", "keys.db"]);
}

#[test]
fn default_store_lives_in_xdg_data_home_in_a_private_folder() {
    let env = TestEnv::new();
    let out = env
        .keyctl(&["create", "--name", "first"])
        .with(|c| {
            c.env_remove("KEYCTL_DB");
        })
        .run();
    out.ok();
    let folder = env.data_home().join("keyctl");
    let db = folder.join("keys.db");
    assert_eq!(
        out.stderr.lines().next(),
        Some(format!("created key store at {}", db.display()).as_str()),
        "{out}"
    );
    assert!(db.is_file());
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert!(!env.store_exists(), "KEYCTL_DB was not set");

    // Read commands find it there too.
    let out = env
        .keyctl(&["list", "--json"])
        .with(|c| {
            c.env_remove("KEYCTL_DB");
        })
        .run();
    out.ok();
    assert_eq!(names(out.json().as_array().unwrap()), ["first"]);
}

#[test]
fn default_store_without_xdg_data_home_is_under_home() {
    let env = TestEnv::new();
    let out = env
        .keyctl(&["init"])
        .with(|c| {
            c.env_remove("KEYCTL_DB").env_remove("XDG_DATA_HOME");
        })
        .run();
    out.ok();
    let share = env.home().join(".local").join("share");
    let db = share.join("keyctl").join("keys.db");
    assert!(db.is_file(), "{out}");
    assert_eq!(mode(&db), 0o600);
    for folder in [
        env.home().join(".local"),
        share.clone(),
        share.join("keyctl"),
    ] {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
}

#[test]
fn default_store_missing_for_a_read_command_creates_no_folder() {
    let env = TestEnv::new();
    let before = env.snapshot();
    let db = env.data_home().join("keyctl").join("keys.db");
    for args in [&["list"][..], &["show", "x"], &["config", "list"]] {
        let out = env
            .keyctl(args)
            .with(|c| {
                c.env_remove("KEYCTL_DB");
            })
            .run();
        assert_eq!(
            out.fails(1),
            format!(
                "error: no key store at {} (run 'keyctl init' or pass --db)",
                db.display()
            )
        );
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn db_in_a_missing_folder_is_refused_and_no_folder_is_made() {
    let env = TestEnv::new();
    let before = env.snapshot();
    let db = env.root().join("no-such-folder").join("keys.db");
    let db = db.to_str().unwrap();
    for args in [
        &["--db", db, "init"][..],
        &["--db", db, "create", "--name", "k"],
        &["--db", db, "config", "set", "max-keys", "3"],
        &["--db", db, "list"],
    ] {
        let out = env.run(args);
        let line = out.fails(1);
        assert!(line.contains(db), "names the path: {line}");
    }
    assert_eq!(env.snapshot(), before);
}

// ---- no secret at rest ----

/// The secret, its body (after `sk_live_`) and its 32 random characters.
fn secret_forms(secret: &str) -> Vec<String> {
    let body = &secret["sk_live_".len()..];
    vec![secret.to_string(), body.to_string(), body[..32].to_string()]
}

fn assert_no_secret(bytes: &[u8], secret: &str, what: &str) {
    for form in secret_forms(secret) {
        assert!(
            !contains_bytes(bytes, form.as_bytes()),
            "{what} holds {form:?}"
        );
    }
}

#[test]
fn store_file_holds_no_secret() {
    let env = TestEnv::initialized();
    let a = env.create("a", &["--description", "x"]);
    let b = env.create("b", &["--test"]);
    // The pipe form too.
    let out = env.run(&["create", "--name", "c"]);
    out.ok();
    let c = out.stdout.trim_end().to_string();
    // The file and its WAL, or every table's rows.
    let stored = env.stored_bytes();
    assert!(
        stored
            .iter()
            .any(|(_, bytes)| contains_bytes(bytes, a.id().as_bytes())),
        "the key is stored"
    );
    for (place, bytes) in &stored {
        for secret in [&a.secret, &b.secret, &c] {
            assert_no_secret(bytes, secret, place);
        }
    }
}

/// With another connection holding the store open, keyctl's writes stay in the WAL
/// (nothing checkpoints them away), so the WAL's bytes can be searched; and the
/// -wal/-shm files are private.
#[test]
fn wal_holds_no_secret_and_wal_files_are_private() {
    let env = TestEnv::initialized();
    let holder = or_skip!(env.sqlite_only("searches the SQLite file and its WAL for secrets"));
    let count: i64 = holder
        .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);

    let k = env.create("walled", &["--description", "in the wal"]);
    let out = env.run(&["create", "--name", "piped"]);
    out.ok();
    let piped = out.stdout.trim_end().to_string();

    let wal = with_suffix(env.db_file(), "-wal");
    let shm = with_suffix(env.db_file(), "-shm");
    let wal_bytes = fs::read(&wal).expect("the WAL is still there");
    assert!(
        contains_bytes(&wal_bytes, k.id().as_bytes()),
        "the new key's row is in the WAL (else this test proves nothing)"
    );
    for secret in [&k.secret, &piped] {
        assert_no_secret(&wal_bytes, secret, "keys.db-wal");
        assert_no_secret(&fs::read(env.db_file()).unwrap(), secret, "keys.db");
    }
    assert_eq!(mode(env.db_file()), 0o600);
    assert_eq!(mode(&wal), 0o600);
    assert_eq!(mode(&shm), 0o600);
    drop(holder);
}

// ---- files that are not a usable keyctl store ----

fn foreign_sqlite(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
}

/// A real store whose schema version is from the future.
fn newer_store(env: &TestEnv, path: &Path) {
    let out = env.run(&["--db", path.to_str().unwrap(), "init"]);
    out.ok();
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA user_version = 99;").unwrap();
}

/// A real store with its schema page overwritten.
fn corrupt_store(env: &TestEnv, path: &Path) {
    let out = env.run(&["--db", path.to_str().unwrap(), "init"]);
    out.ok();
    let mut bytes = fs::read(path).unwrap();
    assert!(bytes.len() > 4096);
    for b in &mut bytes[100..4096] {
        *b = 0xA5;
    }
    fs::write(path, bytes).unwrap();
}

/// Every command, read or write, refuses a file that is not a usable keyctl store
/// with one line that names what was found, exit 1, and leaves everything as it was.
#[test]
fn unusable_files_are_refused_by_name_and_left_untouched() {
    let env = TestEnv::new();
    let p = |name: &str| -> PathBuf { env.root().join(name) };
    foreign_sqlite(&p("foreign.db"));
    fs::write(
        p("notes.txt"),
        "these are not the keys you are looking for\n",
    )
    .unwrap();
    fs::write(p("empty.db"), "").unwrap();
    newer_store(&env, &p("newer.db"));
    corrupt_store(&env, &p("corrupt.db"));
    fs::create_dir(p("folder.db")).unwrap();

    let cases = [
        ("foreign.db", "another program"),
        ("notes.txt", "not an SQLite database"),
        ("empty.db", "empty file"),
        ("newer.db", "newer keyctl"),
        ("corrupt.db", "corrupt"),
        ("folder.db", "directory"),
    ];
    let commands: [&[&str]; 7] = [
        &["list"],
        &["list", "--json"],
        &["show", "anything"],
        &["config", "get", "max-keys"],
        &["config", "list"],
        &["create", "--name", "z"],
        &["config", "set", "max-keys", "3"],
    ];
    let before = env.snapshot();
    let mut problems = Vec::new();
    for (file, what) in cases {
        let path = p(file);
        for command in commands {
            let mut args = vec!["--db", path.to_str().unwrap()];
            args.extend_from_slice(command);
            let out = env.run(&args);
            let ok = out.code == Some(1)
                && out.stdout.is_empty()
                && out.stderr.lines().count() == 1
                && out.stderr.starts_with("error: ")
                && out.stderr.contains(what)
                && out.stderr.contains(file);
            if !ok {
                problems.push(format!("{file} ({what}):\n{out}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(env.snapshot(), before, "a refused file was changed");
}

#[test]
fn newer_store_message_says_to_upgrade() {
    let env = TestEnv::new();
    if on_postgres() {
        // A version record that needs a newer keyctl.
        env.run(&["init"]).ok();
        env.tamper("INSERT INTO schema_meta VALUES (99, '99.0.0', 0)");
    } else {
        newer_store(&env, env.db_file());
    }
    let out = env.run(&["list"]);
    let line = out.fails(1);
    assert!(line.contains("99") && line.contains("upgrade"), "{line}");
}

/// Issue 10: a store whose `user_version` was tampered with printed ~90 lines of
/// migration SQL, a dropped column a whole statement. Every command that fails on a
/// schema that does not match its version says so in one line, without SQL, exit 1,
/// and changes nothing. A wrong version stops every command (the migration fails); a
/// missing column or table stops those that use it.
#[test]
fn a_schema_that_does_not_match_its_version_is_one_line_without_sql() {
    let tamperings = [
        ("PRAGMA user_version = 0", true),
        ("PRAGMA user_version = 1", true),
        ("ALTER TABLE keys DROP COLUMN last_used_ip", false),
        ("ALTER TABLE keys RENAME COLUMN description TO about", false),
        ("ALTER TABLE requests DROP COLUMN ip", false),
        ("DROP TABLE audit_events", false),
    ];
    let commands: [&[&str]; 11] = [
        &["list"],
        &["list", "--json"],
        &["show", "a"],
        &["create", "--name", "z"],
        &["edit", "a", "--description", "x"],
        &["disable", "a"],
        &["verify"],
        &["logs"],
        &["audit"],
        &["usage"],
        &["config", "set", "max-keys", "3"],
    ];
    let sql_words = [
        "SELECT", "INSERT", "UPDATE", "CREATE", " FROM ", "WHERE", "offset",
    ];
    for (tampering, all_fail) in tamperings {
        let env = TestEnv::initialized();
        let k = env.create("a", &[]);
        // A dropped or renamed column or table is plain SQL on both backends; the
        // version lives in SQLite's user_version.
        if tampering.starts_with("PRAGMA")
            && !sqlite_only_test("a wrong version stamped into SQLite's user_version")
        {
            continue;
        }
        env.tamper(tampering);
        let mut before = env.snapshot();
        let mut failed = 0;
        for command in commands {
            let out = env.run_with_stdin(command, k.secret.as_bytes());
            if out.code == Some(0) {
                assert!(!all_fail, "{tampering}: {command:?} worked\n{out}");
                // A command that works may write.
                before = env.snapshot();
                continue;
            }
            failed += 1;
            let line = out.fails(1);
            assert!(
                line.starts_with(&format!(
                    "error: key store {}: its schema does not match its version (",
                    env.shown()
                )) && line.ends_with("): restore it from a backup"),
                "{tampering}: {command:?}: {line}"
            );
            assert!(
                !sql_words.iter().any(|w| line.contains(w)),
                "{tampering}: SQL in the error: {line}"
            );
            assert_eq!(
                env.snapshot(),
                before,
                "{tampering}: {command:?} changed the store"
            );
        }
        assert!(failed > 0, "{tampering} went unnoticed");
    }
}
