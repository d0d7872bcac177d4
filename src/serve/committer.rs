//! Group commit over HTTP (SPEC §7): handlers queue their requests, in the order they
//! were fully read, to the one thread that owns the store. It takes the first waiting
//! request, then whatever is queued already (never waiting for more, at most the
//! store's `Store::group_limit`), decides and records them in one transaction, and
//! only then answers.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::Metrics;
use crate::app::verify::{Pending, Verdict};
use crate::app::verify_session::VerifySession;
use crate::context::Ctx;
use crate::error::{Error, Result};

enum Job {
    Verify(Box<Pending>, oneshot::Sender<Verdict>),
    Health(oneshot::Sender<bool>),
}

/// The handlers' end of the queue.
#[derive(Clone)]
pub struct Committer {
    queue: Sender<Job>,
    metrics: Arc<Metrics>,
}

impl Committer {
    /// The verdict of `request`, once the transaction holding its record committed.
    pub async fn verify(&self, request: Pending) -> Verdict {
        let (tx, rx) = oneshot::channel();
        self.metrics.queued(1);
        if self.queue.send(Job::Verify(Box::new(request), tx)).is_err() {
            self.metrics.queued(-1);
            return Verdict::unavailable();
        }
        rx.await.unwrap_or_else(|_| Verdict::unavailable())
    }

    /// Whether the store answers now (in turn with the verifications).
    pub async fn healthy(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Job::Health(tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

/// Starts the thread owning the store (a store handle stays on the thread that opened
/// it) and returns once it is open; what is not a store at all is the error, an outage
/// at the start is returned for the caller to say. The thread ends when every
/// [`Committer`] is dropped and the queue is empty.
pub fn start(
    ctx: &Ctx,
    record: bool,
    metrics: Arc<Metrics>,
) -> Result<(Committer, JoinHandle<()>, Option<Error>)> {
    let (queue, jobs) = channel();
    let (opened_tx, opened) = channel();
    let ctx = ctx.clone();
    let handle = Committer {
        queue,
        metrics: metrics.clone(),
    };
    let worker = std::thread::Builder::new()
        .name("keyctl-committer".into())
        .spawn(move || match VerifySession::open_quietly(&ctx, record) {
            Ok((session, outage)) => {
                let _ = opened_tx.send(Ok(outage));
                commit_loop(&ctx, session, &jobs, &metrics);
            }
            Err(e) => {
                let _ = opened_tx.send(Err(e));
            }
        })
        .map_err(|e| Error::runtime(format!("cannot start the committer thread: {e}")))?;
    let outage = opened
        .recv()
        .unwrap_or_else(|_| Err(Error::runtime("the committer thread ended at its start")))?;
    Ok((handle, worker, outage))
}

fn commit_loop(ctx: &Ctx, mut session: VerifySession, jobs: &Receiver<Job>, metrics: &Metrics) {
    let mut group: Vec<Pending> = Vec::new();
    let mut replies: Vec<oneshot::Sender<Verdict>> = Vec::new();
    let mut health: Vec<oneshot::Sender<bool>> = Vec::new();
    // The first job is waited for; the rest only taken when already queued.
    while let Ok(first) = jobs.recv() {
        let most = session.group_limit();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Verify(p, reply) => {
                    group.push(*p);
                    replies.push(reply);
                }
                Job::Health(reply) => health.push(reply),
            }
            if group.len() + health.len() < most {
                next = jobs.try_recv().ok();
            }
        }
        if !group.is_empty() {
            metrics.group_committed(group.len());
        }
        let verdicts = session.verify(&group);
        for (reply, verdict) in replies.drain(..).zip(verdicts) {
            let verdict = verdict.unwrap_or_else(|e| {
                ctx.warn(&format!("{}; answered unavailable", e.message));
                Verdict::unavailable()
            });
            // A client that went away has no one to answer; its record stays.
            let _ = reply.send(verdict);
            metrics.queued(-1);
        }
        group.clear();
        for reply in health.drain(..) {
            let _ = reply.send(session.healthy());
        }
    }
}
