//! Use cases over the store traits, the same for every backend.

pub mod audit;
pub mod explain;
pub mod keys;
pub mod refill;
pub mod retry;
pub mod verify;
pub mod verify_session;
