//! How `verify --explain` looks: one row per check of SPEC §3 (check, result, the
//! figure behind it), as a table for people or one json object. The presented secret
//! is never shown, only its display prefix.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use comfy_table::{Cell, Color};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::app::explain::{Explanation, Presented};
use crate::core::checks::{AllowedValues, Check, Evaluated, Figure, Result as Outcome};
use crate::core::model::State;
use crate::core::policy::Request;
use crate::core::store_limits::format_multiplier;
use crate::core::text::escape;
use crate::core::time::{format_duration, relative, rfc3339};
use crate::ui::table::{header, local_time, new_table, render, text_cell};
use crate::ui::verdict::{verdict_object, VerdictJson};

/// `verify --explain --json`, in this member order.
#[derive(Serialize)]
struct ExplainJson<'a> {
    verdict: VerdictJson<'a>,
    exit: i32,
    presented: Value,
    key: Option<Value>,
    request: Value,
    now: String,
    checks: Vec<CheckJson>,
}

/// One check: its names and result first, then its figures, then the figure in words.
#[derive(Serialize)]
struct CheckJson {
    check: &'static str,
    code: &'static str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<&'static str>,
    #[serde(flatten)]
    figures: Map<String, Value>,
    detail: String,
}

/// Everything shown about one request (what the table and json are made of).
pub struct Explained<'a> {
    pub explanation: &'a Explanation,
    pub req: &'a Request,
    pub endpoint: Option<&'a str>,
}

impl Explained<'_> {
    /// One json object: the verdict (as `verify --json` gives it), the exit code, the
    /// presented key, the key found, the request and every check.
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        let e = self.explanation;
        let checks: Vec<CheckJson> = e
            .checks(self.req)
            .iter()
            .map(|c| self.check_json(c))
            .collect();
        let key = e.view.key.as_ref().map(|k| {
            json!({
                "id": k.id,
                "name": k.settings.name,
                "key_prefix": k.key_prefix,
                "status": k.status(e.now()).as_str(),
            })
        });
        let doc = ExplainJson {
            verdict: verdict_object(&e.verdict),
            exit: e.verdict.outcome.exit_code(),
            presented: json!({
                "key_prefix": e.presented.display(),
                "format": e.presented.format(),
            }),
            key,
            request: json!({
                "ip": self.req.ip.map(|ip| ip.to_string()),
                "scope": self.req.scope,
                "deployment": self.req.deployment,
                "model": self.req.model,
                "endpoint": self.endpoint,
                "cost": self.req.cost,
            }),
            now: rfc3339(e.now()),
            checks,
        };
        crate::ui::json::write_pretty(out, &doc)?;
        writeln!(out)
    }

    /// The table: which key, one row per check, and the verdict under it.
    pub fn write_table(&self, out: &mut dyn Write, color: bool) -> io::Result<()> {
        let e = self.explanation;
        let now = e.now();
        let key_line = match &e.view.key {
            Some(k) => format!(
                "{} ({}), {}",
                escape(&k.settings.name),
                k.id,
                escape(&k.prefix_shown())
            ),
            None => "no key matched".to_string(),
        };
        writeln!(out, "Key: {key_line}")?;
        let mut table = new_table(color);
        table.set_header(header(&["Check", "Result", "Detail"], color));
        for c in e.checks(self.req) {
            let result = Cell::new(c.result.as_str());
            let result = match (color, c.result) {
                (false, _) => result,
                (true, Outcome::Pass) => result.fg(Color::Green),
                (true, Outcome::Fail) => result.fg(Color::Red),
                (true, Outcome::NotApplicable) => result.fg(Color::DarkGrey),
            };
            table.add_row(vec![
                Cell::new(c.check.name()),
                result,
                text_cell(
                    &self.detail(&c, &|t| format!("{} ({})", local_time(t), relative(t, now))),
                ),
            ]);
        }
        writeln!(out, "{}", render(&mut table))?;
        let o = &e.verdict.outcome;
        writeln!(
            out,
            "Verdict: {} ({}, exit {}): {}",
            o.code(),
            o.http_status(),
            o.exit_code(),
            o.message()
        )
    }

    fn check_json(&self, c: &Evaluated<'_>) -> CheckJson {
        CheckJson {
            check: c.check.name(),
            code: c.check.code(),
            result: c.result.as_str(),
            window: c.check.window(),
            figures: self
                .figures(c)
                .into_iter()
                .map(|(n, v)| (n.into(), v))
                .collect(),
            detail: self.detail(c, &rfc3339),
        }
    }

    /// The figures of a check as json members.
    fn figures(&self, c: &Evaluated<'_>) -> Vec<(&'static str, Value)> {
        let time = |t: Option<DateTime<Utc>>| json!(t.map(rfc3339));
        let e = self.explanation;
        match c.figure {
            Figure::NoKey => Vec::new(),
            Figure::Block { ip, until } => {
                let s = e.settings();
                vec![
                    ("ip", json!(ip.map(|i| i.to_string()))),
                    ("blocked_subject", json!(e.view.ip_subject)),
                    ("blocked_until", time(until)),
                    ("failed_attempts", json!(e.failed_attempts)),
                    ("failed_auth_limit", json!(s.failed_auth_limit)),
                    (
                        "failed_auth_window",
                        json!(format_duration(s.failed_auth_window)),
                    ),
                ]
            }
            Figure::Presented { key, .. } => vec![
                ("format", json!(e.presented.format())),
                ("key_id", json!(key.map(|k| k.id.as_str()))),
            ],
            Figure::State {
                state,
                revoked_at,
                reason,
                successor,
            } => vec![
                ("state", json!(state.as_str())),
                ("revoked_at", time(revoked_at)),
                ("revoke_reason", json!(reason)),
                ("rotated_to", json!(successor)),
            ],
            Figure::Expiry {
                expires_at,
                now,
                successor,
            } => vec![
                ("expires_at", time(expires_at)),
                ("now", time(Some(now))),
                ("rotated_to", json!(successor)),
            ],
            Figure::Allowlist {
                entries,
                ip,
                matched,
            } => vec![
                ("allowed_ips", json!(entries)),
                ("ip", json!(ip.map(|i| i.to_string()))),
                ("matched", json!(matched)),
            ],
            Figure::Allowed { allowed, requested } => {
                let allowed = match (c.check, allowed) {
                    (_, AllowedValues::One(bound)) => ("deployment", json!(bound)),
                    (Check::ForbiddenModel, AllowedValues::Set(set)) => {
                        ("allowed_models", json!(set))
                    }
                    (_, AllowedValues::Set(set)) => ("scopes", json!(set)),
                };
                vec![allowed, ("requested", json!(requested))]
            }
            // A window the key does not limit is not counted: its figure is null.
            Figure::Rate { limit, count } => vec![
                ("rate_limit", json!(limit.map(|l| l.to_string()))),
                ("limit", json!(limit.map(|l| l.count))),
                ("count", json!(limit.map(|_| count))),
            ],
            Figure::Quota { cap, used } => {
                vec![("cap", json!(cap)), ("used", json!(cap.map(|_| used)))]
            }
            Figure::Credits {
                limit,
                used,
                cost,
                refill,
            } => vec![
                ("credit_limit", json!(limit)),
                ("credits_used", json!(used)),
                ("credits_remaining", json!(c.figure.credits_remaining())),
                ("cost", json!(cost)),
                ("refill", json!(refill.map(|(r, _)| r.to_string()))),
                (
                    "next_refill_at",
                    json!(refill.map(|(_, next)| rfc3339(next))),
                ),
            ],
        }
    }

    /// The figure behind a check in words; `time` writes a time (local and relative
    /// in tables, RFC 3339 in json).
    fn detail(&self, c: &Evaluated<'_>, time: &dyn Fn(DateTime<Utc>) -> String) -> String {
        let e = self.explanation;
        let failed = c.result == Outcome::Fail;
        match c.figure {
            Figure::NoKey => "not checked: no key matched".into(),
            Figure::Block { ip: None, .. } => "no --ip given".into(),
            Figure::Block { ip: Some(_), until } => {
                let subject = e.view.ip_subject.as_deref().unwrap_or("");
                let s = e.settings();
                let attempts = format!(
                    "{} of {} failed attempts within {}",
                    e.failed_attempts.unwrap_or(0),
                    s.failed_auth_limit,
                    format_duration(s.failed_auth_window)
                );
                match until {
                    Some(t) => format!("{subject} is blocked until {}; {attempts}", time(t)),
                    None => format!("{subject} is not blocked; {attempts}"),
                }
            }
            Figure::Presented { key, .. } => match (&e.presented, key) {
                (Presented::HashOnly, Some(k)) => format!(
                    "not of keyctl's format; found by its hash alone: {} ({})",
                    k.id,
                    escape(&k.settings.name)
                ),
                (Presented::HashOnly, None) => {
                    "not of keyctl's format, and no key of this store has its hash".into()
                }
                (_, Some(k)) => format!(
                    "{}... is {} ({})",
                    e.presented.display().unwrap_or(""),
                    k.id,
                    escape(&k.settings.name)
                ),
                (Presented::Malformed, None) => "not a key of keyctl's format".into(),
                (Presented::BadChecksum { display }, None) => {
                    format!("{display}... fails its checksum (a typo or a cut-off copy)")
                }
                (Presented::WellFormed { display }, None) => {
                    format!("{display}... is no key of this store")
                }
            },
            Figure::State {
                state,
                revoked_at,
                reason,
                successor,
            } => match (c.check, state) {
                (Check::Revoked, State::Revoked) => {
                    let mut d = "revoked".to_string();
                    if let Some(t) = revoked_at {
                        d.push_str(&format!(" {}", time(t)));
                    }
                    if let Some(r) = reason {
                        d.push_str(&format!(": {}", escape(r)));
                    }
                    d
                }
                (Check::Inactive, State::Disabled) => match successor {
                    Some(to) => format!("disabled: superseded by {to} (rotated without grace)"),
                    None => "disabled".into(),
                },
                (Check::Revoked, state) => format!("not revoked: {}", state.as_str()),
                (_, state) => format!("not disabled: {}", state.as_str()),
            },
            Figure::Expiry {
                expires_at: None, ..
            } => "never expires".into(),
            Figure::Expiry {
                expires_at: Some(at),
                successor,
                ..
            } => {
                let grace = match successor {
                    Some(to) => format!(" (grace period of the rotation to {to})"),
                    None => String::new(),
                };
                if failed {
                    format!("expired {}{grace}", time(at))
                } else {
                    format!("expires {}{grace}", time(at))
                }
            }
            Figure::Allowlist {
                entries,
                ip,
                matched,
            } => {
                let list = list_text(entries);
                match (entries.is_empty(), ip, matched) {
                    (true, _, _) => "no IP allowlist: any IP".into(),
                    (_, None, _) => format!("no --ip given; allowlist {list}"),
                    (_, Some(ip), Some(m)) => format!("{ip} matches {} of {list}", escape(m)),
                    (_, Some(ip), None) => format!("{ip} is not in {list}"),
                }
            }
            Figure::Allowed {
                allowed: AllowedValues::One(bound),
                requested,
            } => match (bound, requested) {
                (None, _) => "project-wide key: any deployment".into(),
                (Some(b), None) => format!("bound to {}; no --deployment given", escape(b)),
                (Some(b), Some(r)) if failed => {
                    format!("bound to {}; request is for {}", escape(b), escape(r))
                }
                (Some(b), Some(_)) => format!("bound to {}", escape(b)),
            },
            Figure::Allowed {
                allowed: AllowedValues::Set(set),
                requested,
            } => {
                let (what, flag) = match c.check {
                    Check::ForbiddenModel => ("models", "--model"),
                    _ => ("scopes", "--scope"),
                };
                match (set.is_empty(), requested) {
                    (true, _) => format!("key sets no {what}: any allowed"),
                    (_, None) => format!("no {flag} given; key allows {}", list_text(set)),
                    (_, Some(r)) if failed => {
                        format!("{} is not in {}", escape(r), list_text(set))
                    }
                    (_, Some(r)) => format!("{} is in {}", escape(r), list_text(set)),
                }
            }
            Figure::Rate { limit: None, .. } if c.check == Check::StoreRateLimited => {
                "no store-wide rate limit".into()
            }
            Figure::Rate {
                limit: Some(l),
                count,
            } if c.check == Check::StoreRateLimited => format!(
                "{count} of {} accepted by all keys in the last {} ({l})",
                l.count,
                l.unit.word()
            ),
            Figure::Rate { limit: None, .. } => "no rate limit".into(),
            Figure::Rate {
                limit: Some(l),
                count,
            } => format!(
                "{count} of {} accepted in the last {} ({l})",
                l.count,
                l.unit.word()
            ),
            Figure::Quota { cap: None, .. } => {
                format!("no {} quota", c.check.window().unwrap_or(""))
            }
            Figure::Quota {
                cap: Some(cap),
                used,
            } => {
                let span = match c.check {
                    Check::QuotaDaily => "in the last 24 h",
                    Check::QuotaWeekly => "in the last 7 days",
                    Check::QuotaMonthly => "in the last 30 days",
                    _ => "in all",
                };
                format!("{used} of {cap} requests {span}")
            }
            Figure::Credits { limit: None, .. } if c.check == Check::StoreCreditsExhausted => {
                "no store-wide credit limit".into()
            }
            Figure::Credits { limit: None, .. } => "no credit limit".into(),
            Figure::Credits {
                limit: Some(limit),
                cost,
                refill,
                ..
            } => {
                let whose = match c.check {
                    Check::StoreCreditsExhausted => "store-wide credits",
                    _ => "credits",
                };
                // The group's multiplier, when one applies: what the cost came from.
                let from = match e.view.store.and_then(|s| s.multiplier) {
                    Some(m) => format!(" ({} x {})", self.req.cost, format_multiplier(m)),
                    None => String::new(),
                };
                let refill = refill.map_or_else(String::new, |(r, next)| {
                    format!("; refill {r}, next {}", time(next))
                });
                format!(
                    "{} of {limit} {whose} left; this request costs {cost}{from}{refill}",
                    c.figure.credits_remaining().unwrap_or(0)
                )
            }
        }
    }
}

/// `[a, b]` of stored values, escaped.
fn list_text(items: &[String]) -> String {
    let shown: Vec<String> = items.iter().map(|i| escape(i).into_owned()).collect();
    format!("[{}]", shown.join(", "))
}
