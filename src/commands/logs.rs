//! `keyctl logs [KEYREF]`: the request log, newest first; `--follow` keeps printing
//! new rows; `logs prune --before` deletes old rows (never counters or usage).

use std::io::Write;
use std::time::Duration as StdDuration;

use super::keyref::filter_id;
use crate::app::retry::with_retry;
use crate::cli::{Format, LogsArgs, LogsCommand};
use crate::context::Ctx;
use crate::core::allowlist::parse_ip;
use crate::core::model::RequestRow;
use crate::core::time::{parse_time_spec, rfc3339};
use crate::error::{Error, Result};
use crate::store::{Intent, RequestQuery};
use crate::ui::output::{stdout, Out};
use crate::ui::records::RecordWriter;
use crate::ui::requests::{Follow, RequestRows};
use crate::ui::table::terminal_width;

/// Result codes `--status` accepts besides HTTP statuses.
pub const CODES: &[&str] = &[
    "valid",
    "invalid",
    "revoked",
    "inactive",
    "expired",
    "ip_not_allowed",
    "ip_blocked",
    "forbidden_deployment",
    "forbidden_scope",
    "forbidden_model",
    "rate_limited",
    "quota_exceeded",
    "credits_exhausted",
];

pub fn run(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    if let Some(LogsCommand::Prune { before }) = &args.command {
        return prune(ctx, before);
    }
    let (http_status, code) = match args.status.as_deref().map(str::trim) {
        None => (None, None),
        Some(t) if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() => match t.parse::<u16>()
        {
            Ok(n) if (100..=599).contains(&n) => (Some(n), None),
            _ => {
                return Err(Error::usage(format!(
                "invalid --status '{t}': use an HTTP status like 401 or a code like quota_exceeded"
            )))
            }
        },
        Some(t) if CODES.contains(&t) => (None, Some(t.to_string())),
        Some(t) => {
            return Err(Error::usage(format!(
                "invalid --status '{t}': use an HTTP status like 401 or one of {}",
                CODES.join(", ")
            )))
        }
    };
    let ip = args
        .ip
        .as_deref()
        .map(|t| parse_ip(t).map_err(|e| Error::usage(format!("--ip: {e}"))))
        .transpose()?;
    let mut store = ctx.open_read()?;
    let mut query = RequestQuery {
        key_id: None,
        since: args.since.and_then(|w| w.spec.before(ctx.now())),
        until: args.until.and_then(|w| w.spec.before(ctx.now())),
        http_status,
        code,
        ip: ip.map(|i| i.to_string()),
        limit: Some(args.limit),
    };
    {
        let tx = store.begin(Intent::Read)?;
        if let Some(r) = &args.keyref {
            query.key_id = Some(filter_id(tx.as_ref(), r, ctx.now())?);
        }
    }
    let mut out = stdout();
    if args.follow {
        return follow(ctx, store.as_mut(), query, &mut out);
    }
    let tx = store.begin(Intent::Read)?;
    let mut requests = RecordWriter::new(&mut out, RequestRows, ctx.format, ctx.color)?;
    tx.for_each_request(&query, &mut |r| requests.add(r))?;
    if requests.finish()? == 0 && ctx.format == Format::Table {
        ctx.note("no requests match");
    }
    out.flush()?;
    Ok(())
}

/// Prints the newest `limit` rows oldest first, then polls for new ones until the
/// process is interrupted or stdout closes. json is one object per line here.
fn follow(
    ctx: &Ctx,
    store: &mut dyn crate::store::Store,
    query: RequestQuery,
    out: &mut Out,
) -> Result<()> {
    let shape = Follow::start(out, ctx.format, terminal_width())?;
    let print = |out: &mut Out, rows: &[RequestRow]| -> std::io::Result<()> {
        for r in rows {
            shape.row(out, r)?;
        }
        out.flush()
    };
    // The newest rows and the cursor come from one snapshot: a row committed after
    // it is followed, not lost between two reads.
    let mut rows = Vec::new();
    let mut cursor = {
        let tx = store.begin(Intent::Read)?;
        tx.for_each_request(&query, &mut |r| {
            rows.push(r.clone());
            Ok(())
        })?;
        tx.log_cursor_now()?
    };
    rows.reverse();
    print(out, &rows)?;
    loop {
        std::thread::sleep(StdDuration::from_millis(250));
        if crate::ui::output::reader_gone() {
            return Ok(());
        }
        let mut fresh = Vec::new();
        cursor = {
            let tx = store.begin(Intent::Read)?;
            tx.requests_after(&cursor, &query, &mut |r| {
                fresh.push(r.clone());
                Ok(())
            })?
        };
        print(out, &fresh)?;
    }
}

fn prune(ctx: &Ctx, before: &str) -> Result<()> {
    let cutoff = parse_time_spec(before, false)
        .map_err(|e| Error::usage(format!("invalid --before: {e}")))?
        .before(ctx.now())
        .ok_or_else(|| Error::usage("invalid --before: use a duration like 90d or a date"))?;
    let mut store = ctx.open_write()?;
    let n = with_retry(store.retry_attempts(), || -> Result<u64> {
        let mut tx = store.begin(Intent::Admin)?;
        let n = tx.prune_requests(cutoff)?;
        tx.commit()?;
        Ok(n)
    })?;
    ctx.note(&format!(
        "deleted {} older than {}",
        crate::ui::output::plural(n, "request-log row"),
        rfc3339(cutoff)
    ));
    Ok(())
}
