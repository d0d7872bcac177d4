#!/usr/bin/env python3
"""`keyctl serve` under load (issue 15), side by side with its baselines in one run.

    python3 bench/serve_bench.py                      # every figure, 3 rounds
    python3 bench/serve_bench.py --only sqlite,nginx --rounds 5 --seconds 10

The pinned workload of bench/stream_workload.py: keys drawn at random from a store of
`--keys` (100,000) keys with every limit set, 10% of requests well-formed keys that
are not in it (`invalid`), each from a random address in the keys' allowlist. The load
is wrk (Debian's `wrk`): `--connections` (16) keep-alive connections on 2 threads for
`--seconds` each run, every request's body (or key and address) drawn at random from a
file of `--lines` requests by a Lua script. Every answer's status is counted and
checked (valid 200/204, invalid 401; at most 1% anything else).

Figures (each round runs every side once, alternating; medians over rounds):
- sqlite:   `keyctl serve`, POST /v1/verify, recorded, on the SQLite store, against
            `limit-verify --loop` (one transaction per request) on the limits' store
            of as many keys: the ratio of rates (target >= 3x), p50/p99 latency;
- nginx:    a real nginx with the documented auth_request snippet
            (docs/integration.md) in front of `keyctl serve` and an application
            location answering 204, against the same nginx answering a static 204;
- postgres: `keyctl serve` on a copy of the store in PostgreSQL (`--pg URL`, default
            /tmp/pg-lead.url; a database of its own, made and dropped here), beside
            the SQLite figure, after an unmeasured load and an ANALYZE;
- ceiling: `keyctl serve --no-record` on a fresh copy of the same store, the same
            load: what this machine answers when nothing is recorded (HTTP, wrk and
            the verification's reads, no write transaction), the bound any recording
            serve stays under;
- peak RSS of each serve process under that load (VmHWM; target <= 64 MiB);
- CPU a request of wrk and of serve (user + system, per answered request): the
  machine's two cores are shared by the load and the server.
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import stream_workload as sw  # noqa: E402  (the pinned workload and its stores)

ROOT = os.path.dirname(BENCH)
KEYCTL = sw.KEYCTL


def set_keyctl(path):
    """The keyctl every figure runs (the workload module's too)."""
    global KEYCTL
    KEYCTL = sw.KEYCTL = os.path.abspath(path)

WRK_SCRIPT = r"""
-- Requests drawn at random from a file; statuses counted per thread.
local lines, mode = {}, nil
counts = {}  -- a global: done() reads it from each thread (thread:get)
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

function init(args)
  mode = args[2]
  for line in io.lines(args[1]) do lines[#lines + 1] = line end
  math.randomseed(os.time() * 97 + id)
end

function request()
  local line = lines[math.random(#lines)]
  if mode == "verify" then
    return wrk.format("POST", "/v1/verify", {["Content-Type"] = "application/json"}, line)
  end
  local key, ip = line:match("(%S+) (%S+)")
  return wrk.format("GET", "/api/orders", {["Authorization"] = "Bearer " .. key,
                                           ["X-Forwarded-For"] = ip})
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(total) do parts[#parts + 1] = status .. "=" .. n end
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d "
                         .. "socket_errors=%d statuses=%s\n",
                         summary.requests, summary.duration, latency:percentile(50),
                         latency:percentile(99),
                         summary.errors.connect + summary.errors.read
                         + summary.errors.write + summary.errors.timeout,
                         table.concat(parts, ",")))
end
"""


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def children_cpu():
    """CPU seconds (user + system) of the waited-for children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrk(url, lines_file, mode, args, work, cpu=None):
    """One wrk run: (rate/s, p50 ms, p99 ms, statuses); with `cpu` (a dict), wrk's CPU
    seconds a request there as "wrk"."""
    script = os.path.join(work, "draw.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    before = children_cpu()
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s",
         "--timeout", "10s", "-s", script, url, "--", lines_file, mode],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"socket_errors=(\d+) statuses=(\S*)", out)
    if not m:
        sys.exit(f"wrk printed no result:\n{out}")
    requests, duration, p50, p99, errors = (int(m.group(i)) for i in range(1, 6))
    statuses = {int(k): int(v) for k, v in
                (p.split("=") for p in m.group(6).split(",") if p)}
    if errors:
        sys.exit(f"wrk saw {errors} socket errors:\n{out}")
    if cpu is not None and requests:
        cpu["wrk"] = (children_cpu() - before) / requests
    return requests / (duration / 1e6), p50 / 1000, p99 / 1000, statuses


def check(statuses, ok_status):
    """About 90% valid, 10% invalid; anything else (an IP blocked by a repeated invalid
    line, an error) at most 1%."""
    total = sum(statuses.values())
    valid, invalid = statuses.get(ok_status, 0), statuses.get(401, 0)
    other = total - valid - invalid
    if total == 0 or other > total // 100 or not 0.05 < invalid / total < 0.15:
        sys.exit(f"unexpected answers: {statuses} (want about 90% {ok_status}, 10% 401)")


class Serve:
    """`keyctl serve` on `db`, on a free loopback port."""

    def __init__(self, db, extra=()):
        self.proc = subprocess.Popen(
            [KEYCTL, "--db", db, "serve", "--listen", "127.0.0.1:0", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        first = self.proc.stderr.readline().strip()
        if not first.startswith("listening on http://"):
            self.proc.kill()
            sys.exit(f"keyctl serve did not start: {first}{self.proc.stderr.read()}")
        self.addr = first.removeprefix("listening on http://")

    def cpu_seconds(self):
        """User + system CPU of every thread so far (/proc/PID/stat, clock ticks)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            hwm = next(l for l in f if l.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def documented(tag):
    """The code block under `<!-- tested: TAG -->` in docs/integration.md."""
    with open(os.path.join(ROOT, "docs", "integration.md")) as f:
        doc = f.read()
    after = doc.split(f"<!-- tested: {tag} -->", 1)[1].lstrip()
    body = after.split("\n", 1)[1]
    return body[: body.index("\n```") + 1]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx with the documented snippets in front of keyctl serve at `keyctl`, the
    application (a static 204) behind them, and a third server answering a static 204
    for /api/ directly: the baseline. Client addresses from X-Forwarded-For (realip),
    as behind a load balancer; the keys' scope and deployment set as the snippet's
    comment shows."""

    def __init__(self, keyctl, work):
        self.dir = tempfile.mkdtemp(prefix="keyctl-bench-nginx-", dir=work)
        self.front, self.app, self.static = free_port(), free_port(), free_port()
        upstream = documented("nginx-http").replace("127.0.0.1:8787", keyctl)
        api = (documented("nginx-server").replace("127.0.0.1:8080", f"127.0.0.1:{self.app}")
               .replace('# proxy_set_header X-Keyctl-Scope', 'proxy_set_header X-Keyctl-Scope')
               .replace('# proxy_set_header X-Keyctl-Deployment',
                        'proxy_set_header X-Keyctl-Deployment'))
        user = "user root;" if os.geteuid() == 0 else ""
        d = self.dir
        conf = f"""{user}
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
{upstream}
    server {{
        listen 127.0.0.1:{self.front};
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
{api}
    }}
    upstream app {{
        server 127.0.0.1:{self.app};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.app};
        location / {{ return 204; }}
    }}
    server {{
        listen 127.0.0.1:{self.static};
        location /api/ {{ return 204; }}
    }}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
        self.proc = subprocess.Popen(
            [nginx, "-p", d, "-c", path, "-e", "stderr", "-g",
             f"daemon off; pid {d}/nginx.pid; error_log stderr;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import socket
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"nginx did not start: {self.proc.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.static), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("nginx did not listen within 30 s")
                time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def request_files(work, secrets, others, n, seed):
    """The workload twice: /v1/verify bodies, and "KEY IP" lines for the proxy."""
    text, _valid = sw.workload(secrets, others, n, hot=False, seed=seed)
    bodies = os.path.join(work, f"serve-bodies-{n}.jsonl")
    pairs = os.path.join(work, f"serve-keys-{n}.txt")
    with open(bodies, "w") as f:
        f.write(text)
    with open(pairs, "w") as f:
        for line in text.splitlines():
            r = json.loads(line)
            f.write(f"{r['key']} {r['ip']}\n")
    return bodies, pairs


def pg_store(args, sqlite_db):
    """A copy of the SQLite store in a database of its own on --pg's server."""
    name = "keyctl_serve_bench"
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", args.pg]
    subprocess.run(psql + ["-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)
    subprocess.run(psql + ["-c", f"CREATE DATABASE {name}"], check=True)
    # The database part of the URL is the last path segment before any query.
    base, _, query = args.pg.partition("?")
    url = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    print(f"copying the store into {name} ...", file=sys.stderr)
    subprocess.run([KEYCTL, "--db", sqlite_db, "copy", "--to", url], check=True,
                   capture_output=True)
    subprocess.run(["psql", "-X", "-q", url, "-c", "VACUUM ANALYZE"], check=True)
    return name, url


def warm_postgres(server, bodies, args, url):
    """A first load, unmeasured, then ANALYZE: what a running server's autovacuum
    would have done. The copy's VACUUM ANALYZE saw its ledger tables empty, and the
    plans cached for the verification's prepared statements then scan them whole
    (pool_events by a sequential scan and a sort) until the statistics change: about
    a minute of a real server's life (autovacuum's naptime), but all of a 10-second
    figure, which fell round after round (831 then 501/s, 1,283/s after ANALYZE)."""
    wrk(f"http://{server.addr}", bodies, "verify", args, args.dir)
    subprocess.run(["psql", "-X", "-q", url, "-c", "ANALYZE"], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=100_000,
                    help="requests in the file wrk draws from (each line's invalid key "
                         "and address must repeat fewer than failed-auth-limit times)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=os.path.join(ROOT, "target", "bench", "stream"))
    ap.add_argument("--pg", default=None,
                    help="base PostgreSQL URL (default: the content of /tmp/pg-lead.url)")
    ap.add_argument("--only", default="sqlite,ceiling,nginx,postgres")
    ap.add_argument("--keyctl", default=KEYCTL, help="the keyctl binary (default: release)")
    args = ap.parse_args()
    set_keyctl(args.keyctl)
    only = set(args.only.split(","))
    for tool in ("wrk", "psql") if "postgres" in only else ("wrk",):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y wrk postgresql-client nginx)")
    if "postgres" in only and args.pg is None:
        with open("/tmp/pg-lead.url") as f:
            args.pg = f.read().strip()
    os.makedirs(args.dir, exist_ok=True)
    db, secrets = sw.keyctl_store(args.dir, args.keys)
    others = sw.strangers(args.dir, 20_000)
    limit_db = os.path.join(args.dir, f"limits-{args.keys}.db")
    if not os.path.exists(limit_db):
        subprocess.run([os.path.join(sw.LIMITS, "gen"), "create", limit_db, str(args.keys)],
                       check=True, capture_output=True)
    pg = pg_store(args, db) if "postgres" in only else None

    figures = {}  # name -> list of (rate, p50, p99)
    rss = {}      # name -> peak MiB (max over rounds)
    cpus = {}     # name -> list of {"wrk": s, "serve": s} a request
    loads = []
    seed = int(time.time())
    try:
        for r in range(args.rounds):
            loads.append(uptime())
            bodies, pairs = request_files(args.dir, secrets, others, args.lines,
                                          seed * 1000 + r)
            figures.setdefault("limit", []).append(
                (sw.limit_loop(limit_db, 20_000), None, None))
            sides = []
            if "sqlite" in only or "nginx" in only:
                sides.append(("sqlite", db))
            if "ceiling" in only:
                sides.append(("ceiling", db))
            if pg:
                sides.append(("postgres", pg[1]))
            for name, store in sides:
                if name in ("sqlite", "ceiling"):
                    # A fresh copy of the template store each round, as the stream figures.
                    store = sw.fresh_copy(db)
                extra = ["--no-record"] if name == "ceiling" else []
                server = Serve(store, ["--trust-proxy", "127.0.0.1/32", *extra])
                try:
                    if name == "postgres" and r == 0:
                        warm_postgres(server, bodies, args, pg[1])
                    if name != "sqlite" or "sqlite" in only:
                        cpu, served = {}, server.cpu_seconds()
                        rate, p50, p99, st = wrk(f"http://{server.addr}", bodies, "verify",
                                                 args, args.dir, cpu)
                        answered = sum(st.values())
                        cpu["serve"] = (server.cpu_seconds() - served) / max(answered, 1)
                        check(st, 200)
                        figures.setdefault(name, []).append((rate, p50, p99))
                        cpus.setdefault(name, []).append(cpu)
                    if name == "sqlite" and "nginx" in only:
                        proxy = Nginx(server.addr, args.dir)
                        try:
                            rate, p50, p99, st = wrk(f"http://127.0.0.1:{proxy.front}",
                                                     pairs, "auth", args, args.dir)
                            check(st, 204)
                            figures.setdefault("nginx", []).append((rate, p50, p99))
                            rate, p50, p99, st = wrk(f"http://127.0.0.1:{proxy.static}",
                                                     pairs, "auth", args, args.dir)
                            figures.setdefault("static", []).append((rate, p50, p99))
                        finally:
                            proxy.stop()
                    rss[name] = max(rss.get(name, 0), server.peak_rss_mib())
                finally:
                    server.stop()
            print(f"round {r}: " + " ".join(f"{k}={v[-1][0]:.0f}/s" for k, v in figures.items())
                  + f" | {loads[-1]}", file=sys.stderr)
    finally:
        if pg:
            subprocess.run(["psql", "-X", "-q", args.pg, "-c",
                            f"DROP DATABASE IF EXISTS {pg[0]} WITH (FORCE)"], check=False)

    def med(name, i):
        return statistics.median(v[i] for v in figures[name])

    limit = med("limit", 0)
    print(f"machine: {os.cpu_count()} cores; {args.keys} keys with every limit set, 10% "
          f"invalid; wrk -t2 -c{args.connections} -d{args.seconds}s keep-alive; "
          f"{args.rounds} rounds alternating, medians")
    for load in loads:
        print(f"load: {load}")
    print()
    print("| figure | rate | baseline | ratio | p50 | p99 | peak RSS | target |")
    print("|---|---|---|---|---|---|---|---|")
    if "sqlite" in figures:
        rate = med("sqlite", 0)
        print(f"| serve, POST /v1/verify, SQLite, {args.connections} keep-alive clients "
              f"| {rate:.0f}/s | limit-verify --loop 20000: {limit:.0f}/s "
              f"| {rate / limit:.2f}x | {med('sqlite', 1):.2f} ms | {med('sqlite', 2):.2f} ms "
              f"| {rss['sqlite']:.1f} MiB | >= 3x, <= 64 MiB: "
              f"{'met' if rate / limit >= 3 and rss['sqlite'] <= 64 else 'NOT met'} |")
    if "ceiling" in figures:
        rate = med("ceiling", 0)
        print(f"| ceiling: serve --no-record, SQLite, {args.connections} keep-alive clients "
              f"| {rate:.0f}/s | limit-verify --loop 20000: {limit:.0f}/s "
              f"| {rate / limit:.2f}x | {med('ceiling', 1):.2f} ms | {med('ceiling', 2):.2f} ms "
              f"| {rss['ceiling']:.1f} MiB | reported |")
    if "postgres" in figures:
        rate = med("postgres", 0)
        sq = f"SQLite: {med('sqlite', 0):.0f}/s" if "sqlite" in figures else "-"
        print(f"| serve, POST /v1/verify, PostgreSQL, {args.connections} keep-alive clients "
              f"| {rate:.0f}/s | {sq} | {rate / limit:.2f}x the limit "
              f"| {med('postgres', 1):.2f} ms | {med('postgres', 2):.2f} ms "
              f"| {rss['postgres']:.1f} MiB | reported |")
    if "nginx" in figures:
        rate, base = med("nginx", 0), med("static", 0)
        print(f"| nginx auth_request -> serve (SQLite) -> app 204, {args.connections} "
              f"keep-alive clients | {rate:.0f}/s | nginx static 204: {base:.0f}/s "
              f"| {rate / base:.2f}x | {med('nginx', 1):.2f} ms | {med('nginx', 2):.2f} ms "
              f"| - | reported (static 204: p50 {med('static', 1):.2f} ms, "
              f"p99 {med('static', 2):.2f} ms) |")
    if cpus:
        cores = os.cpu_count()
        print()
        print(f"CPU a request (user + system, medians; the machine has {cores} cores, "
              f"{cores * 1e6:.0f} µs of CPU a second):")
        print()
        print("| serve | rate | wrk | keyctl serve | both: of the machine |")
        print("|---|---|---|---|---|")
        for name, runs in cpus.items():
            w = statistics.median(c["wrk"] for c in runs) * 1e6
            k = statistics.median(c["serve"] for c in runs) * 1e6
            rate = med(name, 0)
            unseen = " (the PostgreSQL server's own not counted)" if name == "postgres" else ""
            print(f"| {name} | {rate:.0f}/s | {w:.1f} µs | {k:.1f} µs "
                  f"| {(w + k) * rate / (cores * 1e6):.0%}{unseen} |")


if __name__ == "__main__":
    main()
