//! `keyctl init [--prefix P]`.

use crate::support::*;

#[test]
fn init_creates_the_store_and_says_so() {
    let env = TestEnv::new();
    let out = env.run(&["init"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!("created key store at {}\n", env.shown())
    );
    assert!(env.store_exists());
    if sqlite_only_test("the store file's mode") {
        assert_eq!(mode(env.db_file()), 0o600);
    }
    // The new store is empty and readable.
    assert_eq!(env.list_json(&[]), Vec::<serde_json::Value>::new());
}

#[test]
fn init_quiet_prints_nothing() {
    let env = TestEnv::new();
    let out = env.run(&["init", "-q"]);
    out.ok();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert!(env.store_exists());
}

#[test]
fn init_stamps_an_application_id_and_a_schema_version() {
    let env = TestEnv::initialized();
    if on_postgres() {
        // The schema's version record names the oldest keyctl that can use it.
        assert!(env.query_i64("SELECT max(version) FROM schema_meta") >= 1);
        assert_eq!(
            env.query_i64("SELECT count(*) FROM schema_meta WHERE min_keyctl LIKE '%.%.%'"),
            env.count_rows("schema_meta")
        );
        return;
    }
    let conn = or_skip!(env.sqlite_only("the SQLite file's application_id and user_version"));
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_ne!(app_id, 0, "a keyctl store carries an application_id");
    assert!(version >= 1, "a keyctl store carries a schema version");
}

#[test]
fn init_refuses_to_overwrite_a_store() {
    let env = TestEnv::initialized();
    env.create("keep-me", &[]);
    let before = env.snapshot();
    let out = env.run(&["init"]);
    let line = out.fails(4);
    assert_eq!(
        line,
        format!(
            "error: a key store already exists at {}: keyctl init never overwrites one",
            env.shown()
        )
    );
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.list_names(&[]), ["keep-me"]);
}

#[test]
fn init_prefix_sets_the_secret_prefix() {
    let env = TestEnv::new();
    env.run(&["init", "--prefix", "acme"]).ok();
    let out = env.run(&["config", "get", "key-prefix"]);
    out.ok();
    assert_eq!(out.stdout, "acme\n");

    let live = env.create("live", &[]);
    assert_secret(&live.secret, "acme", "live");
    assert_eq!(live.prefix(), &live.secret[.."acme_live_".len() + 4]);

    let test = env.create("test", &["--test"]);
    assert_secret(&test.secret, "acme", "test");
    assert_eq!(test.details["livemode"], false);
}

#[test]
fn init_prefix_accepts_the_documented_range() {
    for prefix in ["a", "0", "abcdefghij012345"] {
        let env = TestEnv::new();
        env.run(&["init", "--prefix", prefix]).ok();
        assert_secret(&env.create("k", &[]).secret, prefix, "live");
    }
}

#[test]
fn init_prefix_rejects_bad_prefixes_and_creates_nothing() {
    for bad in ["ACME", "", "abcdefghij0123456", "a-b", "a_b", "ä"] {
        let env = TestEnv::new();
        let before = env.snapshot();
        let out = env.run(&["init", "--prefix", bad]);
        let line = out.fails(2);
        assert!(
            line.contains(&format!("'{bad}'")),
            "names the value: {line}"
        );
        assert!(line.contains("a-z"), "says what would work: {line}");
        assert_eq!(
            env.snapshot(),
            before,
            "init --prefix {bad:?} changed files"
        );
    }
}

/// A file that is not a keyctl store is not "a key store that already exists": init
/// names what it found, like every other command (exit 1), and leaves it alone.
#[test]
fn init_names_what_it_found_at_a_foreign_path() {
    let env = TestEnv::new();
    let dir = env.root().join("a-folder");
    std::fs::create_dir(&dir).unwrap();
    let text = env.root().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let empty = env.root().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    let foreign = env.root().join("foreign.db");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = env.snapshot();
    for (path, what) in [
        (&dir, "directory"),
        (&text, "not an SQLite database"),
        (&empty, "empty"),
        (&foreign, "another program"),
    ] {
        let out = env.run(&["--db", path.to_str().unwrap(), "init"]);
        let line = out.fails(1);
        assert!(line.contains(what), "init on {what}: {line}");
        assert!(!line.contains("already exists"), "{line}");
    }
    assert_eq!(env.snapshot(), before);
}
