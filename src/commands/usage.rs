//! `keyctl usage [KEYREF] [--days N]`: requests per day (accepted, rejected) and
//! credits; a bar chart at a terminal, a table, json or csv otherwise.

use std::io::Write;

use super::keyref::filter_id;
use crate::cli::UsageArgs;
use crate::context::Ctx;
use crate::core::limits::parse_whole;
use crate::error::{Error, Result};
use crate::store::Intent;
use crate::ui::output::stdout;
use crate::ui::usage::{day_of, every_day, write_days, Subject};

/// Most days `usage --days` shows: ten years.
const MAX_DAYS: u64 = 3660;

pub fn run(ctx: &Ctx, args: UsageArgs) -> Result<()> {
    let days = parse_whole("--days", &args.days, 1..=MAX_DAYS).map_err(Error::usage)?;
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let (key_id, key_name) = match &args.keyref {
        None => (None, None),
        Some(r) => {
            let id = filter_id(tx.as_ref(), r, ctx.now())?;
            let name = tx.key_by_id(&id)?.map(|k| k.settings.name);
            (Some(id), name)
        }
    };
    let to = day_of(ctx.now());
    let from = to - days as i64 + 1;
    let days = every_day(tx.usage_by_day(key_id.as_deref(), from, to)?, from, to);
    let mut out = stdout();
    let subject = Subject { key_id, key_name };
    write_days(
        &mut out,
        ctx.format,
        &subject,
        &days,
        ctx.stdout_tty,
        ctx.color,
    )?;
    out.flush()?;
    Ok(())
}
