//! A store's rows as plain values, for copying a whole store verbatim between backends
//! (`copy`, and `backup` from PostgreSQL): every table keyctl keeps, its columns in
//! the order both backends declare them, tables in dependency order (a key's credit
//! pool before the key). Each backend dumps and loads these rows with
//! [`super::Txn::dump`] and [`super::Txn::load`]; nothing is interpreted on the way,
//! so counters, hashes and times arrive exactly as stored.

/// One stored value: SQLite's storage classes minus REAL (no keyctl column holds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// What a column holds (besides NULL where it is nullable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Text,
    Blob,
}

/// A table of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Settings,
    CreditPools,
    Keys,
    Requests,
    KeyEvents,
    PoolEvents,
    UsageDays,
    AuthFailures,
    IpBlocks,
    AuditEvents,
    StoreUsage,
    StoreEvents,
}

use Kind::{Blob as B, Integer as I, Text as T};

impl Table {
    /// Every table, each after those it refers to.
    pub const ALL: [Table; 12] = [
        Table::Settings,
        Table::CreditPools,
        Table::Keys,
        Table::Requests,
        Table::KeyEvents,
        Table::PoolEvents,
        Table::UsageDays,
        Table::AuthFailures,
        Table::IpBlocks,
        Table::AuditEvents,
        Table::StoreUsage,
        Table::StoreEvents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Settings => "settings",
            Table::CreditPools => "credit_pools",
            Table::Keys => "keys",
            Table::Requests => "requests",
            Table::KeyEvents => "key_events",
            Table::PoolEvents => "pool_events",
            Table::UsageDays => "usage_days",
            Table::AuthFailures => "auth_failures",
            Table::IpBlocks => "ip_blocks",
            Table::AuditEvents => "audit_events",
            Table::StoreUsage => "store_usage",
            Table::StoreEvents => "store_events",
        }
    }

    /// The columns, in declaration order.
    pub fn columns(self) -> &'static [(&'static str, Kind)] {
        match self {
            Table::Settings => &[("name", T), ("value", T)],
            Table::CreditPools => &[
                ("id", I),
                ("credits_used", I),
                ("accepted_total", I),
                ("last_event_at", I),
                ("refill", T),
                ("refilled_at", I),
            ],
            Table::Keys => &[
                ("seq", I),
                ("id", T),
                ("secret_hash", B),
                ("name", T),
                ("description", T),
                ("owner", T),
                ("key_prefix", T),
                ("livemode", I),
                ("category", T),
                ("grp", T),
                ("scopes", T),
                ("deployment", T),
                ("allowed_models", T),
                ("allowed_ips", T),
                ("quota_total", I),
                ("quota_daily", I),
                ("quota_weekly", I),
                ("quota_monthly", I),
                ("rate_count", I),
                ("rate_unit", T),
                ("credit_limit", I),
                ("pool_id", I),
                ("requests_total", I),
                ("created_at", I),
                ("expires_at", I),
                ("last_used_at", I),
                ("last_used_ip", T),
                ("state", T),
                ("revoked_at", I),
                ("revoke_reason", T),
                ("rotated_from", T),
                ("rotated_to", T),
                ("events_total", I),
                ("rejected_total", I),
                ("credits_total", I),
                ("last_event_at", I),
                ("meta", T),
            ],
            Table::Requests => &[
                ("seq", I),
                ("at", I),
                ("key_id", T),
                ("key_name", T),
                ("endpoint", T),
                ("http_status", I),
                ("code", T),
                ("ip", T),
                ("duration_ms", I),
                ("credits", I),
            ],
            Table::KeyEvents => &[
                ("key_id", T),
                ("at", I),
                ("n", I),
                ("accepted_cum", I),
                ("credits_cum", I),
                ("accepted", I),
                ("cost", I),
            ],
            Table::PoolEvents => &[("pool_id", I), ("at", I), ("n", I)],
            Table::UsageDays => &[
                ("key_id", T),
                ("day", I),
                ("accepted", I),
                ("rejected", I),
                ("credits", I),
            ],
            Table::AuthFailures => &[("ip", T), ("at", I)],
            Table::IpBlocks => &[("ip", T), ("until", I)],
            Table::StoreUsage => &[
                ("id", I),
                ("credits_used", I),
                ("accepted_total", I),
                ("last_event_at", I),
            ],
            Table::StoreEvents => &[("at", I), ("n", I)],
            Table::AuditEvents => &[
                ("seq", I),
                ("at", I),
                ("actor", T),
                ("action", T),
                ("key_id", T),
                ("details", T),
                ("prev_hash", B),
                ("hash", B),
            ],
        }
    }

    /// The columns rows are dumped in order of (a unique order for every table but
    /// auth_failures, whose equal rows are interchangeable).
    pub fn order(self) -> &'static [&'static str] {
        match self {
            Table::Settings => &["name"],
            Table::CreditPools => &["id"],
            Table::Keys | Table::Requests | Table::AuditEvents => &["seq"],
            Table::KeyEvents => &["key_id", "at", "n"],
            Table::PoolEvents => &["pool_id", "at", "n"],
            Table::UsageDays => &["key_id", "day"],
            Table::AuthFailures => &["ip", "at"],
            Table::IpBlocks => &["ip"],
            Table::StoreUsage => &["id"],
            Table::StoreEvents => &["at", "n"],
        }
    }

    /// The column a backend numbers itself when a row gives none (an SQLite rowid, a
    /// PostgreSQL identity), which a load must move past the rows it wrote.
    pub fn numbered(self) -> Option<&'static str> {
        match self {
            Table::CreditPools => Some("id"),
            Table::Keys | Table::Requests => Some("seq"),
            _ => None,
        }
    }

    /// The kind of the column named `column`.
    pub fn kind_of(self, column: &str) -> Option<Kind> {
        self.columns()
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, kind)| *kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ordering_column_and_numbered_column_exists() {
        for table in Table::ALL {
            for column in table.order().iter().chain(table.numbered().iter()) {
                assert!(table.kind_of(column).is_some(), "{table:?}.{column}");
            }
        }
    }
}
