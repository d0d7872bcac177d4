//! `keyctl show KEYREF`: resolution by id, name and prefix; ambiguity; the three
//! output formats.

use serde_json::json;

use crate::support::*;

fn shown_id(env: &TestEnv, keyref: &str) -> String {
    let out = env.run(&["show", "--json", keyref]);
    out.ok();
    out.json()["id"].as_str().unwrap().to_string()
}

#[test]
fn keyref_by_id_name_and_prefix_with_or_without_dots() {
    let env = TestEnv::initialized();
    let k = env.create("deploy-bot", &[]);
    env.create("other", &[]);
    let prefix = k.prefix().to_string();
    for keyref in [
        k.id().to_string(),
        "deploy-bot".to_string(),
        prefix.clone(),
        format!("{prefix}..."),
    ] {
        assert_eq!(shown_id(&env, &keyref), k.id(), "show {keyref}");
    }
}

/// SPEC §5: a name shaped like another key's display prefix (only an old store can
/// hold one) makes the bare reference ambiguous; with dots it is a prefix only.
#[test]
fn a_name_like_another_keys_prefix_is_ambiguous_and_dots_mean_a_prefix() {
    let env = TestEnv::initialized();
    let a = env.create("a", &[]);
    let b = env.create("b", &[]);
    // A name shaped like a prefix, which today's keyctl refuses.
    env.fixture(
        &format!("UPDATE keys SET name = '{}' WHERE id = ?1", a.prefix()),
        b.id(),
    );
    let line = env.run(&["show", a.prefix()]).fails(4).to_string();
    assert!(line.contains(a.id()) && line.contains(b.id()), "{line}");
    assert_eq!(shown_id(&env, &format!("{}...", a.prefix())), a.id());
}

#[test]
fn unknown_keyref_is_not_found() {
    let env = TestEnv::initialized();
    env.create("real", &[]);
    let before = env.snapshot();
    for keyref in ["nosuch", "key_aaaaaaaaaaaa", "sk_live_zzzz...", "rea"] {
        let out = env.run(&["show", keyref]);
        let line = out.fails(3);
        assert_eq!(
            line,
            format!(
                "error: no key matches '{keyref}': use a key id, exact name or prefix (see 'keyctl list --all')"
            )
        );
    }
    assert_eq!(env.snapshot(), before);
}

/// Two expired keys share a name and neither holds it any more: the name is
/// ambiguous, and the error lists both (id, name, prefix); exit 4.
#[test]
fn ambiguous_name_lists_the_candidates() {
    let env = TestEnv::initialized();
    let first = env.create("dup", &["--expires", "1d"]);
    let day2 = "2026-11-25T12:00:00Z";
    let second = env.create_at(day2, "dup", &["--expires", "1d"]);

    // While the second key holds the name, the name means it.
    let out = env.run_at(day2, &["show", "--json", "dup"]);
    out.ok();
    assert_eq!(out.json()["id"], second.id());

    let day4 = "2026-11-27T12:00:00Z";
    let before = env.snapshot();
    let out = env.run_at(day4, &["show", "dup"]);
    let line = out.fails(4);
    for k in [&first, &second] {
        assert!(line.contains(k.id()), "lists {}: {line}", k.id());
        assert!(line.contains(k.prefix()), "lists {}: {line}", k.prefix());
    }
    assert!(line.contains("dup"), "{line}");
    assert_eq!(env.snapshot(), before);

    // Each id still resolves.
    let out = env.run_at(day4, &["show", "--json", first.id()]);
    out.ok();
    assert_eq!(out.json()["status"], "expired");
}

/// Two keys that share a display prefix (1 in 62^4 per pair, so the fixture forces
/// it): the prefix is ambiguous and both are listed; exit 4.
#[test]
fn ambiguous_prefix_lists_the_candidates() {
    let env = TestEnv::initialized();
    let a = env.create("first", &[]);
    let b = env.create("second", &[]);
    // Two keys sharing a display prefix, which random secrets almost never do.
    env.fixture(
        &format!(
            "UPDATE keys SET key_prefix = '{}' WHERE id = ?1",
            a.prefix()
        ),
        b.id(),
    );
    let before = env.snapshot();
    for keyref in [a.prefix().to_string(), format!("{}...", a.prefix())] {
        let out = env.run(&["show", &keyref]);
        let line = out.fails(4);
        for (k, name) in [(&a, "first"), (&b, "second")] {
            assert!(line.contains(k.id()) && line.contains(name), "{line}");
        }
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn json_is_the_key_object_plus_zero_usage() {
    let env = TestEnv::initialized();
    let k = env.create("j", &["--scope", "read", "--credits", "10"]);
    let out = env.run(&["show", "--json", "j"]);
    out.ok();
    let ordered = Ordered::parse(&out.stdout);
    let keys = ordered.keys();
    assert_eq!(
        keys[..KEY_FIELDS.len()],
        KEY_FIELDS,
        "key fields first, in order"
    );
    assert_eq!(ordered.get("quotas").keys(), QUOTA_FIELDS);

    let mut v = out.json();
    let usage = v
        .as_object_mut()
        .unwrap()
        .remove("usage")
        .expect("show --json reports usage");
    assert_eq!(v, k.details, "the same key object create printed");
    let zero = json!({"requests": 0, "accepted": 0, "rejected": 0, "credits": 0});
    assert_eq!(
        usage,
        json!({"last_24h": zero, "last_7d": zero, "last_30d": zero})
    );
}

#[test]
fn csv_is_the_list_header_and_one_row() {
    let env = TestEnv::initialized();
    env.create("c1", &[]);
    env.create("c2", &[]);
    let show = env.run(&["show", "--format", "csv", "c1"]);
    show.ok();
    let list = env.run(&["list", "--format", "csv", "--search", "c1"]);
    list.ok();
    assert_eq!(show.stdout, list.stdout);
    assert_eq!(show.stdout_lines().len(), 2);
}

/// Splits `Label   value` rows (labels may hold single spaces).
fn rows(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| match l.find("  ") {
            Some(i) => (l[..i].to_string(), l[i..].trim().to_string()),
            None => (l.trim().to_string(), String::new()),
        })
        .collect()
}

#[test]
fn table_shows_every_field_with_local_and_relative_times() {
    let env = TestEnv::initialized();
    let k = env.create(
        "full",
        &[
            "--description",
            "Deploys",
            "--owner",
            "alice",
            "--category",
            "staging",
            "--group",
            "pro",
            "--scope",
            "read",
            "--scope",
            "write",
            "--deployment",
            "eu-1",
            "--allow-model",
            "m1",
            "--allow-ip",
            "10.0.0.0/8",
            "--expires",
            "30d",
            "--quota-daily",
            "5",
            "--rate-limit",
            "10/s",
            "--credits",
            "100",
        ],
    );
    let out = env.run_at("2026-11-23T15:00:00Z", &["show", "full"]);
    out.ok();
    assert_eq!(out.stderr, "");
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        rows(&out.stdout),
        vec![
            s("ID", k.id()),
            s("Name", "full"),
            s("Description", "Deploys"),
            s("Owner", "alice"),
            s("Key", &format!("{}...", k.prefix())),
            s("Status", "● active"),
            s("Mode", "live"),
            s("Category", "staging"),
            s("Group", "pro"),
            s("Scopes", "read, write"),
            s("Deployment", "eu-1"),
            s("Allowed models", "m1"),
            s("Allowed IPs", "10.0.0.0/8"),
            s("Quotas", "total none, daily 5, weekly none, monthly none"),
            s("Rate limit", "10 per second"),
            s("Credits", "0 used of 100 (100 left)"),
            s("Refill", "none"),
            s("Created", "2026-11-23 12:00:00 +00:00 (3 hours ago)"),
            s("Expires", "2026-12-23 12:00:00 +00:00 (in 1 month)"),
            s("Last used", "Never"),
            s("Last used IP", ""),
            s("Rotated from", ""),
            s("Rotated to", ""),
            s("Metadata", "none"),
            s(
                "Usage 24h",
                "0 requests (0 accepted, 0 rejected), 0 credits"
            ),
            s("Usage 7d", "0 requests (0 accepted, 0 rejected), 0 credits"),
            s(
                "Usage 30d",
                "0 requests (0 accepted, 0 rejected), 0 credits"
            ),
        ],
        "{out}"
    );
}

#[test]
fn table_of_a_bare_key_says_what_absent_settings_mean() {
    let env = TestEnv::initialized();
    env.create("bare", &["--test"]);
    let out = env.run(&["show", "bare"]);
    out.ok();
    let rows = rows(&out.stdout);
    let get = |label: &str| {
        rows.iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {label} row\n{out}"))
    };
    assert_eq!(get("Mode"), "test");
    assert_eq!(get("Scopes"), "unrestricted");
    assert_eq!(get("Deployment"), "project-wide");
    assert_eq!(get("Allowed models"), "any");
    assert_eq!(get("Allowed IPs"), "any");
    assert_eq!(get("Rate limit"), "none");
    assert_eq!(get("Credits"), "0 used (unlimited)");
    assert_eq!(get("Expires"), "Never");
    assert_eq!(get("Last used"), "Never");
}

#[test]
fn show_in_a_terminal_honours_no_color() {
    let env = TestEnv::initialized();
    env.create("k", &[]);
    let coloured = run_on_tty(env.command(), &["show", "k"], 200);
    coloured.ok();
    assert!(coloured.stdout.contains("\x1b["), "{coloured}");
    let plain = run_on_tty(env.command(), &["show", "k", "--no-color"], 200);
    plain.ok();
    assert!(!plain.stdout.contains('\x1b'), "{plain}");
    let mut cmd = env.command();
    cmd.env("NO_COLOR", "1");
    let env_plain = run_on_tty(cmd, &["show", "k"], 200);
    assert!(!env_plain.stdout.contains('\x1b'), "{env_plain}");
}

/// Tables show local time (here a POSIX TZ string, so no tz database is needed);
/// json stays RFC 3339 UTC.
#[test]
fn table_times_are_local_and_json_times_are_utc() {
    let env = TestEnv::initialized();
    env.create("tz", &["--expires", "2027-01-31T12:00:00Z"]);
    let out = env
        .keyctl(&["show", "tz"])
        .with(|c| {
            c.env("TZ", "JST-9");
        })
        .run();
    out.ok();
    let rows = rows(&out.stdout);
    let get = |label: &str| rows.iter().find(|(l, _)| l == label).unwrap().1.clone();
    assert_eq!(get("Created"), "2026-11-23 21:00:00 +09:00 (just now)");
    assert_eq!(get("Expires"), "2027-01-31 21:00:00 +09:00 (in 2 months)");
    let out = env
        .keyctl(&["show", "--json", "tz"])
        .with(|c| {
            c.env("TZ", "JST-9");
        })
        .run();
    assert_eq!(out.json()["created_at"], NOW);
    assert_eq!(out.json()["expires_at"], "2027-01-31T12:00:00Z");
}

/// Issue 11: relative times round to the nearest unit, so an expiry reads as it was
/// typed (`1d` is "in 1 day", not "in 23 hours"), a second later too, with the date
/// beside it.
#[test]
fn expiry_reads_as_typed_beside_its_date() {
    let env = TestEnv::initialized();
    for (name, expires) in [("d1", "1d"), ("d90", "90d"), ("d365", "365d")] {
        env.create(name, &["--expires", expires]);
    }
    let a_second_on = now_plus(1);
    for (name, date, phrase) in [
        ("d1", "2026-11-24", "in 1 day"),
        ("d90", "2027-02-21", "in 3 months"),
        ("d365", "2027-11-23", "in 1 year"),
    ] {
        let out = env.run_at(&a_second_on, &["show", name]);
        out.ok();
        let rows = rows(&out.stdout);
        let expires = &rows.iter().find(|(l, _)| l == "Expires").unwrap().1;
        assert_eq!(
            expires,
            &format!("{date} 12:00:00 +00:00 ({phrase})"),
            "{out}"
        );
    }
    let out = env.run_at(&now_plus(2 * HOUR), &["show", "d1"]);
    let rows = rows(&out.stdout);
    let created = &rows.iter().find(|(l, _)| l == "Created").unwrap().1;
    assert_eq!(created, "2026-11-23 12:00:00 +00:00 (2 hours ago)", "{out}");
}
