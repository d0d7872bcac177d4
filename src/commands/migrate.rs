//! `keyctl migrate`: the one way an existing store's schema changes on PostgreSQL
//! (SPEC §6), so the hosts of a fleet never race to upgrade it. On SQLite every
//! command already migrates its file when it opens it; this does the same, explicitly.

use crate::context::Ctx;
use crate::error::Result;
use crate::store;

pub fn run(ctx: &Ctx) -> Result<()> {
    let (from, to) = store::migrate(&ctx.db)?;
    ctx.note(&if from == to {
        format!("key store {} is at schema {to}: nothing to migrate", ctx.db)
    } else {
        format!("migrated key store {} from schema {from} to {to}", ctx.db)
    });
    Ok(())
}
