//! SPEC §5 "Text values", "KEYREF" and "CSV": free text refuses control and invisible
//! characters and look-alike names on the way in; stored text that holds them anyway
//! (an older store, another writer) is escaped on the way out in every format; csv
//! cells that a spreadsheet would run as formulas are neutralised; a reference that
//! matches different keys in different ways is ambiguous.

use serde_json::{json, Value};

use crate::support::*;

/// Characters no text field may take: C0 and C1 controls, DEL, bidi controls,
/// zero-width characters, the BOM, the soft hyphen, a tag character and the line and
/// paragraph separators.
const HIDDEN: &[char] = &[
    '\u{1b}',
    '\t',
    '\n',
    '\r',
    '\u{7f}',
    '\u{85}',
    '\u{202e}',
    '\u{202a}',
    '\u{2066}',
    '\u{2069}',
    '\u{200b}',
    '\u{200d}',
    '\u{200f}',
    '\u{feff}',
    '\u{ad}',
    '\u{2028}',
    '\u{2029}',
    '\u{e0041}',
    '\u{61c}',
];

/// A stored value an attacker would like to reach an admin's terminal or a log viewer:
/// an OSC title sequence, a bidi override, a line separator and a zero-width space.
const NASTY: &str = "evil\u{1b}]0;pwned\u{7}\u{202e}exe.txt\u{2028}x\u{200b}y";

/// The first character of `text` that must never reach a terminal raw (a line break
/// between lines is fine).
fn raw_hidden(text: &str) -> Option<char> {
    text.chars()
        .find(|&c| c != '\n' && (c.is_control() || HIDDEN.contains(&c)))
}

fn assert_nothing_raw(out: &Outcome) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(c) = raw_hidden(text) {
            panic!("{stream} holds a raw {c:?}\n{out}");
        }
    }
}

/// The create and edit flags that take free text.
pub const CREATE_TEXT_FLAGS: &[&str] = &[
    "--name",
    "--description",
    "--owner",
    "--category",
    "--group",
    "--scope",
    "--deployment",
    "--allow-model",
];

fn create_with(env: &TestEnv, flag: &str, value: &str) -> Outcome {
    let mut args = vec!["create"];
    if flag != "--name" {
        args.extend(["--name", "k"]);
    }
    args.extend([flag, value]);
    env.run(&args)
}

#[test]
fn every_create_text_field_refuses_hidden_characters_naming_the_code_point() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    for flag in CREATE_TEXT_FLAGS {
        for &c in HIDDEN {
            let out = create_with(&env, flag, &format!("a{c}b"));
            let line = out.fails(2);
            let field = flag.trim_start_matches("--").replace("allow-", "");
            assert!(line.contains(&field), "names the field\n{out}");
            assert!(
                line.contains(&format!("U+{:04X}", u32::from(c))),
                "names the character\n{out}"
            );
            assert_nothing_raw(&out);
        }
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn every_edit_text_field_refuses_hidden_characters() {
    let env = TestEnv::initialized();
    let k = env.create("k", &[]);
    let before = env.snapshot();
    for flag in CREATE_TEXT_FLAGS {
        for c in ['\u{202e}', '\u{200b}', '\u{2028}', '\u{1b}', '\u{feff}'] {
            let out = env.run(&["edit", k.id(), flag, &format!("v{c}")]);
            out.fails(2);
            assert_nothing_raw(&out);
        }
    }
    assert_eq!(env.snapshot(), before);
}

/// `prod` and `prod` + U+200B would look the same in every table: only one can exist.
#[test]
fn names_that_differ_only_by_invisible_characters_cannot_both_exist() {
    let env = TestEnv::initialized();
    env.create("prod", &[]);
    for twin in [
        "prod\u{200b}",
        "\u{feff}prod",
        "pr\u{200d}od",
        "prod\u{2060}",
    ] {
        env.run(&["create", "--name", twin]).fails(2);
        let other = env.create("other", &[]);
        env.run(&["edit", other.id(), "--name", twin]).fails(2);
        env.run(&["delete", other.id(), "--yes"]).ok();
    }
    assert_eq!(env.list_names(&["--all"]), ["prod"]);
}

#[test]
fn reason_actor_and_verify_fields_refuse_hidden_characters() {
    let env = TestEnv::initialized();
    let k = env.create("k", &[]);
    let before = env.snapshot();
    let bad = "ops\u{202e}";
    env.run(&["revoke", k.id(), "--yes", "--reason", bad])
        .fails(2);
    env.run(&["--actor", bad, "disable", k.id()]).fails(2);
    let out = env
        .keyctl(&["disable", k.id()])
        .with(|c| {
            c.env("KEYCTL_ACTOR", bad);
        })
        .run();
    assert!(out.fails(2).contains("--actor"), "{out}");
    assert_eq!(env.snapshot(), before);
    for flag in ["--endpoint", "--scope", "--deployment", "--model"] {
        let out = env.verify(NOW, &k.secret, &[flag, bad]);
        assert!(out.fails(2).contains(flag), "{out}");
        assert_nothing_raw(&out);
    }
    assert_eq!(env.count_rows("requests"), 0);
}

#[test]
fn batch_and_stream_fields_refuse_hidden_characters() {
    let env = TestEnv::initialized();
    let k = env.create("k", &[]);
    for field in [
        "name",
        "description",
        "owner",
        "category",
        "group",
        "deployment",
    ] {
        let line = json!({ "name": "b", field: "x\u{202e}y" }).to_string();
        let before = env.snapshot();
        let out = env.run_with_stdin(&["create", "--batch", "-"], format!("{line}\n").as_bytes());
        assert!(out.fails(2).contains("line 1"), "{out}");
        assert_nothing_raw(&out);
        assert_eq!(env.snapshot(), before, "{field}");
    }
    for field in ["endpoint", "scope", "deployment", "model"] {
        let line = json!({ "key": k.secret, field: "x\u{2028}y" }).to_string();
        let out = env.run_with_stdin(&["verify", "--stream"], format!("{line}\n").as_bytes());
        out.ok();
        assert_nothing_raw(&out);
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("one json answer");
        assert_eq!(v["code"], "bad_request", "{field}: {out}");
    }
    assert_eq!(env.count_rows("requests"), 0);
}

#[test]
fn plain_unicode_text_is_kept() {
    let env = TestEnv::initialized();
    let name = "Zahlungen · café 日本 😀 Ünïcödé";
    env.create(name, &["--description", "naïve → résumé", "--owner", "Ærø"]);
    let k = &env.list_json(&[])[0];
    assert_eq!(k["name"], name);
    assert_eq!(k["owner"], "Ærø");
    let out = env.run(&["list"]);
    out.ok();
    assert!(out.stdout.contains(name), "{out}");
}

// ---- stored text is escaped on output ----

/// A store whose key, request-log row and audit events hold `NASTY` in every text
/// field, as an older keyctl or another writer could have left them (control
/// characters no command accepts).
fn nasty_store() -> (TestEnv, Created) {
    let env = TestEnv::initialized();
    let k = env.create("plain", &[]);
    let at = NOW_MS - 1000;
    match env.pg_client() {
        Some(mut pg) => {
            pg.execute(
                "UPDATE keys SET name = $2, description = $2, owner = $2, category = $2, \
                 grp = $2, deployment = $2, scopes = json_build_array($2::text)::text, \
                 allowed_models = json_build_array($2::text)::text WHERE id = $1",
                &[&k.id(), &NASTY],
            )
            .unwrap();
            pg.execute(
                "INSERT INTO requests (at, key_id, key_name, endpoint, http_status, code, ip, \
                 credits) VALUES ($3, $1, $2, $2, 200, 'valid', '203.0.113.7', 1)",
                &[&k.id(), &NASTY, &at],
            )
            .unwrap();
            pg.execute(
                "UPDATE audit_events SET actor = $1, \
                 details = json_build_object('name', $1::text)::text",
                &[&NASTY],
            )
            .unwrap();
            pg.execute(
                "INSERT INTO audit_events (seq, at, actor, action, key_id, details, prev_hash, \
                 hash) SELECT max(seq) + 1, $3, $2, 'edited', $1, $2, '\\x00', '\\x00' \
                 FROM audit_events",
                &[&k.id(), &NASTY, &NOW_MS],
            )
            .unwrap();
        }
        None => {
            let db = rusqlite::Connection::open(env.db_file()).unwrap();
            db.execute(
                "UPDATE keys SET name = ?2, description = ?2, owner = ?2, category = ?2, \
                 grp = ?2, deployment = ?2, scopes = json_array(?2), \
                 allowed_models = json_array(?2) WHERE id = ?1",
                [k.id(), NASTY],
            )
            .unwrap();
            db.execute(
                "INSERT INTO requests (at, key_id, key_name, endpoint, http_status, code, ip, \
                 credits) VALUES (?3, ?1, ?2, ?2, 200, 'valid', '203.0.113.7', 1)",
                rusqlite::params![k.id(), NASTY, at],
            )
            .unwrap();
            db.execute(
                "UPDATE audit_events SET actor = ?1, details = json_object('name', ?1)",
                [NASTY],
            )
            .unwrap();
            db.execute(
                "INSERT INTO audit_events (at, actor, action, key_id, details, prev_hash, hash) \
                 VALUES (?3, ?2, 'edited', ?1, ?2, x'00', x'00')",
                rusqlite::params![k.id(), NASTY, NOW_MS],
            )
            .unwrap();
        }
    }
    (env, k)
}

#[test]
fn stored_hidden_characters_are_escaped_in_every_command_and_format() {
    let (env, k) = nasty_store();
    let escaped = "evil\\u{1b}]0;pwned\\u{7}\\u{202e}exe.txt\\u{2028}x\\u{200b}y";
    let id = k.id();
    for format in ["table", "json", "csv"] {
        for args in [
            vec!["list"],
            vec!["list", "--all", "--search", "evil"],
            vec!["show", id],
            vec!["logs"],
            vec!["logs", id],
            vec!["audit"],
            vec!["audit", id],
            vec!["usage", id],
        ] {
            let mut all = vec!["--format", format];
            all.extend(&args);
            let out = env.run(&all);
            out.ok();
            assert_nothing_raw(&out);
            match format {
                "json" => {
                    // Still json, and it means the original text.
                    let v = out.json();
                    assert!(json_holds(&v, NASTY), "json lost the stored text\n{out}");
                    assert!(out.stdout.contains("\\u202e"), "{out}");
                }
                _ if args[0] == "usage" => {}
                _ => assert!(out.stdout.contains(escaped), "{format} {args:?}\n{out}"),
            }
        }
    }
}

/// Ids and links written by another writer are shown escaped too (`show`'s
/// "superseded by" line, the Rotated columns).
#[test]
fn a_stored_link_to_a_successor_is_escaped() {
    let env = TestEnv::initialized();
    let k = env.create("k", &["--expires", "1d"]);
    // A successor id with control characters no command can store (raw in the SQL
    // literal, which both backends take).
    env.fixture(
        "UPDATE keys SET rotated_to = 'key_\u{1b}[2J\u{202e}' WHERE id = ?1",
        k.id(),
    );
    for args in [
        vec!["show", k.id()],
        vec!["--format", "csv", "show", k.id()],
    ] {
        let out = env.run(&args);
        out.ok();
        assert_nothing_raw(&out);
        assert!(out.stdout.contains("key_\\u{1b}[2J\\u{202e}"), "{out}");
    }
}

/// True when `text` appears as a string anywhere in `v`.
fn json_holds(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text || s.contains(text),
        Value::Array(items) => items.iter().any(|i| json_holds(i, text)),
        Value::Object(map) => map.values().any(|i| json_holds(i, text)),
        _ => false,
    }
}

#[test]
fn notes_and_errors_that_quote_a_stored_name_escape_it() {
    let (env, k) = nasty_store();
    let escaped = "evil\\u{1b}]0;pwned\\u{7}\\u{202e}exe.txt\\u{2028}x\\u{200b}y";
    let out = env.run(&["edit", k.id(), "--description", "fine"]);
    out.ok();
    assert_nothing_raw(&out);
    assert!(out.stderr.contains(escaped), "{out}");
    let out = env.run(&["edit", k.id(), "--description", "fine"]);
    out.ok();
    assert!(out.stderr.contains("already has these settings"), "{out}");
    assert_nothing_raw(&out);
    let out = env.run(&["revoke", k.id(), "--yes"]);
    out.ok();
    assert_nothing_raw(&out);
    assert!(
        out.stderr.contains(&format!("revoked key \"{escaped}\"")),
        "{out}"
    );
    let out = env.run(&["disable", k.id()]);
    out.fails(4);
    assert_nothing_raw(&out);
    // The stored text itself is kept: only its display is escaped.
    assert_eq!(env.key_json(k.id())["name"], NASTY);
}

#[test]
fn a_hidden_character_in_an_argument_is_escaped_in_the_error() {
    let env = TestEnv::initialized();
    for args in [
        vec!["show", "x\u{1b}[2Jy"],
        vec!["revoke", "--yes", "a\u{202e}b"],
        vec!["list", "--sort", "n\u{2028}"],
        vec!["config", "get", "z\u{1b}"],
    ] {
        let out = env.run(&args);
        out.one_error_line();
        assert_nothing_raw(&out);
    }
}

// ---- csv injection ----

#[test]
fn csv_cells_that_start_like_a_formula_get_a_leading_quote() {
    let env = TestEnv::initialized();
    let k = env.create(
        "=HYPERLINK(\"http://evil\",\"click\")",
        &[
            "--description",
            "+1+1",
            "--owner=-2+3",
            "--category",
            "@SUM(A1)",
            "--group",
            "=g",
            "--deployment=-d",
            "--scope",
            "=read",
            "--allow-model",
            "+m",
        ],
    );
    env.create("plain-name", &["--owner", "a=b"]);
    env.verify(NOW, &k.secret, &["--endpoint", "=cmd|' /C calc'!A0"]);
    env.run(&["--actor", "@evil", "edit", k.id(), "--description", "+x"])
        .ok();

    let list = env.run(&["--format", "csv", "list"]);
    list.ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains(k.id()))
        .expect("the key's row");
    for cell in [
        "\"'=HYPERLINK(\"\"http://evil\"\",\"\"click\"\")\"",
        ",'+x,",
        ",'-2+3,",
        ",'@SUM(A1),",
        ",'=g,",
        ",'=read,",
        ",'-d,",
        ",'+m,",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    // Text that does not start like a formula, and keyctl's own cells, are untouched.
    assert!(list.stdout.contains(",a=b,"), "{list}");
    assert!(!list.stdout.contains(",'2026"), "{list}");

    let logs = env.run(&["--format", "csv", "logs"]);
    logs.ok();
    assert!(logs.stdout.contains(",'=cmd|' /C calc'!A0,"), "{logs}");
    assert!(logs.stdout.contains(",\"'=HYPERLINK("), "{logs}");

    let audit = env.run(&["--format", "csv", "audit"]);
    audit.ok();
    assert!(audit.stdout.contains(",'@evil,edited,"), "{audit}");

    let usage = env.run(&["--format", "csv", "usage", k.id()]);
    usage.ok();
    assert!(
        !usage.stdout.contains('\''),
        "numbers and dates are left alone\n{usage}"
    );
    // json and tables show the text as it is.
    assert_eq!(env.key_json(k.id())["owner"], "-2+3");
}

/// Tab and carriage return cannot be typed into a field; a stored one (another writer)
/// is neutralised and escaped.
#[test]
fn a_stored_cell_starting_with_tab_or_cr_is_neutralised_and_escaped() {
    let env = TestEnv::initialized();
    let k = env.create("k", &[]);
    // A tab and a carriage return no command accepts in a field.
    env.fixture(
        "UPDATE keys SET owner = '\t=1', category = '\r@x' WHERE id = ?1",
        k.id(),
    );
    let out = env.run(&["--format", "csv", "list"]);
    out.ok();
    assert!(out.stdout.contains(",'\\u{9}=1,"), "{out}");
    assert!(out.stdout.contains(",'\\u{d}@x,"), "{out}");
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
}

#[test]
fn the_format_help_documents_csv_neutralising() {
    let out = TestEnv::new().run(&["list", "--help"]);
    out.ok();
    assert!(out.stdout.contains("OWASP CSV injection"), "{out}");
}

// ---- look-alike names ----

/// Gives key `id` the name `name` behind keyctl's back, as an older keyctl that did
/// not refuse look-alike names (or another writer) could have.
fn name_in_store(env: &TestEnv, id: &str, name: &str) {
    env.fixture(
        &format!("UPDATE keys SET name = '{name}' WHERE id = ?1"),
        id,
    );
}

#[test]
fn names_shaped_like_a_display_prefix_or_a_key_id_are_refused() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let before = env.snapshot();
    let shapes = [
        a.prefix().to_string(),
        format!("{}...", a.prefix()),
        "sk_test_abcd".to_string(),
        "acme2_live_0000".to_string(),
        "key_abcdefghijkl".to_string(),
    ];
    for name in &shapes {
        let out = env.run(&["create", "--name", name]);
        assert!(out.fails(2).contains("reserved"), "{out}");
        env.run(&["edit", a.id(), "--name", name]).fails(2);
        let line = json!({ "name": name }).to_string();
        env.run_with_stdin(&["create", "--batch", "-"], format!("{line}\n").as_bytes())
            .fails(2);
    }
    assert_eq!(env.snapshot(), before);
    // Near misses are ordinary names.
    for name in [
        "sk_live_abc",
        "sk_live_abcde",
        "sk-live-abcd",
        "ci_test_deploy",
    ] {
        env.create(name, &[]);
    }
}

/// The example, on a store that already holds a decoy (made by an older
/// keyctl): `revoke <prefix>` must not revoke the decoy while the leaked key works on.
#[test]
fn a_decoy_named_like_another_keys_prefix_makes_the_reference_ambiguous() {
    let env = TestEnv::initialized();
    let leaked = env.create("leaked", &[]);
    let decoy = env.create("decoy", &[]);
    name_in_store(&env, decoy.id(), leaked.prefix());
    let before = env.snapshot();
    let keyref = leaked.prefix();
    for args in [
        vec!["revoke", "--yes", keyref],
        vec!["show", keyref],
        vec!["disable", keyref],
    ] {
        let out = env.run(&args);
        let line = out.fails(4).to_string();
        assert!(
            line.contains(leaked.id()) && line.contains(decoy.id()),
            "{out}"
        );
        assert!(
            line.contains("by name") && line.contains("by display prefix"),
            "{out}"
        );
    }
    assert_eq!(env.snapshot(), before);
    // With dots it is a prefix only; by id each is reachable.
    let out = env.run(&["revoke", "--yes", &format!("{}...", leaked.prefix())]);
    out.ok();
    assert_eq!(env.key_json(leaked.id())["status"], "revoked");
    assert_eq!(env.key_json(decoy.id())["status"], "active");
    assert_ne!(env.verify(NOW, &leaked.secret, &[]).code, Some(0));
}

#[test]
fn a_name_equal_to_another_keys_id_is_ambiguous_and_a_key_named_like_its_own_prefix_is_not() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    name_in_store(&env, b.id(), a.id());
    let line = env.run(&["show", a.id()]).fails(4).to_string();
    assert!(line.contains("by id") && line.contains(b.id()), "{line}");
    // The look-alike can be renamed by its own id, which ends the ambiguity.
    env.run(&["edit", b.id(), "--name", "b"]).ok();
    assert_eq!(env.key_json(a.id())["id"], a.id());

    // One key matched by name and by prefix is still one key.
    name_in_store(&env, a.id(), a.prefix());
    assert_eq!(env.key_json(a.prefix())["id"], a.id());
}
