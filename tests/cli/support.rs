//! Shared test harness: a `TestEnv` that owns a temporary folder and runs the real
//! `keyctl` binary in it with a cleared environment and a fixed clock, plus helpers
//! for json field order, the secret checksum, file snapshots, closed pipes and
//! pseudo-terminals.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tempfile::TempDir;

/// The one "now" of every command unless a test says otherwise.
pub const NOW: &str = "2026-11-23T12:00:00Z";
/// `NOW` in unix milliseconds, as the store keeps times.
pub const NOW_MS: i64 = 1_795_435_200_000;
/// The actor every command runs as (`KEYCTL_ACTOR`).
pub const ACTOR: &str = "tester";

/// The key object of SPEC §2 "Key object (json)", in order.
pub const KEY_FIELDS: [&str; 24] = [
    "id",
    "name",
    "description",
    "owner",
    "key_prefix",
    "status",
    "is_active",
    "livemode",
    "category",
    "group",
    "scopes",
    "deployment",
    "allowed_models",
    "allowed_ips",
    "quotas",
    "rate_limit",
    "credit_limit",
    "credits_used",
    "created_at",
    "expires_at",
    "last_used_at",
    "last_used_ip",
    "rotated_from",
    "rotated_to",
];

pub const QUOTA_FIELDS: [&str; 4] = ["total", "daily", "weekly", "monthly"];

/// A temporary world for one test: `root/` holds `home/`, `data/` (XDG_DATA_HOME)
/// and the store `keys.db` (KEYCTL_DB), which does not exist until a command makes it.
pub struct TestEnv {
    dir: TempDir,
    pub db: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-test-")
            .tempdir()
            .expect("create a temp dir");
        fs::create_dir(dir.path().join("home")).unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        let db = dir.path().join("keys.db");
        TestEnv { dir, db }
    }

    /// A fresh environment whose store has been made with `keyctl init`.
    pub fn initialized() -> TestEnv {
        let env = TestEnv::new();
        env.run(&["init"]).ok();
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    pub fn data_home(&self) -> PathBuf {
        self.root().join("data")
    }

    /// `keyctl` with a cleared environment: fixed HOME, XDG_DATA_HOME, store, clock,
    /// actor and time zone; stdin is empty (never a terminal).
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keyctl"));
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.data_home())
            .env("KEYCTL_DB", &self.db)
            .env("KEYCTL_NOW", NOW)
            .env("KEYCTL_ACTOR", ACTOR)
            .env("TZ", "UTC")
            .current_dir(self.root())
            .stdin(Stdio::null());
        c
    }

    /// Runs `keyctl ARGS` and captures its exit code, stdout and stderr.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with(args, |_| {})
    }

    /// Runs `keyctl ARGS` with the clock set to `now`.
    pub fn run_at(&self, now: &str, args: &[&str]) -> Outcome {
        self.run_with(args, |c| {
            c.env("KEYCTL_NOW", now);
        })
    }

    /// Runs `keyctl ARGS` after `adjust` has changed the command (env, stdio).
    pub fn run_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Outcome {
        let mut c = self.command();
        c.args(args);
        adjust(&mut c);
        let output = c.output().expect("run keyctl");
        Outcome::new(args, output)
    }

    /// `keyctl create --json --name NAME EXTRA...` (at `NOW`); returns the secret and
    /// the key object.
    pub fn create(&self, name: &str, extra: &[&str]) -> Created {
        self.create_at(NOW, name, extra)
    }

    pub fn create_at(&self, now: &str, name: &str, extra: &[&str]) -> Created {
        let mut args = vec!["create", "--json", "--name", name];
        args.extend_from_slice(extra);
        let out = self.run_at(now, &args);
        out.ok();
        let v = out.json();
        let secret = v["key"].as_str().expect("key is a string").to_string();
        Created {
            secret,
            details: v["key_details"].clone(),
        }
    }

    /// `keyctl list --json ARGS` parsed.
    pub fn list_json(&self, args: &[&str]) -> Vec<Value> {
        self.list_json_at(NOW, args)
    }

    pub fn list_json_at(&self, now: &str, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        let out = self.run_at(now, &all);
        out.ok();
        match out.json() {
            Value::Array(items) => items,
            other => panic!("list --json printed {other}, not an array"),
        }
    }

    /// Names of the keys `list --json ARGS` prints, in order.
    pub fn list_names(&self, args: &[&str]) -> Vec<String> {
        names(&self.list_json(args))
    }

    /// Every file and folder under the temp root with a digest of its bytes.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(self.root())
    }

    /// A read-write SQLite connection to the store, for fixtures the CLI cannot make
    /// yet (disabled/revoked states, last use, colliding prefixes).
    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open the store with rusqlite")
    }

    /// Runs one fixture statement on the store with `?1` bound to a key id.
    pub fn fixture(&self, sql: &str, id: &str) {
        let changed = self.sqlite().execute(sql, [id]).expect("fixture sql");
        assert_eq!(changed, 1, "fixture {sql:?} changed {changed} rows");
    }
}

/// What `create --json` returned.
pub struct Created {
    pub secret: String,
    pub details: Value,
}

impl Created {
    pub fn id(&self) -> &str {
        self.details["id"].as_str().expect("id is a string")
    }

    pub fn prefix(&self) -> &str {
        self.details["key_prefix"]
            .as_str()
            .expect("key_prefix is a string")
    }
}

pub fn names(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["name"].as_str().expect("name is a string").to_string())
        .collect()
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
    pub fn new(args: &[&str], output: Output) -> Outcome {
        Outcome {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is utf-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is utf-8"),
        }
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

/// A file tree's contents, compared to prove a command changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<String, String>);

impl Snapshot {
    pub fn of(root: &Path) -> Snapshot {
        let mut map = BTreeMap::new();
        walk(root, root, &mut map);
        Snapshot(map)
    }

    pub fn paths(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            map.insert(rel, format!("dir {mode:o}"));
            walk(root, &path, map);
        } else {
            let bytes = fs::read(&path).unwrap();
            map.insert(
                rel,
                format!("{mode:o} {} bytes fnv {:016x}", bytes.len(), fnv64(&bytes)),
            );
        }
    }
}

fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Permission bits of a file or folder.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `path` with `suffix` appended (`keys.db` → `keys.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// True when `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

// ---- the secret's checksum, recomputed independently of keyctl's code ----

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit by bit.
pub fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base62 (`0-9A-Za-z`), most significant digit first, zero-padded to 6.
pub fn base62_6(n: u32) -> String {
    let mut n = u64::from(n);
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    assert_eq!(n, 0, "62^6 > 2^32, so six digits always suffice");
    String::from_utf8(digits.to_vec()).unwrap()
}

/// Asserts `secret` is `<prefix>_<mode>_<32 base62><6-char base62 CRC32>`.
pub fn assert_secret(secret: &str, prefix: &str, mode: &str) {
    let head = format!("{prefix}_{mode}_");
    let body = secret
        .strip_prefix(&head)
        .unwrap_or_else(|| panic!("{secret:?} does not start with {head:?}"));
    assert_eq!(body.len(), 38, "body of {secret:?} is not 38 characters");
    assert!(
        body.bytes().all(|b| BASE62.contains(&b)),
        "body of {secret:?} is not base62"
    );
    let (before, sum) = secret.split_at(secret.len() - 6);
    assert_eq!(
        sum,
        base62_6(crc32_ieee(before.as_bytes())),
        "checksum of {secret:?}"
    );
}

/// True when `text` holds something shaped like a full secret (a prefix, a mode and
/// more than the 4 body characters of a display prefix).
pub fn has_secret_shape(text: &str) -> bool {
    for mode in ["_live_", "_test_"] {
        let mut rest = text;
        while let Some(i) = rest.find(mode) {
            let after = &rest[i + mode.len()..];
            let run = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
            if run > 4 {
                return true;
            }
            rest = after;
        }
    }
    false
}

// ---- json with its key order ----

/// A json value that remembers the order of object members (serde_json's `Value`
/// sorts them unless its `preserve_order` feature is on, which would change keyctl).
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl Ordered {
    pub fn parse(text: &str) -> Ordered {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not json ({e}): {text}"))
    }

    /// Member names of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    pub fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(members) => {
                &members
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no member {key}"))
                    .1
            }
            other => panic!("not an object: {other:?}"),
        }
    }

    pub fn items(&self) -> &[Ordered] {
        match self {
            Ordered::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// Asserts an object has exactly the key-object members, in the spec's order
/// (and the quotas object its four members in order).
pub fn assert_key_field_order(obj: &Ordered) {
    assert_eq!(obj.keys(), KEY_FIELDS, "key object members");
    assert_eq!(obj.get("quotas").keys(), QUOTA_FIELDS, "quotas members");
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any json value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Ordered, E> {
        Ok(Ordered::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Ordered, D::Error> {
        Ordered::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Ordered>()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            members.push((key, map.next_value::<Ordered>()?));
        }
        Ok(Ordered::Object(members))
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

// ---- unusual stdout: closed pipes, full disks, terminals ----

/// The write end of a pipe whose read end is already closed: every write to it
/// fails with EPIPE, deterministically (no race with a reader that exits).
/// (`std::io::pipe` would do, but it needs Rust 1.87 and the crate's MSRV is 1.85.)
pub fn closed_pipe() -> OwnedFd {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-element array with new descriptors on success.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned here only.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    writer
}

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

/// Runs `command` with stdout on a pseudo-terminal `cols` columns wide (stderr is
/// captured separately, stdin stays as the command set it). Returns the outcome with
/// the terminal's output as stdout, carriage returns removed.
pub fn run_on_tty(mut command: Command, args: &[&str], cols: u16) -> Outcome {
    let (master, slave) = open_pty(cols);
    command
        .args(args)
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    // Make the terminal the child's controlling terminal, as in a real session, so
    // `/dev/tty` is this terminal too (terminal libraries ask it for the width).
    // SAFETY: runs in the child between fork and exec and calls only the
    // async-signal-safe setsid and ioctl; fd 1 is the terminal by then.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(1, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("spawn keyctl on a pty");
    // The Command holds a copy of the terminal's slave side: drop it so the master
    // sees the end of output when the child exits.
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut file = fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                // Linux reports EIO on the master once every slave side is closed.
                Err(_) => break,
            }
        }
        out
    });
    let output = child.wait_with_output().expect("wait for keyctl");
    let tty = reader.join().expect("pty reader");
    Outcome {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: output.status.code(),
        stdout: String::from_utf8(tty)
            .expect("tty output is utf-8")
            .replace('\r', ""),
        stderr: String::from_utf8(output.stderr).expect("stderr is utf-8"),
    }
}

#[test]
fn checksum_helpers_match_known_values() {
    // The CRC-32/ISO-HDLC check value, and base62 edges.
    assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32_ieee(b""), 0);
    assert_eq!(base62_6(0), "000000");
    assert_eq!(base62_6(61), "00000z");
    assert_eq!(base62_6(62), "000010");
    assert_eq!(base62_6(u32::MAX), "4gfFC3");
    assert!(has_secret_shape("x sk_live_abcde y"));
    assert!(!has_secret_shape("created key (sk_live_abcd...)"));
}

// ---- lifecycle, audit, batch and backup helpers ----

impl TestEnv {
    /// Runs `keyctl ARGS` with `input` on stdin (written from a thread, so a large
    /// input cannot deadlock against a full stdout pipe).
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Outcome {
        let mut c = self.command();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn keyctl");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            // keyctl may fail before reading all of it: a broken pipe is fine here.
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("wait for keyctl");
        writer.join().expect("stdin writer");
        Outcome::new(args, output)
    }

    /// `keyctl show --json KEYREF` without its `usage` member: the key object alone.
    pub fn key_json(&self, keyref: &str) -> Value {
        self.key_json_at(NOW, keyref)
    }

    pub fn key_json_at(&self, now: &str, keyref: &str) -> Value {
        let out = self.run_at(now, &["show", "--json", keyref]);
        out.ok();
        let mut v = out.json();
        v.as_object_mut()
            .expect("show --json prints an object")
            .remove("usage");
        v
    }

    /// `keyctl audit --json ARGS`: the events, newest first.
    pub fn audit_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["audit", "--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        out.ok();
        match out.json() {
            Value::Array(items) => items,
            other => panic!("audit --json printed {other}, not an array"),
        }
    }

    /// `keyctl audit verify` on an intact chain: its event count and head hash.
    pub fn audit_head(&self) -> (u64, String) {
        let out = self.run(&["audit", "verify"]);
        out.ok();
        parse_verify_line(&out.stdout)
    }

    /// The stored `secret_hash` of a key.
    pub fn secret_hash(&self, id: &str) -> Vec<u8> {
        self.sqlite()
            .query_row("SELECT secret_hash FROM keys WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .expect("the key's secret_hash")
    }
}

/// Parses `audit trail intact: N events, head HEX` (`1 event`) into (N, HEX).
pub fn parse_verify_line(stdout: &str) -> (u64, String) {
    let line = stdout
        .strip_prefix("audit trail intact: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not an 'audit trail intact' line: {stdout:?}"));
    let (count, head) = line
        .split_once(" events, head ")
        .or_else(|| line.split_once(" event, head ").filter(|(n, _)| *n == "1"))
        .unwrap_or_else(|| panic!("no count and head in {stdout:?}"));
    let head = head.to_string();
    assert!(
        head.len() == 64
            && head
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "head {head:?} is not 64 lowercase hex digits"
    );
    (count.parse().expect("event count"), head)
}

/// SHA-256 of `bytes`, computed here (not by keyctl's code).
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `NOW` plus `secs` seconds, as RFC 3339 UTC with whole seconds (keyctl's json form).
pub fn now_plus(secs: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339(NOW).unwrap();
    (base + chrono::Duration::seconds(secs))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// Runs `command` with stdin, stdout and stderr on one pseudo-terminal (its
/// controlling terminal), as a person at a terminal would. Once the terminal shows
/// `prompt`, `answer` is typed. Returns everything the terminal showed as stdout
/// (carriage returns removed; stderr is empty). A run that takes over 30 s is killed.
pub fn run_interactive(
    mut command: Command,
    args: &[&str],
    prompt: &str,
    answer: &[u8],
) -> Outcome {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let (master, slave) = open_pty(120);
    command
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: runs in the child between fork and exec and calls only the
    // async-signal-safe setsid and ioctl; fd 0 is the terminal by then.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("spawn keyctl on a pty");
    drop(command);
    let shown = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut typer = fs::File::from(master.try_clone().unwrap());
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut file = fs::File::from(master);
            let mut buf = [0u8; 4096];
            loop {
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => shown.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        })
    };
    let start = Instant::now();
    let mut typed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for keyctl") {
            break status;
        }
        if !typed && String::from_utf8_lossy(&shown.lock().unwrap()).contains(prompt) {
            typer.write_all(answer).expect("type the answer");
            typed = true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "keyctl {args:?} still running after 30 s; the terminal shows:\n{}",
                String::from_utf8_lossy(&shown.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(typer);
    reader.join().expect("pty reader");
    let tty = shown.lock().unwrap().clone();
    Outcome {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: status.code(),
        stdout: String::from_utf8_lossy(&tty).replace('\r', ""),
        stderr: String::new(),
    }
}

// ---- verification, request-log and usage helpers ----

/// The members of a `verify --json` result (SPEC §3), in order.
pub const VERDICT_FIELDS: [&str; 8] = [
    "valid",
    "code",
    "status",
    "message",
    "key_id",
    "key_name",
    "credits_remaining",
    "quota_remaining",
];

/// `NOW` plus `ms` milliseconds, as RFC 3339 UTC with milliseconds (for `KEYCTL_NOW`
/// at a window's edge).
pub fn now_plus_ms(ms: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339(NOW).unwrap();
    (base + chrono::Duration::milliseconds(ms))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A well-formed secret (right shape, right checksum) that no store holds: `body32`
/// is its 32 random characters.
pub fn forge_secret(prefix: &str, mode: &str, body32: &str) -> String {
    assert_eq!(body32.len(), 32, "the random part is 32 characters");
    let before = format!("{prefix}_{mode}_{body32}");
    let secret = format!("{before}{}", base62_6(crc32_ieee(before.as_bytes())));
    assert_secret(&secret, prefix, mode);
    secret
}

impl TestEnv {
    /// Runs `keyctl ARGS` at `now` with `input` on stdin, after `adjust` has changed
    /// the command (written from a thread, like `run_with_stdin`).
    pub fn run_input_with(
        &self,
        now: &str,
        args: &[&str],
        input: &[u8],
        adjust: impl FnOnce(&mut Command),
    ) -> Outcome {
        let mut c = self.command();
        c.env("KEYCTL_NOW", now)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut c);
        let mut child = c.spawn().expect("spawn keyctl");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("wait for keyctl");
        writer.join().expect("stdin writer");
        Outcome::new(args, output)
    }

    /// Runs `keyctl ARGS` at `now` with `input` on stdin.
    pub fn run_at_with_stdin(&self, now: &str, args: &[&str], input: &[u8]) -> Outcome {
        self.run_input_with(now, args, input, |_| {})
    }

    /// `keyctl verify ARGS` at `now`, the secret piped on stdin as one line.
    pub fn verify(&self, now: &str, secret: &str, args: &[&str]) -> Outcome {
        let mut all = vec!["verify"];
        all.extend_from_slice(args);
        self.run_at_with_stdin(now, &all, format!("{secret}\n").as_bytes())
    }

    /// `keyctl verify --json ARGS` at `now`: asserts the result's shape (members in
    /// order, one line, nothing on stderr, the exit code its outcome implies is left
    /// to the caller) and returns it parsed.
    pub fn verify_json(&self, now: &str, secret: &str, args: &[&str]) -> (Outcome, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.verify(now, secret, &all);
        let v = assert_verdict_line(&out, out.stdout.trim_end_matches('\n'));
        assert_eq!(out.stderr, "", "verify wrote to stderr\n{out}");
        (out, v)
    }

    /// Rows in one table of the store.
    pub fn count_rows(&self, table: &str) -> i64 {
        self.sqlite()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }

    /// `keyctl logs --json ARGS` (at `NOW`): the rows, newest first.
    pub fn logs_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["logs", "--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        out.ok();
        match out.json() {
            Value::Array(items) => items,
            other => panic!("logs --json printed {other}, not an array"),
        }
    }

    /// `keyctl show --json KEYREF` at `now`: its `usage` member.
    pub fn usage_of(&self, now: &str, keyref: &str) -> Value {
        let out = self.run_at(now, &["show", "--json", keyref]);
        out.ok();
        out.json()["usage"].clone()
    }
}

/// Asserts `line` (one line of a verify or stream result) is a verdict object with the
/// members of SPEC §3 in order, and that it is one stdout line of `out`. Returns it.
pub fn assert_verdict_line(out: &Outcome, line: &str) -> Value {
    assert!(
        !line.contains('\n'),
        "a verdict is one line: {line:?}\n{out}"
    );
    let ordered = Ordered::parse(line);
    assert_eq!(ordered.keys(), VERDICT_FIELDS, "verdict members\n{out}");
    if let Ordered::Object(_) = ordered.get("quota_remaining") {
        assert_eq!(
            ordered.get("quota_remaining").keys(),
            QUOTA_FIELDS,
            "quota_remaining members\n{out}"
        );
    }
    serde_json::from_str(line).unwrap()
}

/// Asserts a plain `verify` answered `message` as its only stdout line, wrote nothing
/// to stderr and exited `exit`.
pub fn assert_says(out: &Outcome, exit: i32, message: &str) {
    out.no_panic();
    assert_eq!(out.code, Some(exit), "exit code\n{out}");
    assert_eq!(out.stdout, format!("{message}\n"), "stdout\n{out}");
    assert_eq!(out.stderr, "", "stderr\n{out}");
}

/// SPEC §3: the HTTP status and exit code of each verify outcome code.
pub fn status_and_exit(code: &str) -> (u64, i32) {
    match code {
        "ip_blocked" => (403, 17),
        "invalid" => (401, 10),
        "revoked" => (403, 13),
        "inactive" => (401, 11),
        "expired" => (401, 12),
        "ip_not_allowed" => (403, 16),
        "forbidden_deployment" => (403, 18),
        "forbidden_scope" => (403, 19),
        "forbidden_model" => (403, 20),
        "rate_limited" => (429, 21),
        "quota_exceeded" => (401, 14),
        "credits_exhausted" => (401, 15),
        "valid" => (200, 0),
        other => panic!("no such verify outcome: {other}"),
    }
}

/// Asserts a verdict object says `code` with `message` (and the status SPEC §3 gives
/// that code).
pub fn assert_verdict(v: &Value, code: &str, message: &str) {
    let (status, _) = status_and_exit(code);
    assert_eq!(v["valid"], Value::Bool(code == "valid"), "valid in {v}");
    assert_eq!(v["code"], code, "code in {v}");
    assert_eq!(v["status"], status, "status in {v}");
    assert_eq!(v["message"], message, "message in {v}");
}

impl TestEnv {
    /// One recorded `verify` (plain output) at `now` that must answer `code` with
    /// `message` and the matching exit code.
    pub fn expect_verify(&self, now: &str, secret: &str, args: &[&str], code: &str, message: &str) {
        let out = self.verify(now, secret, args);
        assert_says(&out, status_and_exit(code).1, message);
    }

    /// One recorded `verify --json` at `now` that must answer `code` with `message`;
    /// returns the verdict.
    pub fn expect_verify_json(
        &self,
        now: &str,
        secret: &str,
        args: &[&str],
        code: &str,
        message: &str,
    ) -> Value {
        let (out, v) = self.verify_json(now, secret, args);
        assert_eq!(out.code, Some(status_and_exit(code).1), "exit code\n{out}");
        assert_verdict(&v, code, message);
        v
    }
}

// ---- real shells and interactive sessions: completions, the create wizard ----

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

/// How long one `Pty::expect` or `Pty::wait` waits before failing the test.
pub const PTY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A program running on a pseudo-terminal (stdin, stdout and stderr, and its
/// controlling terminal), driven like a person would: type bytes, wait for text.
/// Every wait is bounded by `PTY_TIMEOUT`; dropping it kills the program.
pub struct Pty {
    child: std::process::Child,
    typer: fs::File,
    shown: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Where the next `expect` starts looking, in bytes of `shown`.
    mark: usize,
    label: String,
}

impl Pty {
    /// Starts `command` on a new terminal `cols` columns wide, in its own session.
    pub fn spawn(mut command: Command, cols: u16) -> Pty {
        let (master, slave) = open_pty(cols);
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: runs in the child between fork and exec and calls only the
        // async-signal-safe setsid and ioctl; fd 0 is the terminal by then.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
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
        let child = command.spawn().expect("spawn a program on a pty");
        // The Command holds copies of the slave side: drop them, so the master sees
        // the end of output once the program (and its children) are gone.
        drop(command);
        let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
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
    /// the test (showing the terminal) when it does not appear in `PTY_TIMEOUT`.
    pub fn expect(&mut self, text: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            {
                let shown = self.shown.lock().unwrap();
                let tail = &shown[self.mark.min(shown.len())..];
                if let Some(i) = tail
                    .windows(text.len().max(1))
                    .position(|w| w == text.as_bytes())
                {
                    let end = self.mark + i + text.len();
                    let seen = String::from_utf8_lossy(&shown[self.mark..end]).replace('\r', "");
                    self.mark = end;
                    return seen;
                }
            }
            if start.elapsed() > PTY_TIMEOUT {
                let screen = self.screen();
                self.kill();
                panic!(
                    "{text:?} did not appear within {PTY_TIMEOUT:?} on the terminal of {}; \
                     it shows:\n{screen}\n--- (escaped) {screen:?}",
                    self.label
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits (at most `PTY_TIMEOUT`) for the program to exit, then for the terminal's
    /// last output, and returns the exit code (None: ended by a signal) and everything
    /// the terminal showed.
    pub fn wait(&mut self) -> (Option<i32>, String) {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the pty program") {
                break status;
            }
            if start.elapsed() > PTY_TIMEOUT {
                let screen = self.screen();
                self.kill();
                panic!(
                    "{} still running after {PTY_TIMEOUT:?}; the terminal shows:\n{screen}\n\
                     --- (escaped) {screen:?}",
                    self.label
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        // The reader ends when no process holds the terminal any more; a stray
        // grandchild that kept it would only cost this bounded wait.
        let drained = std::time::Instant::now();
        while self.reader.as_ref().is_some_and(|r| !r.is_finished())
            && drained.elapsed() < std::time::Duration::from_secs(2)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if self.reader.as_ref().is_some_and(|r| r.is_finished()) {
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

// ---- bounded runs, seeded randomness and kills (crash and concurrency tests) ----

/// How long a bounded run may take before the test kills it and fails: longer than
/// keyctl's 30 s busy timeout, so a process that waited that long still reports its
/// own error instead of being cut off.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A small seeded pseudo-random generator (xorshift64*): the same seed gives the same
/// sequence on every machine, with no extra crate.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // Zero is xorshift's one fixed point: map it elsewhere.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in [0, 1), in steps of 2^-53.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Waits at most `limit` for `child` to exit (polling, so the caller keeps the child
/// and may still signal it). None when it is still running.
pub fn wait_within(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child process") {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Sends SIGKILL to `child`. Safe to call until the child has been waited for: an
/// exited but unreaped child is a zombie whose pid cannot be reused, so the signal
/// never reaches another process.
pub fn sigkill(child: &std::process::Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid this test spawned and has not reaped (see above).
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Reads `source` to its end on a thread; the bytes arrive on the returned channel.
pub fn drain<R: Read + Send + 'static>(mut source: R) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// What a drained pipe held, waiting at most `limit` for its writer to close it.
pub fn drained(rx: &std::sync::mpsc::Receiver<Vec<u8>>, limit: std::time::Duration) -> Vec<u8> {
    rx.recv_timeout(limit)
        .expect("a child's output pipe was still open long after it exited")
}

/// Runs `command` (its args already set; `label` names them in messages) with `input`
/// on stdin (None: no stdin), capturing stdout and stderr, and fails the test if it
/// runs longer than `limit` (the process is killed first).
pub fn output_within(
    mut command: Command,
    label: &[&str],
    input: Option<Vec<u8>>,
    limit: std::time::Duration,
) -> Outcome {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn keyctl");
    let writer = input.map(|bytes| {
        let mut stdin = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            use std::io::Write;
            // keyctl may stop reading early: a broken pipe is fine here.
            let _ = stdin.write_all(&bytes);
        })
    });
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let Some(status) = wait_within(&mut child, limit) else {
        sigkill(&child);
        let _ = child.wait();
        panic!("keyctl {label:?} still running after {limit:?}: killed");
    };
    let output = Output {
        status,
        stdout: drained(&out, limit),
        stderr: drained(&err, limit),
    };
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    Outcome::new(label, output)
}

impl TestEnv {
    /// `keyctl ARGS` (at `NOW`, no stdin), failing the test after `RUN_LIMIT`.
    pub fn run_bounded(&self, args: &[&str]) -> Outcome {
        let mut c = self.command();
        c.args(args);
        output_within(c, args, None, RUN_LIMIT)
    }

    /// `keyctl ARGS` (at `NOW`) with `input` on stdin, failing the test after
    /// `RUN_LIMIT`.
    pub fn run_bounded_with_stdin(&self, args: &[&str], input: &[u8]) -> Outcome {
        let mut c = self.command();
        c.args(args);
        output_within(c, args, Some(input.to_vec()), RUN_LIMIT)
    }

    /// `keyctl create --json --name NAME EXTRA...` as a bounded run: the secret and
    /// the key object.
    pub fn create_bounded(&self, name: &str, extra: &[&str]) -> Created {
        let mut args = vec!["create", "--json", "--name", name];
        args.extend_from_slice(extra);
        let out = self.run_bounded(&args);
        out.ok();
        let v = out.json();
        Created {
            secret: v["key"].as_str().expect("key is a string").to_string(),
            details: v["key_details"].clone(),
        }
    }

    /// `PRAGMA integrity_check` of the store, through rusqlite: "ok" when intact.
    pub fn integrity_check(&self) -> String {
        let conn = self.sqlite();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .expect("prepare integrity_check");
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("run integrity_check")
            .collect::<rusqlite::Result<_>>()
            .expect("read integrity_check");
        rows.join("\n")
    }
}

// ---- hostile conditions: other users, full disks, damaged files, live processes ----

/// The unprivileged user (`nobody`) that permission tests run keyctl as: root ignores
/// file modes, so only another user shows what a read-only file or folder does.
pub const NOBODY: u32 = 65534;

/// A small seeded PRNG (SplitMix64), so randomised tests repeat exactly.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Polls `done` every 20 ms for at most `limit`; true when it became true.
pub fn poll_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// An `Outcome` from raw output whose arguments may not be UTF-8 (shown lossily).
/// Output that is not UTF-8 is kept lossily too; callers check `output_is_utf8`.
pub fn outcome_lossy(args: &[std::ffi::OsString], output: Output) -> (Outcome, bool) {
    let utf8 =
        std::str::from_utf8(&output.stdout).is_ok() && std::str::from_utf8(&output.stderr).is_ok();
    let outcome = Outcome {
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    (outcome, utf8)
}

/// Runs `command` with `input` on stdin (written from a thread; a reader that stops
/// early is fine) and returns its output. A run over 60 s is killed and fails the test.
pub fn output_with_stdin(mut command: Command, input: &[u8]) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn keyctl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(output) => output.expect("wait for keyctl"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child that has not been reaped (its waiter
            // thread is still blocked in wait).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            panic!("keyctl (pid {pid}) still running after 60 s: killed");
        }
    };
    writer.join().expect("stdin writer");
    output
}

/// A copy of the keyctl binary that `nobody` can reach whatever folder the checkout
/// (and so target/) lives in: /tmp is traversable by everyone.
pub fn nobody_binary() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        // One copy per build (named by the binary's size and mtime), reused by later
        // runs, written under a temporary name and renamed so parallel tests agree.
        let original = fs::metadata(env!("CARGO_BIN_EXE_keyctl")).unwrap();
        let stamp = original
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join("keyctl-test-bin");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join(format!("keyctl-{}-{stamp}", original.len()));
        if !bin.exists() {
            // Copies of earlier builds go (a running copy keeps its unlinked file).
            for old in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let stale = old
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .is_some_and(|t| {
                        t.elapsed()
                            .is_ok_and(|age| age > std::time::Duration::from_secs(600))
                    });
                if stale {
                    let _ = fs::remove_file(old.path());
                }
            }
            let tmp = dir.join(format!(".keyctl-{}", std::process::id()));
            fs::copy(env!("CARGO_BIN_EXE_keyctl"), &tmp).unwrap();
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
            fs::rename(&tmp, &bin).unwrap();
        }
        bin
    })
}

impl TestEnv {
    /// A folder `name` under the temp root owned by `nobody` (mode 0700); the temp
    /// root becomes 0711 so that user can reach it.
    pub fn nobody_folder(&self, name: &str) -> PathBuf {
        fs::set_permissions(self.root(), fs::Permissions::from_mode(0o711)).unwrap();
        let dir = self.root().join(name);
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// `keyctl` run as `nobody` through util-linux `setpriv` (real and effective ids,
    /// no supplementary groups), on the store `db`, with `command()`'s fixed
    /// environment; with `umask`, through `sh -c 'umask U; exec keyctl ...'`. Its home
    /// and working folder are the store's folder.
    pub fn command_as_nobody(&self, db: &Path, umask: Option<&str>) -> Command {
        let folder = db.parent().expect("the store's folder").to_path_buf();
        let mut c = Command::new(require_tool("setpriv"));
        c.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups");
        if let Some(mask) = umask {
            c.arg(require_tool("sh"))
                .arg("-c")
                .arg(format!("umask {mask}; exec \"$0\" \"$@\""));
        }
        c.arg(nobody_binary())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &folder)
            .env("XDG_DATA_HOME", folder.join("data"))
            .env("KEYCTL_DB", db)
            .env("KEYCTL_NOW", NOW)
            .env("KEYCTL_ACTOR", ACTOR)
            .env("TZ", "UTC")
            .current_dir(&folder)
            .stdin(Stdio::null());
        c
    }

    /// Runs `keyctl ARGS` as `nobody` on the store `db` with `input` on stdin.
    pub fn run_as_nobody(&self, db: &Path, args: &[&str], input: &[u8]) -> Outcome {
        let mut c = self.command_as_nobody(db, None);
        c.args(args);
        Outcome::new(args, output_with_stdin(c, input))
    }
}

/// A tmpfs of `size` (like "512k") mounted on a new folder `dir`, unmounted (lazily)
/// when dropped. Mounting needs root (CAP_SYS_ADMIN): where it is not permitted, the
/// test fails and says so; it is never skipped.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new(require_tool("mount"))
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {} for the full-disk test ({}): it needs root or \
             CAP_SYS_ADMIN in this sandbox; mount said: {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes a file `name` of zeros until the filesystem is full; returns its path.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(name);
        let mut file = fs::File::create(&path).unwrap();
        let block = [0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // A last partial page, byte by byte.
        while let Ok(1) = file.write(&[0u8]) {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(umount) = std::panic::catch_unwind(|| require_tool("umount")) {
            let _ = Command::new(umount)
                .arg("-l")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A long-running keyctl (`verify --stream`, `logs --follow`, a command waiting for
/// its input or a lock) with piped stdin and stdout: send lines, wait (bounded) for
/// output lines. Dropping it kills the process.
pub struct LiveProcess {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

/// How long a `LiveProcess` waits for a line or an exit before failing the test.
pub const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl LiveProcess {
    pub fn spawn(mut command: Command) -> LiveProcess {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("spawn keyctl");
        let stdin = child.stdin.take();
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
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// The next line of its stdout, waiting at most `LIVE_TIMEOUT`.
    pub fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(LIVE_TIMEOUT)
            .unwrap_or_else(|e| panic!("no output line from keyctl within {LIVE_TIMEOUT:?}: {e}"))
    }

    /// Sends `line` and returns the answer line.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.next_line()
    }

    /// Closes its stdin and waits (at most `LIVE_TIMEOUT`) for it to exit.
    pub fn finish(mut self) -> Option<i32> {
        drop(self.stdin.take());
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for keyctl") {
                return status.code();
            }
            if start.elapsed() > LIVE_TIMEOUT {
                panic!("keyctl still running {LIVE_TIMEOUT:?} after its stdin closed");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
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

/// Every running process whose executable is the keyctl under test and whose
/// environment names the store `db`: pid, argv (`/proc/PID/cmdline`) and environment
/// (`/proc/PID/environ`).
pub fn keyctl_processes_on(db: &Path) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    let bin = fs::canonicalize(env!("CARGO_BIN_EXE_keyctl")).expect("the keyctl binary");
    let store = {
        let mut s = b"KEYCTL_DB=".to_vec();
        s.extend_from_slice(db.as_os_str().as_encoded_bytes());
        s
    };
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
        if environ.split(|&b| b == 0).any(|v| v == store.as_slice()) {
            found.push((pid, cmdline, environ));
        }
    }
    found
}

/// A private X server (Xvfb on a display number it picks itself, `-displayfd`), for a
/// clipboard copy in a test; killed when dropped. Missing Xvfb fails the test.
pub struct XServer {
    child: std::process::Child,
    pub display: String,
}

impl XServer {
    pub fn start() -> XServer {
        use std::os::fd::AsRawFd;
        let mut fds = [-1 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two-element array with new descriptors on success.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just created and are owned here only.
        let (reader, writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
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
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("Xvfb did not report its display within 10 s");
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
        if !poll_until(std::time::Duration::from_secs(2), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
