//! The audit trail's hash chain: each event's hash covers the previous hash and a
//! canonical, length-prefixed encoding of the event's own fields, so editing,
//! inserting or deleting any event changes every hash after it.

use sha2::{Digest, Sha256};

/// An audit event as recorded (details are a JSON object, never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub key_id: Option<String>,
    pub details: String,
}

/// Every action an audit event records (what `audit --action` filters by).
pub const ACTIONS: &[&str] = &[
    "created", "edited", "disabled", "enabled", "revoked", "rotated", "deleted", "config",
];

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0u8; 32];

fn put(buf: &mut Vec<u8>, field: &[u8]) {
    buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
    buf.extend_from_slice(field);
}

/// sha256(prev_hash || len-prefixed seq, time, actor, action, key id, details).
pub fn chain_hash(prev: &[u8; 32], ev: &AuditEvent) -> [u8; 32] {
    // The canonical encoding is built whole and hashed once (many small updates cost
    // more than the hashing itself).
    let mut buf = Vec::with_capacity(128 + ev.actor.len() + ev.details.len());
    buf.extend_from_slice(b"keyctl-audit-v1");
    buf.extend_from_slice(prev);
    put(&mut buf, &ev.seq.to_be_bytes());
    put(&mut buf, &ev.at_ms.to_be_bytes());
    put(&mut buf, ev.actor.as_bytes());
    put(&mut buf, ev.action.as_bytes());
    match &ev.key_id {
        Some(k) => put(&mut buf, k.as_bytes()),
        None => buf.extend_from_slice(&[0xff; 8]),
    }
    put(&mut buf, ev.details.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(&buf));
    out
}

/// An audit event with the chain links stored beside it.
#[derive(Debug, Clone)]
pub struct StoredAuditEvent {
    pub event: AuditEvent,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The newest event of the chain: what the next one links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: [u8; 32],
    pub at_ms: i64,
}

impl AuditHead {
    /// The head as stored. A hash that is not 32 bytes (only a tampered store has one)
    /// links as GENESIS: the next event is appended anyway and `audit verify` reports
    /// the break.
    pub fn from_stored(seq: i64, hash: &[u8], at_ms: i64) -> AuditHead {
        AuditHead {
            seq,
            hash: hash.try_into().unwrap_or(GENESIS),
            at_ms,
        }
    }
}

impl StoredAuditEvent {
    /// This event as the head of the chain.
    pub fn as_head(&self) -> AuditHead {
        AuditHead::from_stored(self.event.seq, &self.hash, self.event.at_ms)
    }
}

/// The one step of the chain, for every backend: `event` appended after `head` (None:
/// the trail is empty) gets the next seq, a time never before its predecessor's, the
/// predecessor's hash and its own. The event's own seq is ignored.
pub fn next(head: Option<&AuditHead>, mut event: AuditEvent) -> StoredAuditEvent {
    let prev = head.map_or(GENESIS, |h| h.hash);
    // A seq at i64::MAX (only a tampered store has one) stays there: the store then
    // refuses the duplicate instead of this wrapping around.
    event.seq = head.map_or(1, |h| h.seq.saturating_add(1));
    event.at_ms = dated_after(head.map(|h| h.at_ms), event.at_ms);
    let hash = chain_hash(&prev, &event);
    StoredAuditEvent {
        event,
        prev_hash: prev.to_vec(),
        hash: hash.to_vec(),
    }
}

/// The time to record for an event dated `at_ms` whose predecessor in the chain is
/// dated `prev_ms`: never earlier (SPEC §5), so a clock set back — or another host's —
/// cannot put an event before its predecessor and out of reach of `audit --since`.
pub fn dated_after(prev_ms: Option<i64>, at_ms: i64) -> i64 {
    prev_ms.map_or(at_ms, |prev| prev.max(at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, actor: &str) -> AuditEvent {
        AuditEvent {
            seq,
            at_ms: 1_700_000_000_000,
            actor: actor.into(),
            action: "created".into(),
            key_id: Some("key_abcdefghijkl".into()),
            details: "{}".into(),
        }
    }

    #[test]
    fn every_field_and_the_link_matter() {
        let base = chain_hash(&GENESIS, &ev(1, "alice"));
        assert_ne!(base, chain_hash(&GENESIS, &ev(1, "bob")));
        assert_ne!(base, chain_hash(&GENESIS, &ev(2, "alice")));
        assert_ne!(base, chain_hash(&[1u8; 32], &ev(1, "alice")));
        let mut no_key = ev(1, "alice");
        no_key.key_id = None;
        assert_ne!(base, chain_hash(&GENESIS, &no_key));
        // Field boundaries are unambiguous: moving text between fields changes the hash.
        let mut a = ev(1, "ab");
        a.action = "c".into();
        let mut b = ev(1, "a");
        b.action = "bc".into();
        assert_ne!(chain_hash(&GENESIS, &a), chain_hash(&GENESIS, &b));
    }

    #[test]
    fn the_first_event_follows_genesis() {
        let first = next(None, ev(7, "alice"));
        assert_eq!(first.event.seq, 1, "the event's own seq is ignored");
        assert_eq!(first.event.at_ms, 1_700_000_000_000);
        assert_eq!(first.prev_hash, GENESIS.to_vec());
        assert_eq!(first.hash, chain_hash(&GENESIS, &first.event).to_vec());
    }

    #[test]
    fn each_event_links_to_the_head_with_the_next_seq() {
        let first = next(None, ev(0, "alice"));
        let head = first.as_head();
        let second = next(Some(&head), ev(0, "bob"));
        assert_eq!(second.event.seq, 2);
        assert_eq!(second.prev_hash, first.hash);
        let prev: [u8; 32] = first.hash.as_slice().try_into().unwrap();
        assert_eq!(second.hash, chain_hash(&prev, &second.event).to_vec());
        assert_eq!(second.as_head().seq, 2);
    }

    #[test]
    fn an_appended_event_is_never_dated_before_the_head() {
        let head = AuditHead {
            seq: 41,
            hash: [7u8; 32],
            at_ms: 1_800_000_000_000,
        };
        let late = next(Some(&head), ev(0, "alice"));
        assert_eq!(late.event.at_ms, head.at_ms, "clock set back: clamped");
        assert_eq!(late.event.seq, 42);
        let mut later = ev(0, "alice");
        later.at_ms = head.at_ms + 5;
        assert_eq!(next(Some(&head), later).event.at_ms, head.at_ms + 5);
    }

    #[test]
    fn a_malformed_stored_head_links_as_genesis_and_a_maximal_seq_does_not_wrap() {
        let head = AuditHead::from_stored(i64::MAX, &[1, 2, 3], 0);
        assert_eq!(head.hash, GENESIS);
        assert_eq!(next(Some(&head), ev(0, "a")).event.seq, i64::MAX);
        assert_eq!(AuditHead::from_stored(1, &[9u8; 32], 0).hash, [9u8; 32]);
    }

    #[test]
    fn an_event_is_never_dated_before_its_predecessor() {
        assert_eq!(dated_after(None, 5), 5);
        assert_eq!(dated_after(Some(3), 5), 5);
        assert_eq!(dated_after(Some(5), 5), 5);
        assert_eq!(dated_after(Some(9), 5), 9);
    }
}
