//! `keyctl verify --explain`: every check of SPEC §3 for one presented key and
//! request, each with its result and figure, and the verdict a `verify --no-record`
//! gives, whose exit code it exits with. Records nothing; an invalid key counts no
//! failed attempt against the IP.

use std::io::Write;

use crate::app::explain::explain_one;
use crate::app::verify_session::is_outage;
use crate::cli::Format;
use crate::context::Ctx;
use crate::core::policy::Request;
use crate::error::{Error, Kind, Result};
use crate::ui::explain::Explained;
use crate::ui::output::{answer_written, stdout};

/// `req` and `endpoint` are what `verify`'s flags asked (`--duration-ms` is only ever
/// recorded, so it plays no part).
pub fn run(ctx: &Ctx, req: &Request, endpoint: Option<&str>, presented: &str) -> Result<()> {
    // A table for people, json for programs: a table only at a terminal unless asked.
    let as_json = match ctx.format {
        Format::Json => true,
        Format::Table => !ctx.format_explicit && !ctx.stdout_tty,
        Format::Csv => {
            return Err(Error::usage(
                "verify --explain prints a table or json: use --format table or --json",
            ))
        }
    };
    let explanation = ctx
        .open_for_verify()
        .and_then(|mut store| {
            explain_one(store.as_mut(), presented, req, ctx.store_clock()).map_err(Error::from)
        })
        .map_err(|e| {
            // A store that cannot answer explains nothing: the reason on stderr and
            // exit 22, as verify (SPEC §6).
            if is_outage(ctx, &e) {
                ctx.warn(&e.message);
                Error::new(Kind::Exit(crate::core::exit::UNAVAILABLE.code), "")
            } else {
                e
            }
        })?;
    let shown = Explained {
        explanation: &explanation,
        req,
        endpoint,
    };
    let mut out = stdout();
    let written = if as_json {
        shown.write_json(&mut out)
    } else {
        shown.write_table(&mut out, ctx.color)
    }
    .and_then(|_| out.flush());
    answer_written(written)?;
    match explanation.verdict.outcome.exit_code() {
        0 => Ok(()),
        code => Err(Error::new(Kind::Exit(code), "")),
    }
}
