//! Key metadata (SPEC §8): `--meta KEY=VALUE` on create and edit, a batch line's
//! `meta` object, `--unset-meta KEY`; the `meta` object of the key json, `show`'s
//! lines, every verdict (CLI json, stream, serve /v1 and Unkey's /v2), kept by
//! `rotate`; bad input refused with exit 2 and nothing changed.

use serde_json::{json, Value};

use crate::support::*;

/// The secret of a key of another store's prefix would not be refused; this one is
/// of this store's format (prefix `sk`), with a valid checksum, made by create.
fn a_secret(env: &TestEnv) -> String {
    env.create("donor", &[]).secret
}

#[test]
fn create_stores_meta_and_every_key_object_shows_it() {
    let env = TestEnv::initialized();
    let k = env.create(
        "orders",
        &[
            "--meta",
            "tenant=acme",
            "--meta",
            "plan=pro tier",
            "--meta",
            "empty=",
        ],
    );
    let meta = json!({"empty": "", "plan": "pro tier", "tenant": "acme"});
    assert_eq!(k.details["meta"], meta);
    assert_eq!(env.key_json("orders")["meta"], meta);
    let plain = env.create("plain", &[]);
    assert_eq!(plain.details["meta"], json!({}));
    let listed: Vec<Value> = env
        .list_json(&["--sort", "name"])
        .into_iter()
        .map(|k| json!([k["name"], k["meta"]]))
        .collect();
    assert_eq!(listed, [json!(["orders", meta]), json!(["plain", {}])]);
    // The key object's members in order, meta last.
    let out = env.run(&["list", "--json"]);
    out.ok();
    for key in Ordered::parse(&out.stdout).items() {
        assert_key_field_order(key);
    }

    // `show` for people: one line per entry, sorted.
    let shown = env.run(&["show", "orders"]);
    shown.ok();
    let lines: Vec<&str> = shown.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("Metadata"))
        .unwrap_or_else(|| panic!("no Metadata row\n{shown}"));
    assert!(lines[at].contains("empty="), "{shown}");
    assert!(lines[at + 1].contains("plan=pro tier"), "{shown}");
    assert!(lines[at + 2].contains("tenant=acme"), "{shown}");
    let none = env.run(&["show", "plain"]);
    assert!(
        none.stdout
            .lines()
            .any(|l| l.contains("Metadata") && l.contains("none")),
        "{none}"
    );
}

#[test]
fn edit_merges_overwrites_and_removes_entries_and_audits_old_and_new() {
    let env = TestEnv::initialized();
    env.create("svc", &["--meta", "tenant=acme", "--meta", "plan=free"]);
    let out = env.run(&[
        "edit",
        "svc",
        "--json",
        "--meta",
        "plan=pro",
        "--meta",
        "region=eu",
    ]);
    out.ok();
    let merged = json!({"plan": "pro", "region": "eu", "tenant": "acme"});
    assert_eq!(out.json()["meta"], merged);
    assert!(
        out.stderr.contains(r#"meta: {"plan":"free","tenant":"acme"} → {"plan":"pro","region":"eu","tenant":"acme"}"#),
        "{out}"
    );
    let event = env.audit_json(&["--limit", "1"]).remove(0);
    assert_eq!(event["action"], "edited");
    assert_eq!(
        event["details"]["changes"]["meta"],
        json!({"old": {"plan": "free", "tenant": "acme"}, "new": merged})
    );

    // Removing, with another setting in the same edit; a key it does not have is no error.
    env.run(&[
        "edit",
        "svc",
        "--unset-meta",
        "tenant",
        "--unset-meta",
        "nope",
        "--description",
        "d",
    ])
    .ok();
    assert_eq!(
        env.key_json("svc")["meta"],
        json!({"plan": "pro", "region": "eu"})
    );
    env.run(&[
        "edit",
        "svc",
        "--unset-meta",
        "plan",
        "--unset-meta",
        "region",
    ])
    .ok();
    assert_eq!(env.key_json("svc")["meta"], json!({}));
    assert_eq!(
        env.query_i64("SELECT count(*) FROM keys WHERE meta IS NULL"),
        1,
        "no metadata is stored as NULL"
    );

    // Unsetting what is not there changes nothing and says so; no event.
    let events = env.audit_json(&[]).len();
    let out = env.run(&["edit", "svc", "--unset-meta", "gone"]);
    out.ok();
    assert!(out.stderr.contains("nothing changed"), "{out}");
    assert_eq!(env.audit_json(&[]).len(), events);
}

#[test]
fn a_removal_makes_room_for_an_entry_set_in_the_same_edit() {
    let env = TestEnv::initialized();
    let mut args = Vec::new();
    for i in 0..32 {
        args.push("--meta".to_string());
        args.push(format!("k{i}=v"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.create("full", &args);
    let before = env.store_contents();
    let why = env
        .run(&["edit", "full", "--meta", "one.more=v"])
        .fails(2)
        .to_string();
    assert_eq!(
        why, "error: too much metadata: 33 entries, at most 32",
        "{why}"
    );
    assert_eq!(env.store_contents(), before);
    env.run(&["edit", "full", "--meta", "one.more=v", "--unset-meta", "k0"])
        .ok();
    let meta = env.key_json("full")["meta"].clone();
    assert_eq!(meta.as_object().unwrap().len(), 32);
    assert_eq!(meta["one.more"], "v");
    assert!(meta.get("k0").is_none());
}

#[test]
fn bad_meta_is_refused_with_exit_2_naming_the_problem_and_changes_nothing() {
    let env = TestEnv::initialized();
    env.create("svc", &["--meta", "tenant=acme"]);
    let secret = a_secret(&env);
    let pasted = format!("note={secret}");
    let big = format!("blob={}", "x".repeat(2000));
    let big2 = format!("blob2={}", "y".repeat(2000));
    let big3 = format!("blob3={}", "z".repeat(100));
    let long_key = format!("{}=v", "k".repeat(65));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--meta", "Tenant=x"],
            "invalid --meta: a metadata key may hold only a-z, 0-9",
        ),
        (vec!["--meta", "a b=x"], "a metadata key may hold only"),
        (vec!["--meta", "=x"], "invalid --meta: the key is empty"),
        (vec!["--meta", &long_key], "longer than 64 characters"),
        (
            vec!["--meta", "tenant"],
            "use KEY=VALUE (e.g. --meta tenant=acme)",
        ),
        (
            vec!["--meta", "note=a\u{7}b"],
            "invalid --meta value for 'note': it contains a control character (U+0007)",
        ),
        (
            vec!["--meta", "note=a\u{202e}b"],
            "an invisible formatting character (U+202E)",
        ),
        (
            vec!["--meta", &pasted],
            "invalid --meta value for 'note': it contains a key secret",
        ),
        (
            vec!["--meta", &big, "--meta", &big2, "--meta", &big3],
            "too much metadata: 4114 bytes of keys and values, at most 4096",
        ),
        (
            vec!["--meta", "plan=a", "--meta", "plan=b"],
            "metadata key 'plan' is given twice with different values",
        ),
    ];
    for (flags, says) in &cases {
        for command in ["create", "edit"] {
            let before = env.store_contents();
            let mut args = match command {
                "create" => vec!["create", "--json", "--name", "new"],
                _ => vec!["edit", "svc"],
            };
            args.extend_from_slice(flags);
            let out = env.run(&args);
            let line = out.fails(2);
            assert!(line.contains(says), "{command} {flags:?}: {line}");
            assert!(!line.contains(&secret), "the secret is echoed: {line}");
            assert_eq!(
                env.store_contents(),
                before,
                "{command} {flags:?} changed the store"
            );
        }
    }
    for (flags, says) in [
        (
            vec!["--unset-meta", "BAD"],
            "invalid --unset-meta: a metadata key may hold only",
        ),
        (
            vec!["--meta", "tenant=x", "--unset-meta", "tenant"],
            "metadata key 'tenant' is both set (--meta) and removed (--unset-meta)",
        ),
    ] {
        let before = env.store_contents();
        let mut args = vec!["edit", "svc"];
        args.extend_from_slice(&flags);
        let line = env.run(&args).fails(2).to_string();
        assert!(line.contains(says), "{flags:?}: {line}");
        assert_eq!(env.store_contents(), before);
    }
    // create has no --unset-meta.
    env.run(&["create", "--name", "x", "--unset-meta", "a"])
        .fails(2);
    assert_eq!(env.key_json("svc")["meta"], json!({"tenant": "acme"}));
}

#[test]
fn a_batch_line_carries_a_meta_object_and_a_bad_one_fails_the_batch() {
    let env = TestEnv::initialized();
    let input = concat!(
        r#"{"name": "a", "meta": {"tenant": "acme", "plan": "pro"}}"#,
        "\n",
        r#"{"name": "b", "meta": {}}"#,
        "\n",
        r#"{"name": "c"}"#,
        "\n",
    );
    let out = env.run_with_stdin(&["create", "--batch", "-"], input.as_bytes());
    out.ok();
    let metas: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["key_details"]["meta"].clone())
        .collect();
    assert_eq!(
        metas,
        [
            json!({"plan": "pro", "tenant": "acme"}),
            json!({}),
            json!({})
        ]
    );
    assert_eq!(
        env.key_json("a")["meta"],
        json!({"plan": "pro", "tenant": "acme"})
    );

    let secret = a_secret(&env);
    let pasted = format!(r#"{{"name": "x", "meta": {{"note": "{secret}"}}}}"#);
    for (line, says) in [
        (r#"{"name": "x", "meta": "tenant=acme"}"#.to_string(), "line 2: field `meta` must be an object of strings like {\"tenant\": \"acme\"}, got a string"),
        (r#"{"name": "x", "meta": {"seats": 5}}"#.into(), "line 2: field `meta` must be an object of strings, got 5 for 'seats'"),
        (r#"{"name": "x", "meta": {"Bad Key": "v"}}"#.into(), "line 2: invalid field `meta`: a metadata key may hold only"),
        (r#"{"name": "x", "meta": {"note": "a\u0007"}}"#.into(), "line 2: invalid field `meta` value for 'note': it contains a control character"),
        (pasted, "line 2: invalid field `meta` value for 'note': it contains a key secret"),
        (
            format!(r#"{{"name": "x", "meta": {{{}}}}}"#, (0..33).map(|i| format!(r#""k{i}": "v""#)).collect::<Vec<_>>().join(", ")),
            "line 2: too much metadata: 33 entries, at most 32",
        ),
    ] {
        let before = env.store_contents();
        let input = format!("{{\"name\": \"fine\"}}\n{line}\n");
        let out = env.run_with_stdin(&["create", "--batch", "-"], input.as_bytes());
        let err = out.fails(2);
        assert!(err.contains(says), "{line}: {err}");
        assert!(!err.contains(&secret));
        assert_eq!(env.store_contents(), before, "{line} changed the store");
    }
}

#[test]
fn rotate_keeps_the_meta() {
    let env = TestEnv::initialized();
    env.create("svc", &["--meta", "tenant=acme"]);
    let out = env.run(&["rotate", "--json", "--yes", "svc"]);
    out.ok();
    let v = out.json();
    assert_eq!(v["key_details"]["meta"], json!({"tenant": "acme"}), "{out}");
    let metas: Vec<Value> = env
        .list_json(&["--all"])
        .iter()
        .map(|k| k["meta"].clone())
        .collect();
    assert_eq!(
        metas,
        [json!({"tenant": "acme"}), json!({"tenant": "acme"})]
    );
}

#[test]
fn verdicts_hand_the_meta_back_on_the_cli_and_in_the_stream() {
    let env = TestEnv::initialized();
    let tagged = env.create("tagged", &["--meta", "tenant=acme", "--meta", "plan=pro"]);
    let plain = env.create("plain", &[]);
    let gone = env.create("gone", &["--meta", "tenant=old"]);
    env.revoke("gone");
    let meta = json!({"plan": "pro", "tenant": "acme"});

    let v = env.expect_verify_json(NOW, &tagged.secret, &[], "valid", "OK");
    assert_eq!(v["meta"], meta);
    let v = env.expect_verify_json(NOW, &plain.secret, &[], "valid", "OK");
    assert_eq!(v["meta"], json!({}));
    // A key named in the verdict brings its meta, whatever the outcome.
    let v = env.expect_verify_json(
        NOW,
        &gone.secret,
        &[],
        "revoked",
        "API key has been revoked",
    );
    assert_eq!(v["meta"], json!({"tenant": "old"}));
    // No key: null.
    let (_, v) = env.verify_json(NOW, "sk_live_notakey", &[]);
    assert_eq!(v["code"], "invalid");
    assert_eq!(v["meta"], Value::Null);

    let input = format!(
        "{}\n{}\n{}\n",
        json!({"key": tagged.secret}),
        json!({"key": plain.secret}),
        json!({"key": "sk_live_notakey"})
    );
    let out = env.run_with_stdin(&["verify", "--stream"], input.as_bytes());
    out.ok();
    let metas: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| assert_verdict_line(&out, l)["meta"].clone())
        .collect();
    assert_eq!(metas, [meta, json!({}), Value::Null]);
}

#[test]
fn serve_hands_the_meta_back_on_v1_and_in_unkeys_data_meta() {
    let env = TestEnv::initialized();
    let tagged = env.create(
        "tagged",
        &[
            "--group",
            "pro",
            "--meta",
            "tenant=acme",
            "--meta",
            "group=spoof",
        ],
    );
    let server = env.serve(&[]);

    let r = server.verify(&json!({"key": tagged.secret}).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["meta"],
        json!({"group": "spoof", "tenant": "acme"})
    );
    let r = server.verify(&json!({"key": "sk_live_notakey"}).to_string());
    assert_eq!(r.json()["meta"], Value::Null);

    let r = server.request(
        "POST",
        "/v2/keys.verifyKey",
        &[("Content-Type", "application/json")],
        json!({"key": tagged.secret}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // keyctl's own fields win over an entry of the same name.
    assert_eq!(
        r.json()["data"]["meta"],
        json!({"owner": ACTOR, "group": "pro", "livemode": true, "tenant": "acme"})
    );
    let r = server.request(
        "POST",
        "/v2/keys.verifyKey",
        &[("Content-Type", "application/json")],
        json!({"key": "sk_live_notakey"}).to_string().as_bytes(),
    );
    assert_eq!(r.json()["data"]["code"], "NOT_FOUND");
    assert!(r.json()["data"].get("meta").is_none(), "{}", r.text());
}

#[test]
fn a_damaged_stored_meta_reads_as_none_and_fails_no_command() {
    let env = TestEnv::initialized();
    let k = env.create("svc", &["--meta", "tenant=acme"]);
    for damaged in ["not json", "[1, 2]", r#"{"seats": 5}"#] {
        env.tamper(&format!(
            "UPDATE keys SET meta = '{damaged}' WHERE id = '{}'",
            k.id()
        ));
        assert_eq!(env.key_json("svc")["meta"], json!({}), "{damaged}");
        assert_eq!(env.list_json(&[])[0]["meta"], json!({}), "{damaged}");
        env.run(&["show", "svc"]).ok();
        let v = env.expect_verify_json(NOW, &k.secret, &[], "valid", "OK");
        assert_eq!(v["meta"], json!({}), "{damaged}");
        // Another edit keeps it as it is; a meta edit replaces it.
        env.run(&["edit", "svc", "--description", damaged]).ok();
        assert_eq!(
            env.query_i64(&format!(
                "SELECT count(*) FROM keys WHERE meta = '{damaged}'"
            )),
            1
        );
    }
    env.run(&["edit", "svc", "--meta", "tenant=new"]).ok();
    assert_eq!(env.key_json("svc")["meta"], json!({"tenant": "new"}));
}
