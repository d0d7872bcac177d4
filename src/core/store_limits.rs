//! Store-wide limits and group price multipliers (SPEC §8): the settings' forms,
//! the multiplier arithmetic (exact, in integers) and what one verification checks
//! against them.

use std::collections::BTreeMap;

use super::limits::{RateLimit, MAX_COUNT};

/// The settings name prefix of a group's multiplier (`group-multiplier.GROUP`).
pub const MULTIPLIER_PREFIX: &str = "group-multiplier.";

/// A multiplier is kept as a whole number of ten-thousandths (1.1 is 11000).
pub const MULTIPLIER_ONE: u64 = 10_000;

/// The largest multiplier: 10000 (a request costing 2^53 - 1 then still saturates, but
/// no price list needs more).
pub const MULTIPLIER_MAX: u64 = 10_000 * MULTIPLIER_ONE;

/// The group a `group-multiplier.GROUP` setting name is for.
pub fn multiplier_group(name: &str) -> Option<&str> {
    name.strip_prefix(MULTIPLIER_PREFIX)
}

/// Parses a multiplier: a positive decimal with at most 4 decimal places, from 0.0001
/// to 10000, into ten-thousandths. Zero is refused (a free request is `--cost 0`).
pub fn parse_multiplier(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let help = "use a decimal from 0.0001 to 10000 with at most 4 decimal places, like 1.5";
    let bad = |why: &str| format!("invalid multiplier '{text}': {why}; {help}");
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if t.starts_with('-') {
        return Err(bad("negative values are not allowed"));
    }
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(bad("not a decimal number"));
    }
    if frac.len() > 4 {
        return Err(bad("more than 4 decimal places"));
    }
    // Leading zeros aside, a whole part longer than 5 digits is above the maximum.
    let whole = whole.trim_start_matches('0');
    if whole.len() > 5 {
        return Err(bad("too large"));
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad("not a decimal number"))?
    };
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad("not a decimal number"))?
    };
    for _ in frac.len()..4 {
        f *= 10;
    }
    let m = w * MULTIPLIER_ONE + f;
    if m == 0 {
        Err(bad("must be more than 0"))
    } else if m > MULTIPLIER_MAX {
        Err(bad("too large"))
    } else {
        Ok(m)
    }
}

/// A multiplier's canonical text: no trailing zeros (`1.5`, `2`, `0.0001`).
pub fn format_multiplier(m: u64) -> String {
    let (w, f) = (m / MULTIPLIER_ONE, m % MULTIPLIER_ONE);
    if f == 0 {
        return w.to_string();
    }
    let frac = format!("{f:04}");
    format!("{w}.{}", frac.trim_end_matches('0'))
}

/// `cost × m / 10000`, rounded up, exactly (u128), stopping at 2^53 - 1: what a
/// request of a group with multiplier `m` (ten-thousandths) is charged.
pub fn multiplied_cost(cost: u64, m: u64) -> u64 {
    let product = u128::from(cost) * u128::from(m);
    let ceil = product.div_ceil(u128::from(MULTIPLIER_ONE));
    u64::try_from(ceil).map_or(MAX_COUNT, |c| c.min(MAX_COUNT))
}

/// The store-wide limits and multipliers in force (`config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreLimits {
    pub rate_limit: Option<RateLimit>,
    pub credit_limit: Option<u64>,
    /// Group name to multiplier (ten-thousandths); a group not here pays 1×.
    pub multipliers: BTreeMap<String, u64>,
}

impl StoreLimits {
    /// True when a store-wide rate or credit limit is set: verifications then read and
    /// update the store's counter.
    pub fn counted(&self) -> bool {
        self.rate_limit.is_some() || self.credit_limit.is_some()
    }

    /// The multiplier of a key's group, when one is set (None: 1×).
    pub fn multiplier_of(&self, group: Option<&str>) -> Option<u64> {
        if self.multipliers.is_empty() {
            return None;
        }
        group.and_then(|g| self.multipliers.get(g).copied())
    }
}

/// What one verification checks store-wide: the limits in force, the store's figures
/// before this request and the key's group's multiplier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreView {
    pub rate_limit: Option<RateLimit>,
    pub credit_limit: Option<u64>,
    /// Accepted requests of every key in the store-wide rate window.
    pub rate_window: u64,
    /// Credits charged store-wide (every key, all time).
    pub credits_used: u64,
    /// The key's group's multiplier in ten-thousandths (None: 1×).
    pub multiplier: Option<u64>,
}

impl StoreView {
    /// What a request of `cost` is charged.
    pub fn charge(&self, cost: u64) -> u64 {
        self.multiplier.map_or(cost, |m| multiplied_cost(cost, m))
    }
}

/// The store's figures a limited verification reads (`Txn::store_figures`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreFigures {
    pub rate_window: u64,
    pub credits_used: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_parse_to_ten_thousandths_and_back() {
        for (text, m, canonical) in [
            ("1.1", 11_000, "1.1"),
            ("1.50", 15_000, "1.5"),
            ("2", 20_000, "2"),
            ("0.0001", 1, "0.0001"),
            (".5", 5_000, "0.5"),
            ("10000", MULTIPLIER_MAX, "10000"),
            ("007.25", 72_500, "7.25"),
        ] {
            assert_eq!(parse_multiplier(text), Ok(m), "{text}");
            assert_eq!(format_multiplier(m), canonical);
        }
        for bad in [
            "0",
            "0.0000",
            "-1",
            "1.00001",
            "10000.0001",
            "abc",
            "",
            ".",
            "1e3",
            "1,5",
            "99999999",
        ] {
            assert!(parse_multiplier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn multiplied_costs_round_up_exactly() {
        assert_eq!(multiplied_cost(50, 11_000), 55);
        assert_eq!(multiplied_cost(1, 11_000), 2);
        assert_eq!(multiplied_cost(10, 15_000), 15);
        assert_eq!(multiplied_cost(3, 3_333), 1);
        assert_eq!(multiplied_cost(0, MULTIPLIER_MAX), 0);
        assert_eq!(multiplied_cost(7, MULTIPLIER_ONE), 7);
        assert_eq!(multiplied_cost(MAX_COUNT, MULTIPLIER_MAX), MAX_COUNT);
        assert_eq!(multiplied_cost(MAX_COUNT, 1), MAX_COUNT.div_ceil(10_000));
    }
}
