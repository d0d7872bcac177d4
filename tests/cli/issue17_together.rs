//! Issue 17's features on one key: an imported key of another format carrying
//! metadata and a credit refill, in a group with a price multiplier, under a
//! store-wide credit limit. Each feature has its own file; this one checks that they
//! compose as SPEC §8 says (the multiplied cost is what the refilled balance and the
//! store's credits are charged, the verdict hands the metadata back).

use serde_json::{json, Value};

use crate::support::*;

const FOREIGN: &str = "sk-Tg3xQm8LpZ2vKc7NwR4bHd9YjF6sAe1UoI5tGy0PnXrWq2Ez";
const DAY1: &str = "2027-03-10T12:00:00Z";
const DAY2: &str = "2027-03-11T00:00:01Z";

fn verify_at(env: &TestEnv, now: &str, cost: &str) -> Value {
    let out = env.run_at_with_stdin(
        now,
        &["verify", "--json", "--cost", cost],
        format!("{FOREIGN}\n").as_bytes(),
    );
    out.json()
}

#[test]
fn an_imported_key_with_meta_and_refill_is_charged_its_groups_price() {
    let env = TestEnv::initialized();
    let line = json!({
        "secret": FOREIGN, "name": "tenant-7", "group": "pro", "credits": 100,
        "refill": "50/day", "refill_mode": "add",
        "meta": {"tenant": "t-7", "plan": "pro"},
        "created_at": "2027-01-01T00:00:00Z",
    });
    env.run_at_with_stdin(DAY1, &["import", "-"], format!("{line}\n").as_bytes())
        .ok();
    env.run_at(DAY1, &["config", "set", "group-multiplier.pro", "1.5"])
        .ok();
    env.run_at(DAY1, &["config", "set", "credit-limit", "1000"])
        .ok();

    let shown = env.run_at(DAY1, &["show", "tenant-7", "--json"]);
    shown.ok();
    let key = shown.json();
    assert_eq!(key["meta"], json!({"plan": "pro", "tenant": "t-7"}));
    assert_eq!(
        key["refill"],
        json!({"amount": 50, "interval": "day", "mode": "add"})
    );
    assert_eq!(key["key_prefix"], json!("sk-Tg3xQm8Lp"));

    // 10 × 1.5 = 15 charged: to the key's balance and to the store's credits.
    let first = verify_at(&env, DAY1, "10");
    assert_eq!(first["code"], json!("valid"), "{first}");
    assert_eq!(first["credits_remaining"], json!(85));
    assert_eq!(first["meta"], json!({"plan": "pro", "tenant": "t-7"}));
    // 7 × 1.5 = 10.5, rounded up to 11.
    let second = verify_at(&env, DAY1, "7");
    assert_eq!(second["credits_remaining"], json!(74));

    // After midnight UTC the refill adds 50 (up to the limit of 100) before the charge.
    let next_day = verify_at(&env, DAY2, "10");
    assert_eq!(next_day["code"], json!("valid"), "{next_day}");
    assert_eq!(next_day["credits_remaining"], json!(85));

    // The store-wide counter holds every charge (refills give the store nothing back).
    let explained = env.run_at_with_stdin(
        DAY2,
        &["verify", "--explain", "--json", "--cost", "1"],
        format!("{FOREIGN}\n").as_bytes(),
    );
    let rows: Value = explained.json();
    let store_row = rows["checks"]
        .as_array()
        .and_then(|checks| {
            checks
                .iter()
                .find(|c| c["check"] == json!("store_credits_exhausted"))
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(store_row["credits_used"], json!(41), "{rows}");

    // The request log shows the charged credits.
    let logs = env.run_at(DAY2, &["logs", "--json"]);
    logs.ok();
    let credits: Vec<Value> = logs
        .json()
        .as_array()
        .map(|rows| rows.iter().map(|r| r["credits"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(credits, vec![json!(15), json!(11), json!(15)]);
}
