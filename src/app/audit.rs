//! Appending to the audit trail, the one way for every command and every backend: the
//! backend locks the head and stores what it is given; the chain step (seq, time,
//! hashes) is computed once, in `core::audit::next`.

use crate::core::audit::{next, AuditEvent, AuditHead};
use crate::store::{Result, Txn};

/// The trail as one transaction sees it. It remembers the head it appended last, so a
/// batch of events locks and reads the head once. Use one per transaction: the head
/// is only current under that transaction's lock.
#[derive(Debug, Default)]
pub struct AuditTrail {
    /// None: the head is not read yet; Some(None): the trail is empty.
    head: Option<Option<AuditHead>>,
}

impl AuditTrail {
    /// Appends `event` (its seq is assigned; its time is kept unless that is before the
    /// head's) after the head, locking the head on first use.
    pub fn append<T: Txn + ?Sized>(&mut self, tx: &mut T, event: AuditEvent) -> Result<()> {
        let head = match self.head {
            Some(head) => head,
            None => tx.audit_head_for_append()?,
        };
        let stored = next(head.as_ref(), event);
        tx.insert_audit(&stored)?;
        self.head = Some(Some(stored.as_head()));
        Ok(())
    }
}

/// Appends one event in `tx` (commands that audit once or twice per transaction).
pub fn append_audit<T: Txn + ?Sized>(tx: &mut T, event: AuditEvent) -> Result<()> {
    AuditTrail::default().append(tx, event)
}
