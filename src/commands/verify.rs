//! `keyctl verify`: is a presented key good for this request? Arguments (or stream
//! lines) in, one answer out; `app::verify` loads, decides (SPEC §3, in core) and
//! records in one transaction. `--stream` serves many requests from one process.

use std::io::{self, BufRead, Read, Write};

use crate::app::verify::{verify_one, Meta, Pending, Verdict};
use crate::app::verify_session::{is_outage, VerifySession};
use crate::cli::{Format, VerifyArgs};
use crate::commands::stream_input::{Stdin, StreamInput, Taken};
use crate::context::Ctx;
use crate::core::allowlist::parse_ip;
use crate::core::fields::{parse_line, too_long};
use crate::core::key::strip_bearer;
use crate::core::names::validate_text;
use crate::core::policy::Request;
use crate::error::{Error, Kind, Result};
use crate::ui::output::{answer_written, stdout};
use crate::ui::verdict::verdict_json;

/// Most bytes of stdin read for one presented key (SPEC §3).
const MAX_KEY_INPUT: u64 = 1024;

/// Reads the presented key: the env var named by `--key-env`, else the first line of
/// stdin (at most 1 KiB). Anything that is not text is an invalid key, not an error.
fn presented_key(args: &VerifyArgs) -> Result<String> {
    if let Some(var) = &args.key_env {
        return match std::env::var_os(var) {
            Some(v) => Ok(strip_bearer(&v.to_string_lossy()).to_string()),
            None => Err(Error::usage(format!(
                "--key-env {var}: that environment variable is not set"
            ))),
        };
    }
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_KEY_INPUT)
        .read_until(b'\n', &mut buf)
        .map_err(|e| Error::runtime(format!("cannot read the key from stdin: {e}")))?;
    Ok(std::str::from_utf8(&buf)
        .map(|t| strip_bearer(t).to_string())
        .unwrap_or_default())
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    // Every value was parsed beside its flag (cli.rs, core::inputs).
    if args.stream {
        return stream(ctx, args.cost, args.no_record);
    }
    let req = Request {
        ip: args.ip,
        scope: args.scope.clone(),
        deployment: args.deployment.clone(),
        model: args.model.clone(),
        cost: args.cost,
    };
    let meta = Meta {
        ip_text: args.ip.map(|i| i.to_string()),
        endpoint: args.endpoint.clone(),
        duration_ms: args.duration_ms,
    };
    let presented = presented_key(&args)?;
    if args.explain {
        return super::explain::run(ctx, &req, meta.endpoint.as_deref(), &presented);
    }
    let verdict = ctx.open_for_verify().and_then(|mut store| {
        verify_one(
            store.as_mut(),
            &presented,
            &req,
            &meta,
            ctx.store_clock(),
            !args.no_record,
        )
        .map_err(Error::from)
    });
    // An outage is an answer too (exit 22, SPEC §6), with the reason on stderr.
    let verdict = match verdict {
        Err(e) if is_outage(ctx, &e) => {
            ctx.warn(&e.message);
            Verdict::unavailable()
        }
        other => other?,
    };
    let mut out = stdout();
    let written = if ctx.format == Format::Json {
        out.write_all(&verdict_json(&verdict))
    } else {
        writeln!(out, "{}", verdict.outcome.message())
    }
    .and_then(|_| out.flush());
    answer_written(written)?;
    match verdict.outcome.exit_code() {
        0 => Ok(()),
        code => Err(Error::new(Kind::Exit(code), "")),
    }
}

/// A good stream line, shown when a line is not one.
const STREAM_EXAMPLE: &str = r#"{"key": "..."}"#;

/// Parses one stream line into a request, or says why it is not one. Only `key` is
/// required; unknown members are ignored so services can send their own.
pub(crate) fn parse_stream_line(
    line: &[u8],
    default_cost: u64,
) -> std::result::Result<(String, Request, Meta), String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let fields = parse_line(line, STREAM_EXAMPLE)?;
    let key = fields.required_text("key")?;
    let ip = fields
        .text("ip")?
        .map(|t| parse_ip(t).map_err(|e| format!("field `ip`: {e}")))
        .transpose()?;
    let text = |name: &str| -> std::result::Result<Option<String>, String> {
        match fields.text(name)? {
            Some(t) => match validate_text(name, t) {
                Ok(()) => Ok(Some(t.trim().to_string())),
                // The label is formatted only for an error (every line has four fields).
                Err(e) => Err(validate_text(&format!("field `{name}`"), t)
                    .err()
                    .unwrap_or(e)),
            },
            None => Ok(None),
        }
    };
    let req = Request {
        ip,
        scope: text("scope")?,
        deployment: text("deployment")?,
        model: text("model")?,
        cost: fields.count("cost", 0)?.unwrap_or(default_cost),
    };
    let meta = Meta {
        ip_text: ip.map(|i| i.to_string()),
        endpoint: text("endpoint")?,
        duration_ms: fields.count("duration_ms", 0)?,
    };
    Ok((strip_bearer(key).to_string(), req, meta))
}

/// Fuzzing entry point: parses one stream-mode line (must never panic).
#[doc(hidden)]
pub fn fuzz_stream_line(line: &[u8]) {
    let _ = parse_stream_line(line, 1);
}

/// `verify --stream`: one json result line per request line, flushed, in order.
///
/// Group commit (SPEC §7): the lines already waiting on stdin when a line is read (at
/// most the store's `Store::group_limit`) are decided and recorded in one transaction
/// (`app::verify::verify_group`), each at its own arrival time; nothing waits for more
/// lines, and a verdict is written only after the commit holding its record returned.
///
/// A store failure never ends the stream (SPEC §6): the requests it could not record
/// are answered `unavailable`, the failure is said once on stderr, and the next
/// request opens the store again.
fn stream(ctx: &Ctx, default_cost: u64, no_record: bool) -> Result<()> {
    let mut session = VerifySession::open(ctx, !no_record)?;
    let mut input = StreamInput::new(Stdin(io::stdin().lock()));
    let mut out = stdout();
    // Per line of a group: its answer when it is not a request (None: the next
    // request of `group`).
    let mut items: Vec<Option<Verdict>> = Vec::new();
    let mut group: Vec<Pending> = Vec::new();
    loop {
        items.clear();
        group.clear();
        let most = session.group_limit();
        // The first line is waited for; the rest only taken when already there.
        while items.len() < most {
            let taken = input
                .next(items.is_empty())
                .map_err(|e| Error::runtime(format!("cannot read the request stream: {e}")))?;
            // Every line gets its answer, a blank one too: a client that writes a
            // line and reads a line must never wait forever.
            items.push(match taken {
                Taken::Eof | Taken::NotYet => break,
                Taken::TooLong => Some(Verdict::bad_request(too_long())),
                Taken::Line(line) => match parse_stream_line(line, default_cost) {
                    Err(why) => Some(Verdict::bad_request(why)),
                    Ok((presented, req, meta)) => {
                        group.push(Pending {
                            presented,
                            req,
                            meta,
                            // Read as the line is taken: its arrival, as far as known.
                            clock: ctx.store_clock(),
                        });
                        None
                    }
                },
            });
        }
        if items.is_empty() {
            break;
        }
        let mut answers = session.verify(&group).into_iter();
        let mut fatal = None;
        for item in items.drain(..) {
            let verdict = match item {
                Some(v) => v,
                None => match answers.next() {
                    Some(Ok(verdict)) => verdict,
                    Some(Err(e)) => {
                        fatal = Some(e);
                        break;
                    }
                    None => Verdict::unavailable(),
                },
            };
            out.write_all(&verdict_json(&verdict))?;
        }
        // One flush per group: every verdict in it was committed by now.
        out.flush()?;
        if let Some(e) = fatal {
            return Err(e);
        }
    }
    Ok(())
}
