//! `keyctl serve` under test: spawned in the test's world (its store, clock and
//! cleared environment), its address learned from the first stderr line (waited for,
//! never slept for), and a tiny blocking HTTP/1.1 client over std sockets. Dropping a
//! `Server` kills it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;

use serde_json::Value;

use super::{wait_within, TestEnv, WAIT_LIMIT};

/// Where a server listens.
#[derive(Debug, Clone)]
pub enum Addr {
    /// `host:port`.
    Tcp(String),
    Unix(PathBuf),
}

/// A running `keyctl serve`.
pub struct Server {
    child: Child,
    pub addr: Addr,
    /// Its stderr after the first line, to its end.
    stderr: std::sync::Mutex<Receiver<Vec<u8>>>,
}

/// How a server ended.
pub struct Stopped {
    pub status: ExitStatus,
    /// Every stderr line after `listening on ...`.
    pub stderr: String,
}

impl TestEnv {
    /// `keyctl serve --listen 127.0.0.1:0 ARGS` (any free port), once it listens.
    pub fn serve(&self, args: &[&str]) -> Server {
        let mut c = self.command();
        c.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        Server::spawn(c)
    }

    /// `keyctl ARGS` (a `serve` command line of the test's own), once it listens.
    pub fn serve_exactly(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let mut c = self.command();
        c.args(args);
        adjust(&mut c);
        Server::spawn(c)
    }
}

impl Server {
    /// Spawns `command` (a `keyctl serve`) and waits for its `listening on` line.
    pub fn spawn(mut command: Command) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn keyctl serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let (rest_tx, rest) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let _ = first_tx.send(first);
            let mut bytes = Vec::new();
            let _ = reader.read_to_end(&mut bytes);
            let _ = rest_tx.send(bytes);
        });
        let first = match first_rx.recv_timeout(WAIT_LIMIT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("keyctl serve printed no first line within {WAIT_LIMIT:?}");
            }
        };
        let first = first.trim_end();
        let addr = if let Some(a) = first.strip_prefix("listening on http://") {
            Addr::Tcp(a.to_string())
        } else if let Some(p) = first.strip_prefix("listening on unix:") {
            Addr::Unix(PathBuf::from(p))
        } else {
            let _ = child.kill();
            let _ = child.wait();
            let rest = rest.recv_timeout(WAIT_LIMIT).unwrap_or_default();
            panic!(
                "keyctl serve did not start: {first}{}",
                String::from_utf8_lossy(&rest)
            );
        };
        Server {
            child,
            addr,
            stderr: std::sync::Mutex::new(rest),
        }
    }

    /// `http://host:port` (TCP only).
    pub fn url(&self) -> String {
        match &self.addr {
            Addr::Tcp(a) => format!("http://{a}"),
            Addr::Unix(p) => panic!("a Unix socket server has no URL: {}", p.display()),
        }
    }

    /// A new connection to it.
    pub fn connect(&self) -> Conn {
        self.try_connect().expect("connect to keyctl serve")
    }

    /// A new connection, or why it was refused.
    pub fn try_connect(&self) -> std::io::Result<Conn> {
        Ok(match &self.addr {
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_read_timeout(Some(WAIT_LIMIT))?;
                Conn::Tcp(s)
            }
            Addr::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(WAIT_LIMIT))?;
                Conn::Unix(s)
            }
        })
    }

    /// One request on a connection of its own: `METHOD PATH` with `headers` and
    /// `body` (a Content-Length is added when the body is not empty).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut conn = self.connect();
        conn.send(method, path, headers, body);
        conn.reply()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, b"")
    }

    /// `POST /v1/verify` with `body`.
    pub fn verify(&self, body: &str) -> Reply {
        self.request(
            "POST",
            "/v1/verify",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// Sends a signal (SIGTERM, SIGINT, SIGKILL).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits (at most `WAIT_LIMIT`) for it to exit.
    pub fn stopped(mut self) -> Stopped {
        let status = wait_within(&mut self.child, WAIT_LIMIT)
            .unwrap_or_else(|| panic!("keyctl serve still running after {WAIT_LIMIT:?}"));
        let stderr = self
            .stderr
            .lock()
            .map(|rx| rx.recv_timeout(WAIT_LIMIT).unwrap_or_default())
            .unwrap_or_default();
        Stopped {
            status,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// SIGTERM, then waits for it to exit.
    pub fn terminate(self) -> Stopped {
        self.signal(libc::SIGTERM);
        self.stopped()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One client connection.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

impl Conn {
    /// Writes a whole request (`Connection: close`: the reply ends with the
    /// connection).
    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let head = request_head(method, path, headers, body.len());
        self.write_all(head.as_bytes())
            .and_then(|_| self.write_all(body))
            .and_then(|_| self.flush())
            .expect("write a request to keyctl serve");
    }

    /// Reads the reply to the end of the connection.
    pub fn reply(mut self) -> Reply {
        let mut bytes = Vec::new();
        self.read_to_end(&mut bytes)
            .expect("read a reply from keyctl serve");
        Reply::parse(&bytes)
    }
}

/// The head of a request: its line, `Host`, `Connection: close`, `headers`, and a
/// Content-Length when `body_len` is not 0.
pub fn request_head(method: &str, path: &str, headers: &[(&str, &str)], body_len: usize) -> String {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: keyctl.test\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if body_len > 0 {
        head.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// An HTTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Names in lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn parse(bytes: &[u8]) -> Reply {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no reply head in {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("the reply head is text");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = bytes[end + 4..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the body is utf-8")
    }

    /// The body as json (a test failure when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not json ({e}): {:?}", self.text()))
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&bytes[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[start + size + 2..];
    }
}

impl Server {
    /// The value of one sample of `/metrics` (`name{labels}` exactly as written), if
    /// present.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let reply = self.get("/metrics", &[]);
        assert_eq!(reply.status, 200);
        reply.text().lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().expect("a number"))
        })
    }

    /// Waits until `n` verifications are read and not decided yet.
    pub fn wait_pending(&self, n: usize) {
        super::wait_for(&format!("{n} verifications pending"), || {
            self.metric("keyctl_verify_pending") == Some(n as f64)
        });
    }
}

/// The store's write lock, held by the test until dropped: a verification waits for
/// it (SQLite: a write transaction; PostgreSQL: the keys table locked), so requests
/// sent meanwhile queue up in front of the committer.
pub enum StoreLock {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl TestEnv {
    pub fn lock_store(&self) -> StoreLock {
        match self.pg_client() {
            Some(mut client) => {
                client
                    .batch_execute("BEGIN; LOCK TABLE keys IN ACCESS EXCLUSIVE MODE")
                    .expect("lock the keys table");
                StoreLock::Postgres(client)
            }
            None => {
                let db = self.raw_sqlite();
                db.execute_batch("BEGIN IMMEDIATE")
                    .expect("take the store's write lock");
                StoreLock::Sqlite(db)
            }
        }
    }
}

impl StoreLock {
    pub fn release(self) {
        match self {
            StoreLock::Sqlite(db) => db.execute_batch("ROLLBACK").expect("release the lock"),
            StoreLock::Postgres(mut c) => c.batch_execute("ROLLBACK").expect("release the lock"),
        }
    }
}
