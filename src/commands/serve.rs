//! `keyctl serve`: checks what the flags ask for (a caller token beyond loopback),
//! then runs the HTTP server of `crate::serve`.

use crate::cli::ServeArgs;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::serve::{Config, Listen};

pub fn run(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    let caller_token = match &args.caller_token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            Ok(_) => {
                return Err(Error::usage(format!(
                    "--caller-token-env {var}: that environment variable is empty; put the token callers send in it"
                )))
            }
            Err(_) => {
                return Err(Error::usage(format!(
                    "--caller-token-env {var}: that environment variable is not set; put the token callers send in it"
                )))
            }
        },
    };
    let listen = match args.socket {
        Some(path) => Listen::Unix(path),
        None => Listen::Tcp(args.listen),
    };
    if let Listen::Tcp(addr) = &listen {
        if !addr.ip().is_loopback() && caller_token.is_none() {
            return Err(Error::usage(format!(
                "--listen {addr} is beyond loopback: pass --caller-token-env VAR naming an environment variable \
                 that holds the token callers must send, or listen on 127.0.0.1"
            )));
        }
    }
    crate::serve::run(
        ctx,
        Config {
            listen,
            trusted: args.trust_proxy,
            caller_token,
            cost: args.cost,
            record: !args.no_record,
        },
    )
}
