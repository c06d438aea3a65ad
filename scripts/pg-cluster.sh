#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `start DIR` creates one in
# DIR (run as the unprivileged `postgres` user when invoked as root, since
# initdb refuses root), listening on a free loopback port only, and prints
# `export` lines for the tests' environment; `stop DIR` stops it. Nothing
# outside DIR is touched. Needs Debian's postgresql package.
set -euo pipefail

bindir() {
  if [ -n "${PORTUNUS_PG_BINDIR:-}" ]; then echo "$PORTUNUS_PG_BINDIR"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] || { echo "pg-cluster: no PostgreSQL under /usr/lib/postgresql (install the postgresql package)" >&2; exit 1; }
  echo "$d"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
bin=$(bindir)

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U portunus --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # Loopback only, sockets inside DIR, no fsync: a test cluster.
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "export PORTUNUS_TEST_POSTGRES_URL=postgres://portunus@127.0.0.1:$port/postgres"
    echo "export PORTUNUS_PG_BINDIR=$bin"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
