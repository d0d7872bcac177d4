//! The clipboard copy of `create` and `rotate` (SPEC §2 "One-time reveal"), under a
//! real X server: each test starts its own Xvfb (on a display number the server picks
//! itself, `-displayfd`) and reads the clipboard with xclip, as a person pasting would.
//! Nothing is skipped: without Xvfb or xclip these tests fail and say how to get them.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A private X server for one test (support's XServer) plus xclip to read and write
/// its clipboard; the server is killed when dropped.
struct Xvfb {
    /// Held for its Drop, which stops the server.
    _server: XServer,
    display: String,
    xclip: PathBuf,
}

impl Xvfb {
    fn start() -> Xvfb {
        let xclip = require_tool("xclip");
        let server = XServer::start();
        let display = server.display.clone();
        Xvfb {
            _server: server,
            display,
            xclip,
        }
    }

    /// `keyctl ARGS` with this display and `KEYCTL_CLIP_TIME=clip`.
    fn keyctl(&self, env: &TestEnv, clip: &str, args: &[&str]) -> Outcome {
        env.keyctl(args)
            .with(|c| {
                c.env("DISPLAY", &self.display)
                    .env("KEYCTL_CLIP_TIME", clip);
            })
            .run()
    }

    /// What a paste would give: `xclip -o -selection clipboard`, or None when the
    /// clipboard is empty.
    fn paste(&self) -> Option<String> {
        let mut xclip = Command::new(&self.xclip);
        xclip
            .args(["-o", "-selection", "clipboard"])
            .env_clear()
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null());
        let output = Run::new(xclip).output();
        let text = String::from_utf8(output.stdout).expect("the clipboard holds utf-8");
        output.status.success().then_some(text)
    }

    /// Copies `text` as another program would: `xclip -i -selection clipboard` (it
    /// keeps serving it in the background until this server ends).
    fn copy(&self, text: &str) {
        let mut xclip = Command::new(&self.xclip);
        xclip
            .args(["-i", "-selection", "clipboard"])
            .env_clear()
            .env("DISPLAY", &self.display);
        // Its background server must not hold our pipes open: no output is read.
        let output = Run::new(xclip)
            .stdin(text.as_bytes())
            .with(|c| {
                c.stdout(Stdio::null()).stderr(Stdio::null());
            })
            .output();
        assert!(
            output.status.success(),
            "xclip -i failed: {}",
            output.status
        );
        // xclip asks for the selection and forks before Xlib has flushed that request
        // (its background child sends it), so its exit does not mean it owns the
        // clipboard yet: wait until a paste gives the text, as a person would.
        wait_for("xclip to own the clipboard", || {
            self.paste().as_deref() == Some(text)
        });
    }

    /// The keyctl processes (the clipboard helpers) serving this display for `env`:
    /// display numbers are reused by later tests, store paths are not.
    fn helpers(&self, env: &TestEnv) -> Vec<u32> {
        let display = format!("DISPLAY={}", self.display);
        let store = format!("KEYCTL_DB={}", env.location().to_string_lossy());
        keyctl_processes()
            .into_iter()
            .filter(|(_, _, environ)| {
                let mut vars = environ.split(|&b| b == 0);
                vars.clone().any(|v| v == display.as_bytes()) && vars.any(|v| v == store.as_bytes())
            })
            .map(|(pid, _, _)| pid)
            .collect()
    }
}

/// No keyctl process carries `secret` in its argv or environment.
fn assert_secret_not_in_proc(secret: &str) {
    for (pid, cmdline, environ) in keyctl_processes() {
        assert!(
            !contains_bytes(&cmdline, secret.as_bytes()),
            "keyctl process {pid} has the secret in /proc/{pid}/cmdline"
        );
        assert!(
            !contains_bytes(&environ, secret.as_bytes()),
            "keyctl process {pid} has the secret in /proc/{pid}/environ"
        );
    }
}

/// The secret of a plain reveal (stdout is a pipe): the one stdout line.
fn plain_secret(out: &Outcome) -> String {
    out.ok();
    let secret = out.stdout.trim_end().to_string();
    assert_secret(&secret, "sk", "live");
    secret
}

/// The secret inside the terminal reveal's frame.
fn framed_secret(out: &Outcome) -> String {
    let framed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('│'))
        .collect();
    assert_eq!(framed.len(), 1, "one framed line\n{out}");
    framed[0]
        .trim()
        .trim_start_matches('│')
        .trim_end_matches('│')
        .trim()
        .to_string()
}

/// The lines of stderr that start with `warning:`.
fn warnings(out: &Outcome) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect()
}

#[test]
fn the_copy_outlives_keyctl_and_is_cleared_after_clip_time() {
    let x = Xvfb::start();
    let env = TestEnv::initialized();
    let start = Instant::now();
    let out = x.keyctl(&env, "4", &["create", "--copy", "--name", "pasted"]);
    let secret = plain_secret(&out);
    assert!(
        out.stderr.contains("copied to clipboard (clears in 4s)\n"),
        "{out}"
    );
    assert!(warnings(&out).is_empty(), "{out}");

    // keyctl has exited and its stdout and stderr have ended (the run read them to
    // their end), while its helper still serves the secret: nothing of keyctl's keeps
    // `KEY=$(keyctl create ...)` waiting for the clip time.
    assert_eq!(x.paste().as_deref(), Some(secret.as_str()));
    let helpers = x.helpers(&env);
    assert_eq!(helpers.len(), 1, "one clipboard helper: {helpers:?}");
    assert_secret_not_in_proc(&secret);

    // KEYCTL_CLIP_TIME=4: cleared, and the helper gone, once 4 s have passed and not
    // before (a lower bound: a slow machine only makes it later).
    wait_for("the clipboard cleared", || x.paste().is_none());
    let cleared = start.elapsed();
    assert!(
        cleared >= Duration::from_secs(4),
        "cleared after {cleared:?}, before KEYCTL_CLIP_TIME=4"
    );
    wait_for("the clipboard helper gone", || x.helpers(&env).is_empty());
}

#[test]
fn something_copied_meanwhile_is_not_clobbered() {
    let x = Xvfb::start();
    let env = TestEnv::initialized();
    let out = x.keyctl(&env, "2", &["create", "--copy", "--name", "replaced"]);
    let secret = plain_secret(&out);
    assert_eq!(x.paste().as_deref(), Some(secret.as_str()));

    x.copy("something else");
    assert_eq!(x.paste().as_deref(), Some("something else"));
    // The helper notices it lost the clipboard and leaves (long before its clip time
    // would clear it); gone, it can clear nothing later.
    wait_for("the clipboard helper gone", || x.helpers(&env).is_empty());
    assert_eq!(x.paste().as_deref(), Some("something else"));
}

#[test]
fn a_second_copy_replaces_the_first() {
    let x = Xvfb::start();
    let env = TestEnv::initialized();
    let first = x.keyctl(&env, "30", &["create", "--copy", "--name", "first"]);
    let first = plain_secret(&first);
    assert_eq!(x.paste().as_deref(), Some(first.as_str()));
    let second = x.keyctl(&env, "30", &["create", "--copy", "--name", "second"]);
    let second = plain_secret(&second);
    assert_eq!(x.paste().as_deref(), Some(second.as_str()));
    // The first helper lost the clipboard and exits quietly; the second one stays.
    wait_for("one clipboard helper left", || x.helpers(&env).len() == 1);
    assert_eq!(x.paste().as_deref(), Some(second.as_str()));
    assert_secret_not_in_proc(&first);
    assert_secret_not_in_proc(&second);
}

#[test]
fn a_terminal_copies_by_default_and_no_copy_prevents_it() {
    let x = Xvfb::start();
    let env = TestEnv::initialized();
    let mut command = env.command();
    command
        .env("DISPLAY", &x.display)
        .env("KEYCTL_CLIP_TIME", "30");
    let out = run_on_tty(command, &["create", "--name", "tty"], 100);
    out.ok();
    let secret = framed_secret(&out);
    // SPEC §5: the line follows the frame (the copy is made after the commit).
    assert!(
        out.stdout.ends_with(
            "  This key will not be shown again. Store it securely now.\n  Copied to clipboard (clears in 30s).\n\n"
        ),
        "{out}"
    );
    // In a terminal the frame says it; stderr has no second note.
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(x.paste().as_deref(), Some(secret.as_str()));
    // The key was committed: another process verifies it.
    env.verify(NOW, &secret, &[]).ok();

    let mut command = env.command();
    command
        .env("DISPLAY", &x.display)
        .env("KEYCTL_CLIP_TIME", "30");
    let out = run_on_tty(command, &["create", "--name", "kept-off", "--no-copy"], 100);
    out.ok();
    assert!(!out.stdout.contains("Copied to clipboard"), "{out}");
    assert_eq!(out.stderr, "", "{out}");
    // The first secret is still there: nothing was copied.
    assert_eq!(x.paste().as_deref(), Some(secret.as_str()));
}

#[test]
fn pipes_copy_only_when_asked_and_rotate_copies_the_new_secret() {
    let x = Xvfb::start();
    let env = TestEnv::initialized();
    // Not a terminal: no copy by default.
    let out = x.keyctl(&env, "30", &["create", "--json", "--name", "svc"]);
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(x.paste(), None, "a pipe got a clipboard copy by default");

    let out = x.keyctl(&env, "30", &["rotate", "--yes", "--json", "--copy", "svc"]);
    out.ok();
    let new = out.json()["key"].as_str().expect("key").to_string();
    assert!(
        out.stderr.contains("copied to clipboard (clears in 30s)\n"),
        "{out}"
    );
    assert_eq!(x.paste().as_deref(), Some(new.as_str()));
    assert_secret_not_in_proc(&new);

    // --quiet drops the note, not the copy.
    let out = x.keyctl(
        &env,
        "30",
        &["create", "--quiet", "--copy", "--name", "quiet"],
    );
    let quiet = plain_secret(&out);
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(x.paste().as_deref(), Some(quiet.as_str()));
}

/// No display at all (CI): one warning line, the secret still printed, exit 0, and no
/// helper left waiting for a display.
#[test]
fn no_display_warns_and_still_prints_the_secret() {
    let env = TestEnv::initialized();
    for args in [
        &["create", "--copy", "--name", "ci"][..],
        &["rotate", "--copy", "--yes", "ci"][..],
    ] {
        let out = env.run(args);
        let secret = plain_secret(&out);
        assert!(
            keyctl_processes_on(&env.location()).is_empty(),
            "a helper is left"
        );
        assert_eq!(
            warnings(&out),
            ["warning: the key was not copied to the clipboard: no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"],
            "{out}"
        );
        assert!(!out.stderr.contains(&secret), "{out}");
        env.verify(NOW, &secret, &[]).ok();
    }
}

/// SPEC §5: at a terminal without a display (an ssh session) the default copy is
/// silently off; only an explicit `--copy` warns, after the frame, and the key exists.
#[test]
fn a_terminal_without_a_display_warns_only_for_an_explicit_copy() {
    let env = TestEnv::initialized();
    let frame_end = "  This key will not be shown again. Store it securely now.\n\n";
    for (name, flags) in [("quiet", &[][..]), ("asked", &["--copy"][..])] {
        let mut args = vec!["create", "--name", name];
        args.extend_from_slice(flags);
        let out = run_on_tty(env.command(), &args, 100);
        out.ok();
        let secret = framed_secret(&out);
        assert!(out.stdout.ends_with(frame_end), "{out}");
        if flags.is_empty() {
            assert_eq!(out.stderr, "", "the default copy is silently off\n{out}");
        } else {
            assert_eq!(
                out.stderr,
                "warning: the key was not copied to the clipboard: no display (neither DISPLAY nor WAYLAND_DISPLAY is set)\n",
                "{out}"
            );
        }
        env.verify(NOW, &secret, &[]).ok();
    }
    // rotate shares the reveal.
    let out = run_on_tty(env.command(), &["rotate", "--yes", "quiet"], 100);
    out.ok();
    assert!(warnings(&out).is_empty(), "{out}");
}

/// A file removed when the test ends, passed or not.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// SPEC §5: the copy is made after the commit, never while the write lock is held. A
/// display that accepts the helper's connection and never answers holds the helper
/// (and keyctl, for up to a second) at the moment of the copy: by then the secret is
/// printed and the key committed, so another process lists it and verifies it.
#[test]
fn the_copy_starts_after_the_commit() {
    let env = TestEnv::initialized();
    let (number, listener) = (7000..7999)
        .find_map(|n| {
            let path = format!("/tmp/.X11-unix/X{n}");
            if Path::new(&path).exists() {
                return None;
            }
            fs::create_dir_all("/tmp/.X11-unix").ok()?;
            Some((n, std::os::unix::net::UnixListener::bind(&path).ok()?))
        })
        .expect("a free display socket");
    let _socket = RemovedOnDrop(PathBuf::from(format!("/tmp/.X11-unix/X{number}")));
    let mut create = env
        .keyctl(&["create", "--json", "--copy", "--name", "held"])
        .with(|c| {
            c.env("DISPLAY", format!(":{number}"));
        })
        .spawn();
    // The helper connects to the display: the copy has begun. The connection is kept
    // open and never answered.
    listener.set_nonblocking(true).unwrap();
    let mut connection = None;
    wait_for("the clipboard helper connecting to the display", || {
        connection = listener.accept().ok();
        connection.is_some()
    });
    let listed = env.list_names(&[]);
    let status = create.wait_to_end();
    drop(connection);
    let output = create.finish(status);
    let stdout = String::from_utf8(output.stdout).expect("stdout is utf-8");
    let stderr = String::from_utf8(output.stderr).expect("stderr is utf-8");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        listed,
        ["held"],
        "the key was committed before the copy began"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("the reveal");
    let secret = v["key"].as_str().expect("key");
    assert!(
        stderr.starts_with("warning: the key was not copied to the clipboard: "),
        "{stderr}"
    );
    env.verify(NOW, secret, &[]).ok();
}

/// A display that does not answer (no server behind it, a Wayland socket that does not
/// exist): the helper reports the failure; keyctl prints one warning line, exits 0,
/// and leaves no helper behind.
#[test]
fn an_unreachable_display_warns_and_leaves_no_helper() {
    let env = TestEnv::initialized();
    let unused = (7000..7999)
        .find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .expect("a free display number");
    let display = format!(":{unused}");
    let cases: [(&str, &str); 2] = [
        ("DISPLAY", display.as_str()),
        ("WAYLAND_DISPLAY", "no-such-wayland"),
    ];
    for (i, (var, value)) in cases.into_iter().enumerate() {
        let name = format!("k{i}");
        let out = env
            .keyctl(&["create", "--copy", "--name", &name])
            .with(|c| {
                c.env(var, value).env("XDG_RUNTIME_DIR", env.root());
            })
            .run();
        let secret = plain_secret(&out);
        wait_for("the failed clipboard helper gone", || {
            keyctl_processes_on(&env.location()).is_empty()
        });
        let warned = warnings(&out);
        assert_eq!(warned.len(), 1, "{out}");
        assert!(
            warned[0].starts_with("warning: the key was not copied to the clipboard: "),
            "{out}"
        );
        assert!(!out.stderr.contains(&secret), "{out}");
        assert!(!out.stderr.contains("copied to clipboard ("), "{out}");
    }
}

#[test]
fn a_bad_clip_time_is_a_warning_and_nothing_is_copied() {
    let env = TestEnv::initialized();
    for bad in ["0", "soon", "86401"] {
        let out = env
            .keyctl(&["create", "--copy", "--name", &format!("t{bad}")])
            .with(|c| {
                c.env("KEYCTL_CLIP_TIME", bad).env("DISPLAY", ":7999");
            })
            .run();
        plain_secret(&out);
        assert_eq!(
            warnings(&out),
            [format!(
                "warning: the key was not copied to the clipboard: invalid KEYCTL_CLIP_TIME '{bad}': use whole seconds from 1 to 86400"
            )],
            "{out}"
        );
    }
}

/// The helper is keyctl itself, recognised before the parser: it is in no help text,
/// and its marker variable alone does not turn a normal command into it.
#[test]
fn the_helper_is_hidden_from_help_and_needs_its_marker_and_no_arguments() {
    let env = TestEnv::new();
    for args in [&["--help"][..], &["create", "--help"][..]] {
        let out = env.run(args);
        out.ok();
        assert!(!out.stdout.to_lowercase().contains("helper"), "{out}");
    }
    let out = env
        .keyctl(&["--version"])
        .with(|c| {
            c.env("KEYCTL_CLIPBOARD_HELPER", "1");
        })
        .run();
    out.ok();
    assert!(out.stdout.starts_with("keyctl "), "{out}");
}

/// The helper outlives keyctl, so it must hold nothing of its caller's: not stdout,
/// not stderr, not a pipe the caller passed down on another descriptor.
#[test]
fn the_helper_holds_none_of_the_callers_descriptors() {
    let x = Xvfb::start();
    let env = TestEnv::initialized();
    let (reader, writer) = pipe();
    let mut command = env.command();
    command
        .args(["create", "--copy", "--name", "fds"])
        .env("DISPLAY", &x.display)
        // Long enough that a helper holding a descriptor would outlast every wait.
        .env("KEYCTL_CLIP_TIME", "600");
    let fd = writer.as_raw_fd();
    // keyctl gets the pipe's write end as descriptor 5, without close-on-exec.
    // SAFETY: runs between fork and exec and calls only async-signal-safe dup2.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The run reads stdout and stderr to their end: a helper holding either would
    // keep it waiting for the clip time, and fail it.
    let out = Run::new(command).run();
    drop(writer);
    let secret = plain_secret(&out);
    assert_eq!(x.paste().as_deref(), Some(secret.as_str()));
    assert_eq!(x.helpers(&env).len(), 1, "the helper is running");
    // keyctl has exited and the helper is alive: the pipe still ends.
    let ended = drain(fs::File::from(reader));
    drained(&ended, WAIT_LIMIT);
    assert_eq!(
        x.helpers(&env).len(),
        1,
        "the pipe ended because the helper exited, not while it ran"
    );
}
