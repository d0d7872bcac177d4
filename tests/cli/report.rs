//! `keyctl report` (SPEC §8): key-hygiene findings as a table grouped by finding, json
//! and csv; `--fail-on` exits 5; bad flag values exit 2 and change nothing. Every
//! key's history is made with the real commands at fixed clocks (`KEYCTL_NOW`), on
//! whichever backend the suite runs on.

use serde_json::Value;

use crate::support::*;

/// The finding names in the order the table groups them.
const FINDINGS: [&str; 7] = [
    "never-used",
    "unused",
    "expiring",
    "no-expiry",
    "unrestricted",
    "near-limit",
    "in-grace",
];

/// The members of one json finding row, in order.
const ROW_FIELDS: [&str; 14] = [
    "finding",
    "key_id",
    "name",
    "owner",
    "status",
    "detail",
    "limit",
    "used",
    "cap",
    "percent",
    "created_at",
    "last_used_at",
    "expires_at",
    "rotated_to",
];

/// A key's restrictions and a far expiry: no finding but the one a test adds.
const TIDY: [&str; 4] = ["--scope", "read", "--expires", "365d"];

/// [`TIDY`] and `extra`, whose `--expires` wins.
fn tidy(extra: &[&str]) -> Vec<String> {
    let own_expiry = extra.contains(&"--expires");
    let base = if own_expiry { &TIDY[..2] } else { &TIDY[..] };
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn create(env: &TestEnv, now: &str, name: &str, extra: &[&str]) -> Created {
    let args = tidy(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.create_at(now, name, &args)
}

fn used(env: &TestEnv, now: &str, k: &Created) {
    env.expect_verify(now, &k.secret, &[], "valid", "OK");
}

/// The ids of one store with exactly one key per finding (`--expiring 1d`).
struct OnePerFinding {
    fresh: String,
    stale: String,
    soon: String,
    forever: String,
    open: String,
    busy: String,
    graced: String,
}

/// One key per finding, each with no other finding under `--expiring 1d`; plus keys
/// a report leaves out (revoked, expired, disabled after a rotation).
fn one_per_finding(env: &TestEnv) -> OnePerFinding {
    let long_ago = now_plus(-60 * DAY);
    let fresh = create(env, &now_plus(-2 * DAY), "fresh", &[]);
    let stale = create(env, &long_ago, "stale", &[]);
    used(env, &now_plus(-45 * DAY), &stale);
    let soon = create(env, NOW, "soon", &["--expires", "12h"]);
    used(env, NOW, &soon);
    let forever = env.create("forever", &["--scope", "read", "--expires", "never"]);
    used(env, NOW, &forever);
    let open = env.create("open", &["--expires", "365d"]);
    used(env, NOW, &open);
    let busy = create(env, &now_plus(-DAY), "busy", &["--quota-daily", "10"]);
    for _ in 0..8 {
        used(env, &now_plus(-HOUR), &busy);
    }
    let graced = create(env, &long_ago, "graced", &[]);
    used(env, NOW, &graced);
    let out = env.run(&["rotate", "graced", "--grace", "2d", "--yes", "--json"]);
    out.ok();
    let successor = out.json()["key"].as_str().unwrap().to_string();
    env.expect_verify(NOW, &successor, &[], "valid", "OK");
    // Left out: none of these can verify again without an administrator's new act.
    let revoked = create(env, &long_ago, "revoked", &[]);
    env.revoke(revoked.id());
    create(env, &long_ago, "expired", &["--expires", "2026-10-01"]);
    let rotated = create(env, &long_ago, "rotated", &[]);
    let out = env.run(&["rotate", "rotated", "--yes", "--json"]);
    out.ok();
    env.expect_verify(NOW, out.json()["key"].as_str().unwrap(), &[], "valid", "OK");
    assert_eq!(env.key_json(rotated.id())["status"], "disabled");
    OnePerFinding {
        fresh: fresh.id().into(),
        stale: stale.id().into(),
        soon: soon.id().into(),
        forever: forever.id().into(),
        open: open.id().into(),
        busy: busy.id().into(),
        graced: graced.id().into(),
    }
}

/// `report --json ARGS` at NOW: the rows, after checking each row's members.
fn report_json(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["report", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    let rows = match out.json() {
        Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    };
    // Every row's members in order (serde_json's `Value` would sort them).
    match Ordered::parse(&out.stdout) {
        Ordered::Array(ordered) => {
            assert_eq!(ordered.len(), rows.len());
            for row in &ordered {
                assert_eq!(row.keys(), ROW_FIELDS, "{out}");
            }
        }
        other => panic!("not an array: {other:?}"),
    }
    rows
}

fn pairs(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            (
                r["finding"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(finding: &str, name: &str) -> (String, String) {
    (finding.to_string(), name.to_string())
}

/// A table's groups: (heading, the rows' lines under its column header).
fn groups(stdout: &str) -> (Vec<(String, Vec<String>)>, String) {
    let mut lines: Vec<&str> = stdout.lines().collect();
    let summary = lines.pop().expect("a summary line").to_string();
    let mut groups = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        if lines[at].is_empty() {
            at += 1;
            continue;
        }
        let heading = lines[at].to_string();
        assert!(
            lines[at + 1].starts_with("Key ") && lines[at + 1].ends_with("Detail"),
            "no column header under {heading}:\n{stdout}"
        );
        at += 2;
        let mut rows = Vec::new();
        while at < lines.len() && !lines[at].is_empty() {
            // A group drawn in parts repeats no header.
            assert!(!lines[at].starts_with("Key "), "{stdout}");
            rows.push(lines[at].to_string());
            at += 1;
        }
        groups.push((heading, rows));
    }
    (groups, summary)
}

fn headings(groups: &[(String, Vec<String>)]) -> Vec<&str> {
    groups.iter().map(|(h, _)| h.as_str()).collect()
}

#[test]
fn each_finding_is_found_once_and_shown_grouped_in_the_table() {
    let env = TestEnv::initialized();
    let ids = one_per_finding(&env);
    let out = env.run(&["report", "--expiring", "1d"]);
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    let (groups, summary) = groups(&out.stdout);
    let expected = [
        (
            "never-used (1)",
            &ids.fresh,
            "never used; created 2 days ago",
        ),
        ("unused (1)", &ids.stale, "last used 1 month ago"),
        ("expiring (1)", &ids.soon, "expires in 12 hours"),
        ("no-expiry (1)", &ids.forever, "never expires"),
        (
            "unrestricted (1)",
            &ids.open,
            "no scope, IP allowlist, deployment or model",
        ),
        (
            "near-limit (1)",
            &ids.busy,
            "daily quota: 8 of 10 used (80%)",
        ),
        (
            "in-grace (1)",
            &ids.graced,
            "verifies until 2026-11-25T12:00:00Z (in 2 days)",
        ),
    ];
    let names: Vec<&str> = groups
        .iter()
        .map(|(h, _)| h.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, FINDINGS, "every group, in SPEC §8's order\n{out}");
    for ((heading, rows), (want, id, detail)) in groups.iter().zip(expected) {
        assert_eq!(heading, want, "{out}");
        assert_eq!(rows.len(), 1, "{out}");
        assert!(rows[0].starts_with(id.as_str()), "{out}");
        assert!(rows[0].ends_with(detail), "{out}");
        assert!(rows[0].contains(ACTOR), "the owner is shown\n{out}");
    }
    assert!(groups[6].1[0].contains("active (grace)"), "{out}");
    // The seven, and the two successors of rotations (used, restricted, no finding);
    // the revoked key, the expired one and the one disabled by its rotation are not
    // checked.
    assert_eq!(summary, "7 findings on 7 keys · 9 keys checked", "{out}");
}

#[test]
fn json_and_csv_carry_the_same_rows_with_their_figures() {
    let env = TestEnv::initialized();
    let ids = one_per_finding(&env);
    let rows = report_json(&env, &["--expiring", "1d"]);
    // Keys in creation order; the successor of the rotation has no finding.
    assert_eq!(
        pairs(&rows),
        [
            pair("never-used", "fresh"),
            pair("unused", "stale"),
            pair("expiring", "soon"),
            pair("no-expiry", "forever"),
            pair("unrestricted", "open"),
            pair("near-limit", "busy"),
            pair("in-grace", "graced"),
        ]
    );
    let near = &rows[5];
    assert_eq!(near["key_id"], ids.busy.as_str());
    assert_eq!(near["owner"], ACTOR);
    assert_eq!(near["status"], "active");
    assert_eq!(
        (
            &near["limit"],
            &near["used"],
            &near["cap"],
            &near["percent"]
        ),
        (
            &Value::from("daily"),
            &Value::from(8),
            &Value::from(10),
            &Value::from(80)
        )
    );
    assert_eq!(near["detail"], "daily quota: 8 of 10 used (80%)");
    let unused = &rows[1];
    assert_eq!(unused["last_used_at"], now_plus(-45 * DAY).as_str());
    assert_eq!(unused["limit"], Value::Null);
    let graced = &rows[6];
    assert_eq!(graced["expires_at"], now_plus(2 * DAY).as_str());
    let successor = graced["rotated_to"].as_str().unwrap();
    assert_eq!(env.key_json(successor)["name"], "graced");

    let out = env.run(&["report", "--format", "csv", "--expiring", "1d"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(lines[0], ROW_FIELDS.join(","));
    assert_eq!(lines.len(), 1 + rows.len(), "{out}");
    assert_eq!(
        lines[6],
        format!(
            "near-limit,{},busy,{ACTOR},active,daily quota: 8 of 10 used (80%),daily,8,10,80,{},{},{},",
            ids.busy,
            now_plus(-DAY),
            now_plus(-HOUR),
            now_plus(364 * DAY)
        )
    );
    assert!(lines[5].starts_with(&format!(
        "unrestricted,{},open,{ACTOR},active,\"no scope, IP allowlist, deployment or model\",,,,,",
        ids.open
    )));
}

#[test]
fn the_thresholds_move_what_is_found() {
    let env = TestEnv::initialized();
    one_per_finding(&env);
    let names = |args: &[&str]| pairs(&report_json(&env, args));
    // The default --expiring 14d also finds the grace period's end (2 days) and the
    // rotation's successor keeps the old key's settings, 365 days.
    let default = names(&[]);
    assert!(default.contains(&pair("expiring", "graced")), "{default:?}");
    // 45 days unused is not unused for --unused 60d; 8 of 10 is not near at 90%.
    let lax = names(&["--unused", "60d", "--near", "90%", "--expiring", "1d"]);
    assert!(!lax.contains(&pair("unused", "stale")), "{lax:?}");
    assert!(!lax.iter().any(|(f, _)| f == "near-limit"), "{lax:?}");
    let strict = names(&["--near", "80", "--expiring", "1d", "--only", "near-limit"]);
    assert_eq!(strict, [pair("near-limit", "busy")]);
    // --only takes a list, and is repeatable.
    let some = names(&["--only", "no-expiry,unused", "--only", "in-grace"]);
    assert_eq!(
        some,
        [
            pair("unused", "stale"),
            pair("no-expiry", "forever"),
            pair("in-grace", "graced")
        ]
    );
}

#[test]
fn credits_and_the_total_quota_are_limits_too_and_each_is_named() {
    let env = TestEnv::initialized();
    let k = create(
        &env,
        NOW,
        "metered",
        &[
            "--quota-total",
            "5",
            "--quota-monthly",
            "100",
            "--credits",
            "20",
        ],
    );
    for _ in 0..4 {
        env.expect_verify(NOW, &k.secret, &["--cost", "5"], "valid", "OK");
    }
    let rows = report_json(&env, &[]);
    let figures: Vec<(String, u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["limit"].as_str().unwrap().to_string(),
                r["used"].as_u64().unwrap(),
                r["cap"].as_u64().unwrap(),
                r["percent"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("total".to_string(), 4, 5, 80),
            ("credits".to_string(), 20, 20, 100)
        ]
    );
}

#[test]
fn a_key_with_several_findings_is_listed_under_each() {
    let env = TestEnv::initialized();
    let k = env.create("loose", &[]);
    let rows = report_json(&env, &[]);
    assert_eq!(
        pairs(&rows),
        [
            pair("never-used", "loose"),
            pair("no-expiry", "loose"),
            pair("unrestricted", "loose")
        ]
    );
    let out = env.run(&["report"]);
    out.ok();
    let (groups, summary) = groups(&out.stdout);
    assert_eq!(
        headings(&groups),
        ["never-used (1)", "no-expiry (1)", "unrestricted (1)"]
    );
    for (_, rows) in &groups {
        assert!(rows[0].starts_with(k.id()), "{out}");
    }
    assert_eq!(summary, "3 findings on 1 key · 1 key checked");
    // A disabled key is still checked: one `enable` brings it back as it is.
    env.disable("loose");
    let rows = report_json(&env, &[]);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "disabled"));
}

#[test]
fn fail_on_exits_5_when_a_named_finding_is_present_and_0_otherwise() {
    let env = TestEnv::initialized();
    let k = create(&env, NOW, "tidy", &[]);
    used(&env, NOW, &k);
    let out = env.run(&["report", "--fail-on", "never-used,in-grace"]);
    out.ok();
    assert_eq!(out.stdout, "no findings · 1 key checked\n");
    env.create("loose", &[]);
    let out = env.run(&["report", "--fail-on", "in-grace"]);
    out.ok();
    for args in [
        &["report", "--fail-on", "never-used"][..],
        &[
            "report",
            "--fail-on",
            "in-grace",
            "--fail-on",
            "unrestricted",
        ],
        &["report", "--json", "--fail-on", "no-expiry"],
        &[
            "report",
            "--format",
            "csv",
            "--fail-on",
            "unrestricted,never-used",
        ],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(5), "{out}");
        out.no_panic();
        // The report is printed in full, and nothing is said on stderr.
        assert!(out.stdout.contains("loose"), "{out}");
        assert_eq!(out.stderr, "", "{out}");
    }
}

#[test]
fn bad_flag_values_exit_2_with_one_line_and_change_nothing() {
    let env = TestEnv::initialized();
    env.create("loose", &[]);
    let before = env.store_contents();
    for (args, message) in [
        (
            &["report", "--fail-on", "stale"][..],
            "error: invalid --fail-on: unknown finding 'stale'; use a comma-separated list of \
             never-used, unused, expiring, no-expiry, unrestricted, near-limit, in-grace",
        ),
        (
            &["report", "--only", "never-used,"],
            "error: invalid --only: an empty finding name; use a comma-separated list of \
             never-used, unused, expiring, no-expiry, unrestricted, near-limit, in-grace",
        ),
        (
            &["report", "--near", "120%"],
            "error: invalid --near '120%': use a whole percentage from 1% to 100%, like 80%",
        ),
        (
            &["report", "--near", "0.5"],
            "error: invalid --near '0.5': use a whole percentage from 1% to 100%, like 80%",
        ),
        (
            &["report", "--unused", "soon"],
            "error: invalid --unused: 'soon' is not a duration: use a duration like 90m, 12h, 30d or 2w",
        ),
        (
            &["report", "--expiring", "0d"],
            "error: invalid --expiring '0d': use a duration longer than zero, like 30d",
        ),
        (
            &["report", "--only", "never-used", "--fail-on", "unused,never-used"],
            "error: --fail-on names unused, which --only leaves out: add it to --only or \
             remove it from --fail-on",
        ),
    ] {
        let out = env.run(args);
        assert_eq!(out.fails(2), message, "{out}");
    }
    assert_eq!(env.store_contents(), before);
}

#[test]
fn an_empty_store_has_no_findings_in_any_format() {
    let env = TestEnv::initialized();
    let out = env.run(&["report", "--fail-on", "never-used"]);
    out.ok();
    assert_eq!(out.stdout, "no findings · 0 keys checked\n");
    assert_eq!(report_json(&env, &[]), Vec::<Value>::new());
    let out = env.run(&["report", "--json"]);
    assert_eq!(out.stdout, "[]\n");
    let out = env.run(&["report", "--format", "csv"]);
    out.ok();
    assert_eq!(out.stdout, format!("{}\n", ROW_FIELDS.join(",")));
}

#[test]
fn a_missing_store_is_an_error_and_is_not_created() {
    let env = TestEnv::new();
    let out = env.run(&["report"]);
    out.fails(1);
    assert!(!env.store_exists());
}

/// `n` keys named `bulk-NNNN` with no restriction and no expiry, in one batch.
fn bulk(env: &TestEnv, n: usize) {
    let input: String = (0..n)
        .map(|i| format!("{{\"name\": \"bulk-{i:04}\"}}\n"))
        .collect();
    env.run_with_stdin(&["-q", "create", "--batch", "-"], input.as_bytes())
        .ok();
}

#[test]
fn a_report_larger_than_one_part_is_drawn_group_by_group_with_one_set_of_columns() {
    let env = TestEnv::initialized();
    // Three findings each: 3,300 rows, more than the table keeps from its first pass.
    bulk(&env, 1100);
    let out = env.run(&["report"]);
    out.ok();
    let (groups, summary) = groups(&out.stdout);
    assert_eq!(
        headings(&groups),
        [
            "never-used (1100)",
            "no-expiry (1100)",
            "unrestricted (1100)"
        ]
    );
    assert_eq!(summary, "3300 findings on 1100 keys · 1100 keys checked");
    let header = out.stdout.lines().find(|l| l.starts_with("Key ")).unwrap();
    let detail_at = header.find("Detail").unwrap();
    for (_, rows) in &groups {
        assert_eq!(rows.len(), 1100);
        // Keys in creation order in every group; every part lines up with the header.
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r.split_whitespace().nth(1).unwrap())
            .collect();
        let expected: Vec<String> = (0..1100).map(|i| format!("bulk-{i:04}")).collect();
        assert_eq!(names, expected);
        for row in rows {
            // In characters: the status column's dot is one column, three bytes.
            let chars: Vec<char> = row.chars().collect();
            assert!(
                chars[detail_at - 2..detail_at] == [' ', ' '] && chars[detail_at] != ' ',
                "{row}"
            );
        }
    }
    // Every header line is the same: the parts and groups share their columns.
    assert!(out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Key "))
        .all(|l| l == header));
    let rows = report_json(&env, &["--only", "never-used"]);
    assert_eq!(rows.len(), 1100);
}

#[test]
fn a_closed_stdout_keeps_the_fail_on_answer() {
    let env = TestEnv::initialized();
    bulk(&env, 1100);
    for (args, code) in [
        (&["report", "--fail-on", "unrestricted"][..], 5),
        (&["report", "--json", "--fail-on", "unrestricted"], 5),
        (&["report", "--format", "csv", "--fail-on", "in-grace"], 0),
        (&["report"], 0),
    ] {
        let out = env.keyctl(args).at(NOW).with(stdout_closed).run();
        assert_eq!(out.code, Some(code), "{out}");
        out.no_panic();
        assert_eq!(out.stderr, "", "{out}");
    }
}

#[test]
fn only_and_fail_on_complete_with_the_finding_names() {
    let env = TestEnv::initialized();
    for flag in ["--only", "--fail-on"] {
        let mut c = env.command();
        // fish's protocol: the words before the cursor and the current one.
        c.env("KEYCTL_COMPLETE", "fish")
            .args(["--", "keyctl", "report", flag, ""]);
        let out = Outcome::new(&["--", "keyctl", "report", flag, ""], Run::new(c).output());
        out.ok();
        assert_eq!(out.stdout_lines(), FINDINGS, "{out}");
    }
}
