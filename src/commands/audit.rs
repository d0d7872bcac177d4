//! `keyctl audit [KEYREF]` lists admin events; `keyctl audit verify` checks the hash
//! chain (and, with `--expect-head`, that a recorded head is still in it).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::keyref::filter_id;
use crate::cli::{AuditArgs, AuditCommand, Format};
use crate::context::Ctx;
use crate::core::audit::{chain_hash, GENESIS};
use crate::core::key::hex;
use crate::error::{Error, Kind, Result};
use crate::store::{AuditQuery, Intent, Txn};
use crate::ui::audit::{write_verdict, EventRows, Verdict};
use crate::ui::output::{answer_written, plural, stdout};
use crate::ui::records::RecordWriter;

use crate::core::audit::ACTIONS;

/// The keys whose events `audit KEYREF` shows: the whole rotation chain of the key,
/// since the name moves from key to key. A name that no key holds now (the newest of
/// its chain was revoked) still means its chain when all its keys are in that one chain.
fn chain_of(tx: &dyn Txn, reference: &str, now: DateTime<Utc>) -> Result<Vec<String>> {
    let err = match filter_id(tx, reference, now) {
        Ok(id) => return Ok(tx.rotation_chain(&id)?),
        Err(e) if e.kind == Kind::Conflict => e,
        Err(e) => return Err(e),
    };
    let named = tx.keys_by_name(reference.trim())?;
    if let Some(first) = named.first() {
        let chain = tx.rotation_chain(&first.id)?;
        if named.iter().all(|k| chain.contains(&k.id)) {
            return Ok(chain);
        }
    }
    Err(err)
}

pub fn run(ctx: &Ctx, args: AuditArgs) -> Result<()> {
    if let Some(AuditCommand::Verify { expect_head }) = args.command {
        return verify(ctx, expect_head);
    }
    if let Some(a) = &args.action {
        if !ACTIONS.contains(&a.as_str()) {
            return Err(Error::usage(format!(
                "invalid --action '{a}': use one of {}",
                ACTIONS.join(", ")
            )));
        }
    }
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let key_ids = match &args.keyref {
        None => Vec::new(),
        Some(r) => chain_of(tx.as_ref(), r, ctx.now())?,
    };
    let query = AuditQuery {
        key_id: None,
        key_ids,
        since: args.since.and_then(|w| w.spec.before(ctx.now())),
        action: args.action.clone(),
        limit: Some(args.limit),
        newest_first: true,
    };
    let mut out = stdout();
    let mut events = RecordWriter::new(&mut out, EventRows, ctx.format, ctx.color)?;
    tx.for_each_audit(&query, &mut |e| events.add(e))?;
    if events.finish()? == 0 && ctx.format == Format::Table {
        ctx.note("no audit events match");
    }
    out.flush()?;
    Ok(())
}

fn verify(ctx: &Ctx, expect_head: Option<String>) -> Result<()> {
    let expected = match expect_head {
        None => None,
        Some(h) => {
            let h = h.trim().to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::usage(format!(
                    "invalid --expect-head '{h}': use the 64-hex-digit head printed by 'keyctl audit verify'"
                )));
            }
            Some(h)
        }
    };
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let query = AuditQuery::default();
    let mut prev = GENESIS;
    let mut expected_seq = 1i64;
    let mut count = 0u64;
    let mut seen_expected = expected.as_deref() == Some(&hex(&GENESIS));
    let mut broken: Option<(i64, String)> = None;
    tx.for_each_audit(&query, &mut |e| {
        if broken.is_some() {
            return Ok(());
        }
        let seq = e.event.seq;
        let problem = if seq != expected_seq {
            Some(format!(
                "expected event {expected_seq} next but found event {seq} (events were deleted or inserted)"
            ))
        } else if e.prev_hash != prev {
            Some("its link to the previous event does not match (an earlier event was changed, deleted or inserted)".to_string())
        } else if chain_hash(&prev, &e.event) != e.hash.as_slice() {
            Some("its contents do not match its hash (the event was edited)".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            broken = Some((seq, p));
            return Ok(());
        }
        prev.copy_from_slice(&e.hash);
        expected_seq += 1;
        count += 1;
        if expected.as_deref() == Some(&hex(&e.hash)) {
            seen_expected = true;
        }
        Ok(())
    })?;
    let head = hex(&prev);
    let verdict: std::result::Result<(), (Option<i64>, String)> = match (&broken, &expected) {
        (Some((seq, p)), _) => Err((Some(*seq), format!("audit trail broken at event {seq}: {p}"))),
        (None, Some(h)) if !seen_expected => Err((
            None,
            format!(
                "audit trail does not contain the expected head {h}: its newest events were cut off or it was rewritten (head now {head}, {})",
                plural(count, "event")
            ),
        )),
        _ => Ok(()),
    };
    let (broken_at, problem) = match &verdict {
        Ok(()) => (None, None),
        Err((seq, p)) => (*seq, Some(p.as_str())),
    };
    let mut out = stdout();
    let written = write_verdict(
        &mut out,
        ctx.format == Format::Json,
        &Verdict {
            events: count,
            head: &head,
            broken_at,
            problem,
        },
    )
    .and_then(|()| out.flush());
    answer_written(written)?;
    verdict.map_err(|(_, msg)| Error::new(Kind::AuditBroken, msg))
}
