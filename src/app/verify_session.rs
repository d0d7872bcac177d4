//! The store of a long-running verifier (`verify --stream`, `keyctl serve`): opened
//! once, kept across groups, dropped when it fails and opened again for a later group
//! (SPEC §6: an outage is answered `unavailable`, never the end of the process).

use crate::app::verify::{verify_group, Pending, Verdict};
use crate::context::Ctx;
use crate::error::{Error, Kind, Result};
use crate::store::{Intent, Store, GROUP_LIMIT};

pub struct VerifySession {
    ctx: Ctx,
    store: Option<Box<dyn Store>>,
    /// True while the store fails: said once on stderr when it starts, once when over.
    failing: bool,
    record: bool,
    /// The largest group the store was told of (`Store::serve_many`); 0: none yet.
    sized_for: usize,
}

impl VerifySession {
    /// Opens the store. What is not a store at all is refused at once (exit 1), as by
    /// every command; a database server that is down at the start is waited for like
    /// a later outage.
    pub fn open(ctx: &Ctx, record: bool) -> Result<VerifySession> {
        let (session, outage) = VerifySession::open_quietly(ctx, record)?;
        if let Some(e) = outage {
            session.ctx.warn(&outage_warning(&e));
        }
        Ok(session)
    }

    /// [`VerifySession::open`], returning an outage at the start instead of saying it,
    /// for a caller with a line to print first (`serve`'s `listening on`; it says it
    /// with [`outage_warning`]).
    pub fn open_quietly(ctx: &Ctx, record: bool) -> Result<(VerifySession, Option<Error>)> {
        let mut session = VerifySession {
            ctx: ctx.clone(),
            store: None,
            failing: false,
            record,
            sized_for: 0,
        };
        match open_store(ctx, record) {
            Ok(s) => session.store = Some(s),
            Err(e) if is_outage(ctx, &e) => {
                session.failing = true;
                return Ok((session, Some(e)));
            }
            Err(e) => return Err(e),
        }
        Ok((session, None))
    }

    /// Decides and records `group` in one transaction (`verify_group`): one answer per
    /// request, in order. A store failure is `unavailable` for the requests it hit;
    /// `Err` only for a failure that is no outage (the caller decides whether to go on).
    pub fn verify(&mut self, group: &[Pending]) -> Vec<Result<Verdict>> {
        if group.is_empty() {
            return Vec::new();
        }
        let record = self.record;
        // Requests that arrive faster than one commit each (a group of more than one)
        // make this a busy verifier, told of each group larger than any before. One
        // request at a time is served better by a small page cache: SQLite walks the
        // whole cache at some commits (docs/decisions.md).
        let grow = group.len() > 1 && group.len() > self.sized_for;
        let mut grown = false;
        let answers: Vec<Result<Verdict>> = match self.store() {
            Ok(s) => {
                // A hint: a store that refuses it verifies with the cache it has.
                grown = grow && s.serve_many(group.len()).is_ok();
                verify_group(s, group, record)
                    .into_iter()
                    .map(|r| r.map_err(Error::from))
                    .collect()
            }
            Err(e) => group.iter().map(|_| Err(same_error(&e))).collect(),
        };
        if grown {
            self.sized_for = group.len();
        }
        answers
            .into_iter()
            .map(|answer| match answer {
                Ok(verdict) => {
                    self.recovered();
                    Ok(verdict)
                }
                Err(e) if e.kind == Kind::Runtime || e.unavailable => {
                    self.failed(&e);
                    // A broken handle is dropped: the next request opens anew.
                    if e.unavailable {
                        self.store = None;
                    }
                    Ok(Verdict::unavailable())
                }
                Err(e) => Err(e),
            })
            .collect()
    }

    /// The most requests one group should hold (`Store::group_limit`; the default while
    /// the store is not open).
    pub fn group_limit(&self) -> usize {
        self.store.as_ref().map_or(GROUP_LIMIT, |s| s.group_limit())
    }

    /// True when the store answers a read transaction now (`/healthz`).
    pub fn healthy(&mut self) -> bool {
        let answered = self
            .store()
            .and_then(|s| s.begin(Intent::Read).map(drop).map_err(Error::from));
        match answered {
            Ok(()) => {
                self.recovered();
                true
            }
            Err(e) => {
                self.failed(&e);
                if e.unavailable {
                    self.store = None;
                }
                false
            }
        }
    }

    fn store(&mut self) -> Result<&mut dyn Store> {
        if self.store.is_none() {
            self.store = Some(open_store(&self.ctx, self.record)?);
            self.sized_for = 0;
        }
        match self.store.as_mut() {
            Some(s) => Ok(s.as_mut()),
            None => Err(Error::runtime("the key store is not open")),
        }
    }

    fn failed(&mut self, e: &Error) {
        if !std::mem::replace(&mut self.failing, true) {
            self.ctx.warn(&outage_warning(e));
        }
    }

    fn recovered(&mut self) {
        if std::mem::take(&mut self.failing) {
            self.ctx.note("key store available again");
        }
    }
}

/// The store of a long-running verifier, told it is one (`Store::serve_long`) when it
/// records (one that does not never writes, so has nothing to move). A hint: a store
/// that refuses it serves with its housekeeping where it was.
fn open_store(ctx: &Ctx, record: bool) -> Result<Box<dyn Store>> {
    let mut store = ctx.open_for_verify()?;
    if record {
        let _ = store.serve_long();
    }
    Ok(store)
}

/// What a verifier says once when its store starts failing.
pub fn outage_warning(e: &Error) -> String {
    format!(
        "{}; answering unavailable until the store is back",
        e.message
    )
}

/// True when `e` is a database server that cannot be reached (SPEC §6: verify answers
/// `unavailable`). A missing or foreign store, and an SQLite file that cannot be used,
/// stay errors (exit 1): a file is not an outage.
pub fn is_outage(ctx: &Ctx, e: &Error) -> bool {
    e.unavailable && ctx.db.sqlite_path().is_none()
}

/// The same failure again, for each request of a group the store could not open for.
fn same_error(e: &Error) -> Error {
    Error {
        kind: e.kind,
        message: e.message.clone(),
        retryable: e.retryable,
        unavailable: e.unavailable,
    }
}
