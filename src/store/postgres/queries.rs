//! Every statement on a PostgreSQL store's rows, the same reads and writes as
//! SQLite's (`sqlite/queries.rs`, method by method: counters stop at 2^53 - 1, reads
//! clamp, the same orders and filters), plus the row locks the module docs of
//! `postgres` list.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;

use chrono::{DateTime, Utc};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use super::{pg_error, quote_ident, PgLocation};
use crate::core::audit::AuditEvent;
use crate::core::key::Mode;
use crate::core::limits::{block_subject, clamp_stored, Quotas, RateLimit, RateUnit, MAX_COUNT};
use crate::core::meta::KeyMeta;
use crate::core::model::{
    KeyRecord, KeySettings, NewKey, RequestRecord, RequestRow, State, StatusCounts, UsageFigures,
};
use crate::core::refill::{self, Balance, Refill};
use crate::core::store_limits::StoreFigures;
use crate::core::time::{from_millis, to_millis};
use crate::store::rows::Kind;
use crate::store::select;
use crate::store::{
    prefix_bound, AuditHead, AuditQuery, ErrorKind, Intent, KeyQuery, LogCursor, RequestQuery,
    Result, Starting, StoreError, StoredAuditEvent, Table, Txn, Value,
};

/// The longest rolling window (monthly quota: 30 days), in milliseconds.
const LONGEST_WINDOW_MS: i64 = 30 * 86_400_000;
/// The longest store-wide rate window (a minute), in milliseconds.
const STORE_RATE_WINDOW_MS: i64 = 60_000;

/// How many ids behind its end a log cursor re-reads: a request-log row that commits
/// later than this many ids behind the newest row a follower has seen is missed.
pub(crate) const FOLLOW_WINDOW: i64 = 16_384;

/// A parameter list.
type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// An owned parameter, for statements built at run time.
type Param = Box<dyn ToSql + Sync>;

pub(super) struct PgTxn<'a> {
    client: RefCell<&'a mut Client>,
    location: &'a PgLocation,
    statements: RefCell<&'a mut HashMap<&'static str, Statement>>,
    intent: Intent,
    /// The database's clock, once read.
    clock: Option<DateTime<Utc>>,
    /// The `key-count` row is locked (taken once per transaction).
    key_count_locked: Cell<bool>,
    /// What `lock_for_verify` read while locking, for the next read of the same row.
    locked_key: RefCell<Option<([u8; 32], Option<KeyRecord>)>>,
    locked_ip: RefCell<Option<(String, Option<i64>)>>,
    /// A request of this Verify transaction already holds its locks (a group, SPEC
    /// §7): later requests lock `NOWAIT`. A group never waits while holding an
    /// earlier request's rows, so it can close no cycle of waits: otherwise two
    /// groups locking shared keys in opposite orders deadlock, and PostgreSQL may
    /// pick a bystander queued on one of those rows (an `edit`) as the victim.
    /// A row held elsewhere fails the group, whose requests then run one per
    /// transaction (`app::verify::verify_group`).
    holds_request_locks: Cell<bool>,
    /// The request being decided is this transaction's first (its locks may wait).
    first_request: Cell<bool>,
    /// The store-wide counter row is locked (`lock_store_usage`, once).
    store_usage_locked: Cell<bool>,
    /// Whether anything store-wide applies to the key the last non-locking
    /// `read_key_by_hash` found (read in the same statement), for
    /// `settings_if_store_limits_apply`.
    store_limits_hint: Cell<Option<bool>>,
    /// Committed or rolled back: nothing to do on drop.
    done: bool,
    /// A statement failed: PostgreSQL has aborted the transaction, and would answer
    /// a COMMIT with a rollback, not an error.
    failed: Cell<bool>,
}

/// `SELECT <a key record's columns, in the order key_from_row reads them> FROM …`.
macro_rules! select_keys {
    () => {
        "SELECT k.id, k.name, k.description, k.owner, k.key_prefix, k.livemode, \
         k.category, k.grp, k.scopes, k.deployment, k.allowed_models, k.allowed_ips, \
         k.quota_total, k.quota_daily, k.quota_weekly, k.quota_monthly, k.rate_count, k.rate_unit, \
         k.credit_limit, p.credits_used, k.created_at, k.expires_at, k.last_used_at, \
         k.last_used_ip, k.state, k.rotated_from, k.rotated_to, k.revoked_at, k.revoke_reason, \
         k.requests_total, k.events_total, k.credits_total, p.accepted_total, k.meta, \
         p.refill, p.refilled_at \
         FROM keys k JOIN credit_pools p ON p.id = k.pool_id"
    };
}

/// `column + add` in SQL, stopping at MAX_COUNT (a negative stored value counts as 0).
/// The column is clamped before the addition: a value another writer stored at
/// i64::MAX would otherwise overflow bigint ("bigint out of range"), where SQLite
/// would go on. `add` is at most MAX_COUNT, so the sum fits.
macro_rules! saturating_add {
    ($column:literal, $add:literal) => {
        concat!(
            "LEAST(LEAST(GREATEST(",
            $column,
            ", 0), 9007199254740991) + ",
            $add,
            ", 9007199254740991)"
        )
    };
}

/// The first two parts of a recorded request's statement: its log row ($1 at, $2 key,
/// $3 name, $4 endpoint, $5 status, $6 code, $7 ip, $8 duration, $9 credits) and its
/// usage day ($10) under `usage_key`, counting it accepted when $11 = 1. A `WITH`
/// whose final part the caller adds.
macro_rules! log_row_and_usage_day {
    ($usage_key:literal) => {
        concat!(
            "WITH r AS (INSERT INTO requests (at, key_id, key_name, endpoint, http_status, \
             code, ip, duration_ms, credits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)), \
             u AS (INSERT INTO usage_days (key_id, day, accepted, rejected, credits) \
             VALUES (",
            $usage_key,
            ", $10, $11, 1 - $11::bigint, $9) ON CONFLICT (key_id, day) DO UPDATE \
             SET accepted = ",
            saturating_add!("usage_days.accepted", "excluded.accepted"),
            ", rejected = ",
            saturating_add!("usage_days.rejected", "excluded.rejected"),
            ", credits = ",
            saturating_add!("usage_days.credits", "excluded.credits"),
            ")"
        )
    };
}

/// One recorded request of a known key in one round trip: its log row and usage day
/// ([`log_row_and_usage_day!`], $1 to $11), its running totals and window row, and for an accepted one ($11 = 1) the
/// lineage's charge and window row. The charge is added to `used` (the stored credits,
/// or a refilled balance), `more` sets more, and it happens only when `guard` (what
/// was used before) plus the charge stays within the key's credit limit: no pool row
/// back means the spend was refused.
/// Returns the key's events total and last event's time, its pool, and the pool's
/// accepted total and last event's time (NULL when nothing was charged); no row when
/// the key is gone.
macro_rules! record_known {
    ($used:literal, $guard:literal, $more:literal) => {
        record_known!(
            $used,
            $guard,
            $more,
            "",
            "NULL::bigint, NULL::bigint FROM k LEFT JOIN p ON true"
        )
    };
    // `store` adds CTEs after the lineage's; `select` ends the statement (two more
    // columns, and the FROM clause).
    ($used:literal, $guard:literal, $more:literal, $store:expr, $select:literal) => {
        concat!(
            log_row_and_usage_day!("$2"),
            ", k AS (UPDATE keys SET events_total = ",
            saturating_add!("events_total", "1"),
            ", requests_total = ",
            saturating_add!("requests_total", "$11::bigint"),
            ", rejected_total = ",
            saturating_add!("rejected_total", "(1 - $11::bigint)"),
            ", credits_total = ",
            saturating_add!("credits_total", "$9::bigint"),
            ", last_event_at = GREATEST(coalesce(last_event_at, $1::bigint), $1::bigint), \
             last_used_at = CASE WHEN $11::bigint = 1 THEN $1::bigint ELSE last_used_at END, \
             last_used_ip = CASE WHEN $11::bigint = 1 THEN $7::text ELSE last_used_ip END \
             WHERE id = $2 \
             RETURNING events_total, requests_total, credits_total, last_event_at, pool_id, \
             credit_limit), \
             e AS (INSERT INTO key_events (key_id, at, n, accepted_cum, credits_cum, accepted, \
             cost) SELECT $2, last_event_at, events_total, requests_total, credits_total, $11, \
             $9 FROM k ON CONFLICT DO NOTHING), \
             p AS (UPDATE credit_pools SET credits_used = ",
            saturating_add!($used, "$9::bigint"),
            $more,
            ", accepted_total = ",
            saturating_add!("accepted_total", "1"),
            ", last_event_at = GREATEST(coalesce(credit_pools.last_event_at, $1::bigint), \
             $1::bigint) FROM k WHERE $11::bigint = 1 AND credit_pools.id = k.pool_id \
             AND ($9::bigint = 0 OR k.credit_limit IS NULL OR ",
            $guard,
            " + $9::bigint <= k.credit_limit) \
             RETURNING credit_pools.accepted_total, credit_pools.last_event_at), \
             pe AS (INSERT INTO pool_events (pool_id, at, n) SELECT k.pool_id, \
             p.last_event_at, p.accepted_total FROM k, p ON CONFLICT DO NOTHING)",
            $store,
            " SELECT k.events_total, k.last_event_at, k.pool_id, p.accepted_total, \
             p.last_event_at, ",
            $select,
        )
    };
}

/// [`record_known!`] that also charges an accepted request to the store-wide counter
/// (what [`Txn::record_store_usage`] does), after the lineage's charge and only when
/// it went through; `$ledger` is the parameter saying whether the store-wide rate
/// ledger gets its row. The counter's total and time come back as the last columns.
macro_rules! record_known_charging_store {
    ($used:literal, $guard:literal, $more:literal, $ledger:literal) => {
        record_known!(
            $used,
            $guard,
            $more,
            concat!(
                ", s AS (INSERT INTO store_usage (id, credits_used, accepted_total, \
                 last_event_at) SELECT 1, $9::bigint, 1, $1::bigint FROM p \
                 ON CONFLICT (id) DO UPDATE SET credits_used = ",
                saturating_add!("store_usage.credits_used", "$9::bigint"),
                ", accepted_total = ",
                saturating_add!("store_usage.accepted_total", "1"),
                ", last_event_at = GREATEST(coalesce(store_usage.last_event_at, \
                 $1::bigint), $1::bigint) RETURNING accepted_total, last_event_at), \
                 se AS (INSERT INTO store_events (at, n) SELECT last_event_at, \
                 accepted_total FROM s WHERE ",
                $ledger,
                "::boolean ON CONFLICT DO NOTHING)"
            ),
            "s.accepted_total, s.last_event_at FROM k LEFT JOIN p ON true LEFT JOIN s ON true"
        )
    };
}

/// SQLite's `lower()` (and `COLLATE NOCASE`): ASCII letters only.
macro_rules! ascii_lower {
    ($column:literal) => {
        concat!(
            "translate(",
            $column,
            ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
        )
    };
}

/// How PostgreSQL spells the key listing (`select::keys`): SQLite's orders and
/// case folding (ASCII letters only, bytes compared).
const KEY_DIALECT: select::KeyDialect = select::KeyDialect {
    slot: |n| format!("${n}"),
    contains: |haystack, needle, fold| {
        if fold {
            format!(
                concat!("strpos(", ascii_lower!("{}"), ", {}) > 0"),
                haystack, needle
            )
        } else {
            format!("strpos({haystack}, {needle}) > 0")
        }
    },
    select: select_keys!(),
    name_order: concat!(ascii_lower!("k.name"), " COLLATE \"C\", k.seq"),
    now: "$1::bigint",
    last_used_order: "k.last_used_at IS NULL, k.last_used_at DESC, k.seq DESC",
};

fn col<'r, T: postgres::types::FromSql<'r>>(
    row: &'r Row,
    i: usize,
) -> std::result::Result<T, String> {
    row.try_get(i).map_err(|e| e.to_string())
}

fn opt_count(row: &Row, i: usize) -> std::result::Result<Option<u64>, String> {
    Ok(col::<Option<i64>>(row, i)?.map(clamp_stored))
}

fn count(row: &Row, i: usize) -> std::result::Result<u64, String> {
    Ok(opt_count(row, i)?.unwrap_or_default())
}

fn opt_time(row: &Row, i: usize) -> std::result::Result<Option<DateTime<Utc>>, String> {
    Ok(col::<Option<i64>>(row, i)?.map(from_millis))
}

fn json_list(row: &Row, i: usize, field: &str) -> std::result::Result<Vec<String>, String> {
    let text: String = col(row, i)?;
    if text == "[]" {
        return Ok(Vec::new());
    }
    serde_json::from_str(&text).map_err(|_| {
        let id: String = col(row, 0).unwrap_or_default();
        format!("key {id} has a damaged {field} value (not a list of strings)")
    })
}

fn key_from_row(row: &Row) -> std::result::Result<KeyRecord, String> {
    let rate_limit = match (opt_count(row, 16)?, col::<Option<String>>(row, 17)?) {
        (Some(count), Some(unit)) => Some(RateLimit {
            count,
            unit: if unit == "m" {
                RateUnit::Minute
            } else {
                RateUnit::Second
            },
        }),
        _ => None,
    };
    let state_text: String = col(row, 24)?;
    let state = State::parse(&state_text).ok_or_else(|| {
        let id: String = col(row, 0).unwrap_or_default();
        format!("key {id} has a damaged state value")
    })?;
    Ok(KeyRecord {
        id: col(row, 0)?,
        settings: KeySettings {
            name: col(row, 1)?,
            description: col(row, 2)?,
            owner: col(row, 3)?,
            category: col(row, 6)?,
            group: col(row, 7)?,
            scopes: json_list(row, 8, "scopes")?,
            deployment: col(row, 9)?,
            allowed_models: json_list(row, 10, "allowed models")?,
            allowed_ips: json_list(row, 11, "allowed IPs")?,
            quotas: Quotas {
                total: opt_count(row, 12)?,
                daily: opt_count(row, 13)?,
                weekly: opt_count(row, 14)?,
                monthly: opt_count(row, 15)?,
            },
            rate_limit,
            credit_limit: opt_count(row, 18)?,
            expires_at: opt_time(row, 21)?,
            meta: KeyMeta::from_stored(col(row, 33)?),
            // Another value than keyctl writes reads as no refill.
            refill: col::<Option<String>>(row, 34)?
                .as_deref()
                .and_then(refill::stored),
        },
        key_prefix: col(row, 4)?,
        mode: if col::<i64>(row, 5)? != 0 {
            Mode::Live
        } else {
            Mode::Test
        },
        credits_used: count(row, 19)?,
        created_at: from_millis(col(row, 20)?),
        last_used_at: opt_time(row, 22)?,
        last_used_ip: col(row, 23)?,
        state,
        rotated_from: col(row, 25)?,
        rotated_to: col(row, 26)?,
        revoked_at: opt_time(row, 27)?,
        revoke_reason: col(row, 28)?,
        accepted_total: count(row, 29)?,
        events_total: count(row, 30)?,
        credits_total: count(row, 31)?,
        pool_accepted_total: count(row, 32)?,
        refilled_at: opt_time(row, 35)?,
        heads: None,
    })
}

fn request_from_row(row: &Row) -> std::result::Result<RequestRow, String> {
    Ok(RequestRow {
        seq: col(row, 0)?,
        at: from_millis(col(row, 1)?),
        key_id: col(row, 2)?,
        key_name: col(row, 3)?,
        endpoint: col(row, 4)?,
        http_status: col::<i64>(row, 5)?.clamp(0, 999) as u16,
        code: col(row, 6)?,
        ip: col(row, 7)?,
        duration_ms: opt_count(row, 8)?,
        credits: count(row, 9)?,
    })
}

fn rate_unit_sql(unit: RateUnit) -> &'static str {
    match unit {
        RateUnit::Second => "s",
        RateUnit::Minute => "m",
    }
}

fn count_to_sql(v: Option<u64>) -> Option<i64> {
    v.map(|n| n.min(MAX_COUNT) as i64)
}

/// The columns a key's settings are stored in, in [`settings_params`]' order.
macro_rules! settings_columns {
    () => {
        "name, description, owner, category, grp, scopes, deployment, allowed_models, \
         allowed_ips, quota_total, quota_daily, quota_weekly, quota_monthly, rate_count, \
         rate_unit, credit_limit, expires_at, meta"
    };
}

/// A key's settings as the values of [`settings_columns`].
fn settings_params(s: &KeySettings) -> Vec<Param> {
    vec![
        Box::new(s.name.clone()),
        Box::new(s.description.clone()),
        Box::new(s.owner.clone()),
        Box::new(s.category.clone()),
        Box::new(s.group.clone()),
        Box::new(to_json_list(&s.scopes)),
        Box::new(s.deployment.clone()),
        Box::new(to_json_list(&s.allowed_models)),
        Box::new(to_json_list(&s.allowed_ips)),
        Box::new(count_to_sql(s.quotas.total)),
        Box::new(count_to_sql(s.quotas.daily)),
        Box::new(count_to_sql(s.quotas.weekly)),
        Box::new(count_to_sql(s.quotas.monthly)),
        Box::new(count_to_sql(s.rate_limit.map(|r| r.count))),
        Box::new(s.rate_limit.map(|r| rate_unit_sql(r.unit))),
        Box::new(count_to_sql(s.credit_limit)),
        Box::new(s.expires_at.map(to_millis)),
        Box::new(s.meta.stored().map(str::to_string)),
    ]
}

/// A filter's argument as bound here (a NULL never filters: text NULL).
fn param(v: &Value) -> Param {
    match v {
        Value::Null => Box::new(None::<String>),
        Value::Integer(n) => Box::new(*n),
        Value::Text(t) => Box::new(t.clone()),
        Value::Blob(b) => Box::new(b.clone()),
    }
}

fn to_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl<'a> PgTxn<'a> {
    /// A transaction on `client`, which has just run its `BEGIN`.
    pub(super) fn new(
        client: &'a mut Client,
        location: &'a PgLocation,
        statements: &'a mut HashMap<&'static str, Statement>,
        intent: Intent,
    ) -> PgTxn<'a> {
        PgTxn {
            client: RefCell::new(client),
            location,
            statements: RefCell::new(statements),
            intent,
            clock: None,
            key_count_locked: Cell::new(false),
            locked_key: RefCell::new(None),
            locked_ip: RefCell::new(None),
            holds_request_locks: Cell::new(false),
            first_request: Cell::new(true),
            store_usage_locked: Cell::new(false),
            store_limits_hint: Cell::new(None),
            done: false,
            failed: Cell::new(false),
        }
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        self.failed.set(true);
        pg_error(self.location, e)
    }

    /// A stored value keyctl could not have written, named (as SQLite's).
    fn damaged(&self, why: String) -> StoreError {
        StoreError::at(
            ErrorKind::Refused,
            self.location,
            format!("key store {}: {why}", self.location),
        )
        .remedy(crate::store::Remedy::FixValueOrRestore)
    }

    fn writes(&self) -> bool {
        self.intent != Intent::Read
    }

    /// `sql` prepared once per connection.
    fn prepared(&self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .client
            .borrow_mut()
            .prepare(sql)
            .map_err(|e| self.err(&e))?;
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }

    fn rows(&self, sql: &'static str, params: Params) -> Result<Vec<Row>> {
        let statement = self.prepared(sql)?;
        self.client
            .borrow_mut()
            .query(&statement, params)
            .map_err(|e| self.err(&e))
    }

    fn row(&self, sql: &'static str, params: Params) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    fn exec(&self, sql: &'static str, params: Params) -> Result<u64> {
        let statement = self.prepared(sql)?;
        self.client
            .borrow_mut()
            .execute(&statement, params)
            .map_err(|e| self.err(&e))
    }

    /// `exec` with owned parameters.
    fn exec_owned(&self, sql: &'static str, params: &[Param]) -> Result<u64> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        self.exec(sql, &refs)
    }

    /// Streams the rows of a statement built at run time.
    fn stream(
        &self,
        sql: &str,
        params: &[Param],
        each: &mut dyn FnMut(&Row) -> Result<()>,
    ) -> Result<()> {
        let mut client = self.client.borrow_mut();
        let mut rows = client
            .query_raw(
                sql,
                params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)),
            )
            .map_err(|e| self.err(&e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(&e))? {
            each(&row)?;
        }
        Ok(())
    }

    fn keys_where(&self, sql: &'static str, value: &str) -> Result<Vec<KeyRecord>> {
        self.rows(sql, &[&value])?
            .iter()
            .map(|r| key_from_row(r).map_err(|why| self.damaged(why)))
            .collect()
    }

    /// The key with this secret hash; in a Verify transaction its row and its pool's
    /// stay locked until the verdict is recorded: one decision at a time per key and
    /// per lineage.
    fn read_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>> {
        if self.intent != Intent::Verify {
            // With, as its last column, whether anything store-wide applies to the
            // key (`settings_if_store_limits_apply`): no second round trip for `--no-record`.
            let row = self.row(
                concat!(
                    "SELECT s.*, EXISTS (SELECT 1 FROM settings WHERE value <> 'none' \
                     AND name IN ('rate-limit', 'credit-limit', 'group-multiplier.' || s.grp)) \
                     FROM (",
                    select_keys!(),
                    " WHERE k.secret_hash = $1) s"
                ),
                &[&&hash[..]],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let applies: bool = col(&row, row.len() - 1).map_err(|why| self.damaged(why))?;
            self.store_limits_hint.set(Some(applies));
            return key_from_row(&row)
                .map(Some)
                .map_err(|why| self.damaged(why));
        }
        let sql = if self.holds_request_locks.get() {
            concat!(
                select_keys!(),
                " WHERE k.secret_hash = $1 FOR UPDATE OF k, p NOWAIT"
            )
        } else {
            concat!(
                select_keys!(),
                " WHERE k.secret_hash = $1 FOR UPDATE OF k, p"
            )
        };
        self.row(sql, &[&&hash[..]])?
            .map(|r| key_from_row(&r))
            .transpose()
            .map_err(|why| self.damaged(why))
    }

    /// Locks the key row with this hash and its credit pool's row (a Verify
    /// transaction's lock, as [`Self::read_key_by_hash`] takes it) and reads the
    /// database's clock in the same statement, after the locks: the clock is computed
    /// in the outer query, when the locking CTE has returned its row (or none).
    fn lock_key_reading_clock(&self, hash: &[u8; 32]) -> Result<(Option<KeyRecord>, i64)> {
        macro_rules! locked_with_clock {
            ($lock:literal) => {
                concat!(
                    "WITH locked AS (",
                    select_keys!(),
                    " WHERE k.secret_hash = $1 ",
                    $lock,
                    ") SELECT locked.*, ",
                    now_ms_sql!(),
                    " FROM (SELECT 1) one LEFT JOIN locked ON true"
                )
            };
        }
        let sql = if self.holds_request_locks.get() {
            locked_with_clock!("FOR UPDATE OF k, p NOWAIT")
        } else {
            locked_with_clock!("FOR UPDATE OF k, p")
        };
        let row = self.row(sql, &[&&hash[..]])?;
        let read = |row: &Row| -> std::result::Result<(Option<KeyRecord>, i64), String> {
            let clock: i64 = col(row, row.len() - 1)?;
            let id: Option<String> = col(row, 0)?;
            Ok((id.map(|_| key_from_row(row)).transpose()?, clock))
        };
        match row {
            Some(row) => read(&row).map_err(|why| self.damaged(why)),
            None => Err(self.damaged("the key's lock read no row".into())),
        }
    }

    /// The IP's stored block end (locked in a Verify transaction), if it has a row.
    fn read_block(&self, ip: &str) -> Result<Option<i64>> {
        let sql = if self.intent != Intent::Verify {
            "SELECT until FROM ip_blocks WHERE ip = $1"
        } else if self.holds_request_locks.get() {
            "SELECT until FROM ip_blocks WHERE ip = $1 FOR UPDATE NOWAIT"
        } else {
            "SELECT until FROM ip_blocks WHERE ip = $1 FOR UPDATE"
        };
        self.row(sql, &[&ip])?
            .map(|r| col(&r, 0))
            .transpose()
            .map_err(|why| self.damaged(why))
    }

    /// One recorded request ([`Txn::record_request`]) and, with `store_ledger`, its
    /// store-wide charge ([`Txn::record_store_usage`]) in the same statement.
    fn record(&mut self, r: &RequestRecord, store_ledger: Option<bool>) -> Result<()> {
        let at = to_millis(r.at);
        let day = at.div_euclid(86_400_000);
        let accepted = i64::from(r.accepted);
        let credits = count_to_sql(Some(r.credits)).unwrap_or(0);
        let status = i64::from(r.http_status);
        let duration = count_to_sql(r.duration_ms);
        let used = r.refill.map(|b| count_to_sql(Some(b.used)));
        let refilled_at = r.refill.and_then(|b| b.refilled_at.map(to_millis));
        let key_id = r.key.as_ref().map(|k| &k.0);
        let key_name = r.key.as_ref().map(|k| &k.1);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &at,
            &key_id,
            &key_name,
            &r.endpoint,
            &status,
            &r.code,
            &r.ip,
            &duration,
            &credits,
            &day,
            &accepted,
        ];
        // One statement each: a round trip is most of what a statement costs here.
        let Some(key_id) = key_id else {
            // A presented key that matched nothing: its log row and the usage day of
            // key '' only.
            self.exec(concat!(log_row_and_usage_day!("''"), " SELECT 1"), &params)?;
            return Ok(());
        };
        // The key's `at` is kept non-decreasing (as SQLite); credits are spent only
        // while they last (the decision saw them under the pool's lock; the statement
        // guards it).
        let sql = match (&used, store_ledger) {
            (None, None) => record_known!(
                "credits_used",
                "LEAST(GREATEST(credit_pools.credits_used, 0), 9007199254740991)",
                ""
            ),
            (None, Some(_)) => record_known_charging_store!(
                "credits_used",
                "LEAST(GREATEST(credit_pools.credits_used, 0), 9007199254740991)",
                "",
                "$12"
            ),
            // A refilled pool: the balance as of this request (read and caught up under
            // the pool's lock) plus the charge, guarded the same way, and its boundary.
            (Some(_), None) => {
                record_known!("$12::bigint", "$12::bigint", ", refilled_at = $13::bigint")
            }
            (Some(_), Some(_)) => record_known_charging_store!(
                "$12::bigint",
                "$12::bigint",
                ", refilled_at = $13::bigint",
                "$14"
            ),
        };
        if let Some(used) = &used {
            params.push(used);
            params.push(&refilled_at);
        }
        if let Some(ledger) = &store_ledger {
            params.push(ledger);
        }
        let row = self.row(sql, &params)?;
        let Some(row) = row else {
            return Err(StoreError::at(
                ErrorKind::NotFound,
                self.location,
                format!("key {key_id} vanished during the verification"),
            ));
        };
        let figures = (|| -> std::result::Result<_, String> {
            let n: i64 = col(&row, 0)?;
            let event_at: i64 = col(&row, 1)?;
            let pool_id: i64 = col(&row, 2)?;
            let pool_n: Option<i64> = col(&row, 3)?;
            let pool_at: Option<i64> = col(&row, 4)?;
            let store_n: Option<i64> = col(&row, 5)?;
            let store_at: Option<i64> = col(&row, 6)?;
            Ok((
                n,
                event_at,
                pool_id,
                pool_n.zip(pool_at),
                store_n.zip(store_at),
            ))
        })()
        .map_err(|why| self.damaged(why))?;
        let (n, event_at, pool_id, pool, store) = figures;
        // Every 64th request, drop this key's events older than the longest window.
        if n % 64 == 0 {
            self.exec(
                "DELETE FROM key_events WHERE key_id = $1 AND at <= $2",
                &[key_id, &(event_at - LONGEST_WINDOW_MS)],
            )?;
        }
        if accepted == 0 {
            return Ok(());
        }
        // No pool row back means the spend was refused.
        let Some((pool_n, pool_at)) = pool else {
            return Err(StoreError::at(
                ErrorKind::Retry,
                self.location,
                format!(
                    "key store {}: the key's credits changed while it was verified",
                    self.location
                ),
            ));
        };
        if pool_n % 64 == 0 {
            self.exec(
                "DELETE FROM pool_events WHERE pool_id = $1 AND at <= $2",
                &[&pool_id, &(pool_at - LONGEST_WINDOW_MS)],
            )?;
        }
        if let (Some(true), Some((store_n, store_at))) = (store_ledger, store) {
            self.prune_store_ledger(store_n, store_at)?;
        }
        Ok(())
    }

    /// Every 64th request the store-wide ledger notes, its rows older than the
    /// store-wide rate window go (`n`, `event_at`: the counter after this request).
    fn prune_store_ledger(&self, n: i64, event_at: i64) -> Result<()> {
        if n % 64 == 0 {
            self.exec(
                "DELETE FROM store_events WHERE at <= $1",
                &[&(event_at - STORE_RATE_WINDOW_MS)],
            )?;
        }
        Ok(())
    }

    /// Locks one row of `store_locks` until the transaction ends.
    fn lock_store_row(&self, name: &'static str) -> Result<()> {
        self.exec(
            "SELECT 1 FROM store_locks WHERE name = $1 FOR UPDATE",
            &[&name],
        )
        .map(drop)
    }

    /// The `key-count` lock, once per transaction (a write transaction only).
    fn lock_key_count(&self) -> Result<()> {
        if self.writes() && !self.key_count_locked.get() {
            self.lock_store_row("key-count")?;
            self.key_count_locked.set(true);
        }
        Ok(())
    }

    /// The request-log rows matching `query`: newest first (at most `query.limit`),
    /// or with `after`, every one with a larger id, oldest first.
    fn stream_requests(
        &self,
        query: &RequestQuery,
        after: Option<i64>,
        sink: &mut dyn FnMut(&RequestRow) -> io::Result<()>,
        skip: &dyn Fn(i64) -> bool,
    ) -> Result<()> {
        let (sql, args) = select::requests(query, after, |n| format!("${n}"));
        let args: Vec<Param> = args.iter().map(param).collect();
        self.stream(&sql, &args, &mut |row| {
            let r = request_from_row(row).map_err(|why| self.damaged(why))?;
            if skip(r.seq) {
                return Ok(());
            }
            sink(&r).map_err(StoreError::Sink)
        })
    }

    /// The log's newest id in this snapshot, and every id within the follow window
    /// behind `end` (or behind that newest id).
    fn log_position(&self, at_least: i64) -> Result<LogCursor> {
        let newest: i64 = self
            .row("SELECT coalesce(max(seq), 0) FROM requests", &[])?
            .map(|r| col(&r, 0))
            .transpose()
            .map_err(|why| self.damaged(why))?
            .unwrap_or(0);
        let end = newest.max(at_least);
        let seen = self
            .rows(
                "SELECT seq FROM requests WHERE seq > $1 AND seq <= $2 ORDER BY seq",
                &[&(end - FOLLOW_WINDOW), &end],
            )?
            .iter()
            .map(|r| col(r, 0))
            .collect::<std::result::Result<Vec<i64>, String>>()
            .map_err(|why| self.damaged(why))?;
        Ok(LogCursor { end, seen })
    }
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if !self.done {
            // A broken connection has nothing to roll back: the server already did.
            let _ = self.client.get_mut().batch_execute("ROLLBACK");
        }
    }
}

impl Txn for PgTxn<'_> {
    fn setting_pairs(&self) -> Result<Vec<(String, String)>> {
        self.rows(
            "SELECT name, value FROM settings ORDER BY name COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect::<std::result::Result<_, String>>()
        .map_err(|why| self.damaged(why))
    }

    fn set_setting(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.exec(
                "INSERT INTO settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &v],
            ),
            None => self.exec("DELETE FROM settings WHERE name = $1", &[&name]),
        }
        .map(drop)
    }

    fn insert_key(&mut self, key: &NewKey) -> Result<()> {
        self.lock_key_count()?;
        let pool_id: i64 = match &key.rotated_from {
            Some(from) => self
                .row("SELECT pool_id FROM keys WHERE id = $1", &[from])?
                .map(|r| col(&r, 0))
                .transpose()
                .map_err(|why| self.damaged(why))?
                .ok_or_else(|| {
                    StoreError::at(
                        ErrorKind::NotFound,
                        self.location,
                        format!("key {from} vanished before its rotation"),
                    )
                })?,
            None => self
                .row(
                    "INSERT INTO credit_pools (refill, refilled_at) VALUES ($1, $2) RETURNING id",
                    &[
                        &key.settings.refill.map(|r| r.to_string()),
                        &key.refilled_at().map(to_millis),
                    ],
                )?
                .map(|r| col(&r, 0))
                .transpose()
                .map_err(|why| self.damaged(why))?
                .unwrap_or_default(),
        };
        // The settings' columns first ($1..$18), then the rest.
        let mut args = settings_params(&key.settings);
        args.push(Box::new(key.id.clone()));
        args.push(Box::new(key.hash.to_vec()));
        args.push(Box::new(key.key_prefix.clone()));
        args.push(Box::new(i64::from(key.mode == Mode::Live)));
        args.push(Box::new(pool_id));
        args.push(Box::new(to_millis(key.created_at)));
        args.push(Box::new(key.rotated_from.clone()));
        self.exec_owned(
            concat!(
                "INSERT INTO keys (",
                settings_columns!(),
                ", id, secret_hash, key_prefix, livemode, pool_id, created_at, rotated_from, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20, $21, $22, $23, $24, $25, 'active')"
            ),
            &args,
        )
        .map(drop)
    }

    fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>> {
        // A write transaction rewrites what it read (update_key): lock it.
        let found = if self.writes() {
            self.keys_where(
                concat!(
                    select_keys!(),
                    " WHERE k.id = $1 ORDER BY k.seq FOR UPDATE OF k"
                ),
                id,
            )?
        } else {
            self.keys_where(
                concat!(select_keys!(), " WHERE k.id = $1 ORDER BY k.seq"),
                id,
            )?
        };
        Ok(found.into_iter().next())
    }

    fn keys_by_name(&self, name: &str) -> Result<Vec<KeyRecord>> {
        self.keys_where(
            concat!(select_keys!(), " WHERE k.name = $1 ORDER BY k.seq"),
            name,
        )
    }

    fn keys_by_prefix(&self, prefix: &str) -> Result<Vec<KeyRecord>> {
        self.keys_where(
            concat!(select_keys!(), " WHERE k.key_prefix = $1 ORDER BY k.seq"),
            prefix,
        )
    }

    fn values_starting(&self, column: Starting, typed: &str, limit: u32) -> Result<Vec<String>> {
        // Byte order (COLLATE "C") whatever the database's collation, so the range is
        // exactly the values that start with `typed`.
        let sql = match column {
            Starting::Name => {
                "SELECT DISTINCT name COLLATE \"C\" FROM keys \
                 WHERE name COLLATE \"C\" >= $1 AND name COLLATE \"C\" < $2 \
                 ORDER BY 1 LIMIT $3"
            }
            Starting::Id => {
                "SELECT id FROM keys WHERE id COLLATE \"C\" >= $1 AND id COLLATE \"C\" < $2 \
                 ORDER BY id COLLATE \"C\" LIMIT $3"
            }
        };
        let mut values = Vec::new();
        for row in self.rows(sql, &[&typed, &prefix_bound(typed), &(i64::from(limit))])? {
            values.push(
                row.try_get::<_, String>(0)
                    .map_err(|e| self.damaged(e.to_string()))?,
            );
        }
        Ok(values)
    }

    fn name_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        if self.writes() {
            // The name's row, locked: a second claim of the name waits here until the
            // first commits, and then (READ COMMITTED) sees its key below.
            self.exec(
                "INSERT INTO name_locks (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&name],
            )?;
            self.exec(
                "SELECT 1 FROM name_locks WHERE name = $1 FOR UPDATE",
                &[&name],
            )?;
        }
        self.row(
            "SELECT id FROM keys WHERE name = $1 AND rotated_to IS NULL \
             AND state != 'revoked' AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY seq LIMIT 1",
            &[&name, &to_millis(now)],
        )?
        .map(|r| col(&r, 0))
        .transpose()
        .map_err(|why| self.damaged(why))
    }

    fn count_limited(&self, now: DateTime<Utc>) -> Result<u64> {
        self.lock_key_count()?;
        self.row(
            "SELECT count(*) FROM keys WHERE state = 'disabled' \
             OR (state = 'active' AND (expires_at IS NULL OR expires_at > $1))",
            &[&to_millis(now)],
        )?
        .map(|r| col::<i64>(&r, 0))
        .transpose()
        .map(|n| n.unwrap_or(0).max(0) as u64)
        .map_err(|why| self.damaged(why))
    }

    fn keys_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<KeyRecord>> {
        let limit = i64::from(limit);
        let rows = match after {
            None => self.rows(
                concat!(
                    select_keys!(),
                    " WHERE k.state <> 'revoked' ORDER BY k.seq LIMIT $1"
                ),
                &[&limit],
            )?,
            // A cursor that names no key (never, within one snapshot) ends the scan.
            Some(id) => self.rows(
                concat!(
                    select_keys!(),
                    " WHERE k.state <> 'revoked' AND k.seq > (SELECT seq FROM keys WHERE id = $2) \
                     ORDER BY k.seq LIMIT $1"
                ),
                &[&limit, &id],
            )?,
        };
        rows.iter()
            .map(|r| key_from_row(r).map_err(|why| self.damaged(why)))
            .collect()
    }

    fn for_each_key(
        &self,
        query: &KeyQuery,
        now: DateTime<Utc>,
        sink: &mut dyn FnMut(&KeyRecord) -> io::Result<()>,
    ) -> Result<StatusCounts> {
        let (sql, args) = select::keys(query, now, &KEY_DIALECT);
        let args: Vec<Param> = args.iter().map(param).collect();
        let mut counts = StatusCounts::default();
        self.stream(&sql, &args, &mut |row| {
            let key = key_from_row(row).map_err(|why| self.damaged(why))?;
            counts.add(key.status(now));
            sink(&key).map_err(StoreError::Sink)
        })?;
        Ok(counts)
    }

    fn usage_windows(
        &self,
        key: &KeyRecord,
        starts: &[DateTime<Utc>],
    ) -> Result<Vec<UsageFigures>> {
        let (events, accepted, credits) = (
            key.events_total as i64,
            key.accepted_total as i64,
            key.credits_total as i64,
        );
        let mut out = Vec::with_capacity(starts.len());
        for start in starts {
            let first = self
                .row(
                    "SELECT n, accepted_cum, accepted, credits_cum, cost FROM key_events \
                     WHERE key_id = $1 AND at > $2 ORDER BY at, n LIMIT 1",
                    &[&key.id, &to_millis(*start)],
                )?
                .map(|r| -> std::result::Result<[i64; 5], String> {
                    let c = |i| count(&r, i).map(|n| n as i64);
                    Ok([c(0)?, c(1)?, c(2)?, c(3)?, c(4)?])
                })
                .transpose()
                .map_err(|why| self.damaged(why))?;
            out.push(match first {
                None => UsageFigures::default(),
                Some([n, acc_cum, acc, cr_cum, cost]) => {
                    let all = events - (n - 1);
                    let acc_in = accepted - (acc_cum - acc);
                    UsageFigures {
                        accepted: clamp_stored(acc_in),
                        rejected: clamp_stored(all - acc_in),
                        credits: clamp_stored(credits - (cr_cum - cost)),
                    }
                }
            });
        }
        Ok(out)
    }

    fn pool_windows(&self, key: &KeyRecord, starts: &[DateTime<Utc>]) -> Result<Vec<u64>> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        // Every window in one round trip: the lineage's first ledger row after each
        // start, one seek each, in the order of the starts.
        let total = key.pool_accepted_total as i64;
        let millis: Vec<i64> = starts.iter().map(|s| to_millis(*s)).collect();
        let rows = self.rows(
            "SELECT (SELECT n FROM pool_events WHERE pool_id = p.pool_id AND at > w.start \
             ORDER BY at, n LIMIT 1) \
             FROM (SELECT pool_id FROM keys WHERE id = $1) p, \
             unnest($2::bigint[]) WITH ORDINALITY AS w(start, i) ORDER BY w.i",
            &[&key.id, &millis],
        )?;
        // No rows: the key row is gone (not in a verification, which holds it), so
        // nothing is counted.
        if rows.is_empty() {
            return Ok(vec![0; starts.len()]);
        }
        rows.iter()
            .map(|r| {
                let first: Option<i64> = col(r, 0).map_err(|why| self.damaged(why))?;
                // The stored n read clamped, as every count is.
                Ok(first.map_or(0, |n| clamp_stored(total - (clamp_stored(n) as i64 - 1))))
            })
            .collect()
    }

    fn usage_by_day(
        &self,
        key_id: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, UsageFigures)>> {
        let rows = match key_id {
            Some(id) => self.rows(
                "SELECT day, accepted, rejected, credits FROM usage_days \
                 WHERE key_id = $3 AND day BETWEEN $1 AND $2 ORDER BY day",
                &[&from_day, &to_day, &id],
            )?,
            // numeric sums cannot overflow; read clamped like SQLite's total().
            None => self.rows(
                "SELECT day, \
                 LEAST(GREATEST(sum(accepted), 0), 9007199254740991)::bigint, \
                 LEAST(GREATEST(sum(rejected), 0), 9007199254740991)::bigint, \
                 LEAST(GREATEST(sum(credits), 0), 9007199254740991)::bigint \
                 FROM usage_days WHERE day BETWEEN $1 AND $2 GROUP BY day ORDER BY day",
                &[&from_day, &to_day],
            )?,
        };
        rows.iter()
            .map(|r| {
                Ok((
                    col::<i64>(r, 0)?,
                    UsageFigures {
                        accepted: count(r, 1)?,
                        rejected: count(r, 2)?,
                        credits: count(r, 3)?,
                    },
                ))
            })
            .collect::<std::result::Result<_, String>>()
            .map_err(|why| self.damaged(why))
    }

    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>> {
        match self.locked_key.borrow_mut().take() {
            Some((locked, key)) if locked == *hash => Ok(key),
            _ => self.read_key_by_hash(hash),
        }
    }

    fn keys_by_hashes(&self, hashes: &[[u8; 32]]) -> Result<Vec<([u8; 32], KeyRecord)>> {
        // One round trip per batch; the key's hash comes back beside its columns.
        const BATCH: usize = 1000;
        let mut found = Vec::new();
        for batch in hashes.chunks(BATCH) {
            let wanted: Vec<&[u8]> = batch.iter().map(|h| &h[..]).collect();
            let rows = self.rows(
                concat!(
                    "SELECT s.*, k2.secret_hash FROM (",
                    select_keys!(),
                    " WHERE k.secret_hash = ANY($1)) s JOIN keys k2 ON k2.id = s.id"
                ),
                &[&wanted],
            )?;
            for row in &rows {
                let key = key_from_row(row).map_err(|why| self.damaged(why))?;
                // The hash comes last, after however many columns a key has.
                let stored: Vec<u8> = col(row, row.len() - 1).map_err(|why| self.damaged(why))?;
                if let Ok(hash) = <[u8; 32]>::try_from(stored.as_slice()) {
                    found.push((hash, key));
                }
            }
        }
        Ok(found)
    }

    fn key_prefixes(&self) -> Result<Vec<String>> {
        self.rows(
            "SELECT DISTINCT split_part(key_prefix, '_', 1) FROM keys \
             WHERE strpos(key_prefix, '_') > 1",
            &[],
        )?
        .iter()
        .map(|r| col::<String>(r, 0).map_err(|why| self.damaged(why)))
        .collect()
    }

    fn lock_for_verify(
        &mut self,
        hash: Option<&[u8; 32]>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        self.first_request.set(!self.holds_request_locks.get());
        // The order load_for_verify locks in: the IP's row, then the key's and pool's.
        // What the locking reads is what load_for_verify asks next (nothing writes in
        // between): kept for it, so a verification pays for each read once.
        if let Some(ip) = ip {
            let prefix = match ip {
                std::net::IpAddr::V6(_) => self.settings()?.failed_auth_ipv6_prefix,
                std::net::IpAddr::V4(_) => 0,
            };
            let subject = block_subject(ip, prefix);
            let until = self.read_block(&subject)?;
            *self.locked_ip.borrow_mut() = Some((subject, until));
        }
        // "Now" is read after these locks (SPEC §6), also for the second and later
        // request of a group (SPEC §7): each decides at the clock read after its own
        // locks, never before a verification that held them first committed. The key's
        // lock is the last, so it reads the clock too (one round trip fewer); a lock
        // taken after it (the store-wide counter's) reads it again.
        self.clock = None;
        if let Some(hash) = hash {
            let (key, clock) = self.lock_key_reading_clock(hash)?;
            *self.locked_key.borrow_mut() = Some((*hash, key));
            self.clock = Some(from_millis(clock));
        }
        self.holds_request_locks.set(true);
        Ok(())
    }

    fn ip_blocked_until(&self, ip: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let until = match self.locked_ip.borrow_mut().take() {
            Some((locked, until)) if locked == ip => until,
            _ => self.read_block(ip)?,
        };
        Ok(until.filter(|u| *u > to_millis(now)).map(from_millis))
    }

    fn auth_failures_since(&self, ip: &str, since: DateTime<Utc>) -> Result<u64> {
        let attempts: i64 = self
            .row(
                "SELECT count(*) FROM auth_failures WHERE ip = $1 AND at > $2",
                &[&ip, &to_millis(since)],
            )?
            .map(|r| col(&r, 0))
            .transpose()
            .map_err(|why| self.damaged(why))?
            .unwrap_or(0);
        Ok(attempts.max(0) as u64)
    }

    fn record_auth_failure(
        &mut self,
        ip: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        limit: u64,
        block: chrono::Duration,
    ) -> Result<bool> {
        let now_ms = to_millis(now);
        let start = now_ms - window.num_milliseconds();
        // The IP's row, made if missing and locked: its attempts are counted one
        // transaction after another (an upsert locks even a row a concurrent
        // transaction deletes meanwhile).
        self.exec(
            "INSERT INTO ip_blocks (ip, until) VALUES ($1, 0) \
             ON CONFLICT (ip) DO UPDATE SET until = ip_blocks.until",
            &[&ip],
        )?;
        self.exec("DELETE FROM auth_failures WHERE at <= $1", &[&start])?;
        // Other IPs' ended blocks; one another transaction holds stays for later.
        self.exec(
            "DELETE FROM ip_blocks WHERE ip IN (SELECT ip FROM ip_blocks \
             WHERE until <= $1 AND ip != $2 FOR UPDATE SKIP LOCKED)",
            &[&now_ms, &ip],
        )?;
        self.exec(
            "INSERT INTO auth_failures (ip, at) VALUES ($1, $2)",
            &[&ip, &now_ms],
        )?;
        let attempts: i64 = self
            .row(
                "SELECT count(*) FROM auth_failures WHERE ip = $1 AND at > $2",
                &[&ip, &start],
            )?
            .map(|r| col(&r, 0))
            .transpose()
            .map_err(|why| self.damaged(why))?
            .unwrap_or(0);
        if (attempts.max(0) as u64) < limit {
            // Not blocked: no row stays behind unless a block is still running.
            self.exec(
                "DELETE FROM ip_blocks WHERE ip = $1 AND until <= $2",
                &[&ip, &now_ms],
            )?;
            return Ok(false);
        }
        self.exec(
            "UPDATE ip_blocks SET until = GREATEST(until, $2) WHERE ip = $1",
            &[&ip, &(now_ms + block.num_milliseconds())],
        )?;
        Ok(true)
    }

    fn record_request(&mut self, r: &RequestRecord) -> Result<()> {
        self.record(r, None)
    }

    fn record_request_charging_store(
        &mut self,
        request: &RequestRecord,
        store_ledger: Option<bool>,
    ) -> Result<()> {
        // Only an accepted request is charged store-wide.
        self.record(request, store_ledger.filter(|_| request.accepted))
    }

    fn for_each_request(
        &self,
        query: &RequestQuery,
        sink: &mut dyn FnMut(&RequestRow) -> io::Result<()>,
    ) -> Result<()> {
        self.stream_requests(query, None, sink, &|_| false)
    }

    fn log_cursor_now(&self) -> Result<LogCursor> {
        self.log_position(0)
    }

    fn requests_after(
        &self,
        cursor: &LogCursor,
        query: &RequestQuery,
        sink: &mut dyn FnMut(&RequestRow) -> io::Result<()>,
    ) -> Result<LogCursor> {
        // Ids commit out of order: re-read the window behind the cursor's end and drop
        // what it has seen, so a row that committed late below the end still comes.
        // (A Read transaction: the rows and the new position share one snapshot.)
        let seen = &cursor.seen;
        let end = cursor.end;
        self.stream_requests(query, Some(cursor.end - FOLLOW_WINDOW), sink, &|seq| {
            seq <= end && seen.binary_search(&seq).is_ok()
        })?;
        self.log_position(cursor.end)
    }

    fn prune_requests(&mut self, before: DateTime<Utc>) -> Result<u64> {
        self.exec("DELETE FROM requests WHERE at < $1", &[&to_millis(before)])
    }

    fn update_key(&mut self, key: &KeyRecord) -> Result<()> {
        let mut args = settings_params(&key.settings);
        args.push(Box::new(key.state.as_str()));
        args.push(Box::new(key.revoked_at.map(to_millis)));
        args.push(Box::new(key.revoke_reason.clone()));
        args.push(Box::new(key.rotated_to.clone()));
        args.push(Box::new(key.id.clone()));
        let changed = self.exec_owned(
            concat!(
                "UPDATE keys SET (",
                settings_columns!(),
                ", state, revoked_at, revoke_reason, rotated_to) = \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22) WHERE id = $23"
            ),
            &args,
        )?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::at(
                ErrorKind::NotFound,
                self.location,
                format!("key {} vanished during the update", key.id),
            ))
        }
    }

    fn credit_balance_for_update(&mut self, key_id: &str) -> Result<Option<Balance>> {
        // The pool row locked (the key's row is already, by key_by_id): a verification
        // of the other key of a pair waits for this edit, and this reads its charge.
        self.row(
            "SELECT p.credits_used, p.refilled_at FROM credit_pools p \
             WHERE p.id = (SELECT pool_id FROM keys WHERE id = $1) FOR UPDATE",
            &[&key_id],
        )?
        .map(|r| -> std::result::Result<Balance, String> {
            Ok(Balance {
                used: count(&r, 0)?,
                refilled_at: opt_time(&r, 1)?,
            })
        })
        .transpose()
        .map_err(|why| self.damaged(why))
    }

    fn set_refill(
        &mut self,
        key_id: &str,
        refill: Option<&Refill>,
        balance: Balance,
    ) -> Result<()> {
        self.exec(
            "UPDATE credit_pools SET refill = $2, credits_used = $3, refilled_at = $4 \
             WHERE id = (SELECT pool_id FROM keys WHERE id = $1)",
            &[
                &key_id,
                &refill.map(|r| r.to_string()),
                &count_to_sql(Some(balance.used)),
                &balance.refilled_at.map(to_millis),
            ],
        )
        .map(drop)
    }

    fn delete_key(&mut self, id: &str) -> Result<()> {
        self.exec("DELETE FROM keys WHERE id = $1", &[&id])
            .map(drop)
    }

    fn set_imported_last_use(&mut self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.exec(
            "UPDATE keys SET last_used_at = $2 WHERE id = $1",
            &[&id, &to_millis(at)],
        )
        .map(drop)
    }

    fn has_requests(&self, key_id: &str) -> Result<bool> {
        self.row(
            "SELECT EXISTS (SELECT 1 FROM keys WHERE id = $1 AND events_total > 0) \
             OR EXISTS (SELECT 1 FROM requests WHERE key_id = $1)",
            &[&key_id],
        )?
        .map(|r| col(&r, 0))
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|why| self.damaged(why))
    }

    fn audit_head_for_append(&mut self) -> Result<Option<AuditHead>> {
        // The head row first: appends queue here, and each then reads (READ
        // COMMITTED) the event the previous one committed.
        self.lock_store_row("audit-head")?;
        self.row(
            "SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map(|r| -> std::result::Result<AuditHead, String> {
            let hash: Vec<u8> = col(&r, 1)?;
            Ok(AuditHead::from_stored(col(&r, 0)?, &hash, col(&r, 2)?))
        })
        .transpose()
        .map_err(|why| self.damaged(why))
    }

    fn insert_audit(&mut self, stored: &StoredAuditEvent) -> Result<()> {
        let e = &stored.event;
        self.exec(
            "INSERT INTO audit_events (seq, at, actor, action, key_id, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &e.seq,
                &e.at_ms,
                &e.actor,
                &e.action,
                &e.key_id,
                &e.details,
                &stored.prev_hash,
                &stored.hash,
            ],
        )
        .map(drop)
    }

    fn for_each_audit(
        &self,
        query: &AuditQuery,
        sink: &mut dyn FnMut(&StoredAuditEvent) -> io::Result<()>,
    ) -> Result<()> {
        let (sql, args) = select::audit(query, |n| format!("${n}"));
        let args: Vec<Param> = args.iter().map(param).collect();
        self.stream(&sql, &args, &mut |row| {
            let stored = (|| -> std::result::Result<StoredAuditEvent, String> {
                Ok(StoredAuditEvent {
                    event: AuditEvent {
                        seq: col(row, 0)?,
                        at_ms: col(row, 1)?,
                        actor: col(row, 2)?,
                        action: col(row, 3)?,
                        key_id: col(row, 4)?,
                        details: col(row, 5)?,
                    },
                    prev_hash: col(row, 6)?,
                    hash: col(row, 7)?,
                })
            })()
            .map_err(|why| self.damaged(why))?;
            sink(&stored).map_err(StoreError::Sink)
        })
    }

    fn db_clock(&mut self) -> Result<Option<DateTime<Utc>>> {
        if self.clock.is_none() {
            let ms: i64 = self
                .row(concat!("SELECT ", now_ms_sql!()), &[])?
                .map(|r| col(&r, 0))
                .transpose()
                .map_err(|why| self.damaged(why))?
                .unwrap_or_default();
            self.clock = Some(from_millis(ms));
        }
        Ok(self.clock)
    }

    fn settings_if_store_limits_apply(
        &self,
        group: Option<&str>,
    ) -> Result<Option<crate::core::settings::Settings>> {
        let applies = match self.store_limits_hint.take() {
            Some(applies) => applies,
            None => {
                let row = self.row(
                    "SELECT EXISTS (SELECT 1 FROM settings WHERE value <> 'none' \
                     AND name IN ('rate-limit', 'credit-limit', 'group-multiplier.' || $1::text))",
                    &[&group],
                )?;
                row.map_or(Ok(false), |r| col(&r, 0).map_err(|why| self.damaged(why)))?
            }
        };
        // Nothing store-wide applies: the settings are not read at all.
        if applies {
            self.settings().map(Some)
        } else {
            Ok(None)
        }
    }

    fn store_figures(&self, rate_start: Option<DateTime<Utc>>) -> Result<StoreFigures> {
        let start = rate_start.map(to_millis);
        let row = self.row(
            "SELECT credits_used, accepted_total, \
             (SELECT n FROM store_events WHERE $1::bigint IS NOT NULL AND at > $1::bigint \
              ORDER BY at, n LIMIT 1) \
             FROM store_usage WHERE id = 1",
            &[&start],
        )?;
        let Some(row) = row else {
            return Ok(StoreFigures::default());
        };
        let read = || -> std::result::Result<StoreFigures, String> {
            let total: i64 = col(&row, 1)?;
            let first: Option<i64> = col(&row, 2)?;
            Ok(StoreFigures {
                credits_used: count(&row, 0)?,
                rate_window: first.map_or(0, |n| clamp_stored(total - (n - 1))),
            })
        };
        read().map_err(|why| self.damaged(why))
    }

    fn lock_store_usage(&mut self) -> Result<()> {
        if self.store_usage_locked.get() {
            return Ok(());
        }
        // Locked after the key's rows; a later request of a group does not wait
        // while it holds earlier requests' rows (see `holds_request_locks`).
        let sql = if self.first_request.get() {
            "SELECT 1 FROM store_usage WHERE id = 1 FOR UPDATE"
        } else {
            "SELECT 1 FROM store_usage WHERE id = 1 FOR UPDATE NOWAIT"
        };
        self.exec(sql, &[])?;
        self.store_usage_locked.set(true);
        // "Now" comes after this lock too.
        self.clock = None;
        Ok(())
    }

    fn record_store_usage(&mut self, at: DateTime<Utc>, credits: u64, ledger: bool) -> Result<()> {
        let at = to_millis(at);
        let credits = count_to_sql(Some(credits)).unwrap_or(0);
        // The counter and, while a store-wide rate limit is set ($3), its ledger row, in
        // one round trip.
        let row = self.row(
            concat!(
                "WITH s AS (INSERT INTO store_usage (id, credits_used, accepted_total, \
                 last_event_at) VALUES (1, $1, 1, $2) ON CONFLICT (id) DO UPDATE SET \
                 credits_used = ",
                saturating_add!("store_usage.credits_used", "$1::bigint"),
                ", accepted_total = ",
                saturating_add!("store_usage.accepted_total", "1"),
                ", last_event_at = GREATEST(coalesce(store_usage.last_event_at, $2::bigint), \
                 $2::bigint) RETURNING accepted_total, last_event_at), \
                 e AS (INSERT INTO store_events (at, n) SELECT last_event_at, accepted_total \
                 FROM s WHERE $3::boolean ON CONFLICT DO NOTHING) \
                 SELECT accepted_total, last_event_at FROM s",
            ),
            &[&credits, &at, &ledger],
        )?;
        let [n, event_at] = row
            .map(|r| -> std::result::Result<[i64; 2], String> { Ok([col(&r, 0)?, col(&r, 1)?]) })
            .transpose()
            .map_err(|why| self.damaged(why))?
            .unwrap_or([0, at]);
        if ledger {
            self.prune_store_ledger(n, event_at)?;
        }
        Ok(())
    }

    fn reset_store_usage(&mut self, now: DateTime<Utc>, credits: bool, rate: bool) -> Result<()> {
        // The row is made if missing and locked: verifications counting meanwhile
        // wait for this recount.
        self.exec(
            "INSERT INTO store_usage (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
            &[],
        )?;
        self.exec("SELECT 1 FROM store_usage WHERE id = 1 FOR UPDATE", &[])?;
        if credits {
            self.exec(
                "UPDATE store_usage SET credits_used = (SELECT LEAST(coalesce(sum(GREATEST(credits, 0)), 0), \
                 9007199254740991)::bigint FROM usage_days) WHERE id = 1",
                &[],
            )?;
        }
        if rate {
            self.exec("DELETE FROM store_events", &[])?;
            self.exec(
                "INSERT INTO store_events (at, n) SELECT at, row_number() OVER (ORDER BY at, seq) \
                 FROM requests WHERE code = 'valid' AND at > $1",
                &[&(to_millis(now) - STORE_RATE_WINDOW_MS)],
            )?;
            self.exec(
                "UPDATE store_usage SET accepted_total = (SELECT count(*) FROM store_events), \
                 last_event_at = (SELECT max(at) FROM store_events) WHERE id = 1",
                &[],
            )?;
        }
        Ok(())
    }

    fn dump(&self, sink: &mut dyn FnMut(Table, &[Value]) -> Result<()>) -> Result<()> {
        for table in Table::ALL {
            let columns: Vec<&str> = table.columns().iter().map(|(c, _)| *c).collect();
            // Text sorts by bytes, as SQLite's BINARY collation.
            let order: Vec<String> = table
                .order()
                .iter()
                .map(|c| match table.kind_of(c) {
                    Some(Kind::Text) => format!("{c} COLLATE \"C\""),
                    _ => c.to_string(),
                })
                .collect();
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                columns.join(", "),
                table.name(),
                order.join(", ")
            );
            let mut values = Vec::with_capacity(columns.len());
            self.stream(&sql, &[], &mut |row| {
                values.clear();
                for (i, (_, kind)) in table.columns().iter().enumerate() {
                    let value = match kind {
                        Kind::Integer => col::<Option<i64>>(row, i).map(|v| v.map(Value::Integer)),
                        Kind::Text => col::<Option<String>>(row, i).map(|v| v.map(Value::Text)),
                        Kind::Blob => col::<Option<Vec<u8>>>(row, i).map(|v| v.map(Value::Blob)),
                    }
                    .map_err(|why| self.damaged(why))?;
                    values.push(value.unwrap_or(Value::Null));
                }
                sink(table, &values)
            })?;
        }
        Ok(())
    }

    fn load(&mut self, table: Table, rows: &[Vec<Value>]) -> Result<()> {
        let columns = table.columns();
        // PostgreSQL takes at most 65535 parameters per statement.
        let per_statement = (65_535 / columns.len()).max(1);
        for chunk in rows.chunks(per_statement) {
            let mut args: Vec<Param> = Vec::with_capacity(chunk.len() * columns.len());
            let mut tuples = Vec::with_capacity(chunk.len());
            for row in chunk {
                if row.len() != columns.len() {
                    return Err(self.damaged(format!(
                        "a {} row has {} values, not {}",
                        table.name(),
                        row.len(),
                        columns.len()
                    )));
                }
                let mut slots = Vec::with_capacity(columns.len());
                for ((name, kind), value) in columns.iter().zip(row) {
                    args.push(match (kind, value) {
                        (Kind::Integer, Value::Integer(_))
                        | (Kind::Text, Value::Text(_))
                        | (Kind::Blob, Value::Blob(_)) => param(value),
                        (Kind::Integer, Value::Null) => Box::new(None::<i64>),
                        (Kind::Text, Value::Null) => Box::new(None::<String>),
                        (Kind::Blob, Value::Null) => Box::new(None::<Vec<u8>>),
                        _ => {
                            return Err(self.damaged(format!(
                                "{}.{name} holds a value of another type",
                                table.name()
                            )))
                        }
                    });
                    slots.push(format!("${}", args.len()));
                }
                tuples.push(format!("({})", slots.join(", ")));
            }
            let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                table.name(),
                names.join(", "),
                tuples.join(", ")
            );
            self.stream(&sql, &args, &mut |_| Ok(()))?;
        }
        if let Some(column) = table.numbered() {
            // New rows are numbered after the loaded ones (an identity does not move
            // when given values).
            let qualified = format!("{}.{}", quote_ident(&self.location.schema), table.name());
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), max({column})) FROM {} \
                 HAVING max({column}) IS NOT NULL",
                table.name()
            );
            let args: Vec<Param> = vec![Box::new(qualified), Box::new(column.to_string())];
            self.stream(&sql, &args, &mut |_| Ok(()))?;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let location = self.location;
        if self.failed.get() {
            return Err(StoreError::at(
                ErrorKind::Other,
                location,
                format!("key store {location}: a failed transaction cannot commit"),
            ));
        }
        self.done = true;
        self.client
            .get_mut()
            .batch_execute("COMMIT")
            .map_err(|e| pg_error(location, &e))
    }
}
