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
    fn an_event_is_never_dated_before_its_predecessor() {
        assert_eq!(dated_after(None, 5), 5);
        assert_eq!(dated_after(Some(3), 5), 5);
        assert_eq!(dated_after(Some(5), 5), 5);
        assert_eq!(dated_after(Some(9), 5), 9);
    }
}
