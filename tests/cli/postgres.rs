//! SPEC §6, what only a PostgreSQL store has: a password never reaches argv or a
//! message (a password inside a `--db` or `copy --to` URL is refused, exit 2; errors
//! show the URL with `***`), and each way of not getting to a store — a wrong
//! password, an unreachable host, TLS the server refuses, a database without a keyctl
//! store — is one line, exit 1, without the password; a schema that needs a newer
//! keyctl says so in one line.
//!
//! The tests that need a real server take the one `KEYCTL_TEST_PG` names (`pg`); a
//! wrong password is answered by a stand-in server here, since the throwaway cluster
//! trusts every local connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use crate::support::*;

/// A password no output may contain.
const PASSWORD: &str = "Hunter2-never-shown";

/// Returns from a test that needs a PostgreSQL server when none is configured, after
/// saying so: the SQLite run without `KEYCTL_TEST_PG`. The PostgreSQL run always has
/// one (`fresh_database` insists).
macro_rules! needs_server {
    () => {
        if !on_postgres() && std::env::var_os("KEYCTL_TEST_PG").is_none() {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (needs a PostgreSQL server): KEYCTL_TEST_PG is not set [{}]",
                std::thread::current().name().unwrap_or("?")
            );
            return;
        }
    };
}

/// `url` with `user:PASSWORD@` in place of its user.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let rest = match rest.split_once('@') {
        Some((user, hosts)) => format!("{}:{PASSWORD}@{hosts}", user.split(':').next().unwrap()),
        None => format!("postgres:{PASSWORD}@{rest}"),
    };
    format!("{scheme}://{rest}")
}

/// `keyctl ARGS` with `KEYCTL_DB` set to `url` (the environment, where a password
/// may be).
fn run_on(env: &TestEnv, url: &str, args: &[&str]) -> Outcome {
    env.keyctl(args)
        .with(|c| {
            c.env("KEYCTL_DB", url);
        })
        .run()
}

/// A port on 127.0.0.1 where nothing listens (the kernel gave it and took it back).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Asserts `out` failed with `code` in one line that shows no password, and returns
/// that line.
fn fails_without_password(out: &Outcome, code: i32) -> String {
    let line = out.fails(code).to_string();
    assert!(
        !out.stderr.contains(PASSWORD),
        "the password is shown\n{out}"
    );
    line
}

// ---- a password in argv ----

#[test]
fn a_password_inside_a_db_url_is_refused_and_not_echoed() {
    let env = TestEnv::new();
    let port = closed_port();
    for url in [
        format!("postgres://admin:{PASSWORD}@127.0.0.1:{port}/keys"),
        format!("postgresql://admin:{PASSWORD}@127.0.0.1:{port}/keys?sslmode=require"),
        format!("postgres://admin@127.0.0.1:{port}/keys?password={PASSWORD}"),
    ] {
        for args in [
            vec!["--db", url.as_str(), "list"],
            vec!["--db", url.as_str(), "init"],
            vec!["list", "--db", url.as_str()],
            vec!["--db", url.as_str(), "create", "--name", "k"],
        ] {
            let out = env.run(&args);
            let line = fails_without_password(&out, 2);
            assert!(line.contains("password"), "says why: {line}");
        }
    }
    assert!(!env.store_exists());
}

#[test]
fn a_password_inside_a_copy_target_url_is_refused_and_not_echoed() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let before = env.snapshot();
    let port = closed_port();
    let url = format!("postgres://admin:{PASSWORD}@127.0.0.1:{port}/keys");
    let out = env.run(&["copy", "--to", &url]);
    let line = fails_without_password(&out, 2);
    assert!(line.contains("password"), "says why: {line}");
    assert_eq!(env.snapshot(), before);
}

/// In `KEYCTL_DB` (the environment, which other users cannot read) a password is
/// fine: the store opens, and nothing prints it.
#[test]
fn a_password_inside_keyctl_db_is_used() {
    needs_server!();
    let database = fresh_database();
    let url = with_password(&database.url);
    let env = TestEnv::new();
    let run = |args: &[&str]| run_on(&env, &url, args);
    let out = run(&["init"]);
    out.ok();
    assert!(!out.stderr.contains(PASSWORD), "{out}");
    assert_eq!(
        out.stderr,
        format!("created key store at {}\n", masked(&url)),
        "the URL with ***"
    );
    let out = run(&["create", "--name", "k"]);
    out.ok();
    assert!(!out.stderr.contains(PASSWORD), "{out}");
    // An error names the store with *** too.
    let out = run(&["init"]);
    let line = fails_without_password(&out, 4);
    assert!(line.contains(&masked(&url)), "{line}");
}

// ---- not getting to a store ----

#[test]
fn an_unreachable_host_is_one_line_without_the_password() {
    let env = TestEnv::new();
    let url = format!(
        "postgres://admin:{PASSWORD}@127.0.0.1:{}/keys?connect_timeout=5",
        closed_port()
    );
    for args in [&["list"][..], &["create", "--name", "k"], &["init"]] {
        let out = run_on(&env, &url, args);
        let line = fails_without_password(&out, 1);
        assert!(line.contains(&masked(&url)), "names the store: {line}");
    }
}

/// A stand-in server on 127.0.0.1 that asks every client for its password in clear
/// and refuses it, as PostgreSQL does for a wrong one (SQLSTATE 28P01); it sends each
/// password it got on the channel.
fn refusing_server() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    // Left running until the test binary ends: it only answers on loopback.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            refuse_password(stream, &tx);
        }
    });
    (port, rx)
}

/// One client of `refusing_server`: no TLS, a clear-text password request, then
/// FATAL 28P01. The password it sent goes on `passwords` before the refusal, so the
/// test finds it there once keyctl has exited.
fn refuse_password(mut stream: TcpStream, passwords: &mpsc::Sender<String>) -> Option<()> {
    let read_message = |stream: &mut TcpStream, tagged: bool| -> Option<(u8, Vec<u8>)> {
        let mut tag = [0u8; 1];
        if tagged {
            stream.read_exact(&mut tag).ok()?;
        }
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).ok()?;
        let len = u32::from_be_bytes(len).checked_sub(4)? as usize;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).ok()?;
        Some((tag[0], body))
    };
    let (_, mut startup) = read_message(&mut stream, false)?;
    // SSLRequest (or GSSENCRequest): not offered, then the real startup follows.
    while startup.len() == 4 {
        stream.write_all(b"N").ok()?;
        startup = read_message(&mut stream, false)?.1;
    }
    // AuthenticationCleartextPassword.
    stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).ok()?;
    let (tag, body) = read_message(&mut stream, true)?;
    if tag != b'p' {
        return None;
    }
    let password = String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).into_owned();
    passwords.send(password).ok()?;
    let mut fields = Vec::new();
    for (code, text) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28P01"),
        (b'M', "password authentication failed for user \"admin\""),
    ] {
        fields.push(code);
        fields.extend_from_slice(text.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut error = vec![b'E'];
    error.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    error.extend_from_slice(&fields);
    stream.write_all(&error).ok()
}

#[test]
fn a_wrong_password_is_one_line_without_the_password() {
    let (port, passwords) = refusing_server();
    let env = TestEnv::new();
    // From the URL in KEYCTL_DB, and from PGPASSWORD.
    let in_url = format!("postgres://admin:{PASSWORD}@127.0.0.1:{port}/keys?sslmode=disable");
    let without = format!("postgres://admin@127.0.0.1:{port}/keys?sslmode=disable");
    for (url, pgpassword) in [(&in_url, None), (&without, Some(PASSWORD))] {
        for args in [&["list"][..], &["create", "--name", "k"]] {
            let out = env
                .keyctl(args)
                .with(|c| {
                    c.env("KEYCTL_DB", url);
                    if let Some(p) = pgpassword {
                        c.env("PGPASSWORD", p);
                    }
                })
                .run();
            let line = fails_without_password(&out, 1);
            assert!(line.contains(&masked(url)), "names the store: {line}");
            assert_eq!(
                passwords.try_recv().as_deref(),
                Ok(PASSWORD),
                "the server was asked with the password\n{out}"
            );
        }
    }
}

#[test]
fn tls_the_server_refuses_is_one_line_without_the_password() {
    needs_server!();
    let database = fresh_database();
    // Over its unix socket the server offers no TLS: sslmode=require cannot be met.
    let url = with_password(&database.url);
    let url = format!(
        "{url}{}sslmode=require",
        if url.contains('?') { '&' } else { '?' }
    );
    let env = TestEnv::new();
    let out = run_on(&env, &url, &["list"]);
    let line = fails_without_password(&out, 1);
    assert!(line.contains(&masked(&url)), "names the store: {line}");
}

/// A database that holds another program's tables but no keyctl store: read
/// commands refuse it in one line and write nothing; `init` makes the store in a
/// schema of its own beside those tables.
#[test]
fn a_database_without_a_keyctl_store_is_refused_until_init() {
    needs_server!();
    let database = fresh_database();
    psql(
        &database.url,
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('mine')",
    );
    let url = with_password(&database.url);
    let env = TestEnv::new();
    let run = |args: &[&str]| run_on(&env, &url, args);
    let before = database.table_digests();
    for args in [
        &["list"][..],
        &["show", "k"],
        &["audit", "verify"],
        &["logs"],
        &["config", "list"],
    ] {
        let out = run(args);
        let line = fails_without_password(&out, 1);
        assert!(
            line.contains(&masked(&url)),
            "{args:?} names the store: {line}"
        );
        assert_eq!(database.table_digests(), before, "{args:?} wrote");
    }
    run(&["init"]).ok();
    run(&["create", "--name", "k"]).ok();
    assert_eq!(
        psql(&database.url, "SELECT body FROM public.notes"),
        "mine\n"
    );
    assert_eq!(
        psql(&database.url, &format!("SELECT name FROM {PG_SCHEMA}.keys")),
        "k\n"
    );
}

/// The store as messages name it is the URL with `***` for a password, wherever the
/// password came from.
#[test]
fn masked_urls_hide_every_form_of_password() {
    assert_eq!(
        masked("postgres://u:pw@h:5432/db?sslmode=require"),
        "postgres://u:***@h:5432/db?sslmode=require"
    );
    assert_eq!(
        masked("postgresql://u@h/db?password=pw&sslmode=disable"),
        "postgresql://u@h/db?password=***&sslmode=disable"
    );
    assert_eq!(masked("postgres://u@h/db"), "postgres://u@h/db");
}

/// SPEC §6: one-shot `verify` on a store it cannot reach answers `unavailable`
/// (`Key store unavailable`, exit 22) and says why in one line on stderr, without
/// the password.
#[test]
fn one_shot_verify_on_an_unreachable_host_answers_unavailable() {
    let env = TestEnv::new();
    let url = format!(
        "postgres://admin:{PASSWORD}@127.0.0.1:{}/keys?connect_timeout=5",
        closed_port()
    );
    let out = env
        .keyctl(&["verify"])
        .stdin(b"sk_live_whatever\n")
        .with(|c| {
            c.env("KEYCTL_DB", &url);
        })
        .run();
    assert_eq!(out.code, Some(22), "{out}");
    assert_eq!(out.stdout, "Key store unavailable\n", "{out}");
    out.no_panic();
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains(&masked(&url)), "names the store\n{out}");
    assert!(
        !out.stderr.contains(PASSWORD),
        "the password is shown\n{out}"
    );
}

/// SPEC §6: each schema records the oldest keyctl that can use it. A schema that needs
/// a newer keyctl is one line, exit 1, for every command (`migrate` too) and changes
/// nothing; a newer schema that this keyctl can still use is used.
#[test]
fn a_schema_that_needs_a_newer_keyctl_says_so_in_one_line() {
    needs_server!();
    let database = fresh_database();
    let env = TestEnv::new();
    run_on(&env, &database.url, &["init"]).ok();
    run_on(&env, &database.url, &["create", "--name", "k"]).ok();
    psql(
        &database.url,
        &format!("INSERT INTO {PG_SCHEMA}.schema_meta VALUES (99, '99.0.0', 0)"),
    );
    let before = database.table_digests();
    for args in [
        &["list"][..],
        &["create", "--name", "z"],
        &["audit", "verify"],
        &["migrate"],
    ] {
        let out = run_on(&env, &database.url, args);
        let line = out.fails(1);
        assert!(
            line.contains(&masked(&database.url))
                && line.contains("99.0.0")
                && line.contains("upgrade keyctl"),
            "{args:?}: {line}"
        );
        assert_eq!(database.table_digests(), before, "{args:?} wrote");
    }
    psql(
        &database.url,
        &format!("UPDATE {PG_SCHEMA}.schema_meta SET min_keyctl = '0.0.1' WHERE version = 99"),
    );
    let out = run_on(&env, &database.url, &["list", "--json"]);
    assert_eq!(names(out.json().as_array().unwrap()), ["k"], "{out}");
}

// ---- waiting on src fixes (branch pgcli-waiting) ----

/// SPEC §6: only `init` and `copy` create a store on PostgreSQL; a write command on a
/// database without one refuses it in one line and writes nothing.
#[test]
fn write_commands_do_not_create_a_store_in_a_database() {
    needs_server!();
    let database = fresh_database();
    let env = TestEnv::new();
    for args in [
        &["create", "--name", "k"][..],
        &["config", "set", "max-keys", "3"],
    ] {
        let out = run_on(&env, &database.url, args);
        let line = fails_without_password(&out, 1);
        assert!(line.contains(&masked(&database.url)), "{args:?}: {line}");
        assert_eq!(
            database.tables(),
            Vec::<String>::new(),
            "{args:?} made tables"
        );
    }
}
