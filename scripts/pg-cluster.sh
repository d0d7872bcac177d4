#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `pg-cluster.sh start DIR` creates a
# cluster in DIR (owned by the `postgres` user when run as root: initdb refuses root),
# listening on a unix socket in DIR and, with TLS (a test CA in DIR/tls/ca.pem that
# signed a certificate for `localhost`), on 127.0.0.1 at a free port (the same port
# number as the socket's), and prints its base URL (the socket); `pg-cluster.sh stop
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

# A CA and a server certificate for `localhost` signed by it, readable by the server.
make_tls() {
  local tls=$dir/tls
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=keyctl test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tls/ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 2 -extfile "$tls/ext" -out "$tls/server.pem" >/dev/null 2>&1
  chmod 600 "$tls/server.key"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres:postgres "$tls"
  fi
}

bin=$(bindir)
data=$dir/data
case $action in
start)
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
  fi
  chmod 755 "$dir"
  as_owner "$bin/initdb" --no-sync -A trust -U postgres -D "$data" >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  make_tls
  # One role must log in with a password (the tests' wrong-password case); every
  # other connection is trusted.
  as_owner sed -i '1i host all keyctl_pw 127.0.0.1/32 scram-sha-256\nhost all keyctl_pw ::1/128 scram-sha-256' \
    "$data/pg_hba.conf"
  # A free port: a few random tries (another server may hold one).
  started=""
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if as_owner "$bin/pg_ctl" -w -D "$data" -l "$dir/server.log" \
      -o "-c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir' -p $port -c fsync=off -c max_connections=200 -c ssl=on -c ssl_cert_file='$dir/tls/server.pem' -c ssl_key_file='$dir/tls/server.key'" \
      start >/dev/null 2>&1; then
      started=yes
      break
    fi
  done
  [ -n "$started" ] || {
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
