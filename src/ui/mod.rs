//! Presentation: output sinks, key records as table/json/csv, the one-time reveal and
//! its clipboard copy.

pub mod chart;
pub mod clipboard;
pub mod csv;
pub mod json;
pub mod keys;
pub mod output;
pub mod prompt;
pub mod reveal;
pub mod wizard;
