//! One module per subcommand: parse input with the core, act through the store,
//! print through the ui.

pub(crate) mod audit;
mod backup;
mod batch;
mod config;
mod copy;
mod create;
mod edit;
mod explain;
mod import;
mod init;
pub mod keyref;
mod lifecycle;
mod list;
pub(crate) mod logs;
mod migrate;
mod new_key;
mod report;
mod rotate;
mod scan;
mod scan_files;
mod serve;
mod show;
mod stream_input;
mod usage;
pub(crate) mod verify;

#[doc(hidden)]
pub use batch::fuzz_batch_input;
#[doc(hidden)]
pub use verify::fuzz_stream_line;

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::error::Result;
use crate::store::Intent;

pub fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx::from_globals(&cli.global)?;
    // These commands hold a secret in memory: keep it out of core dumps.
    if matches!(
        cli.command,
        Command::Create(_)
            | Command::Rotate(_)
            | Command::Verify(_)
            | Command::Serve(_)
            | Command::Scan(_)
            | Command::Import(_)
    ) {
        crate::process::forbid_core_dumps();
    }
    match cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Create(args) if args.batch.is_some() => batch::run(&ctx, &args),
        Command::Create(args) => create::run(&ctx, *args),
        Command::List(args) => list::run(&ctx, args),
        Command::Show(args) => show::run(&ctx, args),
        Command::Edit(args) => edit::run(&ctx, *args),
        Command::Disable(args) => lifecycle::disable(&ctx, args),
        Command::Enable(args) => lifecycle::enable(&ctx, args),
        Command::Revoke(args) => lifecycle::revoke(&ctx, args),
        Command::Delete(args) => lifecycle::delete(&ctx, args),
        Command::Rotate(args) => rotate::run(&ctx, args),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Logs(args) => logs::run(&ctx, args),
        Command::Usage(args) => usage::run(&ctx, args),
        Command::Audit(args) => audit::run(&ctx, args),
        Command::Scan(args) => scan::run(&ctx, args),
        Command::Import(args) => import::run(&ctx, &args),
        Command::Backup(args) => backup::run(&ctx, args),
        Command::Copy(args) => copy::run(&ctx, args),
        Command::Migrate => migrate::run(&ctx),
        Command::Config(cmd) => config::run(&ctx, cmd),
        Command::Report(args) => report::run(&ctx, args),
        Command::Completions(args) => {
            let mut out = crate::ui::output::stdout();
            crate::complete::registration_script(args.shell.name(), &mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
    }
}

/// An audit event of this command, stamped with its actor and time.
pub(crate) fn audit_event(
    ctx: &Ctx,
    action: &str,
    key_id: Option<&str>,
    details: serde_json::Value,
) -> crate::core::audit::AuditEvent {
    audit_event_text(ctx, action, key_id, details.to_string())
}

/// Like [`audit_event`], with details already rendered as a json object.
pub(crate) fn audit_event_text(
    ctx: &Ctx,
    action: &str,
    key_id: Option<&str>,
    details: String,
) -> crate::core::audit::AuditEvent {
    crate::core::audit::AuditEvent {
        seq: 0,
        at_ms: crate::core::time::to_millis(ctx.now()),
        actor: ctx.actor().to_string(),
        action: action.to_string(),
        key_id: key_id.map(str::to_string),
        details,
    }
}

/// Confirmation for destructive commands. With `--yes`, the references go on as given.
/// At a terminal, the keys are resolved in a read transaction (no write lock is held
/// while a person reads the question) and their ids go on if the answer is yes;
/// `None` means the person said no. Without a terminal and `--yes`: a usage error.
pub(crate) fn confirmed_refs(
    ctx: &Ctx,
    yes: bool,
    verb: &str,
    refs: &[String],
    question: impl Fn(&[crate::core::model::KeyRecord]) -> String,
) -> Result<Vec<String>> {
    if yes {
        return Ok(refs.to_vec());
    }
    if !ctx.interactive() {
        return Err(crate::error::Error::usage(format!(
            "{verb} needs confirmation: pass --yes (there is no terminal to ask on)"
        )));
    }
    let mut store = ctx.open_read()?;
    let tx = store.begin(Intent::Read)?;
    let keys = keyref::resolve_all(tx.as_ref(), refs, ctx.now())?;
    drop(tx);
    if crate::ui::prompt::confirm(&question(&keys))? {
        Ok(keys.into_iter().map(|k| k.id).collect())
    } else {
        Err(crate::error::Error::runtime(format!(
            "{verb} cancelled: nothing changed"
        )))
    }
}
