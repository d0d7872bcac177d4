//! Benchmark helper: records N accepted requests for one key through keyctl's own store
//! layer, in one transaction, spread evenly over the 30 days before now (so every
//! rolling window of the key is full of history).
//!
//! Usage: cargo run --release --example fill_requests -- STORE KEY_ID N

use chrono::{Duration, Utc};
use keyctl::core::model::RequestRecord;
use keyctl::store::{self, Intent, Location, OpenOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(key_id), Some(n)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|n| n.parse::<i64>().ok()),
    ) else {
        return Err("usage: fill_requests STORE KEY_ID N".into());
    };
    let location = Location::Sqlite(path.into());
    let (mut store, _) = store::open(&location, &OpenOptions::default())?;
    let mut tx = store.begin(Intent::Bulk)?;
    let name = tx.key_by_id(key_id)?.ok_or("no such key id")?.settings.name;
    let now = Utc::now();
    let span = Duration::days(30).num_milliseconds();
    for i in 0..n {
        let at = now - Duration::milliseconds(span - span * i / n.max(1));
        tx.record_request(&RequestRecord {
            at,
            key: Some((key_id.clone(), name.clone())),
            endpoint: Some("POST /v1/bench".into()),
            http_status: 200,
            code: "valid".into(),
            ip: Some("10.0.0.1".into()),
            duration_ms: Some(3),
            credits: 1,
            accepted: true,
            refill: None,
            totals: None,
        })?;
    }
    tx.commit()?;
    Ok(())
}
