//! `keyctl import FILE|-` (SPEC §8): keys from another system by their secret (hashed
//! on the way in) or sha256, with create's fields and their old times; keys of another
//! format verify by their hash alone; one transaction, all or nothing, line numbers in
//! errors, `--dry-run`, audited; the plaintext is never stored.

use std::fs;

use serde_json::{json, Value};

use crate::support::*;

/// A New-API / One-API key: `sk-` and 48 characters.
const NEWAPI: &str = "sk-Zq81bLkT0mWc5yPrAe3NuXg7HsJd2VfQo9tCiE4KaR6hUw1B";
/// A Stripe-like live key: keyctl's prefix and mode, but not its body or checksum.
const STRIPE: &str = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnoPQ";

/// A key of keyctl's format from another store (prefix `acme`), checksum valid.
fn acme_key() -> String {
    forge_secret("acme", "live", "Imp0rtedFr0mAn0therStore12345678")
}

fn input_file(env: &TestEnv, text: &str) -> String {
    let path = env.root().join("import.jsonl");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn lines(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

/// `keyctl import --json -` with these lines; the printed key objects.
fn import(env: &TestEnv, values: &[Value]) -> Vec<Value> {
    let out = env.run_with_stdin(&["import", "--json", "-"], lines(values).as_bytes());
    out.ok();
    assert_eq!(
        out.stderr,
        format!(
            "imported {} key{}\n",
            values.len(),
            if values.len() == 1 { "" } else { "s" }
        )
    );
    match out.json() {
        Value::Array(keys) => keys,
        other => panic!("not an array: {other}"),
    }
}

fn verify(env: &TestEnv, secret: &str) -> Outcome {
    env.run_with_stdin(&["verify", "--json"], format!("{secret}\n").as_bytes())
}

fn sha256_hex(secret: &str) -> String {
    hex(&sha256(secret.as_bytes()))
}

#[test]
fn keys_of_other_formats_verify_by_their_hash_alone() {
    let env = TestEnv::initialized();
    let acme = acme_key();
    let keys = import(
        &env,
        &[
            json!({"name": "newapi", "secret": NEWAPI, "scopes": ["chat"]}),
            json!({"name": "stripe", "secret": STRIPE}),
            json!({"name": "acme", "secret": acme}),
        ],
    );
    assert_eq!(names(&keys), ["newapi", "stripe", "acme"]);
    // Display prefixes: 12 characters, at most a third of a foreign secret; keyctl's
    // own rule for a keyctl-format secret.
    let prefixes: Vec<&str> = keys
        .iter()
        .map(|k| k["key_prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, [&NEWAPI[..12], &STRIPE[..12], &acme[..14]]);
    for k in &keys {
        assert_eq!(&env.key_json(k["id"].as_str().unwrap()), k);
        assert_eq!(k["created_at"], NOW);
        assert_eq!(k["livemode"], true);
    }
    for (secret, name) in [
        (NEWAPI, "newapi"),
        (STRIPE, "stripe"),
        (acme.as_str(), "acme"),
    ] {
        let out = verify(&env, secret);
        out.ok();
        assert_eq!(out.json()["key_name"], name, "{out}");
        // The same with a Bearer in front, as a proxy passes it.
        let out = env.run_with_stdin(&["verify"], format!("Bearer {secret}\n").as_bytes());
        assert_eq!(out.stdout, "OK\n", "{out}");
    }
    // Scopes still apply to a key found by its hash.
    let out = env.run_with_stdin(&["verify", "--scope", "admin"], NEWAPI.as_bytes());
    assert_eq!(out.code, Some(19), "{out}");
    // A near miss of a foreign key is simply unknown.
    let near = NEWAPI.replace('Z', "Y");
    assert_eq!(verify(&env, &near).code, Some(10));
    // The stream mode takes the same paths, in order.
    let stream: String = [NEWAPI, STRIPE, &acme, &near]
        .iter()
        .map(|k| format!("{}\n", json!({"key": k})))
        .collect();
    let out = env.run_with_stdin(&["verify", "--stream"], stream.as_bytes());
    out.ok();
    let codes: Vec<String> = out
        .stdout_lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(codes, ["valid", "valid", "valid", "invalid"]);
    // --explain says which path a key took.
    let out = env.run_with_stdin(&["verify", "--explain", "--json"], NEWAPI.as_bytes());
    out.ok();
    assert_eq!(out.json()["presented"]["format"], "hash_only", "{out}");
    let out = env.run_with_stdin(&["verify", "--explain", "--json"], acme.as_bytes());
    assert_eq!(out.json()["presented"]["format"], "ok", "{out}");
    let out = env.run_with_stdin(&["verify", "--explain"], STRIPE.as_bytes());
    assert!(out.stdout.contains("found by its hash alone"), "{out}");
    assert!(!out.stdout.contains(STRIPE), "{out}");
}

#[test]
fn a_string_of_keyctls_format_with_a_bad_checksum_is_never_looked_up() {
    let env = TestEnv::initialized();
    // Its hash is in the store (imported as sha256), but it fails its checksum first.
    let good = forge_secret("sk", "live", "ChecksumFirstThenTheHash00000000");
    let last = good.chars().last().unwrap();
    let bad = format!(
        "{}{}",
        &good[..good.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    import(
        &env,
        &[json!({"name": "shadow", "sha256": sha256_hex(&bad)})],
    );
    let out = verify(&env, &bad);
    assert_eq!(out.code, Some(10), "{out}");
    assert_eq!(out.json()["code"], "invalid");
    let out = env.run_with_stdin(&["verify", "--explain", "--json"], bad.as_bytes());
    assert_eq!(out.json()["presented"]["format"], "bad_checksum", "{out}");
    // And such a secret cannot be imported in clear: it could never verify.
    let out = env.run_with_stdin(
        &["import", "-"],
        lines(&[json!({"name": "never", "secret": bad})]).as_bytes(),
    );
    let e = out.fails(2);
    assert!(
        e.contains("line 1: field `secret`") && e.contains("checksum is wrong"),
        "{e}"
    );
    assert!(!e.contains(&bad[12..]), "{e}");
}

#[test]
fn keys_known_by_their_sha256_have_no_prefix_and_are_shown_so() {
    let env = TestEnv::initialized();
    let secret = "legacy-secret-of-some-old-gateway-0001";
    let keys = import(
        &env,
        &[json!({"name": "legacy", "sha256": sha256_hex(secret).to_uppercase(), "test": true})],
    );
    let k = &keys[0];
    assert_eq!(k["key_prefix"], Value::Null);
    assert_eq!(k["livemode"], false);
    let id = k["id"].as_str().unwrap();
    assert_eq!(env.secret_hash(id), sha256(secret.as_bytes()));
    assert_eq!(env.list_json(&[])[0]["key_prefix"], Value::Null);
    // Tables say it has no prefix; csv leaves the cell empty.
    let list = env.run(&["list"]);
    list.ok();
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("legacy") && l.contains(" (hash only) ")),
        "{list}"
    );
    let show = env.run(&["show", "legacy"]);
    show.ok();
    assert!(show.stdout.contains("(hash only)"), "{show}");
    let csv = env.run(&["list", "--format", "csv"]);
    assert!(
        csv.stdout
            .contains(&format!("{id},legacy,,{ACTOR},,active")),
        "{csv}"
    );
    // KEYREF by id and name works; its missing prefix matches nothing.
    env.run(&["show", id]).ok();
    env.run(&["show", "(hash only)"]).fails(3);
    // It verifies, and the lifecycle commands take it by id or name.
    verify(&env, secret).ok();
    env.run(&["disable", id]).ok();
    assert_eq!(verify(&env, secret).code, Some(11));
    env.run(&["enable", "legacy"]).ok();
    env.run(&["rotate", "--yes", "--no-copy", "legacy"]).ok();
    assert_eq!(
        verify(&env, secret).code,
        Some(11),
        "rotated: disabled at once"
    );
    // Hygiene report and completion read it too.
    env.run(&["report", "--json"]).ok();
    env.run(&["list", "--search", "hash"]).ok();
}

#[test]
fn created_at_and_last_used_at_are_kept() {
    let env = TestEnv::initialized();
    let keys = import(
        &env,
        &[json!({
            "name": "old",
            "secret": NEWAPI,
            "created_at": "2025-01-02T03:04:05Z",
            "last_used_at": "2026-11-01",
            "credits": 100,
            "rate_limit": "5/s",
        })],
    );
    let k = env.key_json("old");
    assert_eq!(k, keys[0]);
    assert_eq!(k["created_at"], "2025-01-02T03:04:05Z");
    assert_eq!(k["last_used_at"], "2026-11-01T00:00:00Z");
    assert_eq!(k["credits_used"], 0);
    assert_eq!(k["credit_limit"], 100);
    assert_eq!(k["rate_limit"], "5/s");
    // The imported last use is no request: usage and the log are empty.
    assert!(env.logs_json(&[]).is_empty());
    let usage = env.usage_of(NOW, "old");
    assert_eq!(usage["last_30d"]["requests"], 0, "{usage}");
    // A verification moves it on as usual.
    verify(&env, NEWAPI).ok();
    assert_eq!(env.key_json("old")["last_used_at"], NOW);
}

#[test]
fn a_file_and_the_table_output() {
    let env = TestEnv::initialized();
    let file = input_file(
        &env,
        &format!(
            "{}\n\n{}\n",
            json!({"name": "one", "secret": NEWAPI}),
            json!({"name": "two", "sha256": sha256_hex("x".repeat(20).as_str())})
        ),
    );
    let out = env.run(&["import", &file]);
    out.ok();
    assert_eq!(out.stderr, "imported 2 keys\n");
    assert!(out.stdout.contains("Name"), "{out}");
    let row = |name: &str, key: &str| {
        out.stdout
            .lines()
            .any(|l| l.starts_with(name) && l.contains(&format!(" {key} ")))
    };
    assert!(row("one", &format!("{}...", &NEWAPI[..12])), "{out}");
    assert!(row("two", "(hash only)"), "{out}");
    let out = env.run(&["-q", "import", &file]);
    assert_eq!(out.code, Some(4), "already imported: {out}");
    let missing = env.root().join("missing.jsonl");
    let e = env.run(&["import", missing.to_str().unwrap()]);
    assert!(e.fails(2).contains("cannot read import file"), "{e}");
    let e = env.run_with_stdin(&["import", "-"], b"\n\n");
    assert!(e.fails(2).contains("no lines"), "{e}");
}

#[test]
fn any_bad_line_fails_the_whole_import_naming_it_and_writes_nothing() {
    let env = TestEnv::initialized();
    let existing = env.create("taken", &[]);
    env.run(&["config", "set", "max-keys", "3"]).ok();
    let good = json!({"name": "fine", "secret": NEWAPI});
    let hash = sha256_hex(STRIPE);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![good.to_string(), "{\"name\": \"x\", ".into()],
            2,
            "line 2: the line is not valid json",
        ),
        (
            vec![
                good.to_string(),
                json!({"name": "b", "secret": STRIPE, "sha256": hash}).to_string(),
            ],
            2,
            "line 2: give either field `secret` or field `sha256`, not both",
        ),
        (
            vec![json!({"name": "n"}).to_string()],
            2,
            "line 1: field `secret` or `sha256` is missing",
        ),
        (
            vec![json!({"name": "h", "sha256": "abc123"}).to_string()],
            2,
            "line 1: field `sha256` must be 64 hexadecimal digits",
        ),
        (
            vec![json!({"name": "s", "secret": "short-one"}).to_string()],
            2,
            "line 1: field `secret` has 9 characters",
        ),
        (
            vec![json!({"name": "s", "secret": "has spaces in the secret"}).to_string()],
            2,
            "line 1: field `secret` must be printable ASCII without spaces",
        ),
        (
            vec![
                good.to_string(),
                json!({"name": "again", "sha256": sha256_hex(NEWAPI)}).to_string(),
            ],
            2,
            "line 2: the key sha256 ",
        ),
        (
            vec![
                good.to_string(),
                json!({"name": "fine", "secret": STRIPE}).to_string(),
            ],
            2,
            "line 2: the name 'fine' is also on line 1",
        ),
        (
            vec![
                good.to_string(),
                json!({"name": "dup", "secret": existing.secret}).to_string(),
            ],
            4,
            "line 2: the key sk_live_",
        ),
        (
            vec![
                good.to_string(),
                json!({"name": "taken", "secret": STRIPE}).to_string(),
            ],
            4,
            "line 2: a key named 'taken' already exists",
        ),
        (
            vec![
                good.to_string(),
                json!({"name": "b", "secret": STRIPE}).to_string(),
                json!({"name": "c", "sha256": sha256_hex("third-key-000000000")}).to_string(),
            ],
            4,
            "line 3: key limit reached (3/3)",
        ),
        (
            vec![json!({"name": "u", "secret": NEWAPI, "colour": "red"}).to_string()],
            2,
            "line 1: unknown field `colour`",
        ),
        (
            vec![json!({"name": "t", "secret": existing.secret, "test": true}).to_string()],
            2,
            "line 1: field `test` is true but the secret",
        ),
        (
            vec![json!({"name": "f", "secret": NEWAPI, "created_at": "2030-01-01"}).to_string()],
            2,
            "line 1: field `created_at` is 2030-01-01T00:00:00Z, in the future",
        ),
        (
            vec![json!({"name": "f", "secret": NEWAPI, "last_used_at": "2026-01-01"}).to_string()],
            2,
            "line 1: field `last_used_at` (2026-01-01T00:00:00Z) is before the key was created",
        ),
        (
            vec![json!({"name": "f", "secret": NEWAPI, "quota_daily": 0}).to_string()],
            2,
            "line 1: field `quota_daily` must be a whole number from 1",
        ),
    ];
    for (input, code, says) in cases {
        let before = env.store_contents();
        let text: String = input.iter().map(|l| format!("{l}\n")).collect();
        for dry in [false, true] {
            let args: &[&str] = if dry {
                &["import", "--dry-run", "-"]
            } else {
                &["import", "-"]
            };
            let out = env.run_with_stdin(args, text.as_bytes());
            let e = out.fails(code);
            assert!(e.starts_with(&format!("error: {says}")), "{says}\n{e}");
            for secret in [NEWAPI, STRIPE, existing.secret.as_str()] {
                assert!(!e.contains(&secret[13..]), "a secret was echoed: {e}");
            }
        }
        assert_eq!(env.store_contents(), before, "{says}: the store changed");
    }
    assert_eq!(env.list_names(&[]), ["taken"]);
}

#[test]
fn batch_does_not_take_imports_fields() {
    let env = TestEnv::initialized();
    let out = env.run_with_stdin(
        &["create", "--batch", "-"],
        lines(&[json!({"name": "b", "secret": NEWAPI})]).as_bytes(),
    );
    let e = out.fails(2);
    assert!(e.contains("unknown field `secret`"), "{e}");
    assert!(!e.contains(NEWAPI), "{e}");
}

#[test]
fn a_dry_run_checks_everything_and_writes_nothing() {
    let env = TestEnv::initialized();
    env.create("existing", &[]);
    let (events, head) = env.audit_head();
    let before = env.store_contents();
    let input = lines(&[
        json!({"name": "a", "secret": NEWAPI}),
        json!({"name": "b", "sha256": sha256_hex(STRIPE)}),
    ]);
    let out = env.run_with_stdin(&["import", "--dry-run", "--json", "-"], input.as_bytes());
    out.ok();
    assert_eq!(
        out.stderr,
        "dry run: 2 keys would be imported; nothing was written\n"
    );
    let shown = match out.json() {
        Value::Array(keys) => keys,
        other => panic!("{other}"),
    };
    assert_eq!(names(&shown), ["a", "b"]);
    assert_eq!(shown[1]["key_prefix"], Value::Null);
    assert_eq!(env.store_contents(), before);
    assert_eq!(env.audit_head(), (events, head));
    assert_eq!(env.list_names(&[]), ["existing"]);
    assert_eq!(verify(&env, NEWAPI).code, Some(10));
    // A dry run never creates a store. With no SQLite store yet (which the import
    // would create) the lines are checked on their own; on PostgreSQL, where only
    // `init` creates a store, it fails as the import would.
    let fresh = TestEnv::new();
    let out = fresh.run_with_stdin(&["import", "--dry-run", "--json", "-"], input.as_bytes());
    if on_postgres() {
        assert_eq!(out.code, Some(1), "{out}");
    } else {
        out.ok();
        assert_eq!(names(&out.json().as_array().unwrap().clone()), ["a", "b"]);
        assert!(
            out.stderr.contains("would be imported into a new store at"),
            "{out}"
        );
    }
    assert!(!fresh.store_exists());
    // The real run then does what the dry run said.
    import(
        &env,
        &[
            json!({"name": "a", "secret": NEWAPI}),
            json!({"name": "b", "sha256": sha256_hex(STRIPE)}),
        ],
    );
    verify(&env, NEWAPI).ok();
}

#[test]
fn each_imported_key_is_a_created_event_that_says_so() {
    let env = TestEnv::initialized();
    let keys = import(
        &env,
        &[
            json!({"name": "a", "secret": NEWAPI, "created_at": "2025-05-05T05:05:05Z"}),
            json!({"name": "b", "sha256": sha256_hex(STRIPE)}),
        ],
    );
    let mut events = env.audit_json(&["--action", "created"]);
    events.reverse();
    assert_eq!(events.len(), 2);
    for (e, (k, (line, given))) in events
        .iter()
        .zip(keys.iter().zip([(1, "secret"), (2, "sha256")]))
    {
        assert_eq!(e["key_id"], k["id"]);
        assert_eq!(e["actor"], ACTOR);
        let d = &e["details"];
        assert_eq!(d["imported"], given);
        assert_eq!(d["import_line"], line);
        assert_eq!(d["name"], k["name"]);
        assert_eq!(d["key_prefix"], k["key_prefix"]);
        assert_eq!(d["created_at"], k["created_at"]);
    }
    assert_eq!(events[0]["details"]["created_at"], "2025-05-05T05:05:05Z");
    env.run(&["audit", "verify"]).ok();
}

#[test]
fn the_plaintext_is_in_neither_the_store_nor_its_wal() {
    let env = TestEnv::initialized();
    let acme = acme_key();
    import(
        &env,
        &[
            json!({"name": "a", "secret": NEWAPI}),
            json!({"name": "b", "secret": STRIPE}),
            json!({"name": "c", "secret": acme}),
        ],
    );
    // And after verifications (the log, counters, failures) too.
    for s in [NEWAPI, STRIPE, acme.as_str(), &NEWAPI.replace('Z', "Y")] {
        verify(&env, s);
    }
    let stored = env.stored_bytes();
    assert!(!stored.is_empty());
    for secret in [NEWAPI, STRIPE, acme.as_str()] {
        // Past the shown prefix: nothing of the secret's rest is anywhere.
        let rest = &secret.as_bytes()[secret.len() / 3 + 2..];
        for (place, bytes) in &stored {
            assert!(!contains_bytes(bytes, rest), "{place} holds a secret");
        }
    }
}

#[test]
fn a_copy_keeps_keys_without_a_prefix() {
    let env = TestEnv::initialized();
    import(
        &env,
        &[
            json!({"name": "hashed", "sha256": sha256_hex(STRIPE), "last_used_at": "2026-11-20T00:00:00Z", "created_at": "2026-01-01"}),
            json!({"name": "foreign", "secret": NEWAPI}),
        ],
    );
    let target = env.root().join("copy.db");
    env.run(&["copy", "--to", target.to_str().unwrap()]).ok();
    let there = |args: &[&str]| {
        let mut all = vec!["--db", target.to_str().unwrap()];
        all.extend_from_slice(args);
        env.run(&all)
    };
    let here = env.run(&["list", "--json", "--all"]);
    assert_eq!(there(&["list", "--json", "--all"]).stdout, here.stdout);
    assert!(here.stdout.contains("\"key_prefix\":null"), "{here}");
    assert!(here.stdout.contains("2026-11-20T00:00:00Z"), "{here}");
    let out = env
        .keyctl(&["--db", target.to_str().unwrap(), "verify"])
        .stdin(STRIPE.as_bytes())
        .run();
    assert_eq!(out.stdout, "OK\n", "{out}");
    // And back from the copy through a backup file.
    let backup = env.root().join("backup.db");
    there(&["backup", backup.to_str().unwrap()]).ok();
    let back = env.run(&["--db", backup.to_str().unwrap(), "show", "--json", "hashed"]);
    back.ok();
    assert_eq!(back.json()["key_prefix"], Value::Null);
    // Its last use is the verification on the copy above.
    assert_eq!(back.json()["last_used_at"], NOW);
}

#[test]
fn serve_finds_imported_keys_by_their_hash_on_every_route() {
    let env = TestEnv::initialized();
    import(
        &env,
        &[
            json!({"name": "newapi", "secret": NEWAPI}),
            json!({"name": "stripe", "sha256": sha256_hex(STRIPE)}),
        ],
    );
    let server = env.serve(&[]);
    let r = server.verify(&json!({"key": NEWAPI}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["key_name"], "newapi");
    let r = server.request(
        "POST",
        "/v2/keys.verifyKey",
        &[("Content-Type", "application/json")],
        json!({"key": STRIPE}).to_string().as_bytes(),
    );
    assert_eq!(r.json()["data"]["valid"], true, "{}", r.text());
    assert_eq!(r.json()["data"]["name"], "stripe");
    let bearer = format!("Bearer {NEWAPI}");
    let r = server.get("/auth", &[("Authorization", &bearer)]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-keyctl-key-name"), Some("newapi"));
    let r = server.get("/auth", &[("X-API-Key", &NEWAPI.replace('Z', "Y"))]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-keyctl-code"), Some("invalid"));
    server.terminate();
}
