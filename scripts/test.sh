#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: `bash scripts/test.sh`.
# It installs what the tests need on a fresh machine (Rust toolchain only), then runs
# every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive, as "command:package" pairs (or "file:package");
# installed only when the command (file) is missing (apt as root, else sudo): man pages
# are rendered with man-db and linted with mandoc, completions loaded in zsh and fish,
# the bash script checked by shellcheck and tried beside bash-completion, the clipboard
# served under Xvfb and read by xclip, and every store test run on a throwaway
# PostgreSQL server too; keyctl serve is tested behind real nginx and Caddy with curl,
# and the example clients of docs/integration.md run on python3 and Node.js.
tools=(man:man-db mandoc:mandoc zsh:zsh fish:fish shellcheck:shellcheck
  /usr/share/bash-completion/bash_completion:bash-completion
  Xvfb:xvfb xclip:xclip setpriv:util-linux mount:mount umount:mount
  /usr/sbin/nginx:nginx caddy:caddy curl:curl python3:python3 node:nodejs)
need=()
for pair in "${tools[@]}"; do
  what=${pair%%:*}
  command -v "$what" >/dev/null 2>&1 || [ -f "$what" ] || need+=("${pair#*:}")
done
# PostgreSQL's server binaries are not on PATH (Debian keeps them per version).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 ||
  need+=(postgresql)
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test tools: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The throwaway PostgreSQL server (a unix socket in a temporary folder), stopped on
# exit whatever happens; the tests create a database each under KEYCTL_TEST_PG.
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/keyctl-pg.XXXXXX")
trap 'bash scripts/pg-cluster.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
KEYCTL_TEST_PG=$(bash scripts/pg-cluster.sh start "$pg_dir")
export KEYCTL_TEST_PG

cargo test --locked --all-targets
# The CLI suite again with every store on PostgreSQL (SPEC §6: every command, the same
# output and exit codes); a test that needs the SQLite file says SKIPPED and why.
KEYCTL_TEST_BACKEND=postgres cargo test --locked --test cli
