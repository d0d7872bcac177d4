#!/usr/bin/env python3
"""The pinned `verify --stream` workload (issue 14), side by side with the physical
limit's one-transaction-per-request loop (`limit-verify --loop K`), in one run.

    python3 bench/stream_workload.py                   # 100k keys, 20k lines, 5 rounds
    python3 bench/stream_workload.py --lines 20000 --rounds 7 --keys 100000

Stores (made once under --dir, default target/bench/stream):
- keyctl: `--keys` keys made by `keyctl create --batch` with every limit set (quotas
  total/daily/weekly/monthly, a rate limit, credits, an IP allowlist, scopes, models, a
  deployment), their secrets kept in a 0600 file beside the store (benchmark data only).
  It is a template: every keyctl run works on a fresh copy of it (`run.db`), so no run
  meets the log rows, failed attempts or ledger rows of earlier runs (deleting them
  once they aged out of their windows made a run's work depend on when earlier runs
  happened) and both builds of a before/after comparison start from the same state;
- limits: `gen create DB --keys` (the limit's own schema).

Workloads (each a file of request lines, written once and fed from the file):
- random: keys drawn at random from the store, 10% of lines well-formed keys that are
  not in it (`invalid`), each line from a random address in the allowlist, with the
  scope, model, deployment, endpoint, cost and duration a service sends;
- hot: the same, every valid line the same key.

Modes:
- pipelined: the whole file on stdin at once (`keyctl verify --stream < FILE`): lines
  wait in the pipe, so groups form;
- one in flight: this script writes one line and reads its answer before the next (a
  coprocess), so every group holds one request. The same client with `cat` as the
  coprocess is reported too: the round trip no verifier can avoid from this client.
  `bench/bench.py` also runs it through `examples/inflight_client.rs`
  ([`one_in_flight_rust`]), a client whose own round trip is a few µs.

Each round runs, alternating, `limit-verify --loop K` (its per_s=) and keyctl's
figures; the report is the median of each and the ratios of medians. Every verdict
line is checked (a run whose answers are not all `valid`/`invalid` as planned fails).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYCTL = os.path.join(ROOT, "target", "release", "keyctl")
LIMITS = os.environ.get("KEYCTL_LIMITS", "/tmp/limits-target/release")

KEY_FIELDS = {
    "scopes": ["read", "write"], "allowed_models": ["gpt-x", "gpt-y"],
    "deployment": "prod", "allowed_ips": "10.0.0.0/8",
    "quota_total": 1_000_000_000, "quota_daily": 1_000_000_000,
    "quota_weekly": 1_000_000_000, "quota_monthly": 1_000_000_000,
    "rate_limit": "1000000/s", "credits": 1_000_000_000_000,
}

# Issue 17 adds to the pinned workload: every key carries metadata (handed back in every
# verdict) and a daily credit refill, and the store has a store-wide rate limit and
# credit limit (checked, and their counters written, on every request). `--workload 14`
# measures the earlier workload without them.
KEY_FIELDS_17 = {
    "meta": {"tenant": "t-0001", "plan": "pro", "customer": "cus_0001"},
    "refill": "1000000000/day", "refill_mode": "add",
}
STORE_SETTINGS_17 = (("rate-limit", "1000000000/s"), ("credit-limit", "9000000000000000"))
WORKLOAD = "17"


def set_store_limits(db, keyctl=None):
    """The store-wide limits of issue 17's workload (idempotent)."""
    for name, value in STORE_SETTINGS_17:
        subprocess.run([keyctl or KEYCTL, "--db", db, "config", "set", name, value, "-q"],
                       check=True, capture_output=True)


def keyctl_store(work, keys):
    """The template keyctl store of `keys` keys with every limit set, and their
    secrets. Run on copies of it ([`fresh_copy`]), never on it."""
    tag = "" if WORKLOAD == "14" else f"-w{WORKLOAD}"
    db = os.path.join(work, f"template-{keys}{tag}.db")
    secrets = os.path.join(work, f"template-{keys}{tag}.secrets")
    fields = KEY_FIELDS if WORKLOAD == "14" else dict(KEY_FIELDS, **KEY_FIELDS_17)
    if not (os.path.exists(db) and os.path.exists(secrets)):
        for p in (db, db + "-wal", db + "-shm", secrets):
            if os.path.exists(p):
                os.unlink(p)
        print(f"creating {keys} keys with every limit set in {db} ...", file=sys.stderr)
        batch = "".join(json.dumps(dict(fields, name=f"s{i:07d}")) + "\n"
                        for i in range(keys))
        out = subprocess.run([KEYCTL, "--db", db, "create", "--batch", "-", "-q"],
                             input=batch.encode(), capture_output=True, check=True).stdout
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for line in out.splitlines():
                f.write(json.loads(line)["key"] + "\n")
        if WORKLOAD != "14":
            set_store_limits(db)
    # A template an earlier build made is brought to this build's schema once, so no
    # run pays for the migration on its copy.
    subprocess.run([KEYCTL, "--db", db, "migrate"], capture_output=True, check=True)
    with open(secrets) as f:
        return db, f.read().split()


def fresh_copy(template):
    """A copy of the template store to run on, `run.db` beside it (replacing the last
    run's). keyctl leaves no WAL behind once its last connection closes; a WAL that is
    there is copied too."""
    import shutil
    run = os.path.join(os.path.dirname(template), "run.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(run + suffix):
            os.unlink(run + suffix)
    shutil.copyfile(template, run)
    if os.path.exists(template + "-wal"):
        shutil.copyfile(template + "-wal", run + "-wal")
    # Written out before the run, so the run's checkpoints flush only what the run
    # wrote, as the limit's own store (never copied) does. Checked: no difference
    # within the noise (docs/benchmarks.md, sixth session).
    for path in (run, run + "-wal"):
        if os.path.exists(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return run


def strangers(work, n):
    """Well-formed keys (checksum right) that no benchmark store holds: made in a
    throwaway store of their own."""
    path = os.path.join(work, f"strangers-{n}")
    if not os.path.exists(path):
        db = os.path.join(work, "strangers.db")
        batch = "".join(json.dumps({"name": f"x{i}"}) + "\n" for i in range(n))
        out = subprocess.run([KEYCTL, "--db", db, "create", "--batch", "-", "-q"],
                             input=batch.encode(), capture_output=True, check=True).stdout
        with open(path, "w") as f:
            for line in out.splitlines():
                f.write(json.loads(line)["key"] + "\n")
        for p in (db, db + "-wal", db + "-shm"):
            if os.path.exists(p):
                os.unlink(p)
    with open(path) as f:
        return f.read().split()


def workload(secrets, others, lines, hot, seed):
    """Request lines, and how many of them are meant to be valid."""
    rng = random.Random(seed)
    out, valid = [], 0
    hot_key = secrets[rng.randrange(len(secrets))]
    for _ in range(lines):
        ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if rng.random() < 0.10:
            key = rng.choice(others)
        else:
            key = hot_key if hot else rng.choice(secrets)
            valid += 1
        out.append(json.dumps({"key": key, "ip": ip, "scope": "read", "model": "gpt-x",
                               "deployment": "prod", "endpoint": "POST /v1/chat",
                               "cost": 1, "duration_ms": 12}))
    return "\n".join(out) + "\n", valid


def check(answers, n, valid):
    """Every line answered as planned. An address that drew enough of the run's own
    invalid lines is blocked, which a later line from it meets: up to 1% of the lines
    may be `ip_blocked` instead (its work is the same)."""
    codes = [json.loads(a)["code"] for a in answers]
    blocked = codes.count("ip_blocked")
    got = (len(codes), codes.count("valid"), codes.count("invalid"))
    ok = (len(codes) == n and got[1] <= valid and got[1] + blocked >= valid
          and got[1] + got[2] + blocked == n and blocked <= n // 100)
    if not ok:
        other = sorted({c for c in codes if c not in ("valid", "invalid")})
        sys.exit(f"unexpected answers (lines, valid, invalid) = {got}, "
                 f"want {(n, valid, n - valid)}; other codes: {other}")


def pipelined(db, path, n, valid):
    db = fresh_copy(db)
    with open(path, "rb") as f:
        start = time.perf_counter()
        out = subprocess.run([KEYCTL, "--db", db, "verify", "--stream"], stdin=f,
                             capture_output=True, check=True).stdout
        secs = time.perf_counter() - start
    check(out.splitlines(), n, valid)
    return n / secs


def one_in_flight(db, text, n, valid, argv=None):
    if argv is None:
        db = fresh_copy(db)
    p = subprocess.Popen(argv or [KEYCTL, "--db", db, "verify", "--stream"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    lines = [(line + "\n").encode() for line in text.splitlines()]
    answers = []
    reader = p.stdout
    start = time.perf_counter()
    for line in lines:
        p.stdin.write(line)
        answers.append(reader.readline())
    secs = time.perf_counter() - start
    p.stdin.close()
    p.wait()
    if argv is None:
        check(answers, n, valid)
    return n / secs


INFLIGHT_CLIENT = os.path.join(ROOT, "target", "release", "examples", "inflight_client")


def one_in_flight_rust(db, path, n, valid):
    """[`one_in_flight`] with the Rust client (`examples/inflight_client.rs`): a few µs
    of its own per round trip where the Python one spends 78-200. Its own loop's
    rate, every answer checked the same way."""
    db = fresh_copy(db)
    out = subprocess.run([INFLIGHT_CLIENT, path, KEYCTL, "--db", db, "verify", "--stream"],
                         capture_output=True, check=True)
    check(out.stdout.splitlines(), n, valid)
    return float(out.stderr.decode().split("per_s=")[1].split()[0])


def limit_loop(db, k):
    out = subprocess.run([os.path.join(LIMITS, "limit-verify"), "--loop", str(k), db],
                         capture_output=True, text=True, check=True).stdout
    return float(out.split("per_s=")[1].split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--inflight-lines", type=int, default=5_000,
                    help="lines of the one-in-flight runs (slower: one round trip each)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dir", default=os.path.join(ROOT, "target", "bench", "stream"))
    ap.add_argument("--seed", type=int, default=int(time.time()),
                    help="lines of round r use seed*1000+r (default: the time)")
    ap.add_argument("--only", default="random,hot,inflight",
                    help="comma-separated: random,hot (pipelined), inflight")
    ap.add_argument("--workload", choices=("14", "17"), default="17",
                    help="17 (default): keys with metadata and a credit refill, a store-wide "
                         "rate and credit limit; 14: without them")
    ap.add_argument("--keyctl", default=None,
                    help="the keyctl binary (default: this checkout's release build); "
                         "another build needs a --dir of its own, as its store is its own")
    args = ap.parse_args()
    global WORKLOAD, KEYCTL
    WORKLOAD = args.workload
    KEYCTL = os.path.abspath(args.keyctl) if args.keyctl else KEYCTL
    only = set(args.only.split(","))
    os.makedirs(args.dir, exist_ok=True)
    db, secrets = keyctl_store(args.dir, args.keys)
    others = strangers(args.dir, 2000)
    limit_db = os.path.join(args.dir, f"limits-{args.keys}.db")
    if not os.path.exists(limit_db):
        subprocess.run([os.path.join(LIMITS, "gen"), "create", limit_db, str(args.keys)],
                       check=True, capture_output=True)
    def files_for(round_):
        """This round's lines, from a seed per round (pass --seed to give two builds
        the same lines)."""
        files = {}
        for name, hot, n in (("random", False, args.lines), ("hot", True, args.lines),
                             ("inflight", False, args.inflight_lines)):
            text, valid = workload(secrets, others, n, hot, seed=args.seed * 1000 + round_)
            path = os.path.join(args.dir, f"lines-{name}-{n}.jsonl")
            with open(path, "w") as f:
                f.write(text)
            files[name] = (path, text, n, valid)
        return files

    rates = {"limit": []} | {name: [] for name in ("random", "hot", "inflight")
                             if name in only}
    if "inflight" in only:
        # The client's own round trip: `cat` echoing each line (no work at all).
        rates["echo"] = []
    for r in range(args.rounds):
        files = files_for(r)
        rates["limit"].append(limit_loop(limit_db, args.lines))
        for name in rates:
            if name == "limit":
                continue
            path, text, n, valid = files["inflight" if name == "echo" else name]
            if name == "echo":
                rate = one_in_flight(db, text, n, valid, argv=["cat"])
            elif name == "inflight":
                rate = one_in_flight(db, text, n, valid)
            else:
                rate = pipelined(db, path, n, valid)
            rates[name].append(rate)
        print(f"round {r}: " + " ".join(f"{k}={v[-1]:.0f}/s" for k, v in rates.items()),
              file=sys.stderr)
    limit = statistics.median(rates["limit"])
    print(f"machine: {os.cpu_count()} cores; {args.keys} keys; {args.rounds} rounds, "
          "alternating; medians")
    print(f"limit-verify --loop {args.lines}: {limit:.0f}/s")
    labels = {"random": f"verify --stream pipelined, random keys, {args.lines} lines",
              "hot": f"verify --stream pipelined, one hot key, {args.lines} lines",
              "inflight": f"verify --stream one in flight, random keys, "
                          f"{args.inflight_lines} lines"}
    if "echo" in rates:
        print(f"the client's round trip alone (cat as the coprocess): "
              f"{statistics.median(rates['echo']):.0f}/s")
    for name, values in rates.items():
        if name in ("limit", "echo"):
            continue
        med = statistics.median(values)
        target = 0.8 if name == "inflight" else 3.0
        print(f"{labels[name]}: {med:.0f}/s = {med / limit:.2f}x the limit "
              f"(target >= {target}x: {'met' if med / limit >= target else 'NOT met'})")


if __name__ == "__main__":
    main()
