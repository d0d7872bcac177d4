//! SPEC §4: many keyctl processes may run at once against one store; none fails with
//! "database is locked", and no update is lost.

use crate::support::*;

/// Starts `keyctl ARGS` for each argument list at once, then waits for them all.
fn run_together(env: &TestEnv, runs: &[Vec<String>]) -> Vec<Outcome> {
    let started: Vec<Running> = runs
        .iter()
        .map(|args| Run::new(env.command()).args(args).spawn())
        .collect();
    started.into_iter().map(Running::outcome).collect()
}

fn creates(names: impl IntoIterator<Item = String>) -> Vec<Vec<String>> {
    names
        .into_iter()
        .map(|n| vec!["create".to_string(), "--name".to_string(), n])
        .collect()
}

#[test]
fn parallel_creates_on_a_missing_store_all_succeed_and_make_one_store() {
    sqlite_only!("a write command creates a missing store only on SQLite (on PostgreSQL only init and copy do)");
    let env = TestEnv::new();
    let outs = run_together(&env, &creates((0..8).map(|i| format!("k{i}"))));
    for out in &outs {
        out.ok();
        assert_secret(out.stdout.trim_end(), "sk", "live");
    }
    let created = outs
        .iter()
        .filter(|o| o.stderr.contains("created key store at"))
        .count();
    assert_eq!(created, 1, "exactly one process created the store");
    let mut listed = env.list_names(&[]);
    listed.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    assert_eq!(listed, expected, "no key was lost");
    assert_eq!(mode(env.db_file()), 0o600);
}

/// Hosts of a fleet may all run `init` at once (on SQLite, processes of one host):
/// one makes the store, every other is refused as init refuses an existing store.
#[test]
fn parallel_inits_make_one_store_and_refuse_the_rest() {
    let env = TestEnv::new();
    let inits: Vec<Vec<String>> = (0..8).map(|_| vec!["init".to_string()]).collect();
    let outs = run_together(&env, &inits);
    let won: Vec<&Outcome> = outs.iter().filter(|o| o.code == Some(0)).collect();
    assert_eq!(won.len(), 1, "one init made the store");
    assert_eq!(
        won[0].stderr,
        format!("created key store at {}\n", env.shown())
    );
    for out in outs.iter().filter(|o| o.code != Some(0)) {
        assert_eq!(
            out.fails(4),
            format!(
                "error: a key store already exists at {}: keyctl init never overwrites one",
                env.shown()
            )
        );
    }
    env.create("after", &[]);
    env.audit_head();
}

#[test]
fn parallel_creates_of_one_name_let_exactly_one_through() {
    let env = TestEnv::initialized();
    let outs = run_together(&env, &creates((0..6).map(|_| "same".to_string())));
    let won: Vec<&Outcome> = outs.iter().filter(|o| o.code == Some(0)).collect();
    assert_eq!(won.len(), 1, "one winner");
    for out in outs.iter().filter(|o| o.code != Some(0)) {
        let line = out.fails(4);
        assert!(line.contains("'same'"), "{line}");
        assert!(!line.contains("locked"), "{line}");
    }
    assert_eq!(env.list_names(&[]), ["same"]);
}

/// Renames contest a name like creates do: one edit takes it, the others are refused
/// with edit's own message.
#[test]
fn parallel_renames_to_one_name_let_exactly_one_through() {
    let env = TestEnv::initialized();
    let ids: Vec<String> = (0..6)
        .map(|i| env.create(&format!("k{i}"), &[]).id().to_string())
        .collect();
    let runs: Vec<Vec<String>> = (0..6)
        .map(|i| {
            vec![
                "edit".into(),
                format!("k{i}"),
                "--name".into(),
                "same".into(),
            ]
        })
        .collect();
    let outs = run_together(&env, &runs);
    let won: Vec<usize> = (0..6).filter(|&i| outs[i].code == Some(0)).collect();
    assert_eq!(won.len(), 1, "one winner");
    let winner = &ids[won[0]];
    for out in outs.iter().filter(|o| o.code != Some(0)) {
        assert_eq!(
            out.fails(4),
            format!("error: a key named 'same' already exists ({winner}): choose another name")
        );
    }
    let mut names = env.list_names(&[]);
    names.sort();
    assert_eq!(
        names.iter().filter(|n| *n == "same").count(),
        1,
        "{names:?}"
    );
    assert_eq!(names.len(), 6, "{names:?}");
}

#[test]
fn parallel_creates_respect_the_key_limit() {
    let env = TestEnv::initialized();
    env.run(&["config", "set", "max-keys", "3"]).ok();
    let outs = run_together(&env, &creates((0..7).map(|i| format!("k{i}"))));
    let won = outs.iter().filter(|o| o.code == Some(0)).count();
    assert_eq!(won, 3, "exactly max-keys creates succeed");
    for out in outs.iter().filter(|o| o.code != Some(0)) {
        assert_eq!(
            out.fails(4),
            "error: key limit reached (3/3): revoke or delete an unused key first"
        );
    }
    assert_eq!(env.list_json(&[]).len(), 3);
}

#[test]
fn readers_and_writers_run_together() {
    let env = TestEnv::initialized();
    env.create("seed", &[]);
    let mut runs = creates((0..4).map(|i| format!("w{i}")));
    for _ in 0..4 {
        runs.push(vec!["list".into(), "--json".into()]);
        runs.push(vec!["show".into(), "seed".into()]);
    }
    runs.push(vec![
        "config".into(),
        "set".into(),
        "block-duration".into(),
        "1h".into(),
    ]);
    for out in run_together(&env, &runs) {
        out.ok();
        assert!(!out.stderr.contains("locked"), "{out}");
    }
    assert_eq!(env.list_json(&[]).len(), 5);
    assert_eq!(env.run(&["config", "get", "block-duration"]).stdout, "1h\n");
}
