//! `keyctl backup PATH`: a consistent online copy of the store, mode 0600.

use crate::cli::BackupArgs;
use crate::context::Ctx;
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, args: BackupArgs) -> Result<()> {
    let dest = &args.path;
    if dest.is_dir() {
        return Err(Error::usage(format!(
            "{} is a directory: give the backup a file name, like {}/keys-backup.db",
            dest.display(),
            dest.display()
        )));
    }
    if let (Ok(a), Ok(b)) = (dest.canonicalize(), ctx.db.canonicalize()) {
        if a == b {
            return Err(Error::usage(
                "the backup path is the store itself: choose another file",
            ));
        }
    }
    if dest.exists() && !args.force {
        return Err(Error::conflict(format!(
            "{} already exists: pass --force to replace it",
            dest.display()
        )));
    }
    let mut store = ctx.open_read()?;
    store.backup_to(dest)?;
    ctx.note(&format!(
        "backed up {} to {}",
        ctx.db.display(),
        dest.display()
    ));
    Ok(())
}
