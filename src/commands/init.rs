//! `keyctl init [--prefix P]`: create the store; never overwrite one.

use crate::cli::InitArgs;
use crate::context::Ctx;
use crate::core::key::validate_prefix;
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, args: InitArgs) -> Result<()> {
    if let Some(p) = &args.prefix {
        validate_prefix(p).map_err(Error::usage)?;
    }
    let exists = || {
        Error::conflict(format!(
            "a key store already exists at {}: keyctl init never overwrites one",
            ctx.db.display()
        ))
    };
    if ctx.db.exists() {
        // Only a real keyctl store is "already there"; anything else is named for what
        // it is (a folder, an empty file, another program's database: exit 1).
        ctx.open_read()?;
        return Err(exists());
    }
    let store = ctx.open_write_with(args.prefix.clone())?;
    if !store.created() {
        // Another process created it between our check and our create.
        return Err(exists());
    }
    Ok(())
}
