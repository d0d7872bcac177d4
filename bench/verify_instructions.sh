#!/usr/bin/env bash
# Instructions of one `keyctl verify` process, `--no-record` and recorded (valgrind
# callgrind: repeatable on a loaded machine), on a fresh copy of the 100k-key bench
# store (made by `bench/bench.py`), migrated by the binary measured and prepared by
# any `keyctl` commands given after the label, e.g.
#   bench/verify_instructions.sh target/release/keyctl now
#   bench/verify_instructions.sh target/release/keyctl limits \
#       "config set rate-limit 1000000000/s" "config set credit-limit 9000000000000000"
# Compare two builds by running it for each: the figures are totals per process.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 KEYCTL LABEL [PREP...]" >&2; exit 2; }
bin=$(realpath "$1"); label=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/target/bench
secret=$bench/verify/bench-plain.secret
if [ ! -f "$bench/keys-100000.db" ] || [ ! -f "$secret" ]; then
  echo "run python3 bench/bench.py --only verify first (it makes the store and the key)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$bench/keys-100000.db" "$work/store.db"
export KEYCTL_DB=$work/store.db
"$bin" config get key-prefix >/dev/null
for prep in "$@"; do
  # shellcheck disable=SC2086 # each PREP is a command line of words
  "$bin" $prep -q >/dev/null
done
for mode in --no-record recorded; do
  flag=$mode; [ "$mode" = recorded ] && flag=
  # shellcheck disable=SC2086 # no flag for the recorded run
  valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bin" verify $flag \
    < "$secret" > /dev/null 2> "$work/err" || true
  echo "$label verify $mode: $(grep -h '^totals:' "$work/out" | awk '{print $2}') instructions"
done
