use std::io::Write;

use clap::error::ErrorKind;

fn main() {
    // Files keyctl creates (the store, its -wal/-shm, folders) are private by default.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let code = match keyctl::cli::parse(std::env::args_os()) {
        Ok(cli) => match keyctl::commands::run(cli) {
            Ok(()) => 0,
            Err(e) => {
                if e.kind != keyctl::error::Kind::ClosedOutput {
                    let _ = writeln!(std::io::stderr(), "error: {}", e.message);
                }
                e.kind.exit_code()
            }
        },
        Err(e) => report_clap_error(&e),
    };
    std::process::exit(code);
}

/// Help and version print as clap renders them; every parse error becomes one line.
fn report_clap_error(e: &clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            2
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let command = rendered
                .lines()
                .find_map(|l| l.strip_prefix("Usage: "))
                .map(|u| {
                    u.split_whitespace()
                        .take_while(|w| !w.starts_with(['[', '<', '-']))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "keyctl".into());
            let _ = writeln!(std::io::stderr(), "error: {first} (see '{command} --help')");
            2
        }
    }
}
