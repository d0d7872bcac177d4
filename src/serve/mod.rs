//! `keyctl serve` (SPEC §7): verification over HTTP from one process.
//!
//! One OS thread owns the store and decides requests in groups (`committer`); a
//! single-threaded tokio runtime speaks HTTP/1.1 (`listener`, hyper through axum) and
//! hands each request, once fully read, to that thread in order. `routes` is the one
//! place routes are listed.

mod caller_token;
mod client_ip;
mod committer;
mod forward_auth;
mod limits;
mod listener;
mod metrics;
pub mod openapi;
mod reply;
mod routes;
pub mod unkey;
mod verify_v1;
mod verify_v2;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::app::verify_session::outage_warning;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::store::Clock;

pub use committer::Committer;
pub use metrics::Metrics;

/// Where to listen.
#[derive(Debug, Clone)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// What `keyctl serve`'s flags asked for (checked by `commands::serve`).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    /// Peers whose X-Real-IP / X-Forwarded-For are believed.
    pub trusted: Vec<ipnet::IpNet>,
    /// The token `/v1` callers must send; never printed.
    pub caller_token: Option<String>,
    /// Credits of a request that names none.
    pub cost: u64,
    pub record: bool,
}

/// What every handler shares.
pub struct State {
    pub config: Config,
    pub committer: Committer,
    pub metrics: Arc<Metrics>,
    /// `KEYCTL_NOW` when it fixed the clock.
    fixed_now: Option<DateTime<Utc>>,
}

impl State {
    /// The clock of a request taken now, as it is fully read: its arrival.
    pub fn arrival(&self) -> Clock {
        match self.fixed_now {
            Some(t) => Clock::Fixed(t),
            None => Clock::Host(Utc::now()),
        }
    }
}

/// The peer of a connection: its IP, or None over a Unix socket.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::IpAddr>);

/// Runs the server until SIGTERM or SIGINT, then drains: no new connection, every
/// request already read answered, the committer's queue emptied; then returns.
pub fn run(ctx: &Ctx, config: Config) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let (committer, worker, outage) = committer::start(ctx, config.record, metrics.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the HTTP server: {e}")))?;
    let state = Arc::new(State {
        config: config.clone(),
        committer,
        metrics,
        fixed_now: ctx.now_fixed.then(|| ctx.now()),
    });
    let served = runtime.block_on(async {
        let listening = listener::bind(&config.listen)?;
        // After the `listening on` line, which is always the first.
        if let Some(e) = outage {
            ctx.warn(&outage_warning(&e));
        }
        listener::serve(listening, routes::router(state)).await
    });
    // Every sender is gone with the router: the committer answers what is queued and
    // ends.
    drop(runtime);
    let _ = worker.join();
    if let Listen::Unix(path) = &config.listen {
        let _ = std::fs::remove_file(path);
    }
    served
}
