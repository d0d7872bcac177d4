//! The interactive `create` wizard (SPEC §2 "Interactive use"), driven on a real
//! pseudo-terminal the way a person answers it: name (checked as it is entered),
//! description, expiry preset (a Select: 1 day / 30 days / 90 days / Never), scopes.
//! Ctrl-C restores the cursor, exits 130 and creates nothing; without a terminal
//! `create` never prompts and needs `--name`.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

const DOWN: &[u8] = b"\x1b[B";
const UP: &[u8] = b"\x1b[A";
const ENTER: &[u8] = b"\r";
const CTRL_C: &[u8] = b"\x03";
const ESC: &[u8] = b"\x1b";
/// What Select prints to make the cursor visible again.
const SHOW_CURSOR: &str = "\x1b[?25h";

/// `keyctl create ARGS` with stdin, stdout and stderr on one pseudo-terminal, so it
/// is interactive. `--no-copy` keeps the clipboard out of these tests.
fn wizard(env: &TestEnv, args: &[&str]) -> Pty {
    let mut c: Command = env.command();
    c.arg("create").arg("--no-copy").args(args);
    Pty::spawn(c, 120)
}

/// Answers the name prompt (after it appears) with `name` and Enter.
fn answer(pty: &mut Pty, prompt: &str, text: &str) {
    pty.expect(prompt);
    pty.send(text.as_bytes());
    pty.send(ENTER);
}

/// Waits for the Expires select to show every preset, then presses `keys` and Enter.
fn choose_expiry(pty: &mut Pty, keys: &[u8]) {
    pty.expect("Expires");
    pty.expect("Never");
    pty.send(keys);
    pty.send(ENTER);
}

/// The one key named `name` in `list --json --all`.
fn only_key_named(env: &TestEnv, name: &str) -> Value {
    let keys: Vec<Value> = env
        .list_json(&["--all"])
        .into_iter()
        .filter(|k| k["name"] == name)
        .collect();
    assert_eq!(keys.len(), 1, "keys named {name:?}: {keys:?}");
    keys.into_iter().next().unwrap()
}

/// The first full secret (`sk_live_` and 38 base62 characters) the terminal showed.
fn secret_on(screen: &str) -> String {
    let at = screen
        .find("sk_live_")
        .unwrap_or_else(|| panic!("no secret on the terminal:\n{screen}"));
    let secret: String = screen[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert_secret(&secret, "sk", "live");
    secret
}

#[test]
fn the_wizard_creates_a_key_with_the_answers() {
    let env = TestEnv::initialized();
    let mut pty = wizard(&env, &[]);
    answer(&mut pty, "Key name", "wizard-key");
    answer(&mut pty, "Description (optional)", "made at the prompt");
    // The default is 90 days; Down moves to Never.
    choose_expiry(&mut pty, DOWN);
    answer(
        &mut pty,
        "Scopes (comma-separated, empty = unrestricted)",
        "write, read",
    );
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(0), "the wizard failed:\n{screen}");
    assert!(
        screen.contains("This key will not be shown again. Store it securely now."),
        "no one-time reveal:\n{screen}"
    );
    let secret = secret_on(&screen);

    let key = only_key_named(&env, "wizard-key");
    assert_eq!(key["description"], "made at the prompt", "{key}");
    assert_eq!(key["scopes"], serde_json::json!(["read", "write"]), "{key}");
    assert_eq!(key["expires_at"], Value::Null, "Never: {key}");
    assert_eq!(key["created_at"], now_plus(0), "{key}");
    assert_eq!(key["status"], "active", "{key}");
    assert_eq!(key["owner"], ACTOR, "{key}");
    // The secret on the terminal is the key's.
    env.expect_verify(NOW, &secret, &[], "valid", "OK");
    assert_eq!(
        env.list_names(&["--all"]),
        ["wizard-key"],
        "exactly one key was created"
    );
}

#[test]
fn each_expiry_preset_sets_expires_at_from_now() {
    let env = TestEnv::initialized();
    let presets: [(&str, &[u8], Option<i64>); 4] = [
        ("one-day", &[UP, UP].concat(), Some(DAY)),
        ("thirty-days", UP, Some(30 * DAY)),
        ("ninety-days", b"", Some(90 * DAY)),
        ("never", DOWN, None),
    ];
    for (name, keys, expires_in) in presets {
        let mut pty = wizard(&env, &[]);
        answer(&mut pty, "Key name", name);
        // Empty description and scopes are allowed: none and unrestricted.
        answer(&mut pty, "Description (optional)", "");
        choose_expiry(&mut pty, keys);
        answer(&mut pty, "Scopes", "");
        let (code, screen) = pty.wait();
        assert_eq!(code, Some(0), "{name}: the wizard failed:\n{screen}");
        let key = only_key_named(&env, name);
        let want = expires_in.map_or(Value::Null, |s| Value::String(now_plus(s)));
        assert_eq!(key["expires_at"], want, "{name}: {key}");
        assert_eq!(key["description"], Value::Null, "{name}: {key}");
        assert_eq!(key["scopes"], serde_json::json!([]), "{name}: {key}");
    }
}

#[test]
fn a_taken_name_is_refused_at_the_prompt_and_asked_again() {
    let env = TestEnv::initialized();
    let taken = env.create("taken", &[]);
    let mut pty = wizard(&env, &[]);
    answer(&mut pty, "Key name", "taken");
    let refusal = pty.expect("already exists");
    assert!(
        refusal.contains("a key named 'taken'"),
        "the refusal does not name the key:\n{refusal}"
    );
    pty.expect(taken.id());
    // The wizard asks for the name again rather than going on or exiting.
    answer(&mut pty, "Key name", "fresh");
    answer(&mut pty, "Description (optional)", "");
    choose_expiry(&mut pty, b"");
    answer(&mut pty, "Scopes", "");
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(
        env.list_names(&["--all", "--sort", "name"]),
        ["fresh", "taken"]
    );
    assert_eq!(only_key_named(&env, "taken")["id"], taken.id());
}

#[test]
fn a_malformed_name_is_refused_at_the_prompt_and_asked_again() {
    let env = TestEnv::initialized();
    let mut pty = wizard(&env, &[]);
    // Shaped like a key id: reserved.
    answer(&mut pty, "Key name", "key_abcdefghijkl");
    pty.expect("reserved");
    answer(&mut pty, "Key name", "good-name");
    answer(&mut pty, "Description (optional)", "");
    choose_expiry(&mut pty, b"");
    answer(&mut pty, "Scopes", "");
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(env.list_names(&["--all"]), ["good-name"]);
}

#[test]
fn ctrl_c_at_the_expiry_select_restores_the_cursor_and_creates_nothing() {
    let env = TestEnv::initialized();
    env.create("existing", &[]);
    let db_bytes = env.store_contents();
    let mut pty = wizard(&env, &[]);
    answer(&mut pty, "Key name", "never-made");
    answer(&mut pty, "Description (optional)", "abandoned");
    pty.expect("Expires");
    pty.expect("Never");
    pty.send(CTRL_C);
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(130), "Ctrl-C exits 130:\n{screen:?}");
    let hidden_at = screen.rfind("\x1b[?25l");
    let shown_at = screen.rfind(SHOW_CURSOR);
    assert!(
        shown_at.is_some() && shown_at > hidden_at,
        "the cursor is left hidden after Ctrl-C:\n{screen:?}"
    );
    assert!(!screen.contains("panicked"), "{screen}");
    assert_eq!(env.store_contents(), db_bytes, "Ctrl-C changed the store");
    assert_eq!(env.list_names(&["--all"]), ["existing"]);
}

/// Ctrl-C leaves the store's folder as it found it: like Esc or a "no", it leaves no
/// SQLite `-wal`/`-shm` files behind (the store was only read for the name check).
#[test]
fn ctrl_c_leaves_no_sqlite_side_files_behind() {
    let env = TestEnv::initialized();
    env.create("existing", &[]);
    let before = env.snapshot();
    for stop_at in ["Key name", "Never"] {
        let mut pty = wizard(&env, &[]);
        if stop_at == "Never" {
            answer(&mut pty, "Key name", "never-made");
            answer(&mut pty, "Description (optional)", "");
        }
        pty.expect(stop_at);
        pty.send(CTRL_C);
        let (code, screen) = pty.wait();
        assert_eq!(code, Some(130), "{screen:?}");
        assert_eq!(
            env.snapshot().paths(),
            before.paths(),
            "Ctrl-C at {stop_at:?} left files behind that a clean exit removes"
        );
        assert_eq!(env.snapshot(), before, "Ctrl-C at {stop_at:?}");
    }
}

#[test]
fn ctrl_c_without_a_store_creates_no_store() {
    let env = TestEnv::new();
    let before = env.snapshot();
    let mut pty = wizard(&env, &[]);
    answer(&mut pty, "Key name", "never-made");
    answer(&mut pty, "Description (optional)", "");
    pty.expect("Never");
    pty.send(CTRL_C);
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(130), "Ctrl-C exits 130:\n{screen:?}");
    assert!(screen.contains(SHOW_CURSOR), "{screen:?}");
    assert!(!env.store_exists(), "Ctrl-C left a store behind");
    assert_eq!(env.snapshot(), before, "Ctrl-C made files");
}

#[test]
fn ctrl_c_at_the_name_prompt_exits_130_and_creates_nothing() {
    let env = TestEnv::initialized();
    let db_bytes = env.store_contents();
    let mut pty = wizard(&env, &[]);
    pty.expect("Key name");
    pty.send(b"half-typ");
    pty.send(CTRL_C);
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(130), "{screen:?}");
    assert!(screen.contains(SHOW_CURSOR), "{screen:?}");
    assert_eq!(env.store_contents(), db_bytes);
    assert_eq!(env.list_names(&["--all"]), Vec::<String>::new());
}

#[test]
fn esc_at_the_expiry_select_cancels_and_creates_nothing() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    let mut pty = wizard(&env, &[]);
    answer(&mut pty, "Key name", "never-made");
    answer(&mut pty, "Description (optional)", "");
    pty.expect("Never");
    pty.send(ESC);
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(1), "Esc cancels (exit 1):\n{screen:?}");
    assert!(
        screen.contains("create cancelled: nothing changed"),
        "{screen:?}"
    );
    let hidden_at = screen.rfind("\x1b[?25l");
    let shown_at = screen.rfind(SHOW_CURSOR);
    assert!(
        shown_at.is_some() && shown_at > hidden_at,
        "the cursor is left hidden after Esc:\n{screen:?}"
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn flags_given_with_the_wizard_are_kept() {
    let env = TestEnv::initialized();
    let mut pty = wizard(&env, &["--category", "staging", "--scope", "admin"]);
    answer(&mut pty, "Key name", "flagged");
    answer(&mut pty, "Description (optional)", "");
    choose_expiry(&mut pty, UP);
    // The scopes prompt still comes; --scope given on the command line wins.
    answer(&mut pty, "Scopes", "");
    let (code, screen) = pty.wait();
    assert_eq!(code, Some(0), "{screen}");
    let key = only_key_named(&env, "flagged");
    assert_eq!(key["category"], "staging", "{key}");
    assert_eq!(key["scopes"], serde_json::json!(["admin"]), "{key}");
    assert_eq!(key["expires_at"], now_plus(30 * DAY), "{key}");
}

#[test]
fn without_a_terminal_create_needs_a_name_and_never_prompts() {
    let env = TestEnv::initialized();
    let before = env.snapshot();
    // stdin empty (not a terminal), stdout and stderr pipes.
    let out = env.run(&["create"]);
    let line = out.fails(2);
    assert!(line.contains("--name"), "{out}");
    // stdout alone on a terminal is not interactive either: stdin and stderr are not.
    let out = run_on_tty(env.command(), &["create"], 100);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("--name"), "{out}");
    assert!(
        !out.stdout.contains("Key name"),
        "prompted without a terminal\n{out}"
    );
    assert_eq!(env.snapshot(), before);
}

// ---- confirmations at a terminal ----
// `revoke` answered "n" (and "y") is covered in lifecycle.rs
// (`at_a_terminal_revoke_asks_and_no_changes_nothing`); here: its exit code, and
// `delete` and `rotate` answered "n".

#[test]
fn a_confirmation_answered_no_exits_1_and_changes_nothing() {
    let env = TestEnv::initialized();
    env.create("kept", &[]);
    let before = env.snapshot();
    for (verb, question) in [
        ("revoke", "cannot be undone"),
        ("delete", "cannot be undone"),
        ("rotate", "disabled at once"),
    ] {
        let mut pty = Pty::spawn(
            {
                let mut c = env.command();
                c.args([verb, "kept"]);
                c
            },
            120,
        );
        pty.expect(question);
        pty.send(b"n");
        let (code, screen) = pty.wait();
        assert_eq!(code, Some(1), "{verb} answered n:\n{screen}");
        assert!(
            screen.contains(&format!("error: {verb} cancelled: nothing changed")),
            "{verb}:\n{screen}"
        );
        assert!(
            !has_secret_shape(&screen),
            "{verb} showed a secret:\n{screen}"
        );
        assert_eq!(
            env.snapshot(),
            before,
            "{verb} answered n changed the store"
        );
    }
    assert_eq!(only_key_named(&env, "kept")["status"], "active");
}
