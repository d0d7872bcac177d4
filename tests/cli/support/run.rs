//! Running a command: the one way, `Run`, with optional stdin and always a generous
//! bound, and the `Outcome` a test asserts on.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::{drain, drained, sigkill, wait_within, TestEnv};

/// How long one run may take before the test kills it and fails: longer than
/// keyctl's 30 s busy timeout, so a process that waited that long still reports its
/// own error instead of being cut off. It only stops a hung test; it never decides
/// pass or fail on speed.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

impl TestEnv {
    /// `keyctl ARGS` in this environment, ready to adjust (`at`, `stdin`, `with`) and
    /// run.
    pub fn keyctl(&self, args: &[&str]) -> Run {
        Run::new(self.command()).args(args)
    }

    /// Runs `keyctl ARGS` and captures its exit code, stdout and stderr.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.keyctl(args).run()
    }

    /// Runs `keyctl ARGS` with the clock set to `now`.
    pub fn run_at(&self, now: &str, args: &[&str]) -> Outcome {
        self.keyctl(args).at(now).run()
    }

    /// Runs `keyctl ARGS` with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Outcome {
        self.keyctl(args).stdin(input).run()
    }

    /// Runs `keyctl ARGS` at `now` with `input` on stdin.
    pub fn run_at_with_stdin(&self, now: &str, args: &[&str], input: &[u8]) -> Outcome {
        self.keyctl(args).at(now).stdin(input).run()
    }
}

/// One run of a command: stdin is what the command had (empty for
/// `TestEnv::command`) unless `stdin` gives bytes (written from a
/// thread, so a large input cannot deadlock against a full stdout pipe, and a reader
/// that stops early is fine); stdout and stderr are captured unless `with` sends them
/// elsewhere; a run over its limit (`RUN_LIMIT`) is killed and fails the test.
pub struct Run {
    command: Command,
    label: Vec<OsString>,
    input: Option<Vec<u8>>,
}

impl Run {
    /// Runs `command` (its arguments, already set, name it in messages).
    pub fn new(mut command: Command) -> Run {
        let label = command.get_args().map(OsStr::to_os_string).collect();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        Run {
            command,
            label,
            input: None,
        }
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: &[S]) -> Run {
        self.command.args(args);
        self.label
            .extend(args.iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// The clock of this run (`KEYCTL_NOW`).
    pub fn at(self, now: &str) -> Run {
        self.with(|c| {
            c.env("KEYCTL_NOW", now);
        })
    }

    /// `input` on stdin.
    pub fn stdin(mut self, input: &[u8]) -> Run {
        self.command.stdin(Stdio::piped());
        self.input = Some(input.to_vec());
        self
    }

    /// Changes the command (environment, stdio) before it runs.
    pub fn with(mut self, adjust: impl FnOnce(&mut Command)) -> Run {
        adjust(&mut self.command);
        self
    }

    /// Starts it; the caller waits (`Running::wait_within`) or kills it.
    pub fn spawn(mut self) -> Running {
        let mut child = self.command.spawn().expect("spawn the command under test");
        let writer = match (self.input.take(), child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => Some(std::thread::spawn(move || {
                use std::io::Write;
                // The command may stop reading early: a broken pipe is fine here.
                let _ = stdin.write_all(&bytes);
            })),
            _ => None,
        };
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        Running {
            child,
            writer,
            out,
            err,
            label: self.label,
        }
    }

    /// Runs it to its end and returns its raw output.
    pub fn output(self) -> Output {
        self.spawn().output()
    }

    /// Runs it to its end: exit code, stdout and stderr (which must be UTF-8).
    pub fn run(self) -> Outcome {
        self.spawn().outcome()
    }
}

/// A started `Run`.
pub struct Running {
    pub child: Child,
    writer: Option<JoinHandle<()>>,
    out: Option<Receiver<Vec<u8>>>,
    err: Option<Receiver<Vec<u8>>>,
    label: Vec<OsString>,
}

impl Running {
    /// Waits at most `limit` for it to exit; None when it is still running.
    pub fn wait_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_within(&mut self.child, limit)
    }

    /// Waits for it to exit; after `RUN_LIMIT` it is killed and the test fails.
    pub fn wait_to_end(&mut self) -> ExitStatus {
        let limit = RUN_LIMIT;
        self.wait_within(limit).unwrap_or_else(|| {
            sigkill(&self.child);
            let _ = self.child.wait();
            panic!("{:?} still running after {limit:?}: killed", self.label);
        })
    }

    /// SIGKILL, as a crash or the OOM killer would end it (safe until it is reaped).
    pub fn kill(&self) {
        sigkill(&self.child);
    }

    /// Waits for its end (see `wait_to_end`) and returns its raw output.
    pub fn output(mut self) -> Output {
        let status = self.wait_to_end();
        self.finish(status)
    }

    /// Waits for its end: exit code, stdout and stderr (which must be UTF-8).
    pub fn outcome(self) -> Outcome {
        let label = self.label.clone();
        Outcome::new(&label, self.output())
    }

    /// What it wrote, once it has exited with `status`.
    pub fn finish(mut self, status: ExitStatus) -> Output {
        let collect = |rx: &Option<Receiver<Vec<u8>>>| {
            rx.as_ref()
                .map_or_else(Vec::new, |rx| drained(rx, RUN_LIMIT))
        };
        let output = Output {
            status,
            stdout: collect(&self.out),
            stderr: collect(&self.err),
        };
        if let Some(w) = self.writer.take() {
            w.join().expect("stdin writer");
        }
        output
    }
}

/// The result of one `keyctl` run.
pub struct Outcome {
    pub args: Vec<String>,
    /// None when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "keyctl {:?}\n--- exit: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    pub fn new<S: AsRef<OsStr>>(args: &[S], output: Output) -> Outcome {
        let (outcome, utf8) = Outcome::lossy(args, output);
        assert!(utf8, "output is not utf-8\n{outcome}");
        outcome
    }

    /// An `Outcome` whose arguments and output may not be UTF-8 (kept lossily), and
    /// whether the output was UTF-8.
    pub fn lossy<S: AsRef<OsStr>>(args: &[S], output: Output) -> (Outcome, bool) {
        let utf8 = std::str::from_utf8(&output.stdout).is_ok()
            && std::str::from_utf8(&output.stderr).is_ok();
        let outcome = Outcome {
            args: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        (outcome, utf8)
    }

    /// Asserts exit 0 and no panic text.
    pub fn ok(&self) -> &Outcome {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        self.no_panic();
        self
    }

    /// Asserts a failure with `code`: nothing on stdout, and exactly one line on
    /// stderr, `error: ...`. Returns that line.
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "expected exit {code}\n{self}");
        assert_eq!(self.stdout, "", "a failure printed to stdout\n{self}");
        self.one_error_line()
    }

    /// Asserts stderr is exactly one line starting with `error: `, and returns it.
    pub fn one_error_line(&self) -> &str {
        self.no_panic();
        assert!(
            self.stderr.ends_with('\n') && self.stderr.lines().count() == 1,
            "stderr is not exactly one line\n{self}"
        );
        let line = self.stderr.trim_end_matches('\n');
        assert!(line.starts_with("error: "), "no 'error: ' prefix\n{self}");
        line
    }

    pub fn no_panic(&self) {
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(!self.stderr.contains(bad), "panic text on stderr\n{self}");
        }
        assert_ne!(self.code, Some(101), "exit 101 is a panic\n{self}");
        assert!(self.code.is_some(), "killed by a signal\n{self}");
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not json ({e})\n{self}"))
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}
