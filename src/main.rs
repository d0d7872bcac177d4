// keyctl's own C `main`: std's start-up would also probe the main thread's stack
// (pthread_getattr_np reads /proc/self/maps, about 6% of a `verify` process,
// docs/benchmarks.md) to turn a main-thread stack overflow into a message; without it
// such an overflow is a plain SIGSEGV. What else std's start-up does for a program is
// done in `start` below.
// `cargo test --all-targets` builds this file with the test harness's own main (it
// has no tests: the library and tests/ hold them).
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use std::io::Write;

use clap::error::{ContextKind, ContextValue, ErrorKind};
// Every error line goes through this: a secret passed as an argument is cut to its
// display prefix, and hidden characters in quoted names are escaped (SPEC §5).
use keyctl::core::text::for_terminal;

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // The arguments reach std::env::args_os through glibc's start-up, as usual.
    start();
    run()
}

/// What std's start-up does before a Rust `main` and keyctl relies on.
fn start() {
    // A closed 0, 1 or 2 is reopened on /dev/null, so a file keyctl opens (the store)
    // never becomes stdout.
    for fd in 0..3 {
        let mut poll = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd; open's path is a NUL-terminated literal.
        unsafe {
            while libc::poll(&mut poll, 1, 0) == -1
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
            }
            if poll.revents & libc::POLLNVAL != 0
                && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) == -1
            {
                libc::abort();
            }
        }
    }
    // A closed pipe is an EPIPE error that keyctl reports (exit code, no message), not
    // a kill by SIGPIPE.
    // SAFETY: setting a signal's disposition to ignore.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn run() -> i32 {
    // The detached clipboard helper (keyctl re-executed by `create`/`rotate`) is
    // recognised before the parser, so it never shows in --help or completions.
    if keyctl::ui::clipboard::helper_requested() {
        std::process::exit(keyctl::ui::clipboard::run_helper());
    }
    // Files keyctl creates (the store, its -wal/-shm, folders) are private by default.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    // Before any store is opened (and while this is the only thread).
    keyctl::store::setup_sqlite_process();
    // `KEYCTL_COMPLETE=<shell> keyctl -- ...` is a shell asking for candidates: answer, exit.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    keyctl::complete::handle_request(&args, keyctl::cli::command);
    // `verify` (a service's per-request call) skips building the whole command tree.
    let parsed = match keyctl::cli::parse_verify(&args) {
        Some(cli) => {
            // Still before the first connection and the only thread.
            keyctl::store::use_sqlite_arena();
            Ok(cli)
        }
        None => keyctl::cli::parse(args.iter().cloned()),
    };
    let code = match parsed {
        Ok(cli) => match keyctl::commands::run(cli) {
            Ok(()) => 0,
            Err(e) => {
                if !matches!(
                    e.kind,
                    keyctl::error::Kind::ClosedOutput | keyctl::error::Kind::Exit(_)
                ) {
                    let _ = writeln!(std::io::stderr(), "error: {}", for_terminal(&e.message));
                }
                e.kind.exit_code()
            }
        },
        Err(e) => report_clap_error(&e, &args),
    };
    // Flushes stdout as std does when a Rust `main` returns.
    std::process::exit(code);
}

/// Help and version print as clap renders them; every parse error becomes one line.
fn report_clap_error(e: &clap::Error, args: &[std::ffi::OsString]) -> i32 {
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
            let first = first.to_string();
            let first = if e.kind() == ErrorKind::UnknownArgument
                && command_path(args) == "keyctl verify"
            {
                "verify takes no key argument: pipe the key on stdin or use --key-env VAR"
                    .to_string()
            } else {
                first
            };
            let valid = match (
                e.kind(),
                e.get(ContextKind::ValidValue),
                e.get(ContextKind::InvalidArg),
            ) {
                (_, Some(ContextValue::Strings(values)), _) if !values.is_empty() => {
                    format!(": use one of {}", values.join(", "))
                }
                // clap lists the missing arguments on lines of their own: name them here.
                (ErrorKind::MissingRequiredArgument, _, Some(ContextValue::Strings(args)))
                    if !args.is_empty() =>
                {
                    format!(" {}", args.join(", "))
                }
                _ => String::new(),
            };
            // A value parser's message (cli.rs, from core) is the whole line, as when
            // the command itself refuses a value.
            let line = if e.kind() == ErrorKind::ValueValidation {
                first
            } else {
                format!("{first}{valid} (see '{} --help')", command_path(args))
            };
            let _ = writeln!(std::io::stderr(), "error: {}", for_terminal(&line));
            2
        }
    }
}

/// The subcommand path the arguments name (`keyctl config set`), for the help hint.
fn command_path(args: &[std::ffi::OsString]) -> String {
    let root = keyctl::cli::command();
    let mut path = vec![root.get_name().to_string()];
    let mut current = &root;
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if let Some(sub) = current.find_subcommand(arg) {
            path.push(sub.get_name().to_string());
            current = sub;
        }
    }
    path.join(" ")
}
