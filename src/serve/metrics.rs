//! `GET /metrics`: what the server did, in Prometheus' text format: requests by route,
//! status and keyctl code, a latency histogram per route, and group-commit sizes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the group-size buckets (requests per transaction).
const GROUP_BOUNDS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 8192.0,
];

#[derive(Default)]
struct Histogram {
    /// Per bucket (same index as its bounds), not cumulative; the last is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.counts[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Figures {
    /// By route pattern: a request finds its route's entry without allocating.
    routes: BTreeMap<String, RouteFigures>,
    groups: Histogram,
}

#[derive(Default)]
struct RouteFigures {
    /// Answers by status and keyctl code.
    answers: BTreeMap<(u16, &'static str), u64>,
    latency: Histogram,
}

/// The server's counters, shared by every handler and the committer.
#[derive(Default)]
pub struct Metrics {
    figures: Mutex<Figures>,
    /// Verifications read and not answered by the committer yet (queued, or in the
    /// group being decided).
    waiting: AtomicI64,
    /// Requests whose head was read and whose answer is not out yet.
    in_flight: AtomicI64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One answered request: its route (the pattern, not the path asked for), status,
    /// keyctl code and time from its head to its answer.
    pub fn request(&self, route: &str, status: u16, code: &'static str, took: Duration) {
        let Ok(mut f) = self.figures.lock() else {
            return;
        };
        let figures = match f.routes.get_mut(route) {
            Some(r) => r,
            None => f.routes.entry(route.to_string()).or_default(),
        };
        *figures.answers.entry((status, code)).or_default() += 1;
        figures.latency.observe(&LATENCY_BOUNDS, took.as_secs_f64());
    }

    /// `n` more (or fewer) requests between head and answer.
    pub fn in_flight(&self, n: i64) {
        self.in_flight.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` more (or fewer) verifications waiting for the committer's answer.
    pub fn queued(&self, n: i64) {
        self.waiting.fetch_add(n, Ordering::Relaxed);
    }

    /// One transaction of `size` requests.
    pub fn group_committed(&self, size: usize) {
        if let Ok(mut f) = self.figures.lock() {
            f.groups.observe(&GROUP_BOUNDS, size as f64);
        }
    }

    /// Everything, in Prometheus' text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(f) = self.figures.lock() else {
            return out;
        };
        out.push_str("# HELP keyctl_http_requests_total HTTP requests answered, by route, status and keyctl code.\n");
        out.push_str("# TYPE keyctl_http_requests_total counter\n");
        for ((route, (status, code)), n) in f
            .routes
            .iter()
            .flat_map(|(route, r)| r.answers.iter().map(move |(k, n)| ((route, k), n)))
        {
            let _ = writeln!(
                out,
                "keyctl_http_requests_total{{route=\"{route}\",status=\"{status}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP keyctl_http_request_duration_seconds Time from a request's head to its answer.\n");
        out.push_str("# TYPE keyctl_http_request_duration_seconds histogram\n");
        for (route, r) in &f.routes {
            r.latency.write(
                &mut out,
                "keyctl_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                &LATENCY_BOUNDS,
            );
        }
        out.push_str(
            "# HELP keyctl_group_commit_size Verifications decided and recorded per transaction.\n",
        );
        out.push_str("# TYPE keyctl_group_commit_size histogram\n");
        f.groups
            .write(&mut out, "keyctl_group_commit_size", "", &GROUP_BOUNDS);
        gauge(
            &mut out,
            "keyctl_verify_pending",
            "Verifications read and not decided yet (queued for the store's thread or in its current group).",
            self.waiting.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "keyctl_http_requests_in_flight",
            "Requests read and not answered yet, this one included.",
            self.in_flight.load(Ordering::Relaxed),
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}
