//! `keyctl copy --to TARGET`: the whole store into a new one of either backend (SPEC
//! §6): keys, settings, request log, counters and the audit trail verbatim, read from
//! one snapshot while writers go on. How a user moves from the file to a server and
//! back. No audit event is added, so the target's head is the source's.

use std::io::Write;

use crate::cli::CopyStoreArgs;
use crate::context::{parse_location, Ctx};
use crate::core::audit::GENESIS;
use crate::error::{Error, Result};
use crate::store::{self, Intent, Location, OpenOptions, Txn};
use crate::ui::output::{answer_written, stdout};

pub fn run(ctx: &Ctx, args: CopyStoreArgs) -> Result<()> {
    let target = parse_location(&args.to, "--to", true)?;
    if target == ctx.db || !store::is_empty_target(&target)? {
        return Err(Error::conflict(format!(
            "{target} already holds a keyctl store: copy writes only into a new store (a missing file, or a database or schema without keyctl tables)"
        )));
    }
    let mut source = ctx.open_read()?;
    let from = source.begin(Intent::Read)?;
    let opts = OpenOptions {
        create: true,
        create_parent: false,
        prefix: None,
    };
    let (mut dest, created) = store::open(&target, &opts)?;
    let copied = (|| -> Result<(u64, u64, String)> {
        let mut to = dest.begin(Intent::Bulk)?;
        let rows = store::copy_rows(from.as_ref(), to.as_mut())?;
        let (events, head) = audit_head(to.as_mut())?;
        to.commit()?;
        Ok((rows, events, head))
    })();
    let (rows, events, head) = match copied {
        Ok(done) => done,
        // Nothing was copied: leave no empty store behind to refuse the next try.
        Err(e) if created => {
            drop(dest);
            if store::discard_new(&target) {
                return Err(e);
            }
            return Err(Error::new(
                e.kind,
                format!(
                    "{}; {target} now holds keyctl's empty tables: drop them before copying again",
                    e.message
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    ctx.note(&format!(
        "copied key store {} to {target}: {} in all, {}",
        ctx.db,
        crate::ui::output::plural(rows, "row"),
        crate::ui::output::plural(events, "audit event"),
    ));
    print_head(ctx, &target, events, &head)
}

/// The trail's newest hash as `keyctl audit verify` prints it (the genesis hash for an
/// empty trail) and its seq (the number of events of an intact chain): the head the
/// store already keeps for appending, read in the copy's own write transaction.
fn audit_head(tx: &mut dyn Txn) -> Result<(u64, String)> {
    Ok(match tx.audit_head_for_append()? {
        Some(head) => (head.seq.max(0) as u64, crate::core::key::hex(&head.hash)),
        None => (0, crate::core::key::hex(&GENESIS)),
    })
}

fn print_head(ctx: &Ctx, target: &Location, events: u64, head: &str) -> Result<()> {
    let mut out = stdout();
    let written = if ctx.format == crate::cli::Format::Json {
        crate::ui::json::write(
            &mut out,
            &serde_json::json!({ "to": target.to_string(), "audit_events": events, "head": head }),
        )
        .and_then(|()| writeln!(out))
    } else {
        writeln!(out, "{head}")
    };
    answer_written(written.and_then(|()| out.flush()))
}
