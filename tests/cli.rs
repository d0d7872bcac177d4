//! Integration tests for `keyctl`: every test runs the real binary on a temporary
//! store with a cleared environment and a fixed clock (`KEYCTL_NOW`), and asserts what
//! a user sees: exit codes, stdout, stderr, and the store's bytes and modes.
//!
//! One test binary of modules (`cargo test --test cli`); the modules live in
//! `tests/cli/`.

#[path = "cli/support/mod.rs"]
mod support;

#[path = "cli/audit.rs"]
mod audit;
#[path = "cli/backup.rs"]
mod backup;
#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/batch.rs"]
mod batch;
#[path = "cli/clipboard.rs"]
mod clipboard;
#[path = "cli/concurrency.rs"]
mod concurrency;
#[path = "cli/concurrency_mix.rs"]
mod concurrency_mix;
#[path = "cli/config.rs"]
mod config;
#[path = "cli/copy_migrate.rs"]
mod copy_migrate;
#[path = "cli/crash.rs"]
mod crash;
#[path = "cli/create.rs"]
mod create;
#[path = "cli/edit.rs"]
mod edit;
#[path = "cli/explain.rs"]
mod explain;
#[path = "cli/files.rs"]
mod files;
#[path = "cli/global.rs"]
mod global;
#[path = "cli/group_commit.rs"]
mod group_commit;
#[path = "cli/hostile.rs"]
mod hostile;
#[path = "cli/import.rs"]
mod import;
#[path = "cli/init.rs"]
mod init;
#[path = "cli/issue17_together.rs"]
mod issue17_together;
#[path = "cli/lifecycle.rs"]
mod lifecycle;
#[path = "cli/list.rs"]
mod list;
#[path = "cli/logs.rs"]
mod logs;
#[path = "cli/meta.rs"]
mod meta;
#[path = "cli/numbers.rs"]
mod numbers;
#[path = "cli/pipes.rs"]
mod pipes;
#[path = "cli/postgres.rs"]
mod postgres;
#[path = "cli/refill.rs"]
mod refill;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/rotate.rs"]
mod rotate;
#[path = "cli/rotated_pairs.rs"]
mod rotated_pairs;
#[path = "cli/scan.rs"]
mod scan;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/serve_clients.rs"]
mod serve_clients;
#[path = "cli/serve_examples.rs"]
mod serve_examples;
#[path = "cli/serve_nginx.rs"]
mod serve_nginx;
#[path = "cli/serve_unkey.rs"]
mod serve_unkey;
#[path = "cli/shells.rs"]
mod shells;
#[path = "cli/show.rs"]
mod show;
#[path = "cli/store_files.rs"]
mod store_files;
#[path = "cli/store_limits.rs"]
mod store_limits;
#[path = "cli/stored_values.rs"]
mod stored_values;
#[path = "cli/stream.rs"]
mod stream;
#[path = "cli/text.rs"]
mod text;
#[path = "cli/usage.rs"]
mod usage;
#[path = "cli/verify.rs"]
mod verify;
#[path = "cli/verify_parse.rs"]
mod verify_parse;
#[path = "cli/wizard.rs"]
mod wizard;

/// Every file in `tests/cli/` is a module of this binary: a file nobody includes
/// would never run.
#[test]
fn no_forgotten_test_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    let this = std::fs::read_to_string(format!("{root}/tests/cli.rs")).unwrap();
    for entry in std::fs::read_dir(format!("{root}/tests/cli")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") {
            assert!(
                this.contains(&format!("#[path = \"cli/{name}\"]")),
                "tests/cli/{name} is not included in tests/cli.rs"
            );
        }
    }
}
