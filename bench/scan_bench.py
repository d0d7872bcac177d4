#!/usr/bin/env python3
"""`keyctl scan` against ripgrep on the same tree (issue 16), side by side in one run.

    python3 bench/scan_bench.py                    # a 1 GiB tree, 5 runs each
    python3 bench/scan_bench.py --gib 0.25 --runs 9

The tree (made once under `--dir`, default target/bench/scan, and reused while its
parameters are the same): `--gib` GiB of text files (config- and code-like lines of
about 70 bytes; sizes from 4 KiB to 4 MiB, mean about 128 KiB; 64 folders), with
`--secrets` (default 1000) keyctl-format strings planted at random places: 60%
secrets of the store's keys, 20% foreign (right format and checksum, not the
store's), 20% near misses (one character changed: the checksum fails). Words share
parts of the prefix (`task_list`, `disk_usage`), and one line in 1,000 has a decoy
with a whole head (`sk_live_docs`).

Each run is the whole command, output to a file (not /dev/null, which ripgrep
notices and stops at the first match):
- keyctl: `keyctl --db STORE scan TREE --format csv -q` (prefilter, checksum, one
  batched hash lookup, statuses; exit 9: active keys are in the tree);
- ripgrep: `rg --no-config --column -o -e REGEX TREE` with the secret regex that
  `keyctl scan --rules github` prints (`sk_(?:live|test)_[0-9A-Za-z]{38}`), line and
  column numbers like keyctl's.
One warm-up each, then runs alternate (keyctl, rg, keyctl, ...); the figure is the
ratio of medians (target <= 1.5x). Both read the tree from the page cache (it is
read once before), so this compares the search, not the disk.

ripgrep is Debian's `ripgrep`, installed here with apt when missing.
"""
import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62_6(n):
    out = []
    for _ in range(6):
        out.append(BASE62[n % 62])
        n //= 62
    return "".join(reversed(out))


def forge(rng, prefix="sk", mode="live"):
    """A keyctl-format string with a valid checksum that no store holds."""
    body = "".join(rng.choice(BASE62) for _ in range(32))
    head = f"{prefix}_{mode}_{body}"
    return head + base62_6(zlib.crc32(head.encode()))


def near_miss(rng, secret):
    """One character of the random part changed: the checksum fails."""
    i = rng.randrange(8, 8 + 32)
    c = rng.choice([ch for ch in BASE62 if ch != secret[i]])
    return secret[:i] + c + secret[i + 1:]


WORDS = (
    "config server timeout retries region bucket endpoint token_url client_id user "
    "password_file log_level debug cache_size worker_count queue database host port "
    "task_list disk_usage risk_score ask_user "
    "fn let mut return if else match struct impl pub use self Some None Ok Err "
    "value index buffer offset length width height color name description owner"
).split()


def text_block(rng, size):
    """About `size` bytes of config- and code-like lines."""
    lines = []
    n = 0
    while n < size:
        k = rng.randint(3, 10)
        words = [rng.choice(WORDS) for _ in range(k)]
        if rng.random() < 0.3:
            words.append(str(rng.randint(0, 10**9)))
        line = ("    " if rng.random() < 0.5 else "") + " = ".join(
            [words[0], " ".join(words[1:])]
        )
        if rng.random() < 0.001:
            # A decoy that has a whole head: the prefilter stops, the format says no.
            line += rng.choice([" # see sk_live_docs", " sk_test_mode = true"])
        lines.append(line)
        n += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def keyctl_env(store):
    env = dict(os.environ)
    env["KEYCTL_DB"] = store
    env["KEYCTL_ACTOR"] = "bench"
    env.pop("NO_COLOR", None)
    return env


def make_store(keyctl, store, keys):
    """A store of `keys` keys; their secrets (benchmark data only)."""
    if os.path.exists(store):
        os.remove(store)
    subprocess.run([keyctl, "--db", store, "init", "-q"], check=True)
    batch = "".join('{"name": "bench-%d"}\n' % i for i in range(keys))
    out = subprocess.run(
        [keyctl, "--db", store, "create", "--batch", "-", "-q"],
        input=batch.encode(),
        check=True,
        capture_output=True,
    ).stdout.decode()
    import json

    return [json.loads(line)["key"] for line in out.splitlines() if line.strip()]


def make_tree(args, keyctl):
    tree = os.path.join(args.dir, "tree")
    store = os.path.join(args.dir, "keys.db")
    stamp = os.path.join(args.dir, "params")
    want = f"v2 gib={args.gib} secrets={args.secrets} seed={args.seed}\n"
    if os.path.exists(stamp) and open(stamp).read() == want and os.path.exists(store):
        return tree, store
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(args.dir)
    rng = random.Random(args.seed)
    secrets = make_store(keyctl, store, 50)
    planted = []
    for i in range(args.secrets):
        r = rng.random()
        if r < 0.6:
            planted.append(rng.choice(secrets))
        elif r < 0.8:
            planted.append(forge(rng))
        else:
            planted.append(near_miss(rng, rng.choice(secrets)))
    pool = text_block(rng, 8 << 20)
    total = int(args.gib * (1 << 30))
    sizes = []
    while sum(sizes) < total:
        # Mostly small files, some large: mean about 128 KiB.
        s = int(rng.lognormvariate(10.8, 1.2))
        sizes.append(max(4096, min(s, 4 << 20)))
    where = sorted(rng.randrange(len(sizes)) for _ in planted)
    for n, size in enumerate(sizes):
        folder = os.path.join(tree, f"d{n % 64:02d}")
        os.makedirs(folder, exist_ok=True)
        start = rng.randrange(len(pool) - size)
        data = bytearray(pool[start:start + size])
        for secret in [planted[i] for i, f in enumerate(where) if f == n]:
            at = data.find(b"\n", rng.randrange(len(data))) + 1
            data[at:at] = f"KEY={secret}\n".encode()
        with open(os.path.join(folder, f"f{n:06d}.txt"), "wb") as f:
            f.write(data)
    with open(stamp, "w") as f:
        f.write(want)
    return tree, store


def ensure_rg():
    rg = shutil.which("rg")
    if rg:
        return rg
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("installing ripgrep (apt)", file=sys.stderr)
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        sudo + ["apt-get", "install", "-y", "-qq", "ripgrep"],
        check=True,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )
    return shutil.which("rg")


def cpu_of_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, env, ok):
    """Wall seconds, CPU seconds (user + system) and the output of one run."""
    with tempfile.TemporaryFile() as out:
        cpu = cpu_of_children()
        t = time.perf_counter()
        p = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.PIPE)
        took = time.perf_counter() - t
        cpu = cpu_of_children() - cpu
        if p.returncode not in ok:
            sys.exit(f"{cmd[0]} exited {p.returncode}: {p.stderr.decode()[:500]}")
        out.seek(0)
        return took, cpu, out.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--secrets", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--dir", default=os.path.join(ROOT, "target/bench/scan"))
    ap.add_argument("--keyctl", default=os.path.join(ROOT, "target/release/keyctl"))
    args = ap.parse_args()
    keyctl = os.path.abspath(args.keyctl)
    if not os.path.exists(keyctl):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    rg = ensure_rg()
    t = time.perf_counter()
    tree, store = make_tree(args, keyctl)
    made = time.perf_counter() - t
    files = sum(len(f) for _, _, f in os.walk(tree))
    size = sum(
        os.path.getsize(os.path.join(d, n)) for d, _, fs in os.walk(tree) for n in fs
    )
    env = keyctl_env(store)
    regex = subprocess.run(
        [keyctl, "--db", store, "scan", "--rules", "github"],
        check=True,
        capture_output=True,
        env=env,
    ).stdout.decode()
    regex = next(
        line.split(": ", 1)[1] for line in regex.splitlines() if line.startswith("Secret format: ")
    )
    ours = [keyctl, "--db", store, "scan", tree, "--format", "csv", "-q"]
    theirs = [rg, "--no-config", "--column", "-o", "-e", regex, tree]
    # Warm-up (and the page cache), with the answers checked.
    out = timed(ours, env, (9,))[2]
    found = out.decode().count("\n") - 1
    out = timed(theirs, env, (0,))[2]
    matched = out.decode().count("\n")
    ks, rs = [], []
    for _ in range(args.runs):
        ks.append(timed(ours, env, (9,)))
        rs.append(timed(theirs, env, (0,)))
    k, r = statistics.median(x[0] for x in ks), statistics.median(x[0] for x in rs)
    kc, rc = statistics.median(x[1] for x in ks), statistics.median(x[1] for x in rs)
    load = os.getloadavg()[0]
    rg_version = subprocess.run([rg, "--version"], capture_output=True).stdout.decode()
    print(
        f"machine: {os.cpu_count()} cpus, load average {load:.1f} at the end; tree {size / (1 << 30):.2f} GiB in {files} files "
        f"({'made' if made > 1 else 'reused'} in {made:.0f} s); {rg_version.splitlines()[0]}"
    )
    print(
        f"keyctl reported {found} findings (store keys and foreign secrets, checksums "
        f"valid); rg matched {matched} strings (near misses too: a regex cannot check the "
        f"checksum)"
    )
    print()
    print("| figure | keyctl scan | rg | ratio (keyctl / rg) | runs | target | met |")
    print("|---|---|---|---|---|---|---|")
    ratio = k / r
    print(
        f"| scan {size / (1 << 30):.2f} GiB, warm cache | {k:.3f} s ({size / k / (1 << 30):.2f} GiB/s) "
        f"| {r:.3f} s ({size / r / (1 << 30):.2f} GiB/s) | {ratio:.2f}x | {args.runs} | <= 1.5x "
        f"| {'yes' if ratio <= 1.5 else 'no'} |"
    )
    print(
        f"| the same, CPU time (user + system) | {kc:.3f} s | {rc:.3f} s | {kc / rc:.2f}x "
        f"| {args.runs} | reported | |"
    )
    print()
    print("keyctl runs (wall/cpu s): " + ", ".join(f"{x[0]:.3f}/{x[1]:.3f}" for x in ks))
    print("rg runs (wall/cpu s):     " + ", ".join(f"{x[0]:.3f}/{x[1]:.3f}" for x in rs))


if __name__ == "__main__":
    main()
