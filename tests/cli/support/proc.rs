//! Processes: waiting for a condition (never for a fixed time), long-running
//! processes, pipes, the tools the tests drive, and the X server of clipboard tests.

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long a test waits for something it expects (a line, a prompt, an exit, a
/// file) before failing: generous, so a loaded machine is never mistaken for a bug;
/// it only stops a test whose condition never comes.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Checks `done` until it is true (true) or `limit` has passed (false), sleeping a
/// little longer each time (1 ms up to 10 ms), so a quick condition is seen quickly
/// and a slow one costs little CPU.
pub fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Waits until `done` is true, failing the test with `what` if it is not within
/// `WAIT_LIMIT`.
pub fn wait_for(what: &str, done: impl FnMut() -> bool) {
    assert!(
        poll_until(WAIT_LIMIT, done),
        "{what}: not within {WAIT_LIMIT:?}"
    );
}

/// True when process `pid` is asleep in a timed wait (`nanosleep`, Linux's
/// `/proc/PID/wchan`), as a polling loop is between two polls: whatever it did before
/// its first sleep (a follower's first read) is done.
pub fn in_timed_sleep(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("nanosleep"))
}

/// Waits at most `limit` for `child` to exit; None when it is still running (the
/// caller keeps the child and may still signal it: it is not reaped).
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    if let Some(status) = child.try_wait().expect("wait for a child process") {
        return Some(status);
    }
    // A thread blocks until the exit (no polling delay on thousands of short runs);
    // WNOWAIT only observes it, so the child stays unreaped until `wait` below and a
    // signal sent after a timeout cannot reach a reused pid.
    let pid = libc::id_t::from(child.id());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: an all-zero siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waitid on a pid this process spawned, with a valid out-parameter.
            let rc =
                unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
        let _ = tx.send(());
    });
    rx.recv_timeout(limit).ok()?;
    Some(child.wait().expect("reap a child process"))
}

/// A new pipe (read end, write end), both close-on-exec.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array with new descriptors on success.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned here only.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The write end of a pipe whose read end is already closed: every write to it
/// fails with EPIPE, deterministically (no race with a reader that exits).
/// (`std::io::pipe` would do, but it needs Rust 1.87 and the crate's MSRV is 1.85.)
pub fn closed_pipe() -> OwnedFd {
    let (reader, writer) = pipe();
    drop(reader);
    writer
}

/// Makes `command`'s stdout a pipe nobody reads ([`closed_pipe`]), with SIGPIPE at
/// its default, as a shell leaves it: a keyctl dying by the signal would fail.
pub fn stdout_closed(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.stdout(std::process::Stdio::from(closed_pipe()));
    // SAFETY: only signal(2), async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
}

/// Sends SIGKILL to `child`. Safe to call until the child has been waited for: an
/// exited but unreaped child is a zombie whose pid cannot be reused, so the signal
/// never reaches another process.
pub fn sigkill(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid this test spawned and has not reaped (see above).
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Reads `source` to its end on a thread; the bytes arrive on the returned channel.
pub fn drain<R: Read + Send + 'static>(mut source: R) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// What a drained pipe held, waiting at most `limit` for its writer to close it.
pub fn drained(rx: &Receiver<Vec<u8>>, limit: Duration) -> Vec<u8> {
    rx.recv_timeout(limit)
        .expect("a child's output pipe was still open long after it exited")
}

/// The absolute path of `tool` in PATH (or /usr/bin, /bin). A missing tool fails the
/// test, never skips it: `scripts/test.sh` installs what the tests drive.
pub fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")]);
    for dir in dirs {
        let candidate = dir.join(tool);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return candidate;
            }
        }
    }
    panic!(
        "`{tool}` is not installed, so this test cannot run: run `bash scripts/test.sh`, \
         which installs the shells the tests drive (zsh, fish) and then runs every test"
    );
}

/// A long-running keyctl (`verify --stream`, `logs --follow`, a command waiting for
/// its input or a lock) with piped stdin and stdout: send lines, wait (bounded) for
/// output lines. Dropping it kills the process.
pub struct LiveProcess {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Receiver<String>,
    stderr: Receiver<Vec<u8>>,
}

/// How a `LiveProcess` ended.
pub struct Ended {
    /// None when a signal ended it.
    pub code: Option<i32>,
    /// The stdout lines nobody read before its end.
    pub rest: Vec<String>,
    pub stderr: String,
}

impl LiveProcess {
    pub fn spawn(mut command: Command) -> LiveProcess {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn keyctl");
        let stdin = child.stdin.take();
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LiveProcess {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdin, for a writer of its own (a thread writing more than a pipe holds).
    pub fn take_stdin(&mut self) -> std::process::ChildStdin {
        self.stdin.take().expect("stdin is still open")
    }

    /// Writes raw bytes to its stdin.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(bytes).and_then(|_| stdin.flush())
    }

    /// Writes `line` and a newline to its stdin.
    pub fn send(&mut self, line: &str) {
        self.write_raw(format!("{line}\n").as_bytes())
            .expect("write to keyctl's stdin");
    }

    /// The next line of its stdout, waiting at most `WAIT_LIMIT`.
    pub fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(WAIT_LIMIT)
            .unwrap_or_else(|e| panic!("no output line from keyctl within {WAIT_LIMIT:?}: {e}"))
    }

    /// Sends `line` and returns the answer line.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.next_line()
    }

    /// Closes its stdin and waits (at most `WAIT_LIMIT`) for it to exit: its exit code.
    pub fn finish(self) -> Option<i32> {
        self.end().code
    }

    /// Closes its stdin and waits (at most `WAIT_LIMIT`) for it to exit and for its
    /// stdout and stderr to end: its exit code, unread lines and stderr.
    pub fn end(mut self) -> Ended {
        drop(self.stdin.take());
        let status = wait_within(&mut self.child, WAIT_LIMIT).unwrap_or_else(|| {
            panic!("keyctl still running {WAIT_LIMIT:?} after its stdin closed")
        });
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(WAIT_LIMIT) {
                Ok(line) => rest.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("keyctl's stdout still open {WAIT_LIMIT:?} after its exit")
                }
            }
        }
        let stderr = drained(&self.stderr, WAIT_LIMIT);
        Ended {
            code: status.code(),
            rest,
            stderr: String::from_utf8(stderr).expect("stderr is utf-8"),
        }
    }

    /// SIGKILL, as a crash or the OOM killer would end it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LiveProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Owner uid of a file (`/proc/PID/environ` shows whether a process is dumpable).
pub fn owner_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| m.uid())
}

/// Every running process whose executable is the keyctl under test: pid, argv
/// (`/proc/PID/cmdline`) and environment (`/proc/PID/environ`). Processes that cannot
/// be read (another user's, or one that just ended) are left out.
pub fn keyctl_processes() -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    let bin = fs::canonicalize(env!("CARGO_BIN_EXE_keyctl")).expect("the keyctl binary");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        if fs::read_link(dir.join("exe")).ok().as_deref() != Some(bin.as_path()) {
            continue;
        }
        let (Ok(cmdline), Ok(environ)) =
            (fs::read(dir.join("cmdline")), fs::read(dir.join("environ")))
        else {
            continue;
        };
        found.push((pid, cmdline, environ));
    }
    found
}

/// `keyctl_processes` whose environment names the store `db` (`TestEnv::location`).
pub fn keyctl_processes_on(db: &std::ffi::OsStr) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    let mut store = b"KEYCTL_DB=".to_vec();
    store.extend_from_slice(db.as_encoded_bytes());
    keyctl_processes()
        .into_iter()
        .filter(|(_, _, environ)| environ.split(|&b| b == 0).any(|v| v == store.as_slice()))
        .collect()
}

/// A private X server (Xvfb on a display number it picks itself, `-displayfd`), for a
/// clipboard copy in a test; killed when dropped. Missing Xvfb fails the test.
pub struct XServer {
    child: Child,
    pub display: String,
}

impl XServer {
    pub fn start() -> XServer {
        use std::os::fd::AsRawFd;
        let (reader, writer) = pipe();
        let mut command = Command::new(require_tool("Xvfb"));
        command
            .args(["-displayfd", "3", "-nolisten", "tcp", "-noreset"])
            .args(["-screen", "0", "320x240x24"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let fd = writer.as_raw_fd();
        // SAFETY: runs between fork and exec and calls only the async-signal-safe dup2
        // and fcntl on a descriptor that is open in the child.
        unsafe {
            command.pre_exec(move || {
                let rc = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start Xvfb");
        drop(command);
        drop(writer);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = fs::File::from(reader).read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let mut server = XServer {
            child,
            display: String::new(),
        };
        let number = rx
            .recv_timeout(WAIT_LIMIT)
            .unwrap_or_else(|_| panic!("Xvfb did not report its display within {WAIT_LIMIT:?}"));
        let number = number.trim();
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
            "Xvfb did not start (display {number:?})"
        );
        server.display = format!(":{number}");
        server
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this guard owns and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        if wait_within(&mut self.child, Duration::from_secs(2)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
