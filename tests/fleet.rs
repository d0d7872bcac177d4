//! keyctl on PostgreSQL as a fleet uses it (SPEC §6), through the real binary: several
//! API hosts' `verify --stream` processes and admins at once on one database, and the
//! faults a fleet meets (a server stopped under a running stream or a one-shot verify,
//! a process killed mid-transaction). The shared server comes from `scripts/test.sh`
//! (`KEYCTL_TEST_PG`); the tests that stop a server start a private one. Connection
//! failures (a wrong password, an unreachable host, refused TLS) are told in
//! tests/cli/postgres.rs and the store contract.

#[path = "common/pg.rs"]
mod pg;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long a condition may take before a test gives up (never a timing assertion).
const WAIT_LIMIT: Duration = Duration::from_secs(60);

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "{what}: not within {WAIT_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// keyctl with a cleared environment, the store at `url` (in KEYCTL_DB: a URL there
/// may carry a password) and a home of its own.
fn keyctl(url: &str, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyctl"));
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("KEYCTL_DB", url)
        .env("KEYCTL_ACTOR", "fleet-test")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    c
}

fn run(url: &str, home: &Path, args: &[&str]) -> Output {
    keyctl(url, home).args(args).output().expect("run keyctl")
}

fn ok(url: &str, home: &Path, args: &[&str]) -> String {
    let out = run(url, home, args);
    assert!(
        out.status.success(),
        "keyctl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json(url: &str, home: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(url, home, args)).expect("json output")
}

/// A new store in a fresh database of the shared server: its URL.
fn fresh_store(home: &Path) -> String {
    let url = pg::url_of(&pg::fresh_database_name());
    ok(&url, home, &["init", "--quiet"]);
    url
}

fn create(url: &str, home: &Path, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["create", "--name", name, "--quiet"];
    args.extend_from_slice(flags);
    ok(url, home, &args).trim().to_string()
}

/// `verify --stream` started with its stdin, stdout and stderr piped.
fn spawn_stream(url: &str, home: &Path) -> Child {
    keyctl(url, home)
        .args(["verify", "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start verify --stream")
}

/// A running `verify --stream`: one request line in, one answer line out.
struct Stream {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Stream {
    fn start(url: &str, home: &Path) -> Stream {
        let mut child = spawn_stream(url, home);
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Stream {
            child,
            input,
            output,
        }
    }

    /// Sends one request and reads its answer's code.
    fn ask(&mut self, secret: &str) -> String {
        let input = self.input.as_mut().expect("stream open");
        writeln!(input, r#"{{"key":"{secret}","ip":"10.1.2.3"}}"#).expect("write a request");
        input.flush().expect("flush");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("read an answer");
        assert!(!line.is_empty(), "the stream ended instead of answering");
        let answer: Value = serde_json::from_str(&line).expect("a json answer");
        answer["code"].as_str().expect("a code").to_string()
    }

    /// Closes stdin and waits: exit status and stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.input.take());
        let out = self.child.wait_with_output().expect("wait for the stream");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A verifier's stderr after an outage it lived through: said once, and its end said.
fn assert_outage_said_once(stderr: &str) {
    assert_eq!(
        stderr
            .matches("answering unavailable until the store is back")
            .count(),
        1,
        "the outage is said once: {stderr}"
    );
    assert!(stderr.contains("key store available again"), "{stderr}");
}

fn count_code(answers: &[String], code: &str) -> usize {
    answers.iter().filter(|c| c.as_str() == code).count()
}

// ---- the fleet ----

#[test]
fn four_hosts_and_two_admins_on_one_store_count_exactly() {
    const HOSTS: usize = 4;
    const QUOTA_HITS: usize = 1000; // per host, against a quota-total of 1000
    const CREDIT_HITS: usize = 250; // per host, against 600 credits at cost 1
    let home = TempDir::new().unwrap();
    let home = home.path();
    let url = fresh_store(home);
    let quota = create(&url, home, "quota", &["--quota-total", "1000"]);
    let credits = create(&url, home, "credits", &["--credits", "600"]);

    let (answers, admin_events) = std::thread::scope(|s| {
        let hosts: Vec<_> = (0..HOSTS)
            .map(|_| {
                let (url, quota, credits) = (&url, &quota, &credits);
                s.spawn(move || {
                    // Every line written up front, as a busy service pipelines them.
                    let mut child = keyctl(url, home)
                        .args(["verify", "--stream"])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("start a host's stream");
                    let mut input = child.stdin.take().expect("stdin");
                    let writer = std::thread::spawn({
                        let (quota, credits) = (quota.clone(), credits.clone());
                        move || {
                            for i in 0..QUOTA_HITS + CREDIT_HITS {
                                let key = if i % 5 == 4 { &credits } else { &quota };
                                writeln!(input, r#"{{"key":"{key}","ip":"10.0.0.{}"}}"#, i % 200)
                                    .expect("write");
                            }
                        }
                    });
                    let out = child.wait_with_output().expect("the stream ends");
                    writer.join().expect("writer");
                    assert!(out.status.success(), "a host's stream failed");
                    String::from_utf8(out.stdout)
                        .expect("utf-8")
                        .lines()
                        .map(|l| {
                            let v: Value = serde_json::from_str(l).expect("json");
                            (
                                v["key_name"].as_str().unwrap_or("").to_string(),
                                v["code"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Two admins at the same time: one edits the hot key over and over (its
        // counters must survive every rewrite), one creates and rotates other keys.
        let editor = s.spawn(|| {
            for n in 0..20 {
                let d = format!("edit {n}");
                ok(
                    &url,
                    home,
                    &["edit", "quota", "--description", &d, "--quiet"],
                );
            }
            20
        });
        let rotator = s.spawn(|| {
            for n in 0..10 {
                let name = format!("other-{n}");
                create(&url, home, &name, &[]);
                ok(&url, home, &["rotate", &name, "--yes", "--quiet"]);
            }
            30
        });
        let answers: Vec<(String, String)> = hosts
            .into_iter()
            .flat_map(|h| h.join().expect("a host"))
            .collect();
        let admin_events = editor.join().expect("editor") + rotator.join().expect("rotator");
        (answers, admin_events)
    });

    let per_key = |name: &str| -> Vec<String> {
        answers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, c)| c.clone())
            .collect()
    };
    assert_eq!(
        answers.len(),
        HOSTS * (QUOTA_HITS + CREDIT_HITS),
        "every line answered"
    );
    let q = per_key("quota");
    assert_eq!(q.len(), HOSTS * QUOTA_HITS);
    assert_eq!(
        count_code(&q, "valid"),
        1000,
        "the quota admits exactly 1000"
    );
    assert_eq!(count_code(&q, "quota_exceeded"), HOSTS * QUOTA_HITS - 1000);
    let c = per_key("credits");
    assert_eq!(count_code(&c, "valid"), 600, "600 credits buy exactly 600");
    assert_eq!(
        count_code(&c, "credits_exhausted"),
        HOSTS * CREDIT_HITS - 600
    );

    // What the store says afterwards: the same figures, one log row per request.
    let shown = json(&url, home, &["show", "quota", "--json"]);
    assert_eq!(shown["description"], "edit 19", "the admin's edits stand");
    let day = &shown["usage"]["last_24h"];
    assert_eq!(day["accepted"], 1000, "{shown}");
    assert_eq!(day["rejected"], HOSTS * QUOTA_HITS - 1000, "{shown}");
    let shown = json(&url, home, &["show", "credits", "--json"]);
    assert_eq!(shown["credits_used"], 600, "{shown}");
    let logs = json(&url, home, &["logs", "--json", "--limit", "100000"]);
    let rows = logs.as_array().expect("an array");
    assert_eq!(rows.len(), answers.len(), "exactly one log row per request");
    let valid_rows = rows.iter().filter(|r| r["code"] == "valid").count();
    assert_eq!(valid_rows, 1600);
    let verdict = json(&url, home, &["audit", "verify", "--json"]);
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert_eq!(verdict["events"], 2 + admin_events, "{verdict}");
}

/// Four hosts' streams at once, each writing all its lines up front (so each is
/// decided and recorded in groups, SPEC §7), drawing from the same keys in different
/// orders: groups lock rows in orders that cross (PostgreSQL breaks the deadlocks; the
/// group runs again, or its requests one by one). Every quota and credit is still
/// exact, every request logged once, and failed attempts from one address block it
/// for every host.
#[test]
fn four_pipelined_streams_on_shared_keys_count_exactly() {
    const HOSTS: usize = 4;
    const KEYS: usize = 6;
    const LINES: usize = 600; // per host
    let home = TempDir::new().unwrap();
    let home = home.path();
    let url = fresh_store(home);
    ok(
        &url,
        home,
        &["config", "set", "failed-auth-limit", "5", "--quiet"],
    );
    // Each key: 150 requests allowed, 200 credits at cost 1 or 2 (whichever ends first).
    let secrets: Vec<String> = (0..KEYS)
        .map(|k| {
            create(
                &url,
                home,
                &format!("shared-{k}"),
                &["--quota-total", "150", "--credits", "200"],
            )
        })
        .collect();
    let unknown = "sk_live_0000000000000000000000000000000000000000";
    // Host h's line i: a key chosen by a per-host generator, its cost, or (every 10th)
    // an unknown key from the one address all hosts share.
    let plan = |h: usize| -> Vec<(Option<usize>, u64)> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (h as u64 + 1).wrapping_mul(0x2545_F491);
        (0..LINES)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 10 == 9 {
                    (None, 1)
                } else {
                    (Some(state as usize % KEYS), 1 + (state >> 32) % 2)
                }
            })
            .collect()
    };
    let answers: Vec<Vec<Value>> = std::thread::scope(|s| {
        let hosts: Vec<_> = (0..HOSTS)
            .map(|h| {
                let (url, secrets, plan) = (&url, &secrets, plan(h));
                s.spawn(move || {
                    let mut child = spawn_stream(url, home);
                    let mut input = child.stdin.take().expect("stdin");
                    let text: String = plan
                        .iter()
                        .enumerate()
                        .map(|(i, (key, cost))| match key {
                            Some(k) => format!(
                                "{{\"key\":\"{}\",\"ip\":\"10.0.{h}.{}\",\"cost\":{cost}}}\n",
                                secrets[*k],
                                i % 250
                            ),
                            None => format!("{{\"key\":\"{unknown}\",\"ip\":\"192.0.2.9\"}}\n"),
                        })
                        .collect();
                    let writer = std::thread::spawn(move || {
                        input.write_all(text.as_bytes()).expect("write the lines");
                    });
                    let out = child.wait_with_output().expect("the stream ends");
                    writer.join().expect("writer");
                    assert!(
                        out.status.success(),
                        "a host's stream failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    String::from_utf8(out.stdout)
                        .expect("utf-8")
                        .lines()
                        .map(|l| serde_json::from_str(l).expect("a json answer"))
                        .collect::<Vec<Value>>()
                })
            })
            .collect();
        hosts
            .into_iter()
            .map(|h| h.join().expect("a host"))
            .collect()
    });
    let mut accepted = [0u64; KEYS];
    let mut charged = [0u64; KEYS];
    for (h, host) in answers.iter().enumerate() {
        assert_eq!(host.len(), LINES, "host {h}: one answer per line");
        for ((key, cost), answer) in plan(h).iter().zip(host) {
            let code = answer["code"].as_str().expect("a code");
            match key {
                Some(k) => {
                    assert!(
                        ["valid", "quota_exceeded", "credits_exhausted"].contains(&code),
                        "host {h}: {answer}"
                    );
                    if code == "valid" {
                        accepted[*k] += 1;
                        charged[*k] += cost;
                    }
                }
                None => assert!(["invalid", "ip_blocked"].contains(&code), "{answer}"),
            }
        }
    }
    let blocked: usize = answers
        .iter()
        .flatten()
        .filter(|a| a["code"] == "ip_blocked")
        .count();
    let invalid: usize = answers
        .iter()
        .flatten()
        .filter(|a| a["code"] == "invalid")
        .count();
    // The address is blocked after its 5th failure, whichever hosts made them; a
    // block may end and five more failures start another, never fewer than five.
    assert!(
        invalid >= 5 && blocked > 0,
        "invalid {invalid}, blocked {blocked}"
    );
    for k in 0..KEYS {
        let shown = json(&url, home, &["show", &format!("shared-{k}"), "--json"]);
        let day = &shown["usage"]["last_24h"];
        assert_eq!(day["accepted"], accepted[k], "shared-{k}: {shown}");
        assert_eq!(shown["credits_used"], charged[k], "shared-{k}: {shown}");
        // Exhausted: no more than the quota, no more than the credits, and a refusal
        // only once one of them would be passed.
        assert!(
            accepted[k] <= 150 && charged[k] <= 200,
            "shared-{k}: {shown}"
        );
        assert!(
            accepted[k] == 150 || charged[k] >= 199,
            "shared-{k} refused before a limit was reached: {shown}"
        );
    }
    let logs = json(&url, home, &["logs", "--json", "--limit", "100000"]);
    let rows = logs.as_array().expect("an array");
    assert_eq!(rows.len(), HOSTS * LINES, "every request logged once");
}

// ---- faults ----

/// A PostgreSQL server of a test's own (stopping it must not disturb other tests):
/// trust on its unix socket; TCP on 127.0.0.1 asks for a password.
struct PrivateServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivateServer {
    fn start() -> PrivateServer {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-fleet-pg-")
            .tempdir()
            .expect("temp dir");
        let bin = server_bin();
        let root = is_root();
        if root {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "s3cret-test-pw\n").unwrap();
        if root {
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(&pwfile)
                .status()
                .unwrap();
        }
        let data = dir.path().join("data");
        let out = as_owner(root, &bin.join("initdb"))
            .args(["--no-sync", "-U", "postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--pwfile"])
            .arg(&pwfile)
            .arg("-D")
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n",
            dir.path().display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        f.write_all(conf.as_bytes()).unwrap();
        let server = PrivateServer { dir, bin, port };
        server.pg_ctl(&["start"]);
        server
    }

    fn pg_ctl(&self, action: &[&str]) {
        let root = is_root();
        let out = as_owner(root, &self.bin.join("pg_ctl"))
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(action)
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {action:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A URL over the unix socket (trust), for set-up.
    fn socket_url(&self, db: &str) -> String {
        let host = self.dir.path().display().to_string().replace('/', "%2F");
        format!(
            "postgres://postgres@{host}:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let root = is_root();
        let _ = as_owner(root, &self.bin.join("pg_ctl"))
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

/// Tests run as root on CI; the server's binaries then run as `postgres`.
fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc")) == 0
}

fn as_owner(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The server binaries: pg_config's bindir, else the newest /usr/lib/postgresql/*/bin.
fn server_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries: install the postgresql package")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("no initdb under /usr/lib/postgresql")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A private server holding a store with one key "svc": the server, the home folder,
/// the store's URL and the key's secret.
fn private_store_with_a_key() -> (PrivateServer, TempDir, String, String) {
    let server = PrivateServer::start();
    let home = TempDir::new().unwrap();
    let url = server.socket_url("postgres");
    ok(&url, home.path(), &["init", "--quiet"]);
    let secret = create(&url, home.path(), "svc", &[]);
    (server, home, url, secret)
}

#[test]
fn a_stream_answers_unavailable_while_its_server_is_down_and_recovers_by_itself() {
    let (server, home, url, secret) = private_store_with_a_key();
    let home = home.path();

    let mut stream = Stream::start(&url, home);
    assert_eq!(stream.ask(&secret), "valid");
    server.pg_ctl(&["stop"]);
    // Down: each request is answered, none recorded, the stream goes on.
    assert_eq!(stream.ask(&secret), "unavailable");
    assert_eq!(stream.ask(&secret), "unavailable");
    server.pg_ctl(&["start"]);
    let mut answers = vec![
        "valid".to_string(),
        "unavailable".into(),
        "unavailable".into(),
    ];
    wait_for("the stream to reach the restarted server", || {
        let code = stream.ask(&secret);
        answers.push(code.clone());
        code == "valid"
    });
    assert_eq!(stream.ask(&secret), "valid", "and it stays back");
    answers.push("valid".into());
    let (status, stderr) = stream.finish();
    assert!(
        status.success(),
        "the stream never exits on a store failure: {status}"
    );
    assert_outage_said_once(&stderr);
    // Only the answered-valid requests were recorded (an unavailable one left nothing).
    let recorded = json(&url, home, &["show", "svc", "--json"]);
    assert_eq!(
        recorded["usage"]["last_24h"]["accepted"].as_u64(),
        Some(count_code(&answers, "valid") as u64),
        "{answers:?}"
    );
    let logs = json(&url, home, &["logs", "--json"]);
    let rows = logs.as_array().unwrap().len();
    assert_eq!(
        rows,
        answers.len() - count_code(&answers, "unavailable"),
        "{answers:?}"
    );
}

/// `keyctl serve` on `url`, once it listens: the process, its `http://` base URL and
/// the rest of its stderr.
fn spawn_serve(url: &str, home: &Path) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = keyctl(url, home)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keyctl serve");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    err.read_line(&mut first)
        .expect("read the first stderr line");
    let base = first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a listening line: {first:?}"))
        .to_string();
    let (tx, rest) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        let _ = tx.send(text);
    });
    (child, base, rest)
}

/// `curl` of one route: (status, X-Keyctl-Code header or the body's code).
fn curl_code(base: &str, args: &[&str], path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-D", "-"])
        .args(args)
        .arg(format!("{base}{path}"))
        .output()
        .expect("run curl (installed by scripts/test.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let header = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("x-keyctl-code:")
            .map(|v| v.trim().to_string())
    });
    let code = header.unwrap_or_else(|| {
        serde_json::from_str::<Value>(body).map_or(String::new(), |v| {
            v["code"].as_str().unwrap_or("").to_string()
        })
    });
    (status, code)
}

#[test]
fn serve_answers_unavailable_while_its_server_is_down_and_recovers_by_itself() {
    let (server, home, url, secret) = private_store_with_a_key();
    let home = home.path();
    let (mut serve, base, stderr) = spawn_serve(&url, home);
    let body = format!(r#"{{"key":"{secret}"}}"#);
    let verify = |base: &str| curl_code(base, &["-X", "POST", "--data", &body], "/v1/verify");
    let auth = |base: &str| curl_code(base, &["-H", &format!("X-API-Key: {secret}")], "/auth");
    assert_eq!(verify(&base), (200, "valid".into()));
    assert_eq!(auth(&base), (204, "valid".into()));
    assert_eq!(curl_code(&base, &[], "/healthz"), (200, "ok".into()));
    server.pg_ctl(&["stop"]);
    // Down: 503 on /v1 and /healthz, 403 (fail closed) on /auth; still serving.
    assert_eq!(verify(&base), (503, "unavailable".into()));
    assert_eq!(auth(&base), (403, "unavailable".into()));
    assert_eq!(
        curl_code(&base, &[], "/healthz"),
        (503, "unavailable".into())
    );
    server.pg_ctl(&["start"]);
    wait_for("serve to reach the restarted server", || {
        curl_code(&base, &[], "/healthz").0 == 200
    });
    assert_eq!(verify(&base), (200, "valid".into()));
    // SIGTERM: exit 0.
    // SAFETY: kill(2) on the child this test spawned and has not reaped.
    unsafe {
        libc::kill(serve.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = serve.wait().expect("wait for serve");
    assert!(status.success(), "{status}");
    let stderr = stderr.recv().unwrap_or_default();
    assert_outage_said_once(&stderr);
    assert!(!stderr.contains(&secret), "{stderr}");
    // The answered-valid requests only (three valid, nothing while down).
    let recorded = json(&url, home, &["show", "svc", "--json"]);
    assert_eq!(recorded["usage"]["last_24h"]["accepted"].as_u64(), Some(3));
}

#[test]
fn a_one_shot_verify_against_a_stopped_server_answers_unavailable_with_exit_22() {
    let (server, home, url, secret) = private_store_with_a_key();
    let home = home.path();
    server.pg_ctl(&["stop"]);
    let out = keyctl(&url, home)
        .args(["verify", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            writeln!(c.stdin.take().unwrap(), "{secret}")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(22));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], "unavailable");
    assert_eq!(answer["status"], 503);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
}

#[test]
fn a_process_killed_mid_transaction_leaves_nothing_behind() {
    let home = TempDir::new().unwrap();
    let home = home.path();
    let url = fresh_store(home);
    let lines: String = (0..40_000)
        .map(|i| format!("{{\"name\":\"batch-{i:05}\"}}\n"))
        .collect();
    let input = home.join("batch.jsonl");
    std::fs::write(&input, lines).unwrap();
    let mut child = keyctl(&url, home)
        .args(["create", "--batch"])
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until its transaction has written rows (the server sees it inside one),
    // then kill it without warning.
    let db = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let mut admin = pg::admin_client();
    wait_for("the batch to be inside its transaction", || {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND xact_start IS NOT NULL AND backend_xid IS NOT NULL",
                &[&db],
            )
            .map(|r| r.get::<_, i64>(0) > 0)
            .unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // The server rolls the transaction back when the connection goes.
    let keys = json(&url, home, &["list", "--json", "--all"]);
    assert_eq!(
        keys.as_array().map(Vec::len),
        Some(0),
        "no key of a killed batch"
    );
    let verdict = json(&url, home, &["audit", "verify", "--json"]);
    assert_eq!(verdict["events"], 0);
    // And the store works on.
    create(&url, home, "after", &[]);
}

/// `curl` of Unkey's verify route: (status, the body as json).
fn curl_v2(base: &str, body: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
        ])
        .args(["--data", body])
        .arg(format!("{base}/v2/keys.verifyKey"))
        .output()
        .expect("run curl (installed by scripts/test.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json_text, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no status in {text:?}"));
    let v = serde_json::from_str(json_text).unwrap_or_else(|e| panic!("not json ({e}): {text:?}"));
    (status, v)
}

#[test]
fn unkeys_verify_route_answers_503_in_unkeys_shape_while_the_store_is_down() {
    let (server, home, url, secret) = private_store_with_a_key();
    let home = home.path();
    let (mut serve, base, stderr) = spawn_serve(&url, home);
    let body = format!(r#"{{"key":"{secret}"}}"#);
    let (status, v) = curl_v2(&base, &body);
    assert_eq!(
        (status, &v["data"]["code"]),
        (200, &Value::from("VALID")),
        "{v}"
    );
    server.pg_ctl(&["stop"]);
    // Down: a 503 in Unkey's error shape (not a verification outcome, so not a 200);
    // nothing decided, nothing recorded; still serving.
    let (status, v) = curl_v2(&base, &body);
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["status"], 503, "{v}");
    assert_eq!(v["error"]["detail"], "Key store unavailable", "{v}");
    assert!(
        v["meta"]["requestId"].is_string() && v.get("data").is_none(),
        "{v}"
    );
    server.pg_ctl(&["start"]);
    wait_for("serve to reach the restarted server", || {
        curl_v2(&base, &body).0 == 200
    });
    // SAFETY: kill(2) on the child this test spawned and has not reaped.
    unsafe {
        libc::kill(serve.id() as libc::pid_t, libc::SIGTERM);
    }
    assert!(serve.wait().expect("wait for serve").success());
    let stderr = stderr.recv().unwrap_or_default();
    assert!(!stderr.contains(&secret), "{stderr}");
    // Only the valid answers were recorded: the first one and the one that found the
    // store back.
    let recorded = json(&url, home, &["show", "svc", "--json"]);
    assert_eq!(recorded["usage"]["last_24h"]["accepted"].as_u64(), Some(2));
}
