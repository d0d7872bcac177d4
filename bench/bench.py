#!/usr/bin/env python3
"""keyctl benchmarks: each figure runs keyctl and its baseline side by side, alternating
run by run, and reports medians and the ratio of medians. See bench/README.md."""

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

# The columns `keyctl list --json` prints, as stored (same join for credits_used).
KEY_COLUMNS = (
    "k.id, k.name, k.description, k.owner, k.key_prefix, k.livemode, k.category, k.grp, "
    "k.scopes, k.deployment, k.allowed_models, k.allowed_ips, k.quota_total, k.quota_daily, "
    "k.quota_weekly, k.quota_monthly, k.rate_count, k.rate_unit, k.credit_limit, "
    "p.credits_used, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.state, "
    "k.rotated_from, k.rotated_to, k.revoked_at, k.revoke_reason, k.requests_total, "
    "k.events_total, k.credits_total"
)


def peak_rss_kib(argv, env=None, stdin=None):
    """Peak resident memory of one run, measured by GNU time. (A child forked from this
    Python process inherits Python's RSS high-water mark across exec, so wait4's
    ru_maxrss would overstate small programs; GNU time is a small parent.)"""
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"keyctl-bench-rss-{os.getpid()}")
    run_once(["/usr/bin/time", "-f", "%M", "-o", out] + argv, env, stdin)
    with open(out) as f:
        value = int(f.read().strip().splitlines()[-1])
    os.unlink(out)
    return value


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
    () -> KiB measuring keyctl's peak memory in a separate run."""
    if AGAINST:
        target = "no worse than before (about 1.0x)"
        name = re.sub(r" \(vs [^)]*\)$| vs /bin/true$", "", name) + " (vs the other build)"
    for _ in range(warmup):
        ours()
        baseline()
    a, b = [], []
    for _ in range(runs):
        a.append(ours()[0])
        b.append(baseline()[0])
    row = {
        "figure": name,
        "keyctl": statistics.median(a),
        "baseline": statistics.median(b),
        "keyctl_rss_kib": rss() if rss else None,
        "target": target,
        "runs": runs,
    }
    row["ratio"] = row["keyctl"] / row["baseline"]
    return row


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "keyctl",
                    "--example", "fill_store", "--example", "bare_insert",
                    "--example", "fill_requests"], cwd=ROOT, check=True)


def ensure_store(path, keys):
    if os.path.exists(path):
        return
    print(f"building a {keys}-key store at {path} ...", file=sys.stderr)
    start = time.perf_counter()
    subprocess.run([FILL, path, str(keys)], check=True)
    print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys in the store (default 1M)")
    ap.add_argument("--runs", type=int, default=5, help="alternating runs per figure")
    ap.add_argument("--batch", type=int, default=100_000, help="lines in the create --batch input")
    ap.add_argument("--dir", default=os.path.join(ROOT, "target", "bench"),
                    help="where the benchmark stores live")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default="",
                    help="comma-separated figures to run: list,table,create,batch,complete,verify,stream")
    ap.add_argument("--table-keys", type=int, default=200_000,
                    help="keys in the store of the `list` table figure (default 200k)")
    ap.add_argument("--history", type=int, default=1_000_000,
                    help="requests recorded for the heavy key in its last 30 days")
    ap.add_argument("--against", metavar="KEYCTL",
                    help="another keyctl build (e.g. of an older commit) run as every "
                         "figure's baseline instead, on the same stores: before/after")
    args = ap.parse_args()
    global AGAINST
    AGAINST = args.against and os.path.abspath(args.against)
    for tool, package in (("sqlite3", "sqlite3"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install -y {package}")
    if not args.no_build:
        build()
    os.makedirs(args.dir, exist_ok=True)
    store = os.path.join(args.dir, f"keys-{args.keys}.db")
    ensure_store(store, args.keys)
    env = dict(os.environ, KEYCTL_DB=store, NO_COLOR="1")
    rows = []
    only = {x for x in args.only.split(",") if x}
    want = lambda name: not only or name in only

    sql = f"SELECT {KEY_COLUMNS} FROM keys k JOIN credit_pools p ON p.id = k.pool_id ORDER BY k.seq DESC"
    if want("list"):
      rows.append(side_by_side(
        f"list --json, {args.keys} keys (vs sqlite3 -json)",
        lambda: run_once([KEYCTL, "list", "--json"], env),
        vs(["list", "--json"], env) if AGAINST else lambda: run_once(["sqlite3", "-json", store, sql], env),
        args.runs, "<= 1.0x, peak <= 16 MiB",
        rss=lambda: peak_rss_kib([KEYCTL, "list", "--json"], env)))

    # `list` as a table (the default) measures every row in one pass over its snapshot
    # and draws them in a second, so its peak memory stays flat like --json's.
    if want("table"):
      table_store = os.path.join(args.dir, f"keys-{args.table_keys}.db")
      ensure_store(table_store, args.table_keys)
      table_env = dict(env, KEYCTL_DB=table_store)
      json_peak = peak_rss_kib([KEYCTL, "list", "--json"], table_env)
      rows.append(side_by_side(
        f"list as a table, {args.table_keys} keys, vs list --json "
        f"(--json peak {json_peak / 1024:.1f} MiB)",
        lambda: run_once([KEYCTL, "list"], table_env),
        vs(["list"], table_env) if AGAINST else lambda: run_once([KEYCTL, "list", "--json"], table_env),
        args.runs, "peak <= 32 MiB",
        rss=lambda: peak_rss_kib([KEYCTL, "list"], table_env)))

    # One create process per run, on the same large store (each adds one key).
    counter = iter(range(10**9))
    create_store = store
    if want("create"):
      rows.append(side_by_side(
        f"create (one process, {args.keys}-key store) vs /bin/true",
        lambda: run_once([KEYCTL, "create", "--name", f"bench-create-{time.time_ns()}-{next(counter)}",
                          "--quiet"], dict(env, KEYCTL_DB=create_store)),
        (lambda: run_once([AGAINST, "create", "--name", f"bench-create-{time.time_ns()}-{next(counter)}",
                           "--quiet"], dict(env, KEYCTL_DB=create_store))) if AGAINST
        else lambda: run_once(["/bin/true"], env),
        max(args.runs, 20), "report",
        rss=lambda: peak_rss_kib([KEYCTL, "create", "--name", f"bench-rss-{time.time_ns()}", "--quiet"], env)))

    if want("batch"):
        rows.append(batch_figure(args, env))
    if want("complete"):
        rows.extend(complete_figures(args, env, store))
    if want("verify") or want("stream"):
        rows.extend(verify_figures(args, env, store, want))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.platform()}, load average {os.getloadavg()[0]:.2f} at the end; "
          f"sqlite3 {subprocess.run(['sqlite3', '--version'], capture_output=True, text=True).stdout.split()[0]}; "
          f"{args.keys} keys, {args.runs} runs per figure unless noted"
          + (f"; baseline of every figure: {AGAINST}" if AGAINST else ""))
    print()
    print_table(rows)
    for path in _STDIN_FILES.values():
        os.unlink(path)


def batch_figure(args, env):
    """create --batch of N lines into an empty store, against the bare insert of the
    same rows (examples/bare_insert.rs: prepared statements, one transaction)."""
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
    for suffix in ("", "-wal", "-shm"):  # made anew: the schema may have changed
        if os.path.exists(empty + suffix):
            os.unlink(empty + suffix)
    subprocess.run([KEYCTL, "init", "-q"], env=dict(env, KEYCTL_DB=empty), check=True)
    ours_db = os.path.join(work, "ours.db")
    rows_db = os.path.join(work, "rows.db")
    base_db = os.path.join(work, "base.db")

    def fresh(path):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        shutil.copyfile(empty, path)
        os.chmod(path, 0o600)

    def ours():
        fresh(ours_db)
        result = run_once([KEYCTL, "create", "--batch", lines, "-q"], dict(env, KEYCTL_DB=ours_db))
        shutil.copyfile(ours_db, rows_db)  # the rows the baseline inserts
        return result

    def baseline():
        fresh(base_db)
        if AGAINST:
            return run_once([AGAINST, "create", "--batch", lines, "-q"], dict(env, KEYCTL_DB=base_db))
        return run_once([BARE, rows_db, base_db], env)

    ours()  # make rows_db before the first baseline run
    return side_by_side(f"create --batch, {args.batch} lines (vs bare insert of the same rows)",
                        ours, baseline, args.runs, "<= 2.0x")


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
        rows.append(side_by_side(
            f"complete `keyctl show {typed or ''}<Tab>`, {args.keys} keys, {offered} candidates "
            "(vs sqlite3 reading the same index range)",
            lambda: run_once([KEYCTL] + argv, cenv),
            (lambda: run_once([AGAINST] + argv, cenv)) if AGAINST else lambda: run_once(names, env),
            max(args.runs, 10), target))
    return rows


LIMITS = ["--quota-total", "1000000000", "--quota-daily", "1000000000",
          "--quota-weekly", "1000000000", "--quota-monthly", "1000000000",
          "--rate-limit", "1000000/s", "--credits", "1000000000000"]


def bench_key(env, work, name, history, limits=True):
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
            subprocess.run([KEYCTL, "create", "--name", name, "-q"] + (LIMITS if limits else []),
                           env=env, stdout=f, check=True)
        if history:
            key_id = json.loads(subprocess.run([KEYCTL, "show", name, "--json"], env=env,
                                               capture_output=True, check=True).stdout)["id"]
            print(f"recording {history} requests for {name} ...", file=sys.stderr)
            subprocess.run([FILL_REQUESTS, env["KEYCTL_DB"], key_id, str(history)], check=True)
    with open(secret_file, "rb") as f:
        return f.read()


def verify_figures(args, env, store, want):
    """verify on the large store: against sqlite3's bare indexed lookup of the same
    (precomputed) hash; a key with a long history against a fresh one; stream rate."""
    import hashlib
    work = os.path.join(args.dir, "verify")
    os.makedirs(work, exist_ok=True)
    plain = bench_key(env, work, "bench-plain", 0, limits=False)
    fresh = bench_key(env, work, "bench-fresh", 0)
    heavy = bench_key(env, work, "bench-heavy", args.history)
    digest = hashlib.sha256(plain.strip()).hexdigest()
    lookup = ["sqlite3", store,
              f"SELECT id, state, expires_at FROM keys WHERE secret_hash = X'{digest}'"]
    runs = max(args.runs, 30)
    rows = []
    if want("verify"):
        rows.append(side_by_side(
            f"verify --no-record, {args.keys}-key store (vs sqlite3 indexed lookup)",
            lambda: run_once([KEYCTL, "verify", "--no-record"], env, plain),
            vs(["verify", "--no-record"], env, plain) if AGAINST else lambda: run_once(lookup, env),
            runs, "<= 1.0x"))
        rows.append(side_by_side(
            f"verify, recorded, {args.keys}-key store (vs sqlite3 indexed lookup)",
            lambda: run_once([KEYCTL, "verify"], env, plain),
            vs(["verify"], env, plain) if AGAINST else lambda: run_once(lookup, env),
            runs, "<= 1.6x, peak <= 8 MiB",
            rss=lambda: peak_rss_kib([KEYCTL, "verify"], env, plain)))
        rows.append(side_by_side(
            f"verify, key with {args.history} requests in 30 d (vs fresh key), all limits set",
            lambda: run_once([KEYCTL, "verify"], env, heavy),
            vs(["verify"], env, heavy) if AGAINST else lambda: run_once([KEYCTL, "verify"], env, fresh),
            runs, "<= 1.2x"))
    if want("stream"):
        n = 20_000
        for label, secret in (("no limits", plain), ("every limit set", fresh)):
            lines = b"".join(b'{"key":"' + secret.strip() + b'","ip":"10.0.0.1","cost":1}\n'
                             for _ in range(n))
            name = f"verify --stream, {n} recorded requests, key with {label}"
            if AGAINST:
                rows.append(side_by_side(
                    name, lambda: run_once([KEYCTL, "verify", "--stream"], env, lines),
                    vs(["verify", "--stream"], env, lines), max(args.runs, 3), ">= 8000/s"))
                rows[-1]["rate"] = n / rows[-1]["keyctl"]
                continue
            times = []
            for _ in range(max(args.runs, 3)):
                times.append(run_once([KEYCTL, "verify", "--stream"], env, lines)[0])
            rows.append({"figure": f"verify --stream, {n} recorded requests, key with {label}",
                         "keyctl": statistics.median(times), "baseline": None,
                         "rate": n / statistics.median(times), "keyctl_rss_kib": None,
                         "runs": len(times), "target": ">= 8000/s"})
    return rows


def met(r):
    """Parses targets like "<= 1.6x, peak <= 8 MiB", ">= 8000/s" or "report"."""
    verdicts = []
    for part in (p.strip() for p in r["target"].split(",")):
        m = re.fullmatch(r"<= ([0-9.]+)x", part)
        if m:
            verdicts.append(r["ratio"] <= float(m.group(1)))
        m = re.fullmatch(r"peak <= ([0-9.]+) MiB", part)
        if m:
            verdicts.append(r["keyctl_rss_kib"] is not None
                            and r["keyctl_rss_kib"] / 1024 <= float(m.group(1)))
        m = re.fullmatch(r"median <= ([0-9.]+) ms", part)
        if m:
            verdicts.append(r["keyctl"] * 1000 <= float(m.group(1)))
        m = re.fullmatch(r">= ([0-9.]+)/s", part)
        if m:
            verdicts.append(r["rate"] >= float(m.group(1)))
    if not verdicts:
        return "-"
    return "yes" if all(verdicts) else "NO"


def print_table(rows):
    print("| figure | keyctl (median) | baseline (median) | ratio | keyctl peak RSS | runs | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        rss = "-" if r["keyctl_rss_kib"] is None else f"{r['keyctl_rss_kib'] / 1024:.1f} MiB"
        if r.get("baseline") is None:
            print(f"| {r['figure']} | {fmt_secs(r['keyctl'])} | - | {r['rate']:.0f}/s | {rss} | "
                  f"{r['runs']} | {r['target']} | {met(r)} |")
            continue
        print(f"| {r['figure']} | {fmt_secs(r['keyctl'])} | {fmt_secs(r['baseline'])} | "
              f"{r['ratio']:.2f}x | {rss} | {r['runs']} | {r['target']} | {met(r)} |")


def fmt_secs(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


if __name__ == "__main__":
    main()
