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
# served under Xvfb and read by xclip.
tools=(man:man-db mandoc:mandoc zsh:zsh fish:fish shellcheck:shellcheck
  /usr/share/bash-completion/bash_completion:bash-completion
  Xvfb:xvfb xclip:xclip setpriv:util-linux mount:mount umount:mount)
need=()
for pair in "${tools[@]}"; do
  what=${pair%%:*}
  command -v "$what" >/dev/null 2>&1 || [ -f "$what" ] || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test tools: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo test --locked --all-targets
