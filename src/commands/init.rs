//! `keyctl init [--prefix P]`: create the store; never overwrite one.

use crate::cli::InitArgs;
use crate::context::Ctx;
use crate::core::key::validate_prefix;
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, args: InitArgs) -> Result<()> {
    if let Some(p) = &args.prefix {
        validate_prefix(p).map_err(Error::usage)?;
    }
    // Opening checks whatever is already there: only a real keyctl store is "already
    // there"; anything else is named for what it is (a folder, an empty file, another
    // program's database: exit 1). A store another process creates first counts too.
    let (_, created) = ctx.open_for_init(args.prefix.clone())?;
    if !created {
        return Err(Error::conflict(format!(
            "a key store already exists at {}: keyctl init never overwrites one",
            ctx.db
        )));
    }
    Ok(())
}
