#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `pg-cluster.sh start DIR` creates a
# cluster in DIR (owned by the `postgres` user when run as root: initdb refuses root),
# listening only on a unix socket in DIR, and prints its base URL; `pg-cluster.sh stop
# DIR` stops it. Never touches the system's own cluster.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$2

bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  local found
  found=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [ -x "$found/initdb" ] || found=""
  [ -n "$found" ] || {
    echo "no PostgreSQL server binaries (initdb) found: install the postgresql package" >&2
    exit 1
  }
  echo "$found"
}

# Runs a server binary as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else
    "$@"
  fi
}

bin=$(bindir)
data=$dir/data
port=5432
case $action in
start)
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
  fi
  chmod 700 "$dir"
  as_owner "$bin/initdb" --no-sync -A trust -U postgres -D "$data" >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  as_owner "$bin/pg_ctl" -w -D "$data" -l "$dir/server.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off -c max_connections=200" \
    start >/dev/null || {
    cat "$dir/server.log" >&2
    exit 1
  }
  # The socket folder, percent-encoded as the URL's host.
  host=$(printf '%s' "$dir" | sed 's|/|%2F|g')
  echo "postgres://postgres@$host:$port/postgres?sslmode=disable"
  ;;
stop)
  [ -d "$data" ] || exit 0
  as_owner "$bin/pg_ctl" -w -D "$data" -m fast stop >/dev/null 2>&1 || true
  ;;
*) usage ;;
esac
