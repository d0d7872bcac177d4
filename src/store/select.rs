//! The listing statements both backends run (keys, request log, audit trail), built
//! once: the SQL text with the backend's placeholders and spellings, and the
//! arguments as [`Value`]s, which each backend binds its own way.

use chrono::{DateTime, Utc};

use super::{AuditQuery, KeyQuery, RequestQuery, SortBy, Value};
use crate::core::time::to_millis;

/// A statement's `WHERE` clause under construction.
struct Filter {
    /// The backend's placeholder for argument number n (1-based): `?n`, `$n`.
    slot: fn(usize) -> String,
    conds: Vec<String>,
    args: Vec<Value>,
}

impl Filter {
    fn new(slot: fn(usize) -> String) -> Filter {
        Filter {
            slot,
            conds: Vec::new(),
            args: Vec::new(),
        }
    }

    /// `lhs <slot>` with `value` bound to it.
    fn push(&mut self, lhs: &str, value: Value) {
        self.args.push(value);
        self.conds
            .push(format!("{lhs} {}", (self.slot)(self.args.len())));
    }

    /// `column IN (<slots>)` with every value bound.
    fn push_in(&mut self, column: &str, values: impl IntoIterator<Item = Value>) {
        let mut slots = Vec::new();
        for v in values {
            self.args.push(v);
            slots.push((self.slot)(self.args.len()));
        }
        self.conds
            .push(format!("{column} IN ({})", slots.join(", ")));
    }

    fn clause(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conds.join(" AND "))
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn limit_clause(limit: Option<u64>) -> String {
    limit
        .map(|n| format!(" LIMIT {}", n.min(i64::MAX as u64)))
        .unwrap_or_default()
}

/// What the key listing spells differently per backend.
pub(crate) struct KeyDialect {
    /// The placeholder for argument n (1-based).
    pub slot: fn(usize) -> String,
    /// SQL true when the text `needle` occurs in `haystack` (both SQL expressions);
    /// `fold`: compared with `haystack` lower-cased as SQLite's `lower()` does (ASCII
    /// letters only).
    pub contains: fn(haystack: &str, needle: &str, fold: bool) -> String,
    /// `SELECT <a key record's columns> FROM keys k JOIN credit_pools p ...`.
    pub select: &'static str,
    /// The name as `list --sort name` orders it (SQLite's `COLLATE NOCASE`).
    pub name_order: &'static str,
    /// Argument 1 (now) as an expression of its type.
    pub now: &'static str,
    /// `list --sort last-used`'s order: the key's last use as this backend keeps it.
    pub last_used_order: &'static str,
}

/// The keys matching `query` in its order; argument 1 is `now`.
pub(crate) fn keys(query: &KeyQuery, now: DateTime<Utc>, d: &KeyDialect) -> (String, Vec<Value>) {
    let mut f = Filter::new(d.slot);
    f.args.push(Value::Integer(to_millis(now)));
    // Argument 1 (now) is always bound, so the statement always names it.
    f.conds.push(format!("{} IS NOT NULL", d.now));
    if !query.statuses.is_empty() {
        // The derived status; the same precedence as `model::derive_status`.
        let list: Vec<String> = query
            .statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        f.conds.push(format!(
            "(CASE WHEN k.state = 'revoked' THEN 'revoked' \
             WHEN k.state = 'disabled' THEN 'disabled' \
             WHEN k.expires_at IS NOT NULL AND k.expires_at <= {} THEN 'expired' \
             ELSE 'active' END) IN ({})",
            d.now,
            list.join(", ")
        ));
    } else if !query.include_revoked {
        f.conds.push("k.state != 'revoked'".into());
    }
    for (column, value) in [
        ("k.category", &query.category),
        ("k.owner", &query.owner),
        ("k.deployment", &query.deployment),
        ("k.grp", &query.group),
    ] {
        if let Some(v) = value {
            f.push(&format!("{column} ="), text(v));
        }
    }
    if let Some(needle) = &query.search {
        f.args.push(Value::Text(needle.to_lowercase()));
        let slot = (d.slot)(f.args.len());
        let within = [
            ("k.name", true),
            ("coalesce(k.description, '')", true),
            ("k.id", false),
            ("k.key_prefix", true),
        ]
        .map(|(haystack, fold)| (d.contains)(haystack, &slot, fold));
        f.conds.push(format!("({})", within.join(" OR ")));
    }
    let order = match query.sort {
        SortBy::Name => d.name_order,
        SortBy::Created => "k.seq DESC",
        SortBy::LastUsed => d.last_used_order,
        SortBy::Expires => "k.expires_at IS NULL, k.expires_at, k.seq DESC",
    };
    (
        format!("{} {} ORDER BY {order}", d.select, f.clause()),
        f.args,
    )
}

/// The request-log rows matching `query`: newest first (at most `query.limit`), or
/// with `after`, every one with a larger id, oldest first. Columns in
/// [`RequestRow`](crate::core::model::RequestRow) order: seq, at, key_id, key_name,
/// endpoint, http_status, code, ip, duration_ms, credits.
pub(crate) fn requests(
    query: &RequestQuery,
    after: Option<i64>,
    slot: fn(usize) -> String,
) -> (String, Vec<Value>) {
    let mut f = Filter::new(slot);
    if let Some(k) = &query.key_id {
        f.push("key_id =", text(k));
    }
    if let Some(t) = query.since {
        f.push("at >=", Value::Integer(to_millis(t)));
    }
    if let Some(t) = query.until {
        f.push("at <", Value::Integer(to_millis(t)));
    }
    if let Some(st) = query.http_status {
        f.push("http_status =", Value::Integer(i64::from(st)));
    }
    if let Some(c) = &query.code {
        f.push("code =", text(c));
    }
    if let Some(ip) = &query.ip {
        f.push("ip =", text(ip));
    }
    if let Some(seq) = after {
        f.push("seq >", Value::Integer(seq));
    }
    let (order, limit) = match after {
        Some(_) => ("ASC", String::new()),
        None => ("DESC", limit_clause(query.limit)),
    };
    let sql = format!(
        "SELECT seq, at, key_id, key_name, endpoint, http_status, code, ip, duration_ms, credits \
         FROM requests {} ORDER BY seq {order}{limit}",
        f.clause()
    );
    (sql, f.args)
}

/// The audit events matching `query`, columns seq, at, actor, action, key_id,
/// details, prev_hash, hash.
pub(crate) fn audit(query: &AuditQuery, slot: fn(usize) -> String) -> (String, Vec<Value>) {
    let mut f = Filter::new(slot);
    if let Some(k) = &query.key_id {
        f.push("key_id =", text(k));
    }
    if !query.key_ids.is_empty() {
        f.push_in("key_id", query.key_ids.iter().map(|k| text(k)));
    }
    if let Some(t) = query.since {
        f.push("at >=", Value::Integer(to_millis(t)));
    }
    if let Some(a) = &query.action {
        f.push("action =", text(a));
    }
    let order = if query.newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT seq, at, actor, action, key_id, details, prev_hash, hash FROM audit_events \
         {} ORDER BY seq {order}{}",
        f.clause(),
        limit_clause(query.limit)
    );
    (sql, f.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_arguments_in_the_backends_style() {
        let query = AuditQuery {
            key_ids: vec!["a".into(), "b".into()],
            action: Some("rotated".into()),
            limit: Some(3),
            newest_first: true,
            ..AuditQuery::default()
        };
        let (sql, args) = audit(&query, |n| format!("${n}"));
        assert!(
            sql.ends_with("WHERE key_id IN ($1, $2) AND action = $3 ORDER BY seq DESC LIMIT 3"),
            "{sql}"
        );
        assert_eq!(args, [text("a"), text("b"), text("rotated")]);
        let (sql, args) = requests(&RequestQuery::default(), Some(7), |n| format!("?{n}"));
        assert!(sql.ends_with("WHERE seq > ?1 ORDER BY seq ASC"), "{sql}");
        assert_eq!(args, [Value::Integer(7)]);
    }
}
