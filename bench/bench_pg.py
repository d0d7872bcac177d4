#!/usr/bin/env python3
"""keyctl on PostgreSQL against keyctl on SQLite and against psql, side by side in one
run (alternating run by run, medians). Starts its own throwaway PostgreSQL server
(scripts/pg-cluster.sh) in a temp folder and always stops it. See bench/README.md."""

import argparse
import glob
import hashlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # importing bench.py must not leave bench/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the same harness: run_once, bench_key, stdin files)
from bench import FILL, FILL_REQUESTS, KEYCTL, ROOT, bench_key, ensure_store, fmt_secs, run_once  # noqa: E402

CLUSTER = os.path.join(ROOT, "scripts", "pg-cluster.sh")


def find_psql():
    """The psql binary itself: Debian's /usr/bin/psql is a Perl wrapper (pg_wrapper)
    whose start-up (about 30 ms) would be timed as part of the baseline."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"),
                   key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0))
    return found[-1] if found else shutil.which("psql")


PSQL = find_psql()

# The columns `keyctl list --json` prints (bench.KEY_COLUMNS), as one JSON object a row.
PSQL_LIST = (f"COPY (SELECT row_to_json(r) FROM (SELECT {bench.KEY_COLUMNS} "
             "FROM keyctl.keys k JOIN keyctl.credit_pools p ON p.id = k.pool_id "
             "ORDER BY k.seq DESC) r) TO STDOUT")


def with_db(url, name):
    """The cluster's base URL pointing at database `name`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def psql(url, sql):
    subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)


def alternate(figures, runs, warmup=1):
    """figures: [(label, () -> secs)]; runs them in turn `runs` times after a warm-up;
    returns {label: [secs]}."""
    for _ in range(warmup):
        for _, fn in figures:
            fn()
    times = {label: [] for label, _ in figures}
    for _ in range(runs):
        for label, fn in figures:
            times[label].append(fn())
    return times


def concurrent(argvs_envs_stdins):
    """Starts every (argv, env, stdin bytes) at once; seconds from the first start to
    the last exit."""
    files = [bench.stdin_file(stdin) for _, _, stdin in argvs_envs_stdins]
    with open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        procs = [subprocess.Popen(argv, stdin=f, stdout=devnull, stderr=subprocess.PIPE, env=env)
                 for (argv, env, _), f in zip(argvs_envs_stdins, files)]
        errs = [p.communicate()[1] for p in procs]
        elapsed = time.perf_counter() - start
    for f in files:
        f.close()
    for p, err, (argv, _, _) in zip(procs, errs, argvs_envs_stdins):
        if p.returncode != 0:
            sys.exit(f"benchmark command failed ({p.returncode}): {' '.join(argv)}\n"
                     f"{err.decode(errors='replace')}")
    return elapsed


def timed_rss(argv, env):
    """One run under GNU time: (seconds, peak RSS in KiB)."""
    fd, out = tempfile.mkstemp(prefix="keyctl-bench-rss-")
    os.close(fd)
    secs = run_once(["/usr/bin/time", "-f", "%M", "-o", out] + argv, env)[0]
    with open(out) as f:
        kib = int(f.read().strip().splitlines()[-1])
    os.unlink(out)
    return secs, kib


def stream_lines(secret, n):
    return b"".join(b'{"key":"' + secret.strip() + b'","ip":"10.0.0.1","cost":1}\n'
                    for _ in range(n))


ROWS = []


def row(figure, cols, note=""):
    ROWS.append((figure, cols, note))


def med(xs):
    return statistics.median(xs)


def stream_figures(args, sq_env, pg_env, secrets):
    n = 20_000
    runs = max(args.runs, 3)
    for label, key in (("no limits", "bench-plain"), ("every limit set", "bench-fresh")):
        lines = stream_lines(secrets[key], n)
        t = alternate([
            ("pg", lambda: run_once([KEYCTL, "verify", "--stream"], pg_env, lines)[0]),
            ("sqlite", lambda: run_once([KEYCTL, "verify", "--stream"], sq_env, lines)[0]),
        ], runs)
        row(f"verify --stream, 1 stream, {n} recorded requests, key with {label} (vs SQLite)",
            (med(t["pg"]), med(t["sqlite"]), runs), f"{n / med(t['pg']):.0f}/s vs {n / med(t['sqlite']):.0f}/s")
    per = n // 4
    for label, keys in (("the same key (every limit set)", ["bench-fresh"] * 4),
                        ("4 different keys (every limit set)", [f"bench-s{i}" for i in range(4)])):
        inputs = [stream_lines(secrets[k], per) for k in keys]

        def four(env):
            return concurrent([([KEYCTL, "verify", "--stream"], env, inp) for inp in inputs])
        t = alternate([("pg", lambda: four(pg_env)), ("sqlite", lambda: four(sq_env))], runs)
        row(f"verify --stream, 4 concurrent streams x {per} recorded requests, {label} (vs SQLite)",
            (med(t["pg"]), med(t["sqlite"]), runs), f"{n / med(t['pg']):.0f}/s vs {n / med(t['sqlite']):.0f}/s")


def verify_figures(args, sq_env, pg_env, pg_url, secrets):
    plain = secrets["bench-plain"]
    digest = hashlib.sha256(plain.strip()).hexdigest()
    lookup = [PSQL, "-X", "-At", pg_url, "-c",
              f"SELECT id, state, expires_at FROM keyctl.keys WHERE secret_hash = '\\x{digest}'"]
    runs = max(args.runs, 30)
    for label, extra in (("--no-record", ["--no-record"]), ("recorded", [])):
        t = alternate([
            ("pg", lambda: run_once([KEYCTL, "verify"] + extra, pg_env, plain)[0]),
            ("psql", lambda: run_once(lookup, pg_env)[0]),
            ("sqlite", lambda: run_once([KEYCTL, "verify"] + extra, sq_env, plain)[0]),
        ], runs)
        row(f"verify {label}, one process, key with no limits (vs psql indexed lookup)",
            (med(t["pg"]), med(t["psql"]), runs))
        row(f"verify {label}, one process, key with no limits (vs keyctl on SQLite)",
            (med(t["pg"]), med(t["sqlite"]), runs))


def list_figure(args, sq_env, pg_env, pg_url):
    runs = args.runs
    t = alternate([
        ("pg", lambda: run_once([KEYCTL, "list", "--json"], pg_env)[0]),
        ("psql", lambda: run_once([PSQL, "-X", "-q", pg_url, "-c", PSQL_LIST], pg_env)[0]),
        ("sqlite", lambda: run_once([KEYCTL, "list", "--json"], sq_env)[0]),
    ], runs)
    _, pg_kib = timed_rss([KEYCTL, "list", "--json"], pg_env)
    _, sq_kib = timed_rss([KEYCTL, "list", "--json"], sq_env)
    row(f"list --json, {args.keys} keys on PostgreSQL (vs psql row_to_json)",
        (med(t["pg"]), med(t["psql"]), runs), f"peak {pg_kib / 1024:.1f} MiB")
    row(f"list --json, {args.keys} keys on PostgreSQL (vs keyctl on SQLite)",
        (med(t["pg"]), med(t["sqlite"]), runs), f"peak {pg_kib / 1024:.1f} vs {sq_kib / 1024:.1f} MiB")


def copy_figures(args, base_url, work):
    """copy of a store with --keys keys and --log request rows, both ways."""
    src = os.path.join(args.dir, f"copy-{args.keys}-{args.log}.db")
    if not os.path.exists(src + ".ready"):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(src + suffix):
                os.unlink(src + suffix)
        ensure_store(src, args.keys)
        env = dict(os.environ, KEYCTL_DB=src, NO_COLOR="1")
        bench_key(env, os.path.dirname(src), f"copy-heavy-{args.log}", args.log)
        open(src + ".ready", "w").close()
    sq_env = dict(os.environ, KEYCTL_DB=src, NO_COLOR="1")
    # The PostgreSQL source of the reverse copy: the same store, copied once.
    psql(base_url, "CREATE DATABASE copy_src")
    pg_src = with_db(base_url, "copy_src")
    subprocess.run([KEYCTL, "copy", "--to", pg_src], env=sq_env, check=True, stdout=subprocess.DEVNULL)
    psql(pg_src, "VACUUM ANALYZE")
    pg_env = dict(os.environ, KEYCTL_DB=pg_src, NO_COLOR="1")
    counter = iter(range(10**6))
    rss = {"to_pg": [], "to_sqlite": []}

    def to_pg():
        name = f"copy_dst_{next(counter)}"
        psql(base_url, f"CREATE DATABASE {name}")
        secs, kib = timed_rss([KEYCTL, "copy", "--to", with_db(base_url, name)], sq_env)
        psql(base_url, f"DROP DATABASE {name}")
        rss["to_pg"].append(kib)
        return secs

    def to_sqlite():
        dst = os.path.join(work, f"copy-dst-{next(counter)}.db")
        secs, kib = timed_rss([KEYCTL, "copy", "--to", dst], pg_env)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(dst + suffix):
                os.unlink(dst + suffix)
        rss["to_sqlite"].append(kib)
        return secs

    runs = args.copy_runs
    t = alternate([("to_pg", to_pg), ("to_sqlite", to_sqlite)], runs, warmup=0)
    row(f"copy, {args.keys} keys + {args.log} request rows: SQLite -> PostgreSQL (vs PostgreSQL -> SQLite)",
        (med(t["to_pg"]), med(t["to_sqlite"]), runs),
        f"peak {max(rss['to_pg']) / 1024:.1f} MiB vs {max(rss['to_sqlite']) / 1024:.1f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=100_000, help="keys in the store (default 100k)")
    ap.add_argument("--log", type=int, default=1_000_000,
                    help="request-log rows in the store `copy` copies (default 1M)")
    ap.add_argument("--runs", type=int, default=5, help="alternating runs per figure")
    ap.add_argument("--copy-runs", type=int, default=3, help="alternating runs of the copy figure")
    ap.add_argument("--dir", default=os.path.join(ROOT, "target", "bench"),
                    help="where the SQLite benchmark stores live")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated: stream,verify,list,copy")
    args = ap.parse_args()
    for tool, package in ((PSQL or "psql", "postgresql-client"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install -y {package}")
    if not args.no_build:
        bench.build()
    only = {x for x in args.only.split(",") if x}
    want = lambda name: not only or name in only
    os.makedirs(args.dir, exist_ok=True)
    store = os.path.join(args.dir, f"keys-{args.keys}.db")
    ensure_store(store, args.keys)
    sq_env = dict(os.environ, KEYCTL_DB=store, NO_COLOR="1")
    work = os.path.join(args.dir, "verify")
    os.makedirs(work, exist_ok=True)
    secrets = {"bench-plain": bench_key(sq_env, work, "bench-plain", 0, limits=False),
               "bench-fresh": bench_key(sq_env, work, "bench-fresh", 0)}
    for i in range(4):
        secrets[f"bench-s{i}"] = bench_key(sq_env, work, f"bench-s{i}", 0)

    cluster = tempfile.mkdtemp(prefix="keyctl-bench-pg-")
    try:
        base_url = subprocess.run(["bash", CLUSTER, "start", cluster], check=True,
                                  capture_output=True, text=True).stdout.strip()
        # The SQLite store as it is now, copied into a database of its own.
        psql(base_url, "CREATE DATABASE bench")
        pg_url = with_db(base_url, "bench")
        subprocess.run([KEYCTL, "copy", "--to", pg_url], env=sq_env, check=True,
                       stdout=subprocess.DEVNULL)
        # What autovacuum would do soon after the copy, done now so it does not run
        # during the first figure.
        psql(pg_url, "VACUUM ANALYZE")
        pg_env = dict(os.environ, KEYCTL_DB=pg_url, NO_COLOR="1")
        server = subprocess.run([PSQL, "-X", "-At", base_url, "-c", "SHOW server_version"],
                                capture_output=True, text=True, check=True).stdout.strip()
        if want("list"):
            list_figure(args, sq_env, pg_env, pg_url)
        if want("verify"):
            verify_figures(args, sq_env, pg_env, pg_url, secrets)
        if want("stream"):
            stream_figures(args, sq_env, pg_env, secrets)
        if want("copy"):
            work = os.path.join(args.dir, "copy")  # each run's target file, removed after it
            os.makedirs(work, exist_ok=True)
            copy_figures(args, base_url, work)
    finally:
        subprocess.run(["bash", CLUSTER, "stop", cluster])
        shutil.rmtree(cluster, ignore_errors=True)
        for path in bench._STDIN_FILES.values():
            os.unlink(path)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"load average {os.getloadavg()[0]:.2f} at the end; PostgreSQL {server} on a unix "
          f"socket (throwaway server: fsync=off); {args.keys} keys; medians of alternating runs")
    print()
    print("| figure | keyctl on PostgreSQL (median) | baseline (median) | ratio | runs | note |")
    print("|---|---|---|---|---|---|")
    for figure, (ours, base, runs), note in ROWS:
        print(f"| {figure} | {fmt_secs(ours)} | {fmt_secs(base)} | {ours / base:.2f}x | {runs} | {note} |")


if __name__ == "__main__":
    main()
