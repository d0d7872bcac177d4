//! The pure core: no files, clock, environment or terminal. Everything here takes
//! its inputs (time, random bytes) as parameters so it can be unit-tested exactly.

pub mod allowlist;
pub mod audit;
pub mod checks;
pub mod diff;
pub mod exit;
pub mod fields;
pub mod import;
pub mod inputs;
pub mod key;
pub mod limits;
pub mod meta;
pub mod model;
pub mod names;
pub mod naming;
pub mod policy;
pub mod refill;
pub mod report;
pub mod scan;
pub mod scan_rules;
pub mod settings;
pub mod store_limits;
pub mod text;
pub mod time;
