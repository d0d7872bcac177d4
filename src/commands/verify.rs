//! `keyctl verify`: is a presented key good for this request? The checks of SPEC §3 in
//! order (the pure policy decides), then one request-log row and the counters, all in
//! one transaction. `--stream` serves many requests from one process.

use std::io::{self, BufRead, Read, Write};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::cli::{Format, VerifyArgs};
use crate::context::Ctx;
use crate::core::allowlist::parse_ip;
use crate::core::fields::{parse_line, read_bounded_line, too_long, Line};
use crate::core::key::{self, hash_secret, strip_bearer};
use crate::core::limits::{add_counts, block_subject, parse_amount};
use crate::core::model::{KeyRecord, RequestRecord};
use crate::core::names::validate_text;
use crate::core::policy::{check_key, check_limits, Counts, Outcome, Request};
use crate::core::settings::Settings;
use crate::error::{Error, Kind, Result};
use crate::store::{Intent, Store, Txn};
use crate::ui::output::{answer_written, stdout};

/// Most bytes of stdin read for one presented key (SPEC §3).
const MAX_KEY_INPUT: u64 = 1024;

/// What is recorded about a request besides its outcome.
#[derive(Debug, Clone, Default)]
struct Meta {
    ip_text: Option<String>,
    endpoint: Option<String>,
    duration_ms: Option<u64>,
}

/// The answer to one request.
struct Verdict {
    outcome: Outcome,
    key: Option<KeyRecord>,
    credits_remaining: Option<u64>,
    quota_remaining: Option<QuotaRemaining>,
}

#[derive(Serialize, Default)]
struct QuotaRemaining {
    total: Option<u64>,
    daily: Option<u64>,
    weekly: Option<u64>,
    monthly: Option<u64>,
}

#[derive(Serialize)]
struct VerdictJson<'a> {
    valid: bool,
    code: &'static str,
    status: u16,
    message: String,
    key_id: Option<&'a str>,
    key_name: Option<&'a str>,
    credits_remaining: Option<u64>,
    quota_remaining: Option<&'a QuotaRemaining>,
}

fn verdict_json(v: &Verdict) -> Vec<u8> {
    let j = VerdictJson {
        valid: v.outcome.is_valid(),
        code: v.outcome.code(),
        status: v.outcome.http_status(),
        message: v.outcome.message(),
        key_id: v.key.as_ref().map(|k| k.id.as_str()),
        key_name: v.key.as_ref().map(|k| k.settings.name.as_str()),
        credits_remaining: v.credits_remaining,
        quota_remaining: v.quota_remaining.as_ref(),
    };
    let mut line = crate::ui::json::to_vec(&j).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Decides one request and, with `record`, writes it down in `tx`.
fn evaluate(
    tx: &mut dyn Txn,
    presented: &str,
    req: &Request,
    meta: &Meta,
    now: DateTime<Utc>,
    record: bool,
) -> Result<Verdict> {
    let mut key: Option<KeyRecord> = None;
    let mut counts = Counts::default();
    // Settings are read only when needed: an IPv6 address's block is its network's.
    let mut settings: Option<Settings> = None;
    let subject = match req.ip {
        None => None,
        Some(ip @ IpAddr::V4(_)) => Some(block_subject(ip, 0)),
        Some(ip @ IpAddr::V6(_)) => {
            let s = settings.insert(tx.settings()?);
            Some(block_subject(ip, s.failed_auth_ipv6_prefix))
        }
    };
    let outcome = 'decide: {
        if let Some(subject) = &subject {
            if tx.ip_blocked_until(subject, now)?.is_some() {
                break 'decide Outcome::IpBlocked;
            }
        }
        // Format and checksum first: a mistyped key never reaches the index.
        if key::parse(presented).is_err() {
            break 'decide Outcome::Invalid;
        }
        let Some(found) = tx.key_by_hash(&hash_secret(presented))? else {
            break 'decide Outcome::Invalid;
        };
        let k = key.insert(found);
        // Counted even when an earlier check refuses, so quota_remaining is right.
        counts = window_counts(tx, k, now)?;
        let first = check_key(k, req, now);
        if first != Outcome::Valid {
            break 'decide first;
        }
        check_limits(k, &counts, req.cost)
    };
    let accepted = outcome.is_valid();
    if record {
        // Settings matter only for what recording does (blocking, retention).
        let settings = match settings {
            Some(s) => s,
            None => tx.settings()?,
        };
        tx.record_request(&RequestRecord {
            at: now,
            key: key
                .as_ref()
                .map(|k| (k.id.clone(), k.settings.name.clone())),
            endpoint: meta.endpoint.clone(),
            http_status: outcome.http_status(),
            code: outcome.code().to_string(),
            ip: meta.ip_text.clone(),
            duration_ms: meta.duration_ms,
            credits: if accepted { req.cost } else { 0 },
            accepted,
        })?;
        if outcome == Outcome::Invalid {
            if let Some(subject) = &subject {
                tx.record_auth_failure(
                    subject,
                    now,
                    settings.failed_auth_window,
                    settings.failed_auth_limit,
                    settings.block_duration,
                )?;
            }
        }
        if let Some(keep) = settings.log_retention {
            tx.prune_requests(now - keep)?;
        }
    }
    // What is left after this request (it counts when accepted).
    let used_now = u64::from(accepted);
    let (credits_remaining, quota_remaining) = match &key {
        None => (None, None),
        Some(k) => {
            let spent = add_counts(k.credits_used, if accepted { req.cost } else { 0 });
            let left = |cap: Option<u64>, used: u64| {
                cap.map(|c| c.saturating_sub(add_counts(used, used_now)))
            };
            (
                k.settings.credit_limit.map(|l| l.saturating_sub(spent)),
                Some(QuotaRemaining {
                    total: left(k.settings.quotas.total, k.pool_accepted_total),
                    daily: left(k.settings.quotas.daily, counts.daily),
                    weekly: left(k.settings.quotas.weekly, counts.weekly),
                    monthly: left(k.settings.quotas.monthly, counts.monthly),
                }),
            )
        }
    };
    Ok(Verdict {
        outcome,
        key,
        credits_remaining,
        quota_remaining,
    })
}

/// Accepted requests in each window the key limits, counted exactly over its rotation
/// lineage (a rotation neither resets nor doubles them).
fn window_counts(tx: &dyn Txn, k: &KeyRecord, now: DateTime<Utc>) -> Result<Counts> {
    let mut starts = Vec::with_capacity(4);
    if let Some(rate) = k.settings.rate_limit {
        starts.push(now - Duration::milliseconds(rate.unit.millis()));
    }
    let q = &k.settings.quotas;
    for (cap, span) in [
        (q.daily, Duration::days(1)),
        (q.weekly, Duration::days(7)),
        (q.monthly, Duration::days(30)),
    ] {
        if cap.is_some() {
            starts.push(now - span);
        }
    }
    let figures = if starts.is_empty() {
        Vec::new()
    } else {
        tx.pool_windows(k, &starts)?
    };
    let mut it = figures.into_iter();
    let mut next = |present: bool| if present { it.next().unwrap_or(0) } else { 0 };
    Ok(Counts {
        rate_window: next(k.settings.rate_limit.is_some()),
        daily: next(q.daily.is_some()),
        weekly: next(q.weekly.is_some()),
        monthly: next(q.monthly.is_some()),
        total: k.pool_accepted_total,
    })
}

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

fn optional_field(flag: &str, v: &Option<String>) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(t) => validate_text(flag, t)
            .map(|_| Some(t.trim().to_string()))
            .map_err(Error::usage),
    }
}

fn parse_u64(flag: &str, text: &str) -> Result<u64> {
    parse_amount(flag, text).map_err(Error::usage)
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    let cost = parse_u64("--cost", &args.cost)?;
    if args.stream {
        return stream(ctx, cost, args.no_record);
    }
    let ip: Option<IpAddr> = args
        .ip
        .as_deref()
        .map(|t| parse_ip(t).map_err(|e| Error::usage(format!("--ip: {e}"))))
        .transpose()?;
    let req = Request {
        ip,
        scope: optional_field("--scope", &args.scope)?,
        deployment: optional_field("--deployment", &args.deployment)?,
        model: optional_field("--model", &args.model)?,
        cost,
    };
    let meta = Meta {
        ip_text: ip.map(|i| i.to_string()),
        endpoint: optional_field("--endpoint", &args.endpoint)?,
        duration_ms: args
            .duration_ms
            .as_deref()
            .map(|t| parse_u64("--duration-ms", t))
            .transpose()?,
    };
    let presented = presented_key(&args)?;
    let mut store = ctx.open_read()?;
    let verdict = serve_one(
        store.as_mut(),
        &presented,
        &req,
        &meta,
        ctx.now,
        args.no_record,
    )?;
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

fn bad_request(why: String) -> Verdict {
    Verdict {
        outcome: Outcome::BadRequest(why),
        key: None,
        credits_remaining: None,
        quota_remaining: None,
    }
}

/// A good stream line, shown when a line is not one.
const STREAM_EXAMPLE: &str = r#"{"key": "..."}"#;

/// Parses one stream line into a request, or says why it is not one. Only `key` is
/// required; unknown members are ignored so services can send their own.
fn parse_stream_line(
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
            Some(t) => {
                validate_text(&format!("field `{name}`"), t).map(|_| Some(t.trim().to_string()))
            }
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

/// `verify --stream`: one json result line per request line, flushed, in order; each
/// request its own transaction. A store failure ends the stream with exit 1.
fn stream(ctx: &Ctx, default_cost: u64, no_record: bool) -> Result<()> {
    let mut store = ctx.open_read()?;
    let mut input = io::stdin().lock();
    let mut out = stdout();
    let mut line = Vec::with_capacity(256);
    loop {
        let read = read_bounded_line(&mut input, &mut line)
            .map_err(|e| Error::runtime(format!("cannot read the request stream: {e}")))?;
        // Every line gets its answer, a blank one too: a client that writes a line
        // and reads a line must never wait forever.
        let verdict = match read {
            Line::Eof => break,
            Line::TooLong => {
                // Skip the rest of an over-long line without holding it, then answer it.
                skip_line(&mut input);
                bad_request(too_long())
            }
            Line::Line => match parse_stream_line(&line, default_cost) {
                Err(why) => bad_request(why),
                Ok((presented, req, meta)) => serve_one(
                    store.as_mut(),
                    &presented,
                    &req,
                    &meta,
                    ctx.clock(),
                    no_record,
                )?,
            },
        };
        out.write_all(&verdict_json(&verdict))?;
        out.flush()?;
    }
    Ok(())
}

/// Discards input up to and including the next newline, in buffer-sized pieces.
fn skip_line(input: &mut impl BufRead) {
    loop {
        let (done, used) = match input.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            },
        };
        input.consume(used);
        if done {
            return;
        }
    }
}

fn serve_one(
    store: &mut dyn Store,
    presented: &str,
    req: &Request,
    meta: &Meta,
    now: DateTime<Utc>,
    no_record: bool,
) -> Result<Verdict> {
    if no_record {
        let mut tx = store.begin(Intent::Read)?;
        return evaluate(tx.as_mut(), presented, req, meta, now, false);
    }
    let mut tx = store.begin(Intent::Verify)?;
    let v = evaluate(tx.as_mut(), presented, req, meta, now, true)?;
    tx.commit()?;
    Ok(v)
}
