//! WAL checkpoints of a long-running verifier, run by a thread of their own.
//!
//! Why: a verify stream commits every request, and with SQLite's automatic
//! checkpoint the commit that crosses the threshold also copies the WAL back into the
//! database and waits for two `fsync`s before its answer goes out (docs/benchmarks.md).
//! Here that commit only wakes this thread, which checkpoints through its own
//! connection while the serving one goes on writing (a PASSIVE checkpoint never blocks
//! a writer). As many checkpoint cycles as before; what is left in a request's path is
//! copying and syncing the few frames written during the thread's last round.

use std::ffi::c_int;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, MAIN_DB};

use super::{connect, io_error, sql_error};
use crate::store::Result;

/// WAL pages after which a checkpoint is due, as the serving connection's automatic
/// checkpoint was set (`Intent::Verify`).
pub(super) const CHECKPOINT_PAGES: c_int = 8192;
/// Checkpoint rounds of the thread per cycle, at most (see [`run`]).
const MAX_ROUNDS: usize = 8;
/// WAL frames a round may copy and still end the thread's rounds: what the serving
/// connection then copies itself is what arrived while such a round ran.
const SHORT_TAIL: c_int = 512;
/// WAL pages after which the committing connection checkpoints itself after all: the
/// thread is far behind (starved of CPU, or gone).
const BACKSTOP_PAGES: c_int = 4 * CHECKPOINT_PAGES;

/// Where a checkpoint cycle is: nothing due, the thread copying, the thread done (the
/// frames added meanwhile still to copy).
const IDLE: u8 = 0;
const RUNNING: u8 = 1;
const COPIED: u8 = 2;

enum Wake {
    Checkpoint,
    Stop,
}

pub(super) struct Checkpointer {
    wake: SyncSender<Wake>,
    thread: Option<JoinHandle<()>>,
    /// Checkpoints the thread has run (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    done: Arc<AtomicU64>,
    phase: Arc<AtomicU8>,
}

impl Checkpointer {
    /// Opens the thread's connection to the store at `path` (here, so a failure is
    /// the caller's) and starts the thread.
    pub(super) fn start(path: &Path) -> Result<Checkpointer> {
        let conn = connect(path)?;
        let db = File::open(path).map_err(|e| io_error(path, &e))?;
        // A checkpoint syncs the WAL and then the database under NORMAL as under FULL.
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(|e| sql_error(path, e))?;
        // The hook wakes the thread once a cycle.
        let (wake, woken) = sync_channel(1);
        let done = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&done);
        let phase = Arc::new(AtomicU8::new(IDLE));
        let cycle = Arc::clone(&phase);
        let thread = std::thread::Builder::new()
            .name("keyctl-checkpoint".into())
            .spawn(move || run(&conn, &db, &woken, &counter, &cycle))
            .map_err(|e| io_error(path, &e))?;
        Ok(Checkpointer {
            wake,
            thread: Some(thread),
            done,
            phase,
        })
    }

    /// Checkpoints the thread has run so far.
    #[cfg(test)]
    pub(super) fn checkpoints(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// True once the thread finished a cycle's rounds (until the serving connection
    /// copies the tail).
    #[cfg(test)]
    pub(super) fn copied(&self) -> bool {
        self.phase.load(Ordering::Acquire) == COPIED
    }

    /// The WAL hook for the serving connection. Past [`CHECKPOINT_PAGES`] a commit
    /// hands the checkpoint to the thread. The thread copies what the WAL held when it
    /// started, while requests go on adding frames; the first commit after it is done
    /// checkpoints those few itself, so that the next one can start the WAL over (SQLite
    /// restarts it only once everything in it is copied). Past [`BACKSTOP_PAGES`], or
    /// with the thread gone, the commit checkpoints as SQLite's own hook would.
    pub(super) fn hook(&self) -> impl FnMut(&mut Wal, c_int) -> rusqlite::Result<()> + Send {
        let wake = self.wake.clone();
        let phase = Arc::clone(&self.phase);
        move |wal: &mut Wal, pages: c_int| {
            // The commit has happened: a checkpoint that cannot run now (another one
            // is running) is no error of it, as with SQLite's own hook.
            let mut checkpoint = || drop(wal.checkpoint());
            if pages < CHECKPOINT_PAGES {
                // The WAL started over: a finished copy needs no tail any more.
                if phase.load(Ordering::Acquire) == COPIED {
                    phase.store(IDLE, Ordering::Release);
                }
                return Ok(());
            }
            match phase.load(Ordering::Acquire) {
                IDLE => {
                    phase.store(RUNNING, Ordering::Release);
                    if wake.try_send(Wake::Checkpoint).is_err() {
                        phase.store(IDLE, Ordering::Release);
                        checkpoint();
                    }
                }
                COPIED => {
                    checkpoint();
                    phase.store(IDLE, Ordering::Release);
                }
                _ if pages >= BACKSTOP_PAGES => checkpoint(),
                _ => {}
            }
            Ok(())
        }
    }
}

fn run(conn: &Connection, db: &File, woken: &Receiver<Wake>, done: &AtomicU64, phase: &AtomicU8) {
    while let Ok(Wake::Checkpoint) = woken.recv() {
        // Rounds, each copying what requests wrote during the one before, until one
        // copies a short tail (at least two, at most MAX_ROUNDS): the serving
        // connection's own checkpoint then copies and syncs only what came during that
        // round, in a request's path. SQLite syncs the database file only when a
        // checkpoint copied everything, which with requests arriving is that tail's;
        // syncing it here after each round leaves that sync only the tail's pages.
        let mut copied_before = 0;
        for round in 0..MAX_ROUNDS {
            // Busy (another checkpoint) or failing: nothing copied; the serving
            // connection's next commits try again, and its backstop bounds the WAL.
            let copied = match conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
                Ok((_, backfilled)) => {
                    done.fetch_add(1, Ordering::Release);
                    // Frames copied so far count from the WAL's start; a WAL started
                    // over meanwhile makes this negative, which ends the rounds too.
                    let copied = backfilled - copied_before;
                    copied_before = backfilled;
                    copied
                }
                Err(_) => 0,
            };
            let _ = db.sync_data();
            if round > 0 && copied <= SHORT_TAIL {
                break;
            }
        }
        phase.store(COPIED, Ordering::Release);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Waits for a running checkpoint; the thread's connection then closes (as the
        // last one, it checkpoints and removes the WAL, as a verifier's always did).
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
