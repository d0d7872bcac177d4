//! Times written into the store by hand or by another writer, outside what keyctl
//! itself stores: every command reads them as the nearest bound of years 0000–9999, so
//! a far-future expiry is still in the future and every time prints as RFC 3339.

use crate::support::*;

#[test]
fn out_of_range_stored_times_read_as_the_nearest_bound() {
    let env = TestEnv::initialized();
    let far = env.create("far", &[]);
    let early = env.create("early", &[]);
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
