//! One module per subcommand: parse input with the core, act through the store,
//! print through the ui.

mod config;
mod create;
mod init;
pub mod keyref;
mod list;
mod show;

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::error::Result;

pub fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx::from_cli(&cli)?;
    match cli.command {
        Command::Init(args) => init::run(&ctx, args),
        Command::Create(args) => create::run(&ctx, *args),
        Command::List(args) => list::run(&ctx, args),
        Command::Show(args) => show::run(&ctx, args),
        Command::Config(cmd) => config::run(&ctx, cmd),
    }
}

/// An audit event of this command, stamped with its actor and time.
pub(crate) fn audit_event(
    ctx: &Ctx,
    action: &str,
    key_id: Option<&str>,
    details: serde_json::Value,
) -> crate::core::audit::AuditEvent {
    crate::core::audit::AuditEvent {
        seq: 0,
        at_ms: crate::core::time::to_millis(ctx.now),
        actor: ctx.actor.clone(),
        action: action.to_string(),
        key_id: key_id.map(str::to_string),
        details: details.to_string(),
    }
}
