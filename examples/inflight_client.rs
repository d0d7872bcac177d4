//! Benchmark client: one request in flight. Starts COMMAND ARGS... as a coprocess,
//! writes it one line of LINES, reads its one answer line, then the next, and prints
//! the answers on stdout and `per_s=R` (lines a second, the loop alone) on stderr.
//!
//! Why: the Python client of `bench/stream_workload.py` spends 78–200 µs of its own on
//! each round trip, more than the verification it measures; this one about 14.
//!
//! Usage: inflight_client LINES COMMAND [ARG...]   (e.g. `... lines.jsonl cat`)

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(lines), Some(program)) = (args.get(1), args.get(2)) else {
        return Err("usage: inflight_client LINES COMMAND [ARG...]".into());
    };
    let text = std::fs::read_to_string(lines)?;
    let mut child = Command::new(program)
        .args(&args[3..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to = child.stdin.take().ok_or("no stdin")?;
    let mut from = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut answers = Vec::with_capacity(text.len());
    let mut count = 0u64;
    let start = Instant::now();
    for line in text.lines() {
        to.write_all(line.as_bytes())?;
        to.write_all(b"\n")?;
        to.flush()?;
        if from.read_until(b'\n', &mut answers)? == 0 {
            return Err(format!("no answer to line {}", count + 1).into());
        }
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(to);
    child.wait()?;
    std::io::stdout().write_all(&answers)?;
    eprintln!("per_s={:.1}", count as f64 / secs);
    Ok(())
}
