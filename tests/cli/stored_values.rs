//! Values written into the store by hand or by another writer, outside what keyctl
//! itself stores. Times read as the nearest bound of years 0000–9999 (a far-future
//! expiry is still in the future, every time prints as RFC 3339); a damaged list or
//! state is named (key and field) in one line, never in a parser's words.

use crate::support::*;

#[test]
fn out_of_range_stored_times_read_as_the_nearest_bound() {
    let env = TestEnv::initialized();
    let far = env.create("far", &[]);
    let early = env.create("early", &[]);
    // Times out of range no command can store.
    env.fixture(
        "UPDATE keys SET expires_at = 9223372036854775807, last_used_at = 9223372036854775807 WHERE id = ?1",
        far.id(),
    );
    env.fixture(
        "UPDATE keys SET created_at = -9223372036854775808 WHERE id = ?1",
        early.id(),
    );
    let key = env.key_json("far");
    assert_eq!(key["status"], "active", "{key}");
    assert_eq!(key["expires_at"], "9999-12-31T23:59:59Z");
    assert_eq!(key["last_used_at"], "9999-12-31T23:59:59Z");
    assert_eq!(env.key_json("early")["created_at"], "0000-01-01T00:00:00Z");
    // A far-future key still verifies.
    env.verify(NOW, &far.secret, &[]).ok();
    for format in ["table", "json", "csv"] {
        let out = env.run(&["list", "--format", format]);
        out.ok();
        assert!(!out.stdout.contains("-262143"), "{format}: {}", out.stdout);
    }
    env.run(&["show", "far"]).ok();
    env.run(&["show", "early"]).ok();
}

#[test]
fn a_damaged_stored_list_or_state_is_named_in_one_line() {
    for (column, value, field) in [
        ("scopes", "nope", "scopes"),
        ("allowed_models", "{\"a\": 1}", "allowed models"),
        ("allowed_ips", "[1, 2]", "allowed IPs"),
    ] {
        let env = TestEnv::initialized();
        let key = env.create("k", &[]);
        // A damaged stored value no command can write.
        env.fixture(
            &format!("UPDATE keys SET {column} = '{value}' WHERE id = ?1"),
            key.id(),
        );
        let before = env.snapshot();
        for args in [&["list"][..], &["show", "k"], &["list", "--json"]] {
            let line = env.run(args).fails(1).to_string();
            assert!(
                line.contains(&format!("key {} has a damaged {field} value", key.id())),
                "{args:?}: {line}"
            );
            for internal in ["Conversion", "expected", "line 1 column", "invalid type"] {
                assert!(!line.contains(internal), "{args:?}: {line}");
            }
        }
        // A check of that key fails closed (exit 1), never as valid.
        env.verify(NOW, &key.secret, &[]).fails(1);
        assert_eq!(env.snapshot(), before, "{column}");
    }
}
