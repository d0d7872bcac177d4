//! Pseudo-terminals: a program on a terminal, driven like a person would (type bytes,
//! wait for text), or a command whose stdout is a terminal.

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{drain, drained, poll_until, wait_within, Outcome, WAIT_LIMIT};

/// A new pseudo-terminal `cols` columns wide: (master, slave), both close-on-exec.
pub fn open_pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: 50,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the provided ints; the null
    // name and termios pointers are allowed; `size` outlives the call.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // Tests run in parallel threads: keep these descriptors out of other tests'
    // children, or a stray copy of the slave side would hold this terminal open.
    for fd in [master, slave] {
        // SAFETY: fcntl on descriptors this function just opened.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened by openpty and are owned here only.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Which of the program's streams are the terminal.
enum On {
    /// stdin, stdout and stderr: a person at a terminal.
    Everything,
    /// stdout only (stdin as the command set it, stderr captured apart).
    Stdout,
}

/// A program running on a pseudo-terminal (its controlling terminal, in its own
/// session), driven like a person would: type bytes, wait for text. Every wait is
/// bounded by `WAIT_LIMIT`; dropping it kills the program.
pub struct Pty {
    child: Child,
    typer: fs::File,
    shown: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    /// stderr, when it is not the terminal.
    stderr: Option<Receiver<Vec<u8>>>,
    /// Where the next `expect` starts looking, in bytes of `shown`.
    mark: usize,
    label: String,
}

impl Pty {
    /// Starts `command` with stdin, stdout and stderr on a new terminal `cols`
    /// columns wide.
    pub fn spawn(command: Command, cols: u16) -> Pty {
        Pty::start(command, cols, On::Everything)
    }

    /// Runs `command ARGS` at a terminal 120 columns wide; once the terminal shows
    /// `prompt`, types `answer`. Returns everything the terminal showed as stdout
    /// (carriage returns removed; stderr is empty, being the terminal too).
    pub fn run_answering(
        mut command: Command,
        args: &[&str],
        prompt: &str,
        answer: &[u8],
    ) -> Outcome {
        command.args(args);
        let mut pty = Pty::spawn(command, 120);
        pty.expect(prompt);
        pty.send(answer);
        let (code, screen) = pty.wait();
        Outcome {
            args: args.iter().map(|s| s.to_string()).collect(),
            code,
            stdout: screen,
            stderr: String::new(),
        }
    }

    fn start(mut command: Command, cols: u16, on: On) -> Pty {
        let (master, slave) = open_pty(cols);
        let tty_fd = match on {
            On::Everything => {
                command
                    .stdin(Stdio::from(slave.try_clone().unwrap()))
                    .stdout(Stdio::from(slave.try_clone().unwrap()))
                    .stderr(Stdio::from(slave));
                0
            }
            On::Stdout => {
                command.stdout(Stdio::from(slave)).stderr(Stdio::piped());
                1
            }
        };
        // Make the terminal the child's controlling terminal, as in a real session,
        // so `/dev/tty` is this terminal too (terminal libraries ask it for the width).
        // SAFETY: runs in the child between fork and exec and calls only the
        // async-signal-safe setsid and ioctl; `tty_fd` is the terminal by then.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(tty_fd, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let label = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = command.spawn().expect("spawn a program on a pty");
        // The Command holds copies of the slave side: drop them, so the master sees
        // the end of output once the program (and its children) are gone.
        drop(command);
        let stderr = child.stderr.take().map(drain);
        let shown = Arc::new(Mutex::new(Vec::<u8>::new()));
        let typer = fs::File::from(master.try_clone().unwrap());
        let reader = {
            let shown = shown.clone();
            std::thread::spawn(move || {
                let mut file = fs::File::from(master);
                let mut buf = [0u8; 4096];
                loop {
                    match file.read(&mut buf) {
                        // Linux reports EIO once every slave side is closed.
                        Ok(0) | Err(_) => break,
                        Ok(n) => shown.lock().unwrap().extend_from_slice(&buf[..n]),
                    }
                }
            })
        };
        Pty {
            child,
            typer,
            shown,
            reader: Some(reader),
            stderr,
            mark: 0,
            label,
        }
    }

    /// Types `bytes` (a control character is a key: "\r" Enter, "\x03" Ctrl-C, "\t"
    /// Tab, "\x1b[B" Down).
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.typer.write_all(bytes).expect("type on the pty");
        self.typer.flush().expect("flush the pty");
    }

    /// Everything the terminal has shown so far, carriage returns removed.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.shown.lock().unwrap()).replace('\r', "")
    }

    /// Waits until `text` appears after the end of the previous `expect`'s match and
    /// returns what the terminal showed from there to the end of this match. Fails
    /// the test (showing the terminal) when it does not appear within `WAIT_LIMIT`.
    pub fn expect(&mut self, text: &str) -> String {
        let mut seen = None;
        let mark = self.mark;
        let found = poll_until(WAIT_LIMIT, || {
            let shown = self.shown.lock().unwrap();
            let tail = &shown[mark.min(shown.len())..];
            let Some(i) = tail
                .windows(text.len().max(1))
                .position(|w| w == text.as_bytes())
            else {
                return false;
            };
            let end = mark + i + text.len();
            seen = Some((
                String::from_utf8_lossy(&shown[mark..end]).replace('\r', ""),
                end,
            ));
            true
        });
        match seen {
            Some((seen, end)) if found => {
                self.mark = end;
                seen
            }
            _ => {
                let screen = self.screen();
                self.kill();
                panic!(
                    "{text:?} did not appear within {WAIT_LIMIT:?} on the terminal of {}; \
                     it shows:\n{screen}\n--- (escaped) {screen:?}",
                    self.label
                );
            }
        }
    }

    /// Waits (at most `WAIT_LIMIT`) for the program to exit, then for the terminal's
    /// last output, and returns the exit code (None: ended by a signal) and everything
    /// the terminal showed.
    pub fn wait(&mut self) -> (Option<i32>, String) {
        let Some(status) = wait_within(&mut self.child, WAIT_LIMIT) else {
            let screen = self.screen();
            self.kill();
            panic!(
                "{} still running after {WAIT_LIMIT:?}; the terminal shows:\n{screen}\n\
                 --- (escaped) {screen:?}",
                self.label
            );
        };
        // The reader ends when no process holds the terminal any more; a stray
        // grandchild that kept it would only cost this bounded wait.
        let reader = &self.reader;
        if poll_until(Duration::from_secs(2), || {
            reader.as_ref().is_some_and(|r| r.is_finished())
        }) {
            self.reader.take().unwrap().join().expect("pty reader");
        }
        (status.code(), self.screen())
    }

    /// Kills the program (and, through SIGHUP of its terminal session, what it
    /// started) if it is still running.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: signals the session leader this Pty started (its own process
            // group, from setsid), and only that group.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `command ARGS` with stdout on a pseudo-terminal `cols` columns wide (stderr is
/// captured separately, stdin stays as the command set it). Returns the outcome with
/// the terminal's output as stdout, carriage returns removed.
pub fn run_on_tty(mut command: Command, args: &[&str], cols: u16) -> Outcome {
    command.args(args);
    let mut pty = Pty::start(command, cols, On::Stdout);
    let (code, screen) = pty.wait();
    let stderr = pty
        .stderr
        .take()
        .map_or_else(Vec::new, |rx| drained(&rx, WAIT_LIMIT));
    Outcome {
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        stdout: screen,
        stderr: String::from_utf8(stderr).expect("stderr is utf-8"),
    }
}
