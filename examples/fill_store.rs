//! Benchmark helper: fills a new key store with N keys through keyctl's own store layer,
//! in one write transaction (not N processes).
//!
//! Usage: cargo run --release --example fill_store -- PATH N

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{Duration, TimeZone, Utc};
use keyctl::core::key::{self, Mode};
use keyctl::core::model::{KeySettings, NewKey};
use keyctl::store::{self, Intent, Location, OpenOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: fill_store PATH N");
        return ExitCode::from(2);
    };
    match fill(PathBuf::from(path), n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fill_store: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fill(path: PathBuf, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let opts = OpenOptions {
        create: true,
        create_parent: true,
        prefix: None,
    };
    let (mut store, _) = store::open(&Location::Sqlite(path), &opts)?;
    let mut tx = store.begin(Intent::Bulk)?;
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .ok_or("bad date")?;
    // A deterministic generator is enough for benchmark data (not for real keys).
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..n {
        let mut random = [0u8; 64];
        for chunk in random.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_le_bytes());
        }
        let Some(body) = key::random_body(&random) else {
            continue;
        };
        let mode = if i % 10 == 0 { Mode::Test } else { Mode::Live };
        let secret = key::assemble("sk", mode, &body);
        let mut id_bytes = [0u8; key::ID_LEN];
        id_bytes[..8].copy_from_slice(&next().to_le_bytes());
        id_bytes[8..].copy_from_slice(&(next() as u32).to_le_bytes());
        let created_at = start + Duration::seconds(i as i64 * 20);
        let settings = KeySettings {
            name: format!("bench-{i:07}"),
            description: (i % 3 == 0).then(|| format!("benchmark key number {i}")),
            owner: format!("team-{}", i % 17),
            category: Some(["production", "staging", "development"][(i % 3) as usize].into()),
            scopes: if i % 4 == 0 {
                vec!["read".into(), "write".into()]
            } else {
                vec![]
            },
            allowed_ips: if i % 5 == 0 {
                vec!["10.0.0.0/8".into()]
            } else {
                vec![]
            },
            expires_at: (i % 2 == 0).then(|| created_at + Duration::days(365)),
            ..KeySettings::default()
        };
        tx.insert_key(&NewKey {
            id: key::key_id(&id_bytes),
            hash: secret.hash(),
            key_prefix: Some(key::display_prefix("sk", mode, &body)),
            mode,
            created_at,
            settings,
            rotated_from: None,
        })?;
    }
    tx.commit()?;
    Ok(())
}
