//! The clipboard copy of a new secret (`create`, `rotate`).
//!
//! On X11 (and with Wayland's data-control protocol) the clipboard is served by the
//! process that owns it: when that process exits, there is nothing left to paste. So
//! keyctl hands the secret to a helper — keyctl itself, re-executed with the marker
//! variable [`HELPER_ENV`] and no arguments, recognised in `main` before the argument
//! parser so it never shows in `--help` or completions. The secret travels on the
//! helper's stdin (never argv or the environment, which other users of the machine can
//! read); the helper answers one line on its stdout (`ok`, or `error: REASON`), starts
//! its own session, and serves the clipboard after keyctl has exited. After
//! `KEYCTL_CLIP_TIME` seconds (default 45) it clears the clipboard if it still holds
//! the secret; if anything else was copied meanwhile (another program, another keyctl),
//! it exits without touching it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Marks a keyctl process started as the clipboard helper. It carries no secret.
pub const HELPER_ENV: &str = "KEYCTL_CLIPBOARD_HELPER";
/// Seconds the secret stays on the clipboard unless `KEYCTL_CLIP_TIME` says otherwise.
pub const DEFAULT_CLIP_SECS: u64 = 45;
/// The longest `KEYCTL_CLIP_TIME` accepted: one day.
pub const MAX_CLIP_SECS: u64 = 86_400;
/// How long keyctl waits for the helper's report before it gives up on the copy.
const REPORT_WAIT: Duration = Duration::from_millis(1000);
/// How long the helper gives the clipboard to show the secret after taking it.
const READBACK_WAIT: Duration = Duration::from_millis(700);
/// How often the helper checks that the clipboard still holds the secret.
const POLL: Duration = Duration::from_millis(200);
/// The helper's name in `ps` (argv[0]); its executable is keyctl itself.
const HELPER_ARGV0: &str = "keyctl-clipboard";
/// The most the helper reads from its stdin: a line of seconds and a secret.
const MAX_INPUT: u64 = 4096;

/// A copy that worked: the helper serves the secret for `seconds`.
#[derive(Debug)]
pub struct Copied {
    pub seconds: u64,
}

impl Copied {
    /// The line the terminal reveal shows.
    pub fn reveal_line(&self) -> String {
        format!("Copied to clipboard (clears in {}s).", self.seconds)
    }

    /// The note on stderr when the secret went to a pipe or json.
    pub fn note(&self) -> String {
        format!("copied to clipboard (clears in {}s)", self.seconds)
    }
}

/// `KEYCTL_CLIP_TIME`: whole seconds from 1 to one day; unset or empty means 45.
pub fn clip_seconds() -> Result<u64, String> {
    let Some(raw) = std::env::var_os("KEYCTL_CLIP_TIME").filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_CLIP_SECS);
    };
    let text = raw.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_CLIP_SECS).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid KEYCTL_CLIP_TIME '{text}': use whole seconds from 1 to {MAX_CLIP_SECS}"
        )),
    }
}

/// True when a display server may be reachable (X11 or Wayland).
pub fn display_configured() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// Puts `secret` on the clipboard through a detached helper. Returns within about a
/// second; an error is one line saying why nothing was copied.
pub fn copy(secret: &str) -> Result<Copied, String> {
    let seconds = clip_seconds()?;
    if !display_configured() {
        return Err("no display (neither DISPLAY nor WAYLAND_DISPLAY is set)".into());
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the keyctl executable to serve it: {e}"))?;
    let mut helper = Command::new(exe)
        .arg0(HELPER_ARGV0)
        .env(HELPER_ENV, "1")
        // Keep no folder busy, and none of keyctl's output open: `KEY=$(keyctl create)`
        // must return as soon as keyctl exits.
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the clipboard helper: {e}"))?;
    let fail = |mut helper: Child, reason: String| -> Result<Copied, String> {
        let _ = helper.kill();
        let _ = helper.wait();
        Err(reason)
    };
    let (Some(mut input), Some(report)) = (helper.stdin.take(), helper.stdout.take()) else {
        return fail(helper, "cannot talk to the clipboard helper".into());
    };
    let sent = input
        .write_all(format!("{seconds}\n{secret}").as_bytes())
        .and_then(|_| input.flush());
    drop(input);
    if let Err(e) = sent {
        return fail(
            helper,
            format!("cannot hand the key to the clipboard helper: {e}"),
        );
    }
    // The report is read on a thread so that a helper that hangs (a display server
    // that never answers) costs keyctl one second, not a hang.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(report).take(512).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(REPORT_WAIT) {
        // The helper lives on in its own session, serving the clipboard.
        Ok(line) if line.trim_end() == "ok" => Ok(Copied { seconds }),
        Ok(line) => {
            let reason = line.trim().trim_start_matches("error: ").trim();
            let reason = if reason.is_empty() {
                "the clipboard helper stopped without a word".to_string()
            } else {
                reason.to_string()
            };
            fail(helper, reason)
        }
        Err(_) => fail(
            helper,
            format!(
                "the clipboard did not answer within {} ms",
                REPORT_WAIT.as_millis()
            ),
        ),
    }
}

/// True when this process was started as the clipboard helper: the marker variable
/// and no arguments. Checked before any argument parsing.
pub fn helper_requested() -> bool {
    std::env::var_os(HELPER_ENV).is_some_and(|v| v == "1") && std::env::args_os().len() == 1
}

/// The helper's whole life; returns its exit code.
pub fn run_helper() -> i32 {
    // Its own session: no controlling terminal, so closing the terminal keyctl ran in
    // (SIGHUP) or Ctrl-C there does not end it.
    // SAFETY: setsid has no memory-safety preconditions; failure (already a session
    // leader) is harmless.
    unsafe {
        libc::setsid();
    }
    close_inherited_descriptors();
    // No core dump may write the secret to disk. (The helper stays ptrace-able by its
    // own user, unlike `create`: while it runs, that user can read the clipboard
    // anyway, and /proc shows that it holds nothing in its argv or environment.)
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct passed by reference and changes only this
    // process's limit.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    }
    let mut input = Vec::new();
    let read = io::stdin().lock().take(MAX_INPUT).read_to_end(&mut input);
    to_dev_null(0);
    let parsed = read
        .map_err(|e| format!("cannot read the key from keyctl: {e}"))
        .and_then(|_| parse_input(&input));
    input.iter_mut().for_each(|b| *b = 0);
    let (seconds, secret) = match parsed {
        Ok(p) => p,
        Err(reason) => return report_failure(&reason),
    };
    let deadline = match Instant::now().checked_add(Duration::from_secs(seconds)) {
        Some(d) => d,
        None => return report_failure("KEYCTL_CLIP_TIME is too large"),
    };
    let mut clipboard = match take_clipboard(&secret) {
        Ok(c) => c,
        Err(reason) => return report_failure(&reason),
    };
    report("ok");
    // The report pipe is keyctl's only tie to this process: close it now.
    to_dev_null(1);

    // One loop for X11 and Wayland: arboard's `wait_until` is not honoured on Wayland,
    // so the deadline is kept here, and whether the clipboard still holds the secret is
    // asked every POLL (on X11 one GetSelectionOwner round trip while it does).
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(POLL));
        if !holds(&mut clipboard, &secret) {
            // Something else was copied: leave it alone.
            return 0;
        }
    }
    if holds(&mut clipboard, &secret) {
        let _ = clipboard.clear();
    }
    0
}

/// `SECONDS\nSECRET` from keyctl.
fn parse_input(input: &[u8]) -> Result<(u64, String), String> {
    let text = std::str::from_utf8(input).map_err(|_| "the key is not text".to_string())?;
    let (seconds, secret) = text
        .split_once('\n')
        .ok_or_else(|| "keyctl sent no key".to_string())?;
    let seconds = seconds
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=MAX_CLIP_SECS).contains(s))
        .ok_or_else(|| "keyctl sent no clear time".to_string())?;
    let secret = secret.trim_end_matches('\n');
    if secret.is_empty() || secret.contains('\n') {
        return Err("keyctl sent no key".into());
    }
    Ok((seconds, secret.to_string()))
}

/// Opens the clipboard, puts the secret on it (marked for clipboard managers as not
/// to be kept in their history) and checks that it reads back.
fn take_clipboard(secret: &str) -> Result<arboard::Clipboard, String> {
    let mut clipboard = arboard::Clipboard::new().map_err(reason)?;
    set_secret(&mut clipboard, secret).map_err(reason)?;
    let until = Instant::now() + READBACK_WAIT;
    while !holds(&mut clipboard, secret) {
        if Instant::now() >= until {
            return Err("the clipboard did not take the key".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(clipboard)
}

#[cfg(not(target_os = "macos"))]
fn set_secret(clipboard: &mut arboard::Clipboard, secret: &str) -> Result<(), arboard::Error> {
    use arboard::SetExtLinux;
    clipboard.set().exclude_from_history().text(secret)
}

#[cfg(target_os = "macos")]
fn set_secret(clipboard: &mut arboard::Clipboard, secret: &str) -> Result<(), arboard::Error> {
    use arboard::SetExtApple;
    clipboard.set().exclude_from_history().text(secret)
}

/// True when the clipboard's text is the secret.
fn holds(clipboard: &mut arboard::Clipboard, secret: &str) -> bool {
    clipboard.get_text().is_ok_and(|t| t == secret)
}

/// arboard's error as a reason for the warning, lower-case and on one line.
fn reason(e: arboard::Error) -> String {
    let text = match e {
        arboard::Error::Unknown { description } => description,
        other => other.to_string(),
    };
    let text = one_line(text.trim_end_matches('.'));
    // "The clipboard ..." reads "the clipboard ..."; "X11 server ..." stays.
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if second.is_lowercase() => {
            first.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text,
    }
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "the clipboard refused the key".into()
    } else {
        line
    }
}

fn report_failure(reason: &str) -> i32 {
    report(&format!("error: {}", one_line(reason)));
    1
}

/// One line to keyctl; keyctl may have stopped listening (a broken pipe is fine).
fn report(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

/// Closes every descriptor above stderr that keyctl's caller may have passed down
/// without close-on-exec, so the helper never holds a caller's pipe open for 45 s.
fn close_inherited_descriptors() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<libc::c_int> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: nothing in this process owns these descriptors yet (one of them was
        // the listing's own, already closed: EBADF is harmless).
        unsafe {
            libc::close(fd);
        }
    }
}

/// Points `fd` at /dev/null (closing what it was).
fn to_dev_null(fd: libc::c_int) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        // SAFETY: dup2 onto a standard descriptor of this process; `null` stays open
        // until after the call.
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_keyctl_sends() {
        assert_eq!(
            parse_input(b"45\nsk_live_abc").unwrap(),
            (45, "sk_live_abc".to_string())
        );
        assert!(parse_input(b"0\nsk").is_err());
        assert!(parse_input(b"45\n").is_err());
        assert!(parse_input(b"45").is_err());
        assert!(parse_input(b"x\nsk").is_err());
    }

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(one_line("a\nb  c\n"), "a b c");
        assert_eq!(one_line(" \n"), "the clipboard refused the key");
    }
}
