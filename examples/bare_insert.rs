//! Benchmark baseline: the bare insert of rows another store already holds. Reads every
//! `credit_pools` and `keys` row of SRC into memory, then inserts them into DST (an empty
//! keyctl store) with prepared statements in one transaction and a 256 MiB page cache:
//! only the unavoidable work of writing the same rows, none of keyctl's.
//!
//! Usage: cargo run --release --example bare_insert -- SRC DST

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(dst)) = (args.get(1), args.get(2)) else {
        return Err("usage: bare_insert SRC DST".into());
    };
    let src = Connection::open(src)?;
    let mut tables: Vec<(&str, usize, Vec<Vec<Value>>)> = Vec::new();
    for table in ["credit_pools", "keys"] {
        let mut stmt = src.prepare(&format!("SELECT * FROM {table}"))?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())?
            .collect::<Result<Vec<Vec<Value>>, _>>()?;
        tables.push((table, n, rows));
    }
    let mut dst = Connection::open(dst)?;
    dst.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -262144;")?;
    let tx = dst.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (table, n, rows) in &tables {
        let marks = vec!["?"; *n].join(", ");
        let mut stmt = tx.prepare(&format!("INSERT INTO {table} VALUES ({marks})"))?;
        for row in rows {
            stmt.execute(params_from_iter(row.iter()))?;
        }
    }
    tx.commit()?;
    Ok(())
}
