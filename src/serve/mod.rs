//! `keyctl serve`: verification over HTTP (SPEC §7).

pub mod openapi;
pub mod unkey;
