//! keyctl: administer API keys kept in a local SQLite file.
//!
//! Layers: [`core`] is pure (key format, time, allowlists, settings); [`store`] holds
//! every SQL statement behind the `Store`/`Txn` traits; [`cli`] is the clap
//! definitions; [`commands`] runs one subcommand each; [`ui`] formats output.

pub mod app;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod context;
pub mod core;
pub mod error;
pub mod global;
pub mod process;
pub mod serve;
pub mod store;
pub mod ui;
pub mod verify_argv;
