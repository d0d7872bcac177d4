//! Presentation. One module per record kind (`keys`, `requests`, `audit`, `usage`)
//! says how a record looks; one writer per format writes them: `records` (json
//! arrays, csv, tables of a record list), `table`, `json` (the one json escaper),
//! `csv` (formula-safe cells). Also stdout (`output`), charts, prompts, the one-time
//! reveal and its clipboard copy.

pub mod audit;
pub mod chart;
pub mod clipboard;
pub mod csv;
pub mod explain;
pub mod json;
pub mod keys;
pub mod meta;
pub mod output;
pub mod prompt;
pub mod records;
pub mod report;
pub mod requests;
pub mod reveal;
pub mod scan;
pub mod table;
pub mod usage;
pub mod verdict;
pub mod wizard;
