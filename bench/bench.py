#!/usr/bin/env python3
"""keyctl benchmarks: each figure runs keyctl and its baseline side by side, alternating
run by run, and reports medians and the ratio of medians. The baselines of the hot
paths are the physical-limit programs of ../shared/limits (built here, or --limits).
See bench/README.md."""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYCTL = os.path.join(ROOT, "target", "release", "keyctl")
FILL = os.path.join(ROOT, "target", "release", "examples", "fill_store")
BARE = os.path.join(ROOT, "target", "release", "examples", "bare_insert")
FILL_REQUESTS = os.path.join(ROOT, "target", "release", "examples", "fill_requests")
BENCH = os.path.dirname(os.path.abspath(__file__))
# The physical-limit programs (gen, limit-verify, limit-list): set by main().
LIMITS_DIR = None

# The columns `keyctl list --json` prints, as stored (same join for credits_used).
KEY_COLUMNS = (
    "k.id, k.name, k.description, k.owner, k.key_prefix, k.livemode, k.category, k.grp, "
    "k.scopes, k.deployment, k.allowed_models, k.allowed_ips, k.quota_total, k.quota_daily, "
    "k.quota_weekly, k.quota_monthly, k.rate_count, k.rate_unit, k.credit_limit, "
    "p.credits_used, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.state, "
    "k.rotated_from, k.rotated_to, k.revoked_at, k.revoke_reason, k.requests_total, "
    "k.events_total, k.credits_total"
)


def usage(argv, env=None, stdin=None):
    """Peak resident memory (KiB) and minor page faults of one run, measured by GNU
    time. (A child forked from this Python process inherits Python's RSS high-water
    mark across exec, so wait4's ru_maxrss would overstate small programs; GNU time is
    a small parent.)"""
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"keyctl-bench-rss-{os.getpid()}")
    run_once(["/usr/bin/time", "-f", "%M %R", "-o", out] + argv, env, stdin)
    with open(out) as f:
        rss, faults = (int(x) for x in f.read().strip().splitlines()[-1].split())
    os.unlink(out)
    return rss, faults


def peak_rss_kib(argv, env=None, stdin=None):
    return usage(argv, env, stdin)[0]


def instructions(argv, env=None, stdin=None):
    """Instructions one whole process executes (valgrind callgrind, dynamic loader
    included): repeatable on a loaded machine, unlike time."""
    fd, out = tempfile.mkstemp(prefix="keyctl-bench-callgrind-")
    os.close(fd)
    run_once(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
             env, stdin)
    with open(out) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("totals:"))
    os.unlink(out)
    return total


_STDIN_FILES = {}


def stdin_file(data):
    """A file holding `data`, so a child reads stdin from a file rather than from a pipe
    this process is still writing (which would time our writing too)."""
    path = _STDIN_FILES.get(data)
    if path is None:
        fd, path = tempfile.mkstemp(prefix="keyctl-bench-stdin-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _STDIN_FILES[data] = path
    return open(path, "rb")


def run_once(argv, env=None, stdin=None):
    """Runs argv with stdout to /dev/null; returns (seconds, exit status)."""
    with open(os.devnull, "wb") as devnull:
        source = stdin_file(stdin) if stdin is not None else subprocess.DEVNULL
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=devnull, stderr=subprocess.PIPE,
                                stdin=source, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        if stdin is not None:
            source.close()
        elapsed = time.perf_counter() - start
        err = proc.stderr.read()
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n{err.decode(errors='replace')}")
    return elapsed, usage.ru_maxrss


AGAINST = None


def vs(argv, env, stdin=None):
    """The baseline of a keyctl command with --against: the same command run by the
    other build."""
    return lambda: run_once([AGAINST] + argv, env, stdin)


def side_by_side(name, ours, baseline, runs, target, warmup=1, rss=None):
    """Alternates ours/baseline `runs` times; each is () -> (secs, _). `rss` is a
    () -> KiB measuring keyctl's peak memory in a separate run (its own row)."""
    if AGAINST:
        target = "report"
        name = re.sub(r" \(vs [^)]*\)$| vs /bin/true$", "", name) + " (vs the other build)"
    for _ in range(warmup):
        ours()
        baseline()
    a, b = [], []
    for _ in range(runs):
        a.append(ours()[0])
        b.append(baseline()[0])
    rows = [row(name, statistics.median(a), statistics.median(b), "s", runs, target)]
    if rss:
        rows.append(row(f"peak memory of: {name}", rss() / 1024, None, "MiB", 1,
                        target_of(target, "MiB")))
    return rows


def row(figure, ours, base, unit, runs, target, ratio=None):
    if ratio is None and base:
        ratio = ours / base
    return {"figure": figure, "keyctl": ours, "baseline": base, "unit": unit,
            "runs": runs, "target": target, "ratio": ratio}


def target_of(target, unit):
    """The part of a target like "<= 1.6x, <= 8 MiB" about `unit` ("x" or "MiB")."""
    parts = [p.strip() for p in target.split(",") if p.strip().endswith(unit)]
    return ", ".join(parts) or "report"


def counted(name, measure, ours_argv, base_argv, env, base_env, stdin, base_stdin,
            target, runs=3):
    """A per-process count (instructions, page faults) of keyctl and its baseline:
    medians of `runs` runs each, alternating."""
    a, b = [], []
    for _ in range(runs):
        a.append(measure(ours_argv, env, stdin))
        b.append(measure(base_argv, base_env, base_stdin))
    return row(name, statistics.median(a), statistics.median(b), "count", runs,
               "report" if AGAINST else target)


def build(limits_src=None):
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "keyctl",
                    "--example", "fill_store", "--example", "bare_insert",
                    "--example", "fill_requests", "--example", "inflight_client"],
                   cwd=ROOT, check=True)
    if limits_src:
        if not os.path.isdir(limits_src):
            sys.exit(f"no limits sources at {limits_src}: pass --limits-src DIR "
                     "(../shared/limits) or --limits DIR (prebuilt binaries)")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=limits_src, check=True,
                       env=dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target", "limits")))


def limit(name):
    return os.path.join(LIMITS_DIR, name)


def ensure_store(path, keys):
    if os.path.exists(path):
        return
    print(f"building a {keys}-key store at {path} ...", file=sys.stderr)
    start = time.perf_counter()
    subprocess.run([FILL, path, str(keys)], check=True)
    print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def ensure_limits_store(path, keys):
    """The limits' own store of `keys` keys (`gen create`), made once."""
    if not os.path.exists(path):
        subprocess.run([limit("gen"), "create", path, str(keys)], check=True,
                       capture_output=True)
    return path


FIGURES = "verify,stream,batch,list,table,create,history,complete,report"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=100_000,
                    help="keys in the stores of the figures against the limits (default 100k)")
    ap.add_argument("--runs", type=int, default=5, help="alternating runs per figure")
    ap.add_argument("--batch", type=int, default=100_000, help="lines in the create --batch input")
    ap.add_argument("--dir", default=os.path.join(ROOT, "target", "bench"),
                    help="where the benchmark stores live")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default="",
                    help=f"comma-separated figures to run: {FIGURES}")
    ap.add_argument("--table-keys", type=int, default=200_000,
                    help="keys in the store of the `list` table figure (default 200k)")
    ap.add_argument("--complete-keys", type=int, default=1_000_000,
                    help="keys in the store of the completion figures (default 1M)")
    ap.add_argument("--report-keys", type=int, default=1_000_000,
                    help="keys in the store of the `report` figures (default 1M)")
    ap.add_argument("--history", type=int, default=1_000_000,
                    help="requests recorded for the heavy key in its last 30 days")
    ap.add_argument("--limits", metavar="DIR",
                    help="prebuilt limits binaries (gen, limit-verify, limit-list), e.g. "
                         "/tmp/limits-target/release; default: build ../shared/limits "
                         "into target/limits")
    ap.add_argument("--limits-src", default=os.path.join(ROOT, "..", "shared", "limits"),
                    help="the limits' sources (default ../shared/limits)")
    ap.add_argument("--lines", type=int, default=20_000,
                    help="request lines of the pipelined stream figures")
    ap.add_argument("--inflight-lines", type=int, default=5_000,
                    help="request lines of the one-in-flight stream figure")
    ap.add_argument("--keyctl", metavar="PATH",
                    help="the keyctl binary to measure (default target/release/keyctl; "
                         "e.g. the static one of `cargo build-static`)")
    ap.add_argument("--workload", choices=("14", "17"), default="17",
                    help="the verify and stream figures' workload: 17 (default) adds keys "
                         "with metadata and a credit refill and a store-wide rate and credit "
                         "limit to issue 14's; 14: without them")
    ap.add_argument("--against", metavar="KEYCTL",
                    help="another keyctl build (e.g. of an older commit) run as every "
                         "figure's baseline instead, on the same stores: before/after")
    args = ap.parse_args()
    global AGAINST, LIMITS_DIR, KEYCTL
    if args.keyctl:
        KEYCTL = os.path.abspath(args.keyctl)
    AGAINST = args.against and os.path.abspath(args.against)
    LIMITS_DIR = (os.path.abspath(args.limits) if args.limits
              else os.path.join(ROOT, "target", "limits", "release"))
    for tool, package in (("sqlite3", "sqlite3"), ("/usr/bin/time", "time"),
                          ("valgrind", "valgrind")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install -y {package}")
    if not args.no_build:
        build(None if args.limits else os.path.abspath(args.limits_src))
    for name in ("gen", "limit-verify", "limit-list"):
        if not os.access(limit(name), os.X_OK):
            sys.exit(f"{limit(name)} is missing: build the limits (drop --no-build) or pass --limits DIR")
    os.makedirs(args.dir, exist_ok=True)
    store = os.path.join(args.dir, f"keys-{args.keys}.db")
    ensure_store(store, args.keys)
    limits_db = ensure_limits_store(os.path.join(args.dir, f"limits-{args.keys}.db"), args.keys)
    env = dict(os.environ, KEYCTL_DB=store, NO_COLOR="1")
    rows = []
    only = {x for x in args.only.split(",") if x}
    unknown = only - set(FIGURES.split(","))
    if unknown:
        sys.exit(f"--only: unknown figures {', '.join(sorted(unknown))}: use {FIGURES}")
    want = lambda name: not only or name in only

    if want("verify"):
        verify_store = workload_store(args, store)
        rows.extend(process_figures(args, dict(env, KEYCTL_DB=verify_store), verify_store,
                                    limits_db))
    if want("stream"):
        rows.extend(stream_figures(args))
    if want("batch"):
        rows.extend(batch_figure(args, env))
    if want("list"):
        rows.extend(list_figure(args, env, limits_db))

    # `list` as a table (the default) measures every row in one pass over its snapshot
    # and draws them in a second, so its peak memory stays flat like --json's.
    if want("table"):
      table_store = os.path.join(args.dir, f"keys-{args.table_keys}.db")
      ensure_store(table_store, args.table_keys)
      table_env = dict(env, KEYCTL_DB=table_store)
      json_peak = peak_rss_kib([KEYCTL, "list", "--json"], table_env)
      rows.extend(side_by_side(
        f"list as a table, {args.table_keys} keys, vs list --json "
        f"(--json peak {json_peak / 1024:.1f} MiB)",
        lambda: run_once([KEYCTL, "list"], table_env),
        vs(["list"], table_env) if AGAINST else lambda: run_once([KEYCTL, "list", "--json"], table_env),
        args.runs, "report, <= 32 MiB",
        rss=lambda: peak_rss_kib([KEYCTL, "list"], table_env)))

    # One create process per run, on the same large store (each adds one key).
    counter = iter(range(10**9))
    create_store = store
    if want("create"):
      rows.extend(side_by_side(
        f"create (one process, {args.keys}-key store) vs /bin/true",
        lambda: run_once([KEYCTL, "create", "--name", f"bench-create-{time.time_ns()}-{next(counter)}",
                          "--quiet"], dict(env, KEYCTL_DB=create_store)),
        (lambda: run_once([AGAINST, "create", "--name", f"bench-create-{time.time_ns()}-{next(counter)}",
                           "--quiet"], dict(env, KEYCTL_DB=create_store))) if AGAINST
        else lambda: run_once(["/bin/true"], env),
        max(args.runs, 20), "report"))

    if want("history"):
        rows.extend(history_figure(args, env))
    if want("complete"):
        complete_store = os.path.join(args.dir, f"keys-{args.complete_keys}.db")
        ensure_store(complete_store, args.complete_keys)
        rows.extend(complete_figures(args, dict(env, KEYCTL_DB=complete_store), complete_store))

    if want("report"):
        rows.extend(report_figures(args, env))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.platform()}, load average {os.getloadavg()[0]:.2f} at the end; "
          f"{args.keys} keys, {args.runs} runs per figure unless noted; limits: {LIMITS_DIR}"
          + (f"; baseline of every figure: {AGAINST}" if AGAINST else ""))
    print()
    print_table(rows)
    for path in _STDIN_FILES.values():
        os.unlink(path)


def ensure_report_store(args):
    """The `--report-keys` store (a copy of fill_store's) with findings of every kind
    a large store has: fill_store's keys are never used, half never expire, most are
    unrestricted; here every 10th key also gets daily and monthly quotas and a credit
    limit (so near-limit counts its windows through the store, as verify does) and every
    7th a last use 60 days after its creation. Benchmark data only."""
    base = os.path.join(args.dir, f"keys-{args.report_keys}.db")
    ensure_store(base, args.report_keys)
    path = os.path.join(args.dir, f"report-{args.report_keys}.db")
    if not os.path.exists(path):
        subprocess.run(["sqlite3", base, f".backup '{path}'"], check=True)
        subprocess.run(["sqlite3", path,
                        "UPDATE keys SET quota_daily = 1000, quota_monthly = 10000, "
                        "credit_limit = 100 WHERE seq % 10 = 0; "
                        "UPDATE keys SET last_used_at = created_at + 60 * 86400000 "
                        "WHERE seq % 7 = 0;"], check=True)
    return path


def report_figures(args, env):
    """`keyctl report` streams a page of keys at a time: its peak memory on a 1M-key
    store, as json (one pass) and as the grouped table (a measuring pass, then one pass
    per group), beside `list --json` on the same store (one pass, no findings)."""
    store = ensure_report_store(args)
    renv = dict(env, KEYCTL_DB=store, KEYCTL_NOW="2026-12-01T00:00:00Z")
    runs = min(args.runs, 3)
    rows = side_by_side(
        f"report --json, {args.report_keys} keys, vs list --json",
        lambda: run_once([KEYCTL, "report", "--json"], renv),
        vs(["report", "--json"], renv) if AGAINST
        else lambda: run_once([KEYCTL, "list", "--json"], renv),
        runs, "report, <= 32 MiB", warmup=0,
        rss=lambda: peak_rss_kib([KEYCTL, "report", "--json"], renv))
    rows.extend(side_by_side(
        f"report as a table, {args.report_keys} keys, vs report --json",
        lambda: run_once([KEYCTL, "report"], renv),
        vs(["report"], renv) if AGAINST
        else lambda: run_once([KEYCTL, "report", "--json"], renv),
        runs, "report, <= 32 MiB", warmup=0,
        rss=lambda: peak_rss_kib([KEYCTL, "report"], renv)))
    list_peak = peak_rss_kib([KEYCTL, "list", "--json"], renv)
    rows.append(row(f"peak memory of: list --json, {args.report_keys} keys (for scale)",
                    list_peak / 1024, None, "MiB", 1, "report"))
    return rows


def limits_secret(limits_db, keys):
    """The secret of a key in the middle of the limits' store (`gen key ID`)."""
    out = subprocess.run([limit("gen"), "key", str(keys // 2)], capture_output=True,
                         text=True, check=True).stdout
    return (out.split()[0] + "\n").encode()


def workload_store(args, store):
    """The one-process verify figures' store: the plain store for issue 14's workload;
    for issue 17's, a copy of it with the store-wide limits set (made once)."""
    if args.workload == "14":
        return store
    path = store.replace(".db", "-w17.db")
    if not os.path.exists(path):
        subprocess.run(["sqlite3", store, f".backup '{path}'"], check=True)
        sys.path.insert(0, BENCH)
        import stream_workload as sw
        sw.set_store_limits(path, KEYCTL)
        if AGAINST:
            sw.set_store_limits(path, AGAINST)
    return path


def process_figures(args, env, store, limits_db):
    """One verification per process, keyctl (`bench-plain`, a key with no limits, as
    the limit's keys have none) against limit-verify on its own store of as many keys:
    wall time, instructions (callgrind), page faults, peak memory."""
    work = os.path.join(args.dir, "verify" if args.workload == "14" else "verify-w17")
    os.makedirs(work, exist_ok=True)
    # No limits, as the limit's keys have none; with issue 17's workload it carries
    # metadata, which every verdict hands back.
    plain = bench_key(env, work, "bench-plain", 0, limits=False,
                      meta=args.workload != "14")
    theirs = limits_secret(limits_db, args.keys)
    rows = []
    for label, ours, base, wall, instr in (
            ("verify --no-record", ["verify", "--no-record"], ["--ro"], "<= 1.15x", "<= 1.5x"),
            ("verify (recorded)", ["verify"], [], "<= 1.3x", "<= 1.6x")):
        ours_argv = [KEYCTL] + ours
        if AGAINST:
            base_argv, base_env, base_in, what = [AGAINST] + ours, env, plain, "the other build"
        else:
            base_argv = [limit("limit-verify")] + base + [limits_db]
            base_env, base_in, what = env, theirs, "limit-verify " + " ".join(base)
        what = what.strip()
        name = f"{label}, one process, {args.keys}-key store (vs {what})"
        rows.extend(side_by_side(
            name, lambda: run_once(ours_argv, env, plain),
            lambda: run_once(base_argv, base_env, base_in), max(args.runs, 30), wall))
        rows.append(counted(f"{label}: instructions (callgrind, whole process)",
                            instructions, ours_argv, base_argv, env, base_env, plain,
                            base_in, instr, runs=1))
        rows.append(counted(f"{label}: minor page faults", lambda *a: usage(*a)[1],
                            ours_argv, base_argv, env, base_env, plain, base_in,
                            "report", runs=5))
        rows.append(counted(f"{label}: peak memory (MiB)",
                            lambda *a: usage(*a)[0] / 1024, ours_argv, base_argv, env,
                            base_env, plain, base_in, "<= 8 MiB", runs=3))
        rows[-1]["unit"] = "MiB"
    return rows


def stream_figures(args):
    """`verify --stream` on the pinned workload of bench/stream_workload.py (random
    keys of the store, every limit set, 10% invalid keys; and one hot key), against
    limit-verify --loop (one transaction per request)."""
    try:
        sys.path.insert(0, BENCH)
        import stream_workload as sw
    except ImportError:
        print("skipping the stream figures: bench/stream_workload.py is missing", file=sys.stderr)
        return []
    sw.LIMITS, sw.KEYCTL = LIMITS_DIR, KEYCTL
    sw.WORKLOAD = args.workload
    work = os.path.join(args.dir, "stream")
    os.makedirs(work, exist_ok=True)
    db, secrets = sw.keyctl_store(work, args.keys)
    others = sw.strangers(work, 2000)
    limits_db = ensure_limits_store(os.path.join(work, f"limits-{args.keys}.db"), args.keys)
    cases = (("pipelined, random keys", False, args.lines, ">= 3x"),
             ("pipelined, one hot key", True, args.lines, ">= 3x"),
             ("one request in flight, random keys", False, args.inflight_lines, ">= 0.8x"),
             ("one request in flight, random keys, Rust client", False, args.inflight_lines,
              ">= 0.8x"))
    seed = int(time.time())

    def files(round_):
        """This round's request files, from a seed of their own (each run works on a
        fresh copy of the template store: `stream_workload.fresh_copy`)."""
        out = []
        for label, hot, n, target in cases:
            text, valid = sw.workload(secrets, others, n, hot, seed=seed * 1000 + round_)
            path = os.path.join(work, f"lines-{'hot' if hot else 'random'}-{n}.jsonl")
            with open(path, "w") as f:
                f.write(text)
            out.append((label, path, text, n, valid))
        return out

    def rate(label, path, text, n, valid):
        if "Rust client" in label:
            return sw.one_in_flight_rust(db, path, n, valid)
        return (sw.one_in_flight(db, text, n, valid) if "in flight" in label
                else sw.pipelined(db, path, n, valid))

    ours = {c[0]: [] for c in cases}
    base = {c[0]: [] for c in cases}
    for round_ in range(args.runs):
        loop = None if AGAINST else sw.limit_loop(limits_db, args.lines)
        for label, path, text, n, valid in files(2 * round_):
            sw.KEYCTL = KEYCTL
            # Written again: two cases share a file, which the other build's lines of
            # the case before replaced.
            with open(path, "w") as f:
                f.write(text)
            ours[label].append(rate(label, path, text, n, valid))
            if AGAINST:
                # The other build gets lines of its own seed too.
                sw.KEYCTL = AGAINST
                hot = "hot" in label
                text, valid = sw.workload(secrets, others, n, hot, seed=seed * 1000 + 2 * round_ + 1)
                with open(path, "w") as f:
                    f.write(text)
                base[label].append(rate(label, path, text, n, valid))
                sw.KEYCTL = KEYCTL
            else:
                base[label].append(loop)
    what = "the other build" if AGAINST else f"limit-verify --loop {args.lines}"
    return [row(f"verify --stream {label}, {n} lines, {args.keys} keys, every limit set, "
                f"10% invalid (rate, vs {what})",
                statistics.median(ours[label]), statistics.median(base[label]), "rate",
                args.runs, "report" if AGAINST else target)
            for label, _, n, target in cases]


def remove_store(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def batch_figure(args, env):
    """create --batch of N lines into an empty store, against the limit's bare insert
    of N keys into a new store (`gen create DB N`: prepared statements, one
    transaction), or the other build with --against."""
    work = os.path.join(args.dir, "batch")
    os.makedirs(work, exist_ok=True)
    lines = os.path.join(work, f"batch-{args.batch}.jsonl")
    if not os.path.exists(lines):
        with open(lines, "w") as f:
            for i in range(args.batch):
                f.write(json.dumps({"name": f"batch-{i:07d}", "scopes": ["read"],
                                    "quota_daily": 1000, "expires": "90d",
                                    "owner": f"team-{i % 17}"}) + "\n")
    empty = os.path.join(work, "empty.db")
    remove_store(empty)  # made anew: the schema may have changed
    subprocess.run([KEYCTL, "init", "-q"], env=dict(env, KEYCTL_DB=empty), check=True)
    ours_db = os.path.join(work, "ours.db")
    base_db = os.path.join(work, "base.db")

    def fresh(path):
        remove_store(path)
        shutil.copyfile(empty, path)
        os.chmod(path, 0o600)

    def ours():
        fresh(ours_db)
        return run_once([KEYCTL, "create", "--batch", lines, "-q"], dict(env, KEYCTL_DB=ours_db))

    def baseline():
        if AGAINST:
            fresh(base_db)
            return run_once([AGAINST, "create", "--batch", lines, "-q"], dict(env, KEYCTL_DB=base_db))
        remove_store(base_db)
        return run_once([limit("gen"), "create", base_db, str(args.batch)], env)

    return side_by_side(f"create --batch, {args.batch} lines (vs gen create {args.batch})",
                        ours, baseline, args.runs, "<= 2x")


def list_figure(args, env, limits_db):
    """list --json of the `--keys` store against limit-list of the limits' store of as
    many keys, per output byte (the two print different fields); peak memory."""
    def size(argv, e):
        with tempfile.TemporaryFile() as f:
            subprocess.run(argv, stdout=f, env=e, check=True)
            return f.tell()
    ours_argv = [KEYCTL, "list", "--json"]
    base_argv = [AGAINST, "list", "--json"] if AGAINST else [limit("limit-list"), limits_db]
    ours_bytes, base_bytes = size(ours_argv, env), size(base_argv, env)
    what = "the other build" if AGAINST else "limit-list"
    rows = side_by_side(
        f"list --json, {args.keys} keys, {ours_bytes} bytes (vs {what}, {base_bytes} bytes)",
        lambda: run_once(ours_argv, env), lambda: run_once(base_argv, env),
        args.runs, "report, <= 16 MiB",
        rss=lambda: peak_rss_kib(ours_argv, env))
    wall = rows[0]
    per_byte = row(f"list --json per output byte (vs {what})", wall["keyctl"] / ours_bytes,
                   wall["baseline"] / base_bytes, "s/B", args.runs,
                   "report" if AGAINST else "<= 1.1x")
    return [per_byte] + rows


def history_figure(args, env):
    """A recorded verify of a key with a long history against a fresh key (every limit
    set on both): the rolling windows cost the same whatever the history."""
    work = os.path.join(args.dir, "verify")
    os.makedirs(work, exist_ok=True)
    fresh = bench_key(env, work, "bench-fresh", 0)
    heavy = bench_key(env, work, "bench-heavy", args.history)
    return side_by_side(
        f"verify, key with {args.history} requests in 30 d (vs fresh key), all limits set",
        lambda: run_once([KEYCTL, "verify"], env, heavy),
        vs(["verify"], env, heavy) if AGAINST else lambda: run_once([KEYCTL, "verify"], env, fresh),
        max(args.runs, 30), "<= 1.2x")


def completion_env(env, words):
    """What keyctl's bash script (src/complete.rs) sets when it calls keyctl back for
    the candidates of the last of `words`: a first Tab (COMP_TYPE 9)."""
    return dict(env, _CLAP_IFS="\v", _CLAP_COMPLETE_INDEX=str(len(words) - 1),
                _CLAP_COMPLETE_COMP_TYPE="9", _CLAP_COMPLETE_SPACE="false",
                KEYCTL_COMPLETE="bash")


def complete_figures(args, env, store):
    """Tab completion of a KEYREF, one whole process as the shell runs it
    (`KEYCTL_COMPLETE=bash keyctl -- keyctl show TYPED`), with 4 characters typed (the
    store's names are bench-NNNNNNN, so `benc` matches every key: the worst case) and
    with nothing typed; against sqlite3 reading the same index range (the first 201
    names), or the other build with --against."""
    rows = []
    for typed, target in (("benc", "median <= 50 ms"), ("", "median <= 100 ms")):
        words = ["keyctl", "show", typed]
        cenv = completion_env(env, words)
        argv = ["--"] + words
        out = subprocess.run([KEYCTL] + argv, env=cenv, capture_output=True, check=True).stdout
        offered = len([c for c in out.split(b"\v") if c and not c.startswith(b"-")])
        upper = typed + "\U0010ffff"
        names = ["sqlite3", store, f"SELECT DISTINCT name FROM keys WHERE name >= '{typed}' "
                 f"AND name < '{upper}' ORDER BY name LIMIT 201"]
        rows.extend(side_by_side(
            f"complete `keyctl show {typed or ''}<Tab>`, {args.complete_keys} keys, {offered} candidates "
            "(vs sqlite3 reading the same index range)",
            lambda: run_once([KEYCTL] + argv, cenv),
            (lambda: run_once([AGAINST] + argv, cenv)) if AGAINST else lambda: run_once(names, env),
            max(args.runs, 10), target))
    return rows


LIMITS = ["--quota-total", "1000000000", "--quota-daily", "1000000000",
          "--quota-weekly", "1000000000", "--quota-monthly", "1000000000",
          "--rate-limit", "1000000/s", "--credits", "1000000000000"]


def bench_key(env, work, name, history, limits=True, meta=False):
    """A key with every limit set and its secret in a 0600 file (benchmark data only);
    with `history`, that many accepted requests in its last 30 days."""
    secret_file = os.path.join(work, f"{name}.secret")
    found = subprocess.run([KEYCTL, "show", name, "--json"], env=env,
                           capture_output=True).returncode == 0
    if not (found and os.path.exists(secret_file)):
        if found:
            subprocess.run([KEYCTL, "delete", name, "--yes", "--force", "-q"], env=env, check=True)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            subprocess.run([KEYCTL, "create", "--name", name, "-q"] + (LIMITS if limits else [])
                           + (["--meta", "tenant=t-0001", "--meta", "plan=pro"] if meta else []),
                           env=env, stdout=f, check=True)
        if history:
            key_id = json.loads(subprocess.run([KEYCTL, "show", name, "--json"], env=env,
                                               capture_output=True, check=True).stdout)["id"]
            print(f"recording {history} requests for {name} ...", file=sys.stderr)
            subprocess.run([FILL_REQUESTS, env["KEYCTL_DB"], key_id, str(history)], check=True)
    with open(secret_file, "rb") as f:
        return f.read()


def met(r):
    """Parses targets like "<= 1.6x", ">= 0.8x", "<= 8 MiB", "median <= 50 ms" or
    "report" (parts joined by commas)."""
    verdicts = []
    for part in (p.strip() for p in r["target"].split(",")):
        m = re.fullmatch(r"(?:median )?([<>]=) ([0-9.]+)(x| MiB| ms)", part)
        if not m:
            continue
        op, bound, unit = m.group(1), float(m.group(2)), m.group(3)
        if unit == "x":
            value = r["ratio"]
        elif unit == " MiB":
            value = r["keyctl"] if r["unit"] == "MiB" else None
        else:
            value = r["keyctl"] * 1000
        if value is None:
            continue
        verdicts.append(value <= bound if op == "<=" else value >= bound)
    if not verdicts:
        return "-"
    return "yes" if all(verdicts) else "NO"


def fmt_secs(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return fmt_secs(value)
    if unit == "rate":
        return f"{value:.0f}/s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "s/B":
        return f"{value * 1e9:.2f} ns/B"
    return f"{value:,.0f}"


def print_table(rows):
    print("| figure | keyctl (median) | baseline (median) | ratio | runs | target | met |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        print(f"| {r['figure']} | {fmt(r['keyctl'], r['unit'])} | "
              f"{fmt(r['baseline'], r['unit'])} | {ratio} | {r['runs']} | {r['target']} | "
              f"{met(r)} |")


if __name__ == "__main__":
    main()
