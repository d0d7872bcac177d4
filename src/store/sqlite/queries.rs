//! Every statement on the store's rows: keys, settings, the request log and its
//! windows, IP blocks and the audit trail, read and written inside one transaction.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{
    params, CachedStatement, Connection, OptionalExtension, Row, Statement, TransactionBehavior,
};

use super::sql_error;
use super::transaction::Transaction;
use crate::core::audit::AuditEvent;
use crate::core::key::Mode;
use crate::core::limits::{
    clamp_stored, clamp_stored_real, clamp_stored_text, Quotas, RateLimit, RateUnit, MAX_COUNT,
};
use crate::core::meta::KeyMeta;
use crate::core::model::{
    KeyRecord, KeySettings, LedgerHeads, NewKey, RequestRecord, RequestRow, RunningTotals, State,
    StatusCounts, UsageFigures,
};
use crate::core::refill::{self, Balance, Refill};
use crate::core::settings::Settings;
use crate::core::store_limits::StoreFigures;
use crate::core::time::{from_millis, to_millis};
use crate::store::select;
use crate::store::{
    prefix_bound, read_settings, AuditHead, AuditQuery, ErrorKind, KeyQuery, LogCursor,
    RequestQuery, Result, Starting, StoreError, StoredAuditEvent, Table, Txn, Value,
};

/// The longest rolling window (monthly quota: 30 days), in milliseconds.
const LONGEST_WINDOW_MS: i64 = 30 * 86_400_000;
/// The longest store-wide rate window (a minute), in milliseconds.
const STORE_RATE_WINDOW_MS: i64 = 60_000;

pub(super) struct SqliteTxn<'a> {
    /// The statements this transaction has run ([`SqliteTxn::with`]). Declared before
    /// `tx`, so they are put away (or dropped) before it commits or rolls back.
    held: Held<'a>,
    pub(super) tx: Transaction<'a>,
    conn: &'a Connection,
    pub(super) path: &'a Path,
    /// The store-wide ledger's last row as this transaction last read or wrote it:
    /// a verification reads it with its figures and charges on top of it, so a
    /// charge is one insert.
    store_tail: Cell<Tail>,
    /// Indexes dropped for a bulk insert ([`Txn::expect_new_keys`]): their own
    /// `CREATE INDEX` text as `sqlite_master` held it, run again just before the commit.
    deferred: RefCell<Vec<String>>,
    /// The store's settings as its verifications last read them (`Verify` only).
    settings_cache: Option<&'a SettingsCache>,
}

/// The settings a connection's verifications read last, with the connection's
/// `PRAGMA data_version` then. The version changes when another connection commits;
/// this one's verifications never write a setting, and any other transaction on it
/// empties the cache when it begins. So a verify stream, one transaction per request,
/// reads the settings table only when something else changed the store.
pub(super) type SettingsCache = RefCell<Option<(i64, Settings)>>;

/// The indexes a bulk insert may build after its rows instead of row by row, and the
/// table each indexes. The unique ones (key id, secret hash) are part of the table.
const DEFERRABLE_INDEXES: [(&str, &str); 3] = [
    ("keys_name", "keys"),
    ("keys_prefix", "keys"),
    ("audit_key", "audit_events"),
];

/// What a transaction knows of the store-wide ledger's last row, which carries the
/// store's counter (see migration 008).
#[derive(Clone, Copy)]
enum Tail {
    Unread,
    Empty,
    Row(StoreTail),
}

/// The ledger's last row: the newest accepted request's time (non-decreasing), the
/// accepted requests counted and the credits charged store-wide up to it.
#[derive(Clone, Copy)]
struct StoreTail {
    at: i64,
    n: u64,
    credits: u64,
}

/// The ledger's last row from `at, n, credits` (the first three columns).
fn store_tail(r: &Row) -> rusqlite::Result<StoreTail> {
    Ok(StoreTail {
        at: r.get(0)?,
        n: count(r, 1)?,
        credits: count(r, 2)?,
    })
}

/// A store's statements kept prepared between its transactions, by SQL text (a
/// `'static` literal, compared by address). `'static` stands for the store's
/// connection, which owns them: see [`Held`]'s drop.
pub(super) type Kept = RefCell<Vec<(&'static str, CachedStatement<'static>)>>;

/// A transaction's statements: taken from its store's [`Kept`] when it begins, given
/// back when it ends (without a store, dropped into rusqlite's cache).
struct Held<'a> {
    stmts: RefCell<Vec<(&'static str, CachedStatement<'a>)>>,
    home: Option<&'a Kept>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Some(home) = self.home else { return };
        let stmts = std::mem::take(self.stmts.get_mut());
        // SAFETY: only the lifetime changes. Every statement here was prepared on the
        // connection of the store that owns `home` (`SqliteStore::begin` passes its own
        // connection and its own `kept`). That connection is boxed, so its address does
        // not change while the store lives; `kept` is declared before it in
        // `SqliteStore`, so these statements are dropped before the connection; and
        // after the store is opened nothing borrows the connection mutably. A
        // transaction turns them back into borrows of its own lifetime when it begins.
        let stmts: Vec<(&'static str, CachedStatement<'static>)> =
            unsafe { std::mem::transmute(stmts) };
        *home.borrow_mut() = stmts;
    }
}

/// `SELECT <a key record's columns, in the order key_from_row reads them>`, with the
/// expressions of its running totals (last use time and IP, accepted, recorded,
/// credits) given.
macro_rules! key_columns {
    ($used_at:expr, $used_ip:expr, $accepted:expr, $events:expr, $credits:expr) => {
        concat!(
            "SELECT k.id, k.name, k.description, k.owner, k.key_prefix, k.livemode, \
             k.category, k.grp, k.scopes, k.deployment, k.allowed_models, k.allowed_ips, \
             k.quota_total, k.quota_daily, k.quota_weekly, k.quota_monthly, k.rate_count, \
             k.rate_unit, k.credit_limit, p.credits_used, k.created_at, k.expires_at, ",
            $used_at,
            ", ",
            $used_ip,
            ", k.state, k.rotated_from, k.rotated_to, k.revoked_at, k.revoke_reason, ",
            $accepted,
            ", ",
            $events,
            ", ",
            $credits,
            ", p.accepted_total, k.meta, p.refill, p.refilled_at"
        )
    };
}

/// `SELECT <a key record's columns> FROM …`, its running totals as they read, as a
/// literal so fixed lookups need no formatting. A scan of many keys joins each one's
/// newest ledger row inside SQLite.
macro_rules! select_keys {
    () => {
        select_keys!("")
    };
    // `$more`: columns after the record's (36 onwards).
    ($more:expr) => {
        concat!(
            key_columns!(
                key_figure!("last_used_at", "used_at"),
                key_figure!("last_used_ip", "used_ip"),
                key_figure!("requests_total", "accepted_cum"),
                key_figure!("events_total", "n"),
                key_figure!("credits_total", "credits_cum")
            ),
            $more,
            " FROM keys k JOIN credit_pools p ON p.id = k.pool_id",
            newest_key_event!()
        )
    };
}

/// A verification's lookup of one key: its columns with the running totals as the
/// keys row stores them, and the four columns after the record's that recording
/// advances ([`key_with_heads`]). [`SqliteTxn::with_newest_event`] then applies the
/// key's newest ledger row: two plain statements cost a one-shot `verify` fewer
/// instructions to prepare than one with the join.
macro_rules! select_key_stored {
    () => {
        concat!(
            key_columns!(
                "k.last_used_at",
                "k.last_used_ip",
                "k.requests_total",
                "k.events_total",
                "k.credits_total"
            ),
            ", k.rejected_total, k.last_event_at, k.pool_id, p.last_event_at",
            " FROM keys k JOIN credit_pools p ON p.id = k.pool_id"
        )
    };
}

/// One of a key's running totals: from its ledger's newest row (`e`, joined by
/// [`newest_key_event`]) when that row carries them, else the keys row's (migration
/// 009: rows recorded before it carry no rejected count).
macro_rules! key_figure {
    ($base:literal, $ledger:literal) => {
        concat!(
            "iif(e.rejected_cum IS NULL, k.",
            $base,
            ", e.",
            $ledger,
            ")"
        )
    };
}

/// `LEFT JOIN` of key `k`'s newest window-ledger row as `e`: two seeks in its primary
/// key (`at` is non-decreasing per key and `n` grows, so the newest row is the last).
macro_rules! newest_key_event {
    () => {
        " LEFT JOIN key_events e ON e.key_id = k.id AND (e.at, e.n) = \
         (SELECT at, n FROM key_events WHERE key_id = k.id ORDER BY at DESC, n DESC LIMIT 1)"
    };
}

/// `column + add` in SQL, stopping at MAX_COUNT (a negative stored value counts as 0),
/// so no counter overflows into a REAL that a STRICT table refuses.
macro_rules! saturating_add {
    ($column:literal, $add:literal) => {
        concat!("min(max(", $column, ", 0) + ", $add, ", 9007199254740991)")
    };
}

/// The lineage's first accepted request after a window's start (?2), for the key ?1:
/// one seek in pool_events' primary key.
/// The first ledger row of the key's pool after each of 1 to 4 window starts, in one
/// statement: one step (and one lookup of the pool) instead of one per window.
macro_rules! pool_window {
    ($at:literal) => {
        concat!(
            "(SELECT n FROM pool_events WHERE pool_id = p.pool_id AND at > ",
            $at,
            " ORDER BY at, n LIMIT 1)"
        )
    };
}
/// `SELECT` of one first-row seek per window start parameter (and a 0 after them).
macro_rules! pool_windows {
    ($($at:literal),+) => {
        concat!("SELECT ", $(pool_window!($at), ", ",)+ "0 FROM keys p WHERE p.id = ?1")
    };
}
const POOL_WINDOWS_SQL: [&str; 4] = [
    pool_windows!("?2"),
    pool_windows!("?2", "?3"),
    pool_windows!("?2", "?3", "?4"),
    pool_windows!("?2", "?3", "?4", "?5"),
];

/// How SQLite spells the key listing (`select::keys`).
const KEY_DIALECT: select::KeyDialect = select::KeyDialect {
    slot: |n| format!("?{n}"),
    contains: |haystack, needle, fold| {
        if fold {
            format!("instr(lower({haystack}), {needle}) > 0")
        } else {
            format!("instr({haystack}, {needle}) > 0")
        }
    },
    select: select_keys!(),
    name_order: "k.name COLLATE NOCASE, k.seq",
    now: "?1",
    last_used_order: concat!(
        key_figure!("last_used_at", "used_at"),
        " IS NULL, ",
        key_figure!("last_used_at", "used_at"),
        " DESC, k.seq DESC"
    ),
};

fn conversion_error(col: usize, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        Box::new(io::Error::new(io::ErrorKind::InvalidData, msg)),
    )
}

/// A stored list (scopes, models, IPs). keyctl always writes a json array of strings;
/// anything else was written by hand or another program, and is named (key and field)
/// rather than quoted in a parser's words.
fn json_list(row: &Row, col: usize, field: &str) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(col)?;
    if text == "[]" {
        return Ok(Vec::new());
    }
    serde_json::from_str(&text).map_err(|_| {
        let id: String = row.get(0).unwrap_or_default();
        conversion_error(
            col,
            format!("key {id} has a damaged {field} value (not a list of strings)"),
        )
    })
}

/// A stored value as rusqlite binds it.
fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(n) => SqlValue::Integer(*n),
        Value::Text(t) => SqlValue::Text(t.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn to_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// A count column as keyctl reads it: out of range reads as the nearest end of
/// 0..=MAX_COUNT, and a REAL (another writer) as its whole part, so no stored value
/// makes a read fail.
fn opt_count(row: &Row, col: usize) -> rusqlite::Result<Option<u64>> {
    Ok(match row.get_ref(col)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(clamp_stored(n)),
        ValueRef::Real(x) => Some(clamp_stored_real(x)),
        ValueRef::Text(t) => Some(
            std::str::from_utf8(t)
                .ok()
                .and_then(clamp_stored_text)
                .unwrap_or(0),
        ),
        ValueRef::Blob(_) => Some(0),
    })
}

/// A NOT NULL count column (see [`opt_count`]).
fn count(row: &Row, col: usize) -> rusqlite::Result<u64> {
    opt_count(row, col).map(Option::unwrap_or_default)
}

fn opt_time(row: &Row, col: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(row.get::<_, Option<i64>>(col)?.map(from_millis))
}

fn key_from_row(row: &Row) -> rusqlite::Result<KeyRecord> {
    let rate_limit = match (opt_count(row, 16)?, row.get::<_, Option<String>>(17)?) {
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
    let state_text: String = row.get(24)?;
    let state = State::parse(&state_text).ok_or_else(|| {
        let id: String = row.get(0).unwrap_or_default();
        conversion_error(24, format!("key {id} has a damaged state value"))
    })?;
    Ok(KeyRecord {
        id: row.get(0)?,
        settings: KeySettings {
            name: row.get(1)?,
            description: row.get(2)?,
            owner: row.get(3)?,
            category: row.get(6)?,
            group: row.get(7)?,
            scopes: json_list(row, 8, "scopes")?,
            deployment: row.get(9)?,
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
            meta: KeyMeta::from_stored(row.get(33)?),
            refill: refill_from_row(row, 34)?,
        },
        key_prefix: row.get(4)?,
        mode: if row.get::<_, i64>(5)? != 0 {
            Mode::Live
        } else {
            Mode::Test
        },
        credits_used: count(row, 19)?,
        created_at: from_millis(row.get(20)?),
        last_used_at: opt_time(row, 22)?,
        last_used_ip: row.get(23)?,
        state,
        rotated_from: row.get(25)?,
        rotated_to: row.get(26)?,
        revoked_at: opt_time(row, 27)?,
        revoke_reason: row.get(28)?,
        accepted_total: count(row, 29)?,
        events_total: count(row, 30)?,
        credits_total: count(row, 31)?,
        pool_accepted_total: count(row, 32)?,
        refilled_at: opt_time(row, 35)?,
        heads: None,
    })
}

/// A key read for a verification, with the running totals recording it advances (the
/// four columns after the record's): the verifying transaction's write lock holds
/// them until its request is recorded, so `record_request` writes them advanced.
fn key_with_heads(row: &Row) -> rusqlite::Result<KeyRecord> {
    let mut key = key_from_row(row)?;
    key.heads = Some(LedgerHeads {
        rejected_total: count(row, 36)?,
        last_event_at: opt_time(row, 37)?,
        pool_id: row.get(38)?,
        pool_last_event_at: opt_time(row, 39)?,
    });
    Ok(key)
}

/// A pool's refill from its column (see `core::refill::stored`).
fn refill_from_row(row: &Row, col: usize) -> rusqlite::Result<Option<Refill>> {
    Ok(match row.get_ref(col)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(refill::stored),
        _ => None,
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

impl<'a> SqliteTxn<'a> {
    /// Begins a transaction on `conn`, with the statements `kept` holds. `kept` must
    /// be the one of the store that owns `conn` (or None): [`Held`]'s drop relies on
    /// it, and only `SqliteStore::begin` passes one.
    pub(super) fn begin(
        conn: &'a Connection,
        behavior: TransactionBehavior,
        path: &'a Path,
        kept: Option<&'a Kept>,
        settings_cache: Option<&'a SettingsCache>,
    ) -> rusqlite::Result<Self> {
        let tx = Transaction::begin(conn, behavior)?;
        let stmts: Vec<(&'static str, CachedStatement<'a>)> = kept
            .map(|k| std::mem::take(&mut *k.borrow_mut()))
            .unwrap_or_default();
        Ok(SqliteTxn {
            held: Held {
                stmts: RefCell::new(stmts),
                home: kept,
            },
            tx,
            conn,
            path,
            store_tail: Cell::new(Tail::Unread),
            deferred: RefCell::new(Vec::new()),
            settings_cache,
        })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sql_error(self.path, e)
    }

    /// The store-wide ledger's last row (None when it has none).
    fn read_store_tail(&self) -> rusqlite::Result<Option<StoreTail>> {
        self.with(
            "SELECT at, n, credits FROM store_events ORDER BY at DESC, n DESC LIMIT 1",
            |st| st.query_row([], store_tail).optional(),
        )
    }

    /// Key `key_id`'s and its lineage's running totals, read as a verification reads
    /// them, for a request recorded without them.
    fn read_totals(&self, key_id: &str) -> rusqlite::Result<RunningTotals> {
        let key = self.with(concat!(select_key_stored!(), " WHERE k.id = ?1"), |st| {
            st.query_row([key_id], key_with_heads)
        })?;
        let key = self.with_newest_event(key)?;
        RunningTotals::of(&key).ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// `key` (read with its heads and its keys row's totals) with the running totals
    /// its newest ledger row carries, when it carries them (migration 009).
    fn with_newest_event(&self, mut key: KeyRecord) -> rusqlite::Result<KeyRecord> {
        let newest = self.with(
            "SELECT n, accepted_cum, credits_cum, rejected_cum, at, used_at, used_ip \
             FROM key_events WHERE key_id = ?1 ORDER BY at DESC, n DESC LIMIT 1",
            |st| {
                st.query_row([&key.id], |r| {
                    Ok((
                        !matches!(r.get_ref(3)?, ValueRef::Null),
                        [count(r, 0)?, count(r, 1)?, count(r, 2)?, count(r, 3)?],
                        opt_time(r, 4)?,
                        opt_time(r, 5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
                .optional()
            },
        )?;
        // A newest row from before migration 009 carries no rejected count: the keys
        // row's totals stand.
        if let Some((true, [events, accepted, credits, rejected], at, used_at, used_ip)) = newest {
            key.events_total = events;
            key.accepted_total = accepted;
            key.credits_total = credits;
            key.last_used_at = used_at;
            key.last_used_ip = used_ip;
            if let Some(h) = key.heads.as_mut() {
                h.rejected_total = rejected;
                h.last_event_at = at;
            }
        }
        Ok(key)
    }

    /// Runs `f` on the prepared statement of `sql`, which this transaction and then
    /// its store keep. rusqlite's cache alone takes a statement out and puts it back
    /// on every use (hashing the text twice and copying it), which was a tenth of
    /// the work of a verify stream, whose requests run the same dozen statements. A
    /// statement whose use failed is not kept: it goes back to rusqlite's cache at
    /// once, as every statement did before.
    fn with<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut Statement<'a>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut stmt = self.take(sql)?;
        let out = f(&mut stmt)?;
        self.give_back(sql, stmt);
        Ok(out)
    }

    /// The statement of `sql`: this transaction's, else from rusqlite's cache. Not
    /// generic, so the many uses of [`SqliteTxn::with`] share its code.
    fn take(&self, sql: &'static str) -> rusqlite::Result<CachedStatement<'a>> {
        let found = {
            let mut held = self.held.stmts.borrow_mut();
            let at = held.iter().position(|(s, _)| std::ptr::eq(*s, sql));
            at.map(|i| held.swap_remove(i).1)
        };
        match found {
            Some(stmt) => Ok(stmt),
            None => self.conn.prepare_cached(sql),
        }
    }

    fn give_back(&self, sql: &'static str, stmt: CachedStatement<'a>) {
        self.held.stmts.borrow_mut().push((sql, stmt));
    }

    /// The two statements that insert a new key (its credit pool, its row), prepared
    /// once for any number of keys.
    fn key_inserts(
        &self,
    ) -> Result<(rusqlite::CachedStatement<'_>, rusqlite::CachedStatement<'_>)> {
        let pools = self
            .tx
            .prepare_cached("INSERT INTO credit_pools (refill, refilled_at) VALUES (?1, ?2)")
            .map_err(|e| self.err(e))?;
        let keys = self
            .tx
            .prepare_cached(
                "INSERT INTO keys (id, secret_hash, name, description, owner, key_prefix, livemode, \
                 category, grp, scopes, deployment, allowed_models, allowed_ips, quota_total, \
                 quota_daily, quota_weekly, quota_monthly, rate_count, rate_unit, credit_limit, \
                 pool_id, created_at, expires_at, state, rotated_from, meta) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20, ?21, ?22, ?23, 'active', ?24, ?25)",
            )
            .map_err(|e| self.err(e))?;
        Ok((pools, keys))
    }

    /// Inserts one new key with the statements of [`Self::key_inserts`]: a new credit
    /// pool, or for a rotation its predecessor's.
    fn insert_one_key(
        &self,
        pools: &mut rusqlite::CachedStatement<'_>,
        keys: &mut rusqlite::CachedStatement<'_>,
        key: &NewKey,
    ) -> Result<()> {
        let pool_id: i64 = match &key.rotated_from {
            Some(from) => self
                .tx
                .query_row("SELECT pool_id FROM keys WHERE id = ?1", [from], |r| {
                    r.get(0)
                })
                .map_err(|e| self.err(e))?,
            None => {
                pools
                    .execute(params![
                        key.settings.refill.map(|r| r.to_string()),
                        key.refilled_at().map(to_millis),
                    ])
                    .map_err(|e| self.err(e))?;
                self.tx.last_insert_rowid()
            }
        };
        let s = &key.settings;
        keys.execute(params![
            key.id,
            &key.hash[..],
            s.name,
            s.description,
            s.owner,
            key.key_prefix,
            i64::from(key.mode == Mode::Live),
            s.category,
            s.group,
            to_json_list(&s.scopes),
            s.deployment,
            to_json_list(&s.allowed_models),
            to_json_list(&s.allowed_ips),
            count_to_sql(s.quotas.total),
            count_to_sql(s.quotas.daily),
            count_to_sql(s.quotas.weekly),
            count_to_sql(s.quotas.monthly),
            count_to_sql(s.rate_limit.map(|r| r.count)),
            s.rate_limit.map(|r| rate_unit_sql(r.unit)),
            count_to_sql(s.credit_limit),
            pool_id,
            to_millis(key.created_at),
            s.expires_at.map(to_millis),
            key.rotated_from,
            s.meta.stored(),
        ])
        .map(|_| ())
        .map_err(|e| sql_error(self.path, e))
    }

    /// Keys matching a fixed query (`sql` selects key columns with one parameter).
    fn keys_where(&self, sql: &str, value: &str) -> Result<Vec<KeyRecord>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([value], key_from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The request-log rows matching `query`: newest first (at most `query.limit`), or
    /// with `after`, every one after that rowid, oldest first.
    fn stream_requests(
        &self,
        query: &RequestQuery,
        after: Option<i64>,
        sink: &mut dyn FnMut(&RequestRow) -> io::Result<()>,
    ) -> Result<()> {
        let (sql, args) = select::requests(query, after, |n| format!("?{n}"));
        let mut stmt = self.tx.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter().map(sql_value)))
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let r = (|| -> rusqlite::Result<RequestRow> {
                Ok(RequestRow {
                    seq: row.get(0)?,
                    at: from_millis(row.get(1)?),
                    key_id: row.get(2)?,
                    key_name: row.get(3)?,
                    endpoint: row.get(4)?,
                    http_status: row.get::<_, i64>(5)?.clamp(0, 999) as u16,
                    code: row.get(6)?,
                    ip: row.get(7)?,
                    duration_ms: opt_count(row, 8)?,
                    credits: count(row, 9)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            sink(&r).map_err(StoreError::Sink)?;
        }
        Ok(())
    }
}

impl Txn for SqliteTxn<'_> {
    fn setting_pairs(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT name, value FROM settings ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn settings(&self) -> Result<Settings> {
        let Some(cache) = self.settings_cache else {
            return read_settings(self);
        };
        let version: i64 = self
            .with("PRAGMA data_version", |st| st.query_row([], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        if let Some((seen, settings)) = &*cache.borrow() {
            if *seen == version {
                return Ok(settings.clone());
            }
        }
        let settings = read_settings(self)?;
        *cache.borrow_mut() = Some((version, settings.clone()));
        Ok(settings)
    }

    fn set_setting(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        if let Some(cache) = self.settings_cache {
            cache.take();
        }
        let result = match value {
            Some(v) => self.tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, v],
            ),
            None => self
                .tx
                .execute("DELETE FROM settings WHERE name = ?1", [name]),
        };
        result.map(|_| ()).map_err(|e| self.err(e))
    }

    fn insert_key(&mut self, key: &NewKey) -> Result<()> {
        let (mut pools, mut keys) = self.key_inserts()?;
        self.insert_one_key(&mut pools, &mut keys, key)
    }

    fn expect_new_keys(&mut self, keys: usize) -> Result<()> {
        // Building an index once from its sorted rows beats inserting each row into it
        // (a seek into the b-tree each) only when the new rows outnumber those it
        // holds; a largest seq bounds how many a table holds.
        let new = i64::try_from(keys).unwrap_or(i64::MAX);
        for (name, table) in DEFERRABLE_INDEXES {
            let run = |tx: &Self| -> rusqlite::Result<Option<String>> {
                let held: i64 = tx.tx.query_row(
                    &format!("SELECT coalesce(max(seq), 0) FROM {table}"),
                    [],
                    |r| r.get(0),
                )?;
                if held > new {
                    return Ok(None);
                }
                // None once dropped: a second call defers nothing twice.
                let create: Option<String> = tx
                    .tx
                    .query_row(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()?;
                if create.is_some() {
                    tx.tx.execute_batch(&format!("DROP INDEX {name}"))?;
                }
                Ok(create)
            };
            if let Some(create) = run(self).map_err(|e| self.err(e))? {
                self.deferred.borrow_mut().push(create);
            }
        }
        Ok(())
    }

    fn insert_keys(&mut self, keys: &[&NewKey]) -> Result<()> {
        // The prepared inserts are reused for every key of the batch.
        let (mut pools, mut stmt) = self.key_inserts()?;
        keys.iter()
            .try_for_each(|key| self.insert_one_key(&mut pools, &mut stmt, key))
    }

    fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>> {
        Ok(self
            .keys_where(
                concat!(select_keys!(), " WHERE k.id = ?1 ORDER BY k.seq"),
                id,
            )?
            .into_iter()
            .next())
    }

    fn keys_by_name(&self, name: &str) -> Result<Vec<KeyRecord>> {
        self.keys_where(
            concat!(select_keys!(), " WHERE k.name = ?1 ORDER BY k.seq"),
            name,
        )
    }

    fn keys_by_prefix(&self, prefix: &str) -> Result<Vec<KeyRecord>> {
        self.keys_where(
            concat!(select_keys!(), " WHERE k.key_prefix = ?1 ORDER BY k.seq"),
            prefix,
        )
    }

    fn values_starting(&self, column: Starting, typed: &str, limit: u32) -> Result<Vec<String>> {
        // BINARY comparisons on the indexed column: a range of its index (keys_name,
        // the id's UNIQUE index), in the order clap's case-sensitive prefix test keeps.
        let sql = match column {
            Starting::Name => {
                "SELECT DISTINCT name FROM keys WHERE name >= ?1 AND name < ?2 \
                 ORDER BY name LIMIT ?3"
            }
            Starting::Id => "SELECT id FROM keys WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
        };
        let values: Vec<String> = self
            .tx
            .prepare_cached(sql)
            .and_then(|mut st| {
                st.query_map(params![typed, prefix_bound(typed), i64::from(limit)], |r| {
                    r.get(0)
                })?
                .collect()
            })
            .map_err(|e| self.err(e))?;
        Ok(values)
    }

    fn name_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        // The SQL form of KeyRecord::holds_name.
        self.tx
            .prepare_cached(
                "SELECT id FROM keys WHERE name = ?1 AND rotated_to IS NULL \
                 AND state != 'revoked' AND (expires_at IS NULL OR expires_at > ?2) \
                 ORDER BY seq LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![name, to_millis(now)], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    fn count_limited(&self, now: DateTime<Utc>) -> Result<u64> {
        self.tx
            .query_row(
                "SELECT count(*) FROM keys WHERE state = 'disabled' \
                 OR (state = 'active' AND (expires_at IS NULL OR expires_at > ?1))",
                [to_millis(now)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn keys_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<KeyRecord>> {
        let limit = i64::from(limit);
        let mut stmt = self
            .tx
            .prepare_cached(match after {
                None => concat!(
                    select_keys!(),
                    " WHERE k.state != 'revoked' ORDER BY k.seq LIMIT ?1"
                ),
                // A cursor that names no key (never, within one snapshot) ends the scan.
                Some(_) => concat!(
                    select_keys!(),
                    " WHERE k.state != 'revoked' AND k.seq > (SELECT seq FROM keys WHERE id = ?2) \
                     ORDER BY k.seq LIMIT ?1"
                ),
            })
            .map_err(|e| self.err(e))?;
        let rows = match after {
            None => stmt.query_map(params![limit], key_from_row),
            Some(id) => stmt.query_map(params![limit, id], key_from_row),
        }
        .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn for_each_key(
        &self,
        query: &KeyQuery,
        now: DateTime<Utc>,
        sink: &mut dyn FnMut(&KeyRecord) -> io::Result<()>,
    ) -> Result<StatusCounts> {
        let (sql, args) = select::keys(query, now, &KEY_DIALECT);
        let mut stmt = self.tx.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter().map(sql_value)))
            .map_err(|e| self.err(e))?;
        let mut counts = StatusCounts::default();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let key = key_from_row(row).map_err(|e| self.err(e))?;
            counts.add(key.status(now));
            sink(&key).map_err(StoreError::Sink)?;
        }
        Ok(counts)
    }

    fn usage_windows(
        &self,
        key: &KeyRecord,
        starts: &[DateTime<Utc>],
    ) -> Result<Vec<UsageFigures>> {
        // Today's totals come with the record; each window is one seek for the totals
        // just before it. Every figure is within 0..=MAX_COUNT, so i64 cannot overflow.
        let key_id = key.id.as_str();
        let (events, accepted, credits) = (
            key.events_total as i64,
            key.accepted_total as i64,
            key.credits_total as i64,
        );
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT n, accepted_cum, accepted, credits_cum, cost FROM key_events \
                 WHERE key_id = ?1 AND at > ?2 ORDER BY at, n LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(starts.len());
        for start in starts {
            let first: Option<[i64; 5]> = stmt
                .query_row(params![key_id, to_millis(*start)], |r| {
                    let c = |i| count(r, i).map(|n| n as i64);
                    Ok([c(0)?, c(1)?, c(2)?, c(3)?, c(4)?])
                })
                .optional()
                .map_err(|e| sql_error(self.path, e))?;
            out.push(match first {
                None => UsageFigures::default(),
                Some([n, acc_cum, acc, cr_cum, cost]) => {
                    // Totals now minus totals just before the first request in the window.
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
        // The lineage's total comes with the record; each window is one seek, all in
        // one statement.
        let total = key.pool_accepted_total as i64;
        let Some(sql) = starts
            .len()
            .checked_sub(1)
            .and_then(|i| POOL_WINDOWS_SQL.get(i))
        else {
            return Ok(Vec::new());
        };
        let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(starts.len() + 1);
        let millis: Vec<i64> = starts.iter().map(|s| to_millis(*s)).collect();
        params.push(&key.id);
        params.extend(millis.iter().map(|m| m as &dyn rusqlite::ToSql));
        let firsts = self
            .with(sql, |st| {
                st.query_row(params.as_slice(), |r| {
                    (0..starts.len())
                        .map(|i| r.get::<_, Option<i64>>(i))
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        Ok(match firsts {
            // The key row is gone (not in a verification, which holds it): nothing counted.
            None => vec![0; starts.len()],
            Some(firsts) => firsts
                .into_iter()
                .map(|first| first.map_or(0, |n| clamp_stored(total - (n - 1))))
                .collect(),
        })
    }

    fn usage_by_day(
        &self,
        key_id: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, UsageFigures)>> {
        let sql = match key_id {
            Some(_) => {
                "SELECT day, accepted, rejected, credits FROM usage_days \
                 WHERE key_id = ?3 AND day BETWEEN ?1 AND ?2 ORDER BY day"
            }
            None => {
                // total(): a float that cannot overflow as sum() would; read clamped.
                "SELECT day, total(accepted), total(rejected), total(credits) FROM usage_days \
                 WHERE day BETWEEN ?1 AND ?2 AND ?3 IS NULL GROUP BY day ORDER BY day"
            }
        };
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![from_day, to_day, key_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    UsageFigures {
                        accepted: count(r, 1)?,
                        rejected: count(r, 2)?,
                        credits: count(r, 3)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>> {
        self.key_to_verify(hash, true)
    }

    fn key_to_verify(&self, hash: &[u8; 32], recording: bool) -> Result<Option<KeyRecord>> {
        let sql = concat!(select_key_stored!(), " WHERE k.secret_hash = ?1");
        let found = self
            .with(sql, |st| {
                st.query_row([&hash[..]], key_with_heads).optional()
            })
            .map_err(|e| self.err(e))?;
        match found {
            // One statement fewer to prepare for a one-shot `verify --no-record`.
            Some(key) if recording => self
                .with_newest_event(key)
                .map(Some)
                .map_err(|e| self.err(e)),
            found => Ok(found),
        }
    }

    fn keys_by_hashes(&self, hashes: &[[u8; 32]]) -> Result<Vec<([u8; 32], KeyRecord)>> {
        // In-process: one cached statement, an index seek per hash, is what a batch
        // statement would do too.
        let mut found = Vec::new();
        for hash in hashes {
            if let Some(key) = self.key_by_hash(hash)? {
                found.push((*hash, key));
            }
        }
        Ok(found)
    }

    fn key_prefixes(&self) -> Result<Vec<String>> {
        self.tx
            .prepare_cached(
                "SELECT DISTINCT substr(key_prefix, 1, instr(key_prefix, '_') - 1) FROM keys \
                 WHERE instr(key_prefix, '_') > 1",
            )
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.err(e))
    }

    fn ip_blocked_until(&self, ip: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        self.with(
            "SELECT until FROM ip_blocks WHERE ip = ?1 AND until > ?2",
            |st| {
                st.query_row(params![ip, to_millis(now)], |r| r.get::<_, i64>(0))
                    .optional()
            },
        )
        .map(|t| t.map(from_millis))
        .map_err(|e| self.err(e))
    }

    fn auth_failures_since(&self, ip: &str, since: DateTime<Utc>) -> Result<u64> {
        self.with(
            "SELECT count(*) FROM auth_failures WHERE ip = ?1 AND at > ?2",
            |st| st.query_row(params![ip, to_millis(since)], |r| r.get::<_, i64>(0)),
        )
        .map(|n| n.max(0) as u64)
        .map_err(|e| self.err(e))
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
        let run = |tx: &Self| -> rusqlite::Result<bool> {
            // Attempts that left the window and blocks that ended no longer matter (from
            // any IP: the tables stay small under attacks from many addresses).
            tx.with("DELETE FROM auth_failures WHERE at <= ?1", |st| {
                st.execute(params![start])
            })?;
            tx.with("DELETE FROM ip_blocks WHERE until <= ?1", |st| {
                st.execute(params![now_ms])
            })?;
            tx.with("INSERT INTO auth_failures (ip, at) VALUES (?1, ?2)", |st| {
                st.execute(params![ip, now_ms])
            })?;
            let count: i64 = tx.with(
                "SELECT count(*) FROM auth_failures WHERE ip = ?1 AND at > ?2",
                |st| st.query_row(params![ip, start], |r| r.get(0)),
            )?;
            if (count.max(0) as u64) < limit {
                return Ok(false);
            }
            tx.with(
                "INSERT INTO ip_blocks (ip, until) VALUES (?1, ?2) \
                 ON CONFLICT (ip) DO UPDATE SET until = max(until, excluded.until)",
                |st| st.execute(params![ip, now_ms + block.num_milliseconds()]),
            )?;
            Ok(true)
        };
        run(self).map_err(|e| self.err(e))
    }

    fn record_request(&mut self, r: &RequestRecord) -> Result<()> {
        let at = to_millis(r.at);
        let day = at.div_euclid(86_400_000);
        let accepted = i64::from(r.accepted);
        let credits = count_to_sql(Some(r.credits)).unwrap_or(0);
        let run = |tx: &Self| -> rusqlite::Result<()> {
            tx.with(
                "INSERT INTO requests (at, key_id, key_name, endpoint, http_status, code, ip, \
                 duration_ms, credits) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                |st| {
                    st.execute(params![
                        at,
                        r.key.as_ref().map(|k| &k.0),
                        r.key.as_ref().map(|k| &k.1),
                        r.endpoint,
                        i64::from(r.http_status),
                        r.code,
                        r.ip,
                        count_to_sql(r.duration_ms),
                        credits,
                    ])
                },
            )?;
            tx.with(concat!(
                    "INSERT INTO usage_days (key_id, day, accepted, rejected, credits) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key_id, day) DO UPDATE SET accepted = ",
                    saturating_add!("accepted", "excluded.accepted"),
                    ", rejected = ",
                    saturating_add!("rejected", "excluded.rejected"),
                    ", credits = ",
                    saturating_add!("credits", "excluded.credits"),
                ), |st| st.execute(params![
                r.key.as_ref().map_or("", |k| k.0.as_str()),
                day,
                accepted,
                1 - accepted,
                credits
            ]))?;
            let Some((key_id, _)) = &r.key else {
                return Ok(());
            };
            // The key's and its lineage's running totals as the verification read them
            // under this lock, or else read now (under the same lock), advanced in Rust.
            let read;
            let before = match &r.totals {
                Some(t) => t,
                None => {
                    read = tx.read_totals(key_id)?;
                    &read
                }
            };
            let (cost, ip) = (r.credits, r.ip.as_deref());
            let t = match r.refill {
                None => before.after(r.accepted, cost, r.at, ip),
                // A refilled pool is charged from its balance as of this request.
                Some(b) => RunningTotals {
                    pool_credits_used: b.used,
                    ..before.clone()
                }
                .after(r.accepted, cost, r.at, ip),
            };
            let n = t.events as i64;
            let event_at = t.last_event_at.map_or(at, to_millis);
            // The ledger row carries the key's totals after this request: its newest
            // row is where readers find them (migration 009). OR IGNORE: a counter
            // stopped at the ceiling repeats its n; the ledger then misses a row rather
            // than failing the request.
            tx.with(
                "INSERT OR IGNORE INTO key_events (key_id, at, n, accepted_cum, credits_cum, \
                 accepted, cost, rejected_cum, used_at, used_ip) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                |st| {
                    st.execute(params![
                        key_id,
                        event_at,
                        n,
                        t.accepted as i64,
                        t.credits as i64,
                        accepted,
                        credits,
                        t.rejected as i64,
                        t.last_used_at.map(to_millis),
                        t.last_used_ip,
                    ])
                },
            )?;
            // Every 64th request, drop this key's events older than the longest window
            // (never the row just written, the newest).
            if n % 64 == 0 {
                tx.with(
                    "DELETE FROM key_events WHERE key_id = ?1 AND at <= ?2",
                    |st| st.execute(params![key_id, event_at - LONGEST_WINDOW_MS]),
                )?;
            }
            if accepted == 0 {
                return Ok(());
            }
            // The lineage's credits, total and window ledger: what quotas, rate limits
            // and credit limits of every key in the rotation chain count.
            let pool_at = t.pool_last_event_at.map_or(at, to_millis);
            let pool_n = t.pool_accepted as i64;
            let used = t.pool_credits_used as i64;
            match r.refill {
                None => tx.with(
                    "UPDATE credit_pools SET credits_used = ?2, accepted_total = ?3, \
                     last_event_at = ?4 WHERE id = ?1",
                    |st| st.execute(params![t.pool_id, used, pool_n, pool_at]),
                )?,
                Some(b) => tx.with(
                    "UPDATE credit_pools SET credits_used = ?2, accepted_total = ?3, \
                     last_event_at = ?4, refilled_at = ?5 WHERE id = ?1",
                    |st| {
                        st.execute(params![
                            t.pool_id,
                            used,
                            pool_n,
                            pool_at,
                            b.refilled_at.map(to_millis)
                        ])
                    },
                )?,
            };
            tx.with(
                "INSERT OR IGNORE INTO pool_events (pool_id, at, n) VALUES (?1, ?2, ?3)",
                |st| st.execute(params![t.pool_id, pool_at, pool_n]),
            )?;
            if pool_n % 64 == 0 {
                tx.with(
                    "DELETE FROM pool_events WHERE pool_id = ?1 AND at <= ?2",
                    |st| st.execute(params![t.pool_id, pool_at - LONGEST_WINDOW_MS]),
                )?;
            }
            Ok(())
        };
        run(self).map_err(|e| self.err(e))
    }

    fn for_each_request(
        &self,
        query: &RequestQuery,
        sink: &mut dyn FnMut(&RequestRow) -> io::Result<()>,
    ) -> Result<()> {
        self.stream_requests(query, None, sink)
    }

    fn log_cursor_now(&self) -> Result<LogCursor> {
        // The rowid is the position: see LogCursor for why that suffices on SQLite.
        self.tx
            .query_row("SELECT coalesce(max(seq), 0) FROM requests", [], |r| {
                r.get(0)
            })
            .map(LogCursor::at)
            .map_err(|e| self.err(e))
    }

    fn requests_after(
        &self,
        cursor: &LogCursor,
        query: &RequestQuery,
        sink: &mut dyn FnMut(&RequestRow) -> io::Result<()>,
    ) -> Result<LogCursor> {
        // The end first, in the same snapshot as the rows: every row read is at or
        // below it.
        let end = self.log_cursor_now()?;
        // Rowids are max + 1 (no AUTOINCREMENT), so a log pruned empty numbers its
        // next rows from 1 again: an end below the cursor means that happened, and
        // every row there is new.
        let from = if end.end < cursor.end { 0 } else { cursor.end };
        self.stream_requests(query, Some(from), sink)?;
        Ok(end)
    }

    fn prune_requests(&mut self, before: DateTime<Utc>) -> Result<u64> {
        self.with("DELETE FROM requests WHERE at < ?1", |st| {
            st.execute([to_millis(before)])
        })
        .map(|n| n as u64)
        .map_err(|e| self.err(e))
    }

    fn update_key(&mut self, key: &KeyRecord) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "UPDATE keys SET name = ?2, description = ?3, owner = ?4, category = ?5, grp = ?6, \
                 scopes = ?7, deployment = ?8, allowed_models = ?9, allowed_ips = ?10, \
                 quota_total = ?11, quota_daily = ?12, quota_weekly = ?13, quota_monthly = ?14, \
                 rate_count = ?15, rate_unit = ?16, credit_limit = ?17, expires_at = ?18, \
                 state = ?19, revoked_at = ?20, revoke_reason = ?21, rotated_to = ?22, \
                 meta = ?23 WHERE id = ?1",
            )
            .map_err(|e| sql_error(self.path, e))?;
        let changed = stmt
            .execute(params![
                key.id,
                key.settings.name,
                key.settings.description,
                key.settings.owner,
                key.settings.category,
                key.settings.group,
                to_json_list(&key.settings.scopes),
                key.settings.deployment,
                to_json_list(&key.settings.allowed_models),
                to_json_list(&key.settings.allowed_ips),
                count_to_sql(key.settings.quotas.total),
                count_to_sql(key.settings.quotas.daily),
                count_to_sql(key.settings.quotas.weekly),
                count_to_sql(key.settings.quotas.monthly),
                count_to_sql(key.settings.rate_limit.map(|r| r.count)),
                key.settings.rate_limit.map(|r| rate_unit_sql(r.unit)),
                count_to_sql(key.settings.credit_limit),
                key.settings.expires_at.map(to_millis),
                key.state.as_str(),
                key.revoked_at.map(to_millis),
                key.revoke_reason,
                key.rotated_to,
                key.settings.meta.stored(),
            ])
            .map_err(|e| sql_error(self.path, e))?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::new(
                ErrorKind::NotFound,
                self.path,
                format!("key {} vanished during the update", key.id),
            ))
        }
    }

    fn credit_balance_for_update(&mut self, key_id: &str) -> Result<Option<Balance>> {
        // The write transaction (BEGIN IMMEDIATE) holds the whole store.
        self.tx
            .prepare_cached(
                "SELECT p.credits_used, p.refilled_at FROM credit_pools p \
                 JOIN keys k ON k.pool_id = p.id WHERE k.id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([key_id], |r| {
                    Ok(Balance {
                        used: count(r, 0)?,
                        refilled_at: opt_time(r, 1)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    fn set_refill(
        &mut self,
        key_id: &str,
        refill: Option<&Refill>,
        balance: Balance,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE credit_pools SET refill = ?2, credits_used = ?3, refilled_at = ?4 \
                 WHERE id = (SELECT pool_id FROM keys WHERE id = ?1)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    key_id,
                    refill.map(|r| r.to_string()),
                    count_to_sql(Some(balance.used)),
                    balance.refilled_at.map(to_millis),
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn delete_key(&mut self, id: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM keys WHERE id = ?1", [id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn set_imported_last_use(&mut self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.tx
            .execute(
                "UPDATE keys SET last_used_at = ?2 WHERE id = ?1",
                params![id, to_millis(at)],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn has_requests(&self, key_id: &str) -> Result<bool> {
        self.tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM key_events WHERE key_id = ?1) \
                 OR EXISTS (SELECT 1 FROM keys WHERE id = ?1 AND events_total > 0) \
                 OR EXISTS (SELECT 1 FROM requests WHERE key_id = ?1)",
                [key_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn for_each_audit(
        &self,
        query: &AuditQuery,
        sink: &mut dyn FnMut(&StoredAuditEvent) -> io::Result<()>,
    ) -> Result<()> {
        let (sql, args) = select::audit(query, |n| format!("?{n}"));
        let mut stmt = self.tx.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter().map(sql_value)))
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let stored = (|| -> rusqlite::Result<StoredAuditEvent> {
                Ok(StoredAuditEvent {
                    event: AuditEvent {
                        seq: row.get(0)?,
                        at_ms: row.get(1)?,
                        actor: row.get(2)?,
                        action: row.get(3)?,
                        key_id: row.get(4)?,
                        details: row.get(5)?,
                    },
                    prev_hash: row.get(6)?,
                    hash: row.get(7)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            sink(&stored).map_err(StoreError::Sink)?;
        }
        Ok(())
    }

    fn audit_head_for_append(&mut self) -> Result<Option<AuditHead>> {
        // The write transaction (BEGIN IMMEDIATE) holds the store's lock: the head stays
        // the head until commit.
        self.tx
            .prepare_cached("SELECT seq, hash, at FROM audit_events ORDER BY seq DESC LIMIT 1")
            .and_then(|mut st| {
                st.query_row([], |r| {
                    let hash: Vec<u8> = r.get(1)?;
                    Ok(AuditHead::from_stored(r.get(0)?, &hash, r.get(2)?))
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    fn insert_audit(&mut self, stored: &StoredAuditEvent) -> Result<()> {
        let event = &stored.event;
        self.tx
            .prepare_cached(
                "INSERT INTO audit_events (seq, at, actor, action, key_id, details, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    event.seq,
                    event.at_ms,
                    event.actor,
                    event.action,
                    event.key_id,
                    event.details,
                    stored.prev_hash,
                    stored.hash
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn store_figures(&self, rate_start: Option<DateTime<Utc>>) -> Result<StoreFigures> {
        // One step: the ledger's last row (the counter) and one seek for the window's
        // first row.
        let start = rate_start.map(to_millis);
        static FIGURES: &str = "SELECT at, n, credits, \
             (SELECT n FROM store_events WHERE ?1 IS NOT NULL AND at > ?1 ORDER BY at, n LIMIT 1) \
             FROM store_events ORDER BY at DESC, n DESC LIMIT 1";
        let row = self
            .with(FIGURES, |st| {
                st.query_row([start], |r| {
                    Ok((store_tail(r)?, r.get::<_, Option<i64>>(3)?))
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        let Some((tail, first)) = row else {
            self.store_tail.set(Tail::Empty);
            return Ok(StoreFigures::default());
        };
        self.store_tail.set(Tail::Row(tail));
        Ok(StoreFigures {
            credits_used: tail.credits,
            // Every accepted request numbers its row one more than the last.
            rate_window: first.map_or(0, |n| {
                clamp_stored((tail.n as i64).saturating_sub(n.saturating_sub(1)))
            }),
        })
    }

    fn record_store_usage(&mut self, at: DateTime<Utc>, credits: u64, _ledger: bool) -> Result<()> {
        // The counter is the ledger's last row, so a charge writes one page (a separate
        // counter row was a second page in every commit). Rows are written with or
        // without a store rate limit (`ledger`): the counter is the last of them.
        let at = to_millis(at);
        let last = match self.store_tail.get() {
            Tail::Unread => self.read_store_tail().map_err(|e| self.err(e))?,
            Tail::Empty => None,
            Tail::Row(tail) => Some(tail),
        };
        let next = match last {
            None => StoreTail {
                at,
                n: 1,
                credits: credits.min(MAX_COUNT),
            },
            Some(last) => StoreTail {
                at: at.max(last.at),
                n: (last.n + 1).min(MAX_COUNT),
                credits: last.credits.saturating_add(credits).min(MAX_COUNT),
            },
        };
        let run = |tx: &Self| -> rusqlite::Result<()> {
            // OR REPLACE: a counter stopped at its ceiling renumbers no row.
            tx.with(
                "INSERT OR REPLACE INTO store_events (at, n, credits) VALUES (?1, ?2, ?3)",
                |st| st.execute(params![next.at, next.n as i64, next.credits as i64]),
            )?;
            // About every 64th request (by its time, so one-shot processes prune too),
            // drop the rows no rate window reaches any more. The new last row is newer
            // than the cut, so the counter stays.
            if at % 64 == 0 {
                tx.with("DELETE FROM store_events WHERE at <= ?1", |st| {
                    st.execute(params![at - STORE_RATE_WINDOW_MS])
                })?;
            }
            Ok(())
        };
        run(self).map_err(|e| self.err(e))?;
        self.store_tail.set(Tail::Row(next));
        Ok(())
    }

    fn reset_store_usage(&mut self, now: DateTime<Utc>, credits: bool, rate: bool) -> Result<()> {
        self.store_tail.set(Tail::Unread);
        // The credits counted so far, unless they are counted anew below.
        let kept = if credits {
            0
        } else {
            self.read_store_tail()
                .map_err(|e| self.err(e))?
                .map_or(0, |t| t.credits)
        };
        let run = |tx: &Transaction| -> rusqlite::Result<()> {
            if rate {
                tx.execute("DELETE FROM store_events", [])?;
                tx.execute(
                    "INSERT INTO store_events (at, n) SELECT at, row_number() OVER (ORDER BY at, seq) \
                     FROM requests WHERE code = 'valid' AND at > ?1",
                    [to_millis(now) - STORE_RATE_WINDOW_MS],
                )?;
            }
            let used: i64 = if credits {
                // total(): a float that cannot overflow as sum() would.
                tx.query_row(
                    "SELECT CAST(min(total(max(credits, 0)), 9007199254740991) AS INTEGER) \
                     FROM usage_days",
                    [],
                    |r| r.get(0),
                )?
            } else {
                kept as i64
            };
            // The counter goes on the last row; with no row, on a row of its own
            // (n 0, at 0: before every rate window).
            let updated = tx.execute(
                "UPDATE store_events SET credits = ?1 WHERE (at, n) = \
                 (SELECT at, n FROM store_events ORDER BY at DESC, n DESC LIMIT 1)",
                [used],
            )?;
            if updated == 0 {
                tx.execute(
                    "INSERT INTO store_events (at, n, credits) VALUES (0, 0, ?1)",
                    [used],
                )?;
            }
            Ok(())
        };
        run(&self.tx).map_err(|e| self.err(e))
    }

    fn dump(&self, sink: &mut dyn FnMut(Table, &[Value]) -> Result<()>) -> Result<()> {
        for table in Table::ALL {
            let columns: Vec<&str> = table.columns().iter().map(|(c, _)| *c).collect();
            let sql = match table {
                // The counter PostgreSQL keeps in a row of its own is the ledger's last
                // row here (migration 008); the row at 0 only carries it.
                Table::StoreUsage => "SELECT 1, credits, n, nullif(at, 0) FROM store_events \
                     ORDER BY at DESC, n DESC LIMIT 1"
                    .to_string(),
                Table::StoreEvents => {
                    "SELECT at, n FROM store_events WHERE n > 0 ORDER BY at, n".to_string()
                }
                // A key's running totals as it reads them: from its ledger's newest row
                // when that row carries them (migration 009).
                Table::Keys => format!(
                    "SELECT {} FROM keys k{} ORDER BY k.seq",
                    columns
                        .iter()
                        .map(|c| match *c {
                            "requests_total" =>
                                key_figure!("requests_total", "accepted_cum").into(),
                            "events_total" => key_figure!("events_total", "n").into(),
                            "rejected_total" =>
                                key_figure!("rejected_total", "rejected_cum").into(),
                            "credits_total" => key_figure!("credits_total", "credits_cum").into(),
                            "last_event_at" => key_figure!("last_event_at", "at").into(),
                            "last_used_at" => key_figure!("last_used_at", "used_at").into(),
                            "last_used_ip" => key_figure!("last_used_ip", "used_ip").into(),
                            other => format!("k.{other}"),
                        })
                        .collect::<Vec<String>>()
                        .join(", "),
                    newest_key_event!()
                ),
                _ => format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    columns.join(", "),
                    table.name(),
                    table.order().join(", ")
                ),
            };
            let mut stmt = self.tx.prepare(&sql).map_err(|e| self.err(e))?;
            let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
            let mut values = Vec::with_capacity(columns.len());
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                values.clear();
                for i in 0..columns.len() {
                    values.push(match row.get_ref(i).map_err(|e| self.err(e))? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::Integer(n),
                        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        // STRICT tables hold no REAL in an INTEGER column.
                        ValueRef::Real(x) => Value::Integer(x as i64),
                    });
                }
                sink(table, &values)?;
            }
        }
        Ok(())
    }

    fn load(&mut self, table: Table, rows: &[Vec<Value>]) -> Result<()> {
        let columns: Vec<&str> = table.columns().iter().map(|(c, _)| *c).collect();
        let slots: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let sql = match table {
            // (id, credits_used, accepted_total, last_event_at): the counter becomes
            // the ledger's last row, whichever of the two tables comes first.
            Table::StoreUsage => {
                self.store_tail.set(Tail::Unread);
                "INSERT INTO store_events (at, n, credits) \
                 SELECT coalesce(?4, 0), ?3, ?2 WHERE ?1 = 1 \
                 ON CONFLICT (at, n) DO UPDATE SET credits = excluded.credits"
                    .to_string()
            }
            Table::StoreEvents => {
                self.store_tail.set(Tail::Unread);
                "INSERT INTO store_events (at, n) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
                    .to_string()
            }
            _ => format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name(),
                columns.join(", "),
                slots.join(", ")
            ),
        };
        let mut stmt = self.tx.prepare_cached(&sql).map_err(|e| self.err(e))?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.iter().map(sql_value)))
                .map_err(|e| sql_error(self.path, e))?;
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let SqliteTxn {
            held,
            tx,
            path,
            deferred,
            ..
        } = *self;
        drop(held);
        // One sort each, inside the transaction: a failure rolls the rows back too.
        for create in deferred.into_inner() {
            tx.execute_batch(&create).map_err(|e| sql_error(path, e))?;
        }
        tx.commit().map_err(|e| sql_error(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::migrate::migrate;
    use rusqlite::Connection;

    #[test]
    fn saturating_sql_stops_at_the_same_ceiling_as_the_parsers() {
        assert_eq!(
            saturating_add!("c", "1"),
            format!("min(max(c, 0) + 1, {MAX_COUNT})")
        );
    }

    #[test]
    fn insert_keys_stores_every_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:"), None).unwrap();
        let keys: Vec<NewKey> = (0..3)
            .map(|i| NewKey {
                id: format!("key_{i:012}"),
                hash: [i; 32],
                key_prefix: Some("sk_live_abcd".into()),
                mode: Mode::Live,
                created_at: from_millis(1_700_000_000_000),
                settings: KeySettings {
                    name: format!("k{i}"),
                    owner: "o".into(),
                    rate_limit: Some(RateLimit {
                        count: 5,
                        unit: RateUnit::Minute,
                    }),
                    ..KeySettings::default()
                },
                rotated_from: None,
            })
            .collect();
        let mut txn = SqliteTxn::begin(
            &conn,
            TransactionBehavior::Deferred,
            Path::new(":memory:"),
            None,
            None,
        )
        .unwrap();
        txn.insert_keys(&keys.iter().collect::<Vec<_>>()).unwrap();
        for key in &keys {
            let stored = txn.key_by_id(&key.id).unwrap().unwrap();
            assert_eq!(stored, KeyRecord::from_new(key, 0));
        }
    }

    #[test]
    fn a_lineage_window_is_one_primary_key_seek() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:"), None).unwrap();
        for (i, sql) in POOL_WINDOWS_SQL.iter().enumerate() {
            let mut params: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new("key_x")];
            params.extend((0..=i).map(|_| Box::new(0i64) as Box<dyn rusqlite::ToSql>));
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let seeks = plan
                .iter()
                .filter(|step| step.contains("pool_events USING PRIMARY KEY (pool_id=? AND at>?)"))
                .count();
            assert_eq!(seeks, i + 1, "one seek per window: {plan:?}");
            assert!(
                !plan
                    .iter()
                    .any(|step| step.contains("TEMP B-TREE") || step.contains("SCAN")),
                "{plan:?}"
            );
        }
    }
}
