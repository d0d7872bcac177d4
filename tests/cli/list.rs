//! `keyctl list`: table (dots, relative times, summary line, colour), json, csv,
//! every filter and sort.

use serde_json::json;

use crate::support::*;

/// Three hours after `NOW`.
const LATER: &str = "2026-11-23T15:00:00Z";
/// Two days after `NOW`: keys made with `--expires 1d` have expired.
const TWO_DAYS_ON: &str = "2026-11-25T12:00:00Z";

#[test]
fn table_has_columns_dots_relative_times_and_a_summary() {
    let env = TestEnv::initialized();
    let a = env.create("alpha", &["--expires", "30d"]);
    let b = env.create("b", &[]);
    let out = env.run_at(LATER, &["list"]);
    out.ok();
    assert_eq!(out.stderr, "");
    let expected = format!(
        "\
Name   Key              Status    Created      Expires     Last used
b      {}...  ● active  3 hours ago  Never       Never
alpha  {}...  ● active  3 hours ago  in 1 month  Never

2 active · 2 keys, no limit
",
        b.prefix(),
        a.prefix()
    );
    assert_eq!(out.stdout, expected, "{out}");
}

#[test]
fn summary_line_counts_statuses_and_the_key_limit() {
    let env = TestEnv::initialized();
    env.create("act1", &[]);
    env.create("act2", &[]);
    let dis = env.create("dis", &[]);
    let rev = env.create("rev", &[]);
    env.create("exp", &["--expires", "1d"]);
    env.disable(dis.id());
    env.revoke(rev.id());

    let out = env.run_at(TWO_DAYS_ON, &["list"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(
        lines.last(),
        Some(&"2 active · 1 disabled · 1 expired · 3 keys, no limit"),
        "{out}"
    );
    assert!(
        !out.stdout.contains("rev "),
        "revoked keys need --all\n{out}"
    );

    let out = env.run_at(TWO_DAYS_ON, &["list", "--all"]);
    out.ok();
    assert_eq!(
        out.stdout_lines().last(),
        Some(&"2 active · 1 disabled · 1 expired · 1 revoked · 3 keys, no limit"),
        "{out}"
    );
    for status in ["● active", "● disabled", "● expired", "● revoked"] {
        assert!(out.stdout.contains(status), "{status}\n{out}");
    }

    env.run(&["config", "set", "max-keys", "10"]).ok();
    let out = env.run_at(TWO_DAYS_ON, &["list"]);
    assert_eq!(
        out.stdout_lines().last(),
        Some(&"2 active · 1 disabled · 1 expired · limit 3/10"),
        "{out}"
    );

    let json = env.list_json_at(TWO_DAYS_ON, &["--all", "--sort", "name"]);
    let statuses: Vec<_> = json
        .iter()
        .map(|k| {
            (
                k["name"].clone(),
                k["status"].clone(),
                k["is_active"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (json!("act1"), json!("active"), json!(true)),
            (json!("act2"), json!("active"), json!(true)),
            (json!("dis"), json!("disabled"), json!(false)),
            (json!("exp"), json!("expired"), json!(false)),
            (json!("rev"), json!("revoked"), json!(false)),
        ]
    );
}

#[test]
fn empty_store_lists_nothing_in_every_format() {
    let env = TestEnv::initialized();
    let out = env.run(&["list"]);
    out.ok();
    assert_eq!(out.stdout, "0 active · 0 keys, no limit\n");
    assert!(out.stderr.contains("keyctl create --name"), "{out}");

    let out = env.run(&["list", "--json"]);
    out.ok();
    assert_eq!(out.json(), json!([]));

    let out = env.run(&["list", "--format", "csv"]);
    out.ok();
    assert_eq!(out.stdout_lines().len(), 1, "the header only\n{out}");
}

#[test]
fn json_is_an_array_of_key_objects_in_spec_order() {
    let env = TestEnv::initialized();
    let a = env.create("a", &["--expires", "2027-01-31", "--scope", "read"]);
    let b = env.create("b", &["--test"]);
    let out = env.run(&["list", "--json"]);
    out.ok();
    let ordered = Ordered::parse(&out.stdout);
    assert_eq!(ordered.items().len(), 2);
    for item in ordered.items() {
        assert_key_field_order(item);
    }
    // Newest first, and the same objects create printed.
    assert_eq!(out.json(), json!([b.details, a.details]));
    let v = out.json();
    assert_eq!(v[1]["expires_at"], "2027-01-31T00:00:00Z");
    assert_eq!(v[1]["created_at"], NOW);
    assert_eq!(v[0]["livemode"], false);
}

#[test]
fn csv_has_a_header_and_one_row_per_key() {
    let env = TestEnv::initialized();
    let k = env.create(
        "csv-key",
        &[
            "--description",
            "says \"hi\", twice",
            "--scope",
            "read",
            "--scope",
            "write",
            "--allow-ip",
            "10.0.0.0/8,192.0.2.1",
            "--quota-daily",
            "5",
            "--rate-limit",
            "3/m",
            "--credits",
            "7",
            "--expires",
            "1d",
        ],
    );
    let out = env.run(&["list", "--format", "csv"]);
    out.ok();
    let lines = out.stdout_lines();
    assert_eq!(
        lines[0],
        "id,name,description,owner,key_prefix,status,is_active,livemode,category,group,\
         scopes,deployment,allowed_models,allowed_ips,quota_total,quota_daily,quota_weekly,\
         quota_monthly,rate_limit,credit_limit,credits_used,refill,next_refill_at,created_at,expires_at,\
         last_used_at,last_used_ip,rotated_from,rotated_to"
    );
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[1],
        format!(
            "{},csv-key,\"says \"\"hi\"\", twice\",tester,{},active,true,true,,,read;write,,,\
             10.0.0.0/8;192.0.2.1,,5,,,3/m,7,0,,,{NOW},2026-11-24T12:00:00Z,,,,",
            k.id(),
            k.prefix()
        )
    );
}

#[test]
fn filters_select_by_category_owner_deployment_group_and_search() {
    let env = TestEnv::initialized();
    let alpha = env.create(
        "alpha",
        &[
            "--category",
            "production",
            "--owner",
            "alice",
            "--deployment",
            "eu-1",
            "--group",
            "pro",
            "--description",
            "Billing worker",
        ],
    );
    env.create(
        "beta",
        &[
            "--category",
            "staging",
            "--owner",
            "bob",
            "--deployment",
            "us-1",
            "--group",
            "free",
        ],
    );
    let gamma = env.create(
        "gamma",
        &[
            "--category",
            "production",
            "--owner",
            "alice",
            "--group",
            "free",
            "--test",
        ],
    );
    env.create("delta", &["--expires", "1d"]);

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![], vec!["delta", "gamma", "beta", "alpha"]),
        (vec!["--category", "production"], vec!["gamma", "alpha"]),
        (vec!["--owner", "alice"], vec!["gamma", "alpha"]),
        (vec!["--owner", ACTOR], vec!["delta"]),
        (vec!["--deployment", "eu-1"], vec!["alpha"]),
        (vec!["--group", "free"], vec!["gamma", "beta"]),
        (
            vec!["--category", "production", "--group", "free"],
            vec!["gamma"],
        ),
        (vec!["--search", "BILLING"], vec!["alpha"]),
        (vec!["--search", "amm"], vec!["gamma"]),
        (vec!["--search", &alpha.id()[4..10]], vec!["alpha"]),
        (vec!["--search", gamma.prefix()], vec!["gamma"]),
        (vec!["--category", "nothing-like-this"], vec![]),
    ];
    for (args, expected) in cases {
        assert_eq!(env.list_names(&args), expected, "list {args:?}");
    }
    // Search ignores case in prefixes too.
    let upper = gamma.prefix().to_uppercase();
    assert_eq!(env.list_names(&["--search", &upper]), ["gamma"]);
}

#[test]
fn status_filter_takes_lists_and_repeats() {
    let env = TestEnv::initialized();
    env.create("live-one", &[]);
    env.create("short", &["--expires", "1d"]);
    let rev = env.create("gone", &[]);
    env.revoke(rev.id());
    let names = |args: &[&str]| names(&env.list_json_at(TWO_DAYS_ON, args));
    assert_eq!(names(&["--status", "expired"]), ["short"]);
    assert_eq!(names(&["--status", "active"]), ["live-one"]);
    assert_eq!(
        names(&["--status", "active,expired"]),
        ["short", "live-one"]
    );
    assert_eq!(
        names(&["--status", "active", "--status", "expired"]),
        ["short", "live-one"]
    );
    assert_eq!(names(&["--status", "revoked"]), ["gone"]);
    assert_eq!(names(&["--status", "disabled"]), Vec::<String>::new());
}

#[test]
fn no_match_prints_the_summary_and_a_hint() {
    let env = TestEnv::initialized();
    env.create("one", &[]);
    let out = env.run(&["list", "--owner", "nobody"]);
    out.ok();
    assert_eq!(out.stdout, "0 active · 1 key, no limit\n");
    assert!(out.stderr.contains("no keys match"), "{out}");
    let out = env.run(&["list", "-q", "--owner", "nobody"]);
    out.ok();
    assert_eq!(out.stderr, "", "--quiet silences the hint");
}

#[test]
fn sorts_by_name_created_expires_and_last_use() {
    let env = TestEnv::initialized();
    // Made four hours before NOW, so verify can record last uses one and three hours
    // before it.
    let made = now_plus(-4 * HOUR);
    let bravo = env.create_at(&made, "bravo", &["--expires", "2w"]);
    env.create_at(&made, "Alpha", &["--expires", "1d"]);
    let charlie = env.create_at(&made, "charlie", &[]);
    env.verify(&now_plus(-HOUR), &bravo.secret, &["--ip", "192.0.2.9"])
        .ok();
    env.verify(&now_plus(-3 * HOUR), &charlie.secret, &[]).ok();
    for (sort, expected) in [
        (None, ["charlie", "Alpha", "bravo"]),
        (Some("created"), ["charlie", "Alpha", "bravo"]),
        (Some("name"), ["Alpha", "bravo", "charlie"]),
        (Some("expires"), ["Alpha", "bravo", "charlie"]),
        (Some("last-used"), ["bravo", "charlie", "Alpha"]),
    ] {
        let args: Vec<&str> = sort.map(|s| vec!["--sort", s]).unwrap_or_default();
        assert_eq!(env.list_names(&args), expected, "--sort {sort:?}");
    }

    let out = env.run(&["list", "--sort", "last-used"]);
    out.ok();
    let rows: Vec<&str> = out.stdout_lines()[1..4].to_vec();
    assert!(rows[0].ends_with("1 hour ago"), "{out}");
    assert!(rows[1].ends_with("3 hours ago"), "{out}");
    assert!(rows[2].ends_with("Never"), "{out}");

    let json = env.list_json(&["--sort", "last-used"]);
    assert_eq!(json[0]["last_used_at"], "2026-11-23T11:00:00Z");
    assert_eq!(json[0]["last_used_ip"], "192.0.2.9");
    assert_eq!(json[2]["last_used_at"], serde_json::Value::Null);
}

// ---- colour ----

/// The SGR sequence that starts the status cell of the row holding `name`.
fn status_colour(table: &str, name: &str) -> Option<String> {
    let line = table
        .lines()
        .find(|l| strip_ansi(l).starts_with(&format!("{name} ")))?;
    let dot = line.find('●')?;
    let start = line[..dot].rfind("\x1b[")?;
    let end = start + line[start..].find('m')?;
    Some(line[start + 2..end].to_string())
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_green(sgr: &str) -> bool {
    ["32", "92", "38;5;2", "38;5;10"].contains(&sgr)
}

fn is_amber(sgr: &str) -> bool {
    ["33", "93", "38;5;3", "38;5;11", "38;5;214", "38;5;208"].contains(&sgr)
}

fn is_grey(sgr: &str) -> bool {
    ["90", "37", "2", "38;5;8", "38;5;7", "38;5;244", "38;5;245"].contains(&sgr)
}

#[test]
fn terminal_table_colours_the_status_dots() {
    let env = TestEnv::initialized();
    env.create("on", &[]);
    let dis = env.create("off", &[]);
    env.create("old", &["--expires", "1d"]);
    let rev = env.create("dead", &[]);
    env.disable(dis.id());
    env.revoke(rev.id());
    let mut cmd = env.command();
    cmd.env("KEYCTL_NOW", TWO_DAYS_ON);
    let out = run_on_tty(cmd, &["list", "--all"], 200);
    out.ok();
    let colour = |name| status_colour(&out.stdout, name).unwrap_or_default();
    assert!(
        is_green(&colour("on")),
        "active is green: {:?}\n{out}",
        colour("on")
    );
    assert!(
        is_amber(&colour("off")),
        "disabled is amber: {:?}\n{out}",
        colour("off")
    );
    assert!(
        is_grey(&colour("old")),
        "expired is grey: {:?}\n{out}",
        colour("old")
    );
    assert!(
        is_grey(&colour("dead")),
        "revoked is grey: {:?}\n{out}",
        colour("dead")
    );
    // Colour decorates, it does not change the text (trailing blanks aside: they
    // hide inside the header's escape codes, where no one sees them).
    let plain = env.run_at(TWO_DAYS_ON, &["list", "--all"]);
    let trimmed: Vec<String> = strip_ansi(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    assert_eq!(trimmed, plain.stdout_lines());
}

#[test]
fn no_color_flag_and_env_turn_colour_off_in_a_terminal() {
    let env = TestEnv::initialized();
    env.create("on", &[]);
    let with = run_on_tty(env.command(), &["list"], 200);
    with.ok();
    assert!(
        with.stdout.contains("\x1b["),
        "a terminal gets colour\n{with}"
    );

    let flag = run_on_tty(env.command(), &["list", "--no-color"], 200);
    flag.ok();
    assert!(!flag.stdout.contains('\x1b'), "--no-color\n{flag}");

    let mut cmd = env.command();
    cmd.env("NO_COLOR", "1");
    let var = run_on_tty(cmd, &["list"], 200);
    var.ok();
    assert!(!var.stdout.contains('\x1b'), "NO_COLOR=1\n{var}");
    assert_eq!(var.stdout, flag.stdout);

    // no-color.org: an empty NO_COLOR does not disable colour.
    let mut cmd = env.command();
    cmd.env("NO_COLOR", "");
    let empty = run_on_tty(cmd, &["list"], 200);
    assert!(empty.stdout.contains("\x1b["), "NO_COLOR=''\n{empty}");

    // Not a terminal: never colour.
    let piped = env.run(&["list"]);
    assert!(!piped.stdout.contains('\x1b'), "{piped}");
    assert_eq!(piped.stdout, flag.stdout);
}

/// Some terminals (a fresh `docker run -t`, `script` in CI) report 0 columns; the
/// table must then be laid out as if the width were unknown, one line per key, not
/// squeezed into one-character columns.
#[test]
fn terminal_of_unknown_width_does_not_squash_the_table() {
    let env = TestEnv::initialized();
    env.create("first-key", &[]);
    env.create("second-key", &[]);
    let out = run_on_tty(env.command(), &["list"], 0);
    out.ok();
    let plain = env.run(&["list"]);
    let shown: Vec<String> = strip_ansi(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    assert_eq!(shown, plain.stdout_lines(), "{out}");
}

#[test]
fn narrow_terminal_still_shows_every_key_and_the_summary() {
    let env = TestEnv::initialized();
    env.create("first-key", &[]);
    env.create("second-key", &[]);
    let out = run_on_tty(env.command(), &["list"], 60);
    out.ok();
    let text = strip_ansi(&out.stdout);
    assert_eq!(text.matches("● active").count(), 2, "{out}");
    assert_eq!(
        text.lines().last(),
        Some("2 active · 2 keys, no limit"),
        "{out}"
    );
}

// ---- many keys: measured in one pass, drawn in parts in a second ----

/// More keys than `list` keeps in memory at once (1000), with the widest name sorting
/// last: a store of `count` keys named `k0000`… plus that one.
fn many_keys(count: usize, widest: &str) -> TestEnv {
    let env = TestEnv::initialized();
    let mut input = String::new();
    for i in 0..count {
        input.push_str(&format!("{{\"name\": \"k{i:04}\"}}\n"));
    }
    input.push_str(&format!("{{\"name\": \"{widest}\"}}\n"));
    env.run_with_stdin(&["-q", "create", "--batch", "-"], input.as_bytes())
        .ok();
    env
}

/// Every cell of `row` starts at its header's column, two blanks after the cell before.
fn misaligned(header: &str, row: &str) -> Option<String> {
    let chars: Vec<char> = row.chars().collect();
    for title in ["Key", "Status", "Created", "Expires", "Last used"] {
        let at = header.find(title)?;
        let starts_here = chars.get(at).is_some_and(|c| *c != ' ')
            && chars.get(at - 1) == Some(&' ')
            && chars.get(at - 2) == Some(&' ');
        if !starts_here {
            return Some(format!("{title} does not start at column {at}: {row:?}"));
        }
    }
    None
}

#[test]
fn a_table_of_thousands_of_keys_lines_up_under_its_header() {
    let widest = "zz-the-widest-name-sorts-last";
    let env = many_keys(2500, widest);
    let out = env.run(&["list", "--sort", "name"]);
    out.ok();
    let lines = out.stdout_lines();
    let (table, summary) = lines.split_at(lines.len() - 2);
    assert_eq!(summary, ["", "2501 active · 2501 keys, no limit"], "{out}");
    assert_eq!(table.len(), 1 + 2501, "one header and a line per key");
    let header = table[0];
    assert!(header.starts_with("Name  "), "{header:?}");
    assert_eq!(
        header.find("Key"),
        Some(widest.len() + 2),
        "the name column is as wide as the widest name, two blanks before Key"
    );
    assert!(table[1].starts_with("k0000  "), "{:?}", table[1]);
    assert!(table[2501].starts_with(&format!("{widest}  ")));
    let wrong: Vec<String> = table[1..]
        .iter()
        .filter_map(|row| misaligned(header, row))
        .collect();
    assert!(
        wrong.is_empty(),
        "{}",
        wrong[..wrong.len().min(5)].join("\n")
    );
    assert_eq!(out.stdout.matches("● active").count(), 2501);

    // On a terminal wide enough the table is the same, in colour; on a narrow one
    // cells wrap, and every key and the summary are still there.
    let wide = run_on_tty(env.command(), &["list", "--sort", "name"], 200);
    wide.ok();
    let shown: Vec<String> = strip_ansi(&wide.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    assert_eq!(shown, lines, "{wide}");
    let narrow = run_on_tty(env.command(), &["list", "--sort", "name"], 60);
    narrow.ok();
    let text = strip_ansi(&narrow.stdout);
    assert_eq!(text.matches("● active").count(), 2501);
    assert!(
        text.lines().all(|l| l.chars().count() <= 60),
        "fits 60 columns\n{narrow}"
    );
    assert_eq!(
        text.lines().last(),
        Some("2501 active · 2501 keys, no limit")
    );
}
