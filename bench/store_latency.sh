#!/usr/bin/env bash
# API write latency by store engine: push-rule (POST /v1/rules, which
# answers once the connected edge has bound the rule) then its removal,
# against a server on SQLite and a server on PostgreSQL in the same run,
# same machine, same client. Prints p50/p99 of the push for each engine and
# PostgreSQL's ratio to SQLite.
#
#   bash bench/store_latency.sh [pushes-per-engine]     (default 300)
#
# Builds release binaries; PostgreSQL is a throwaway cluster in the temp
# dir on a loopback port (Debian's postgresql package). Loopback only.
set -euo pipefail
n=${1:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
  || { echo "PostgreSQL is required (apt-get install postgresql)" >&2; exit 1; }

cargo build --release -q -p portunus-server -p portunus-client --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
# Its own temp dir: the postgres user cannot enter "$work".
pgdir=$(mktemp -d /tmp/portunus-bench-pg.XXXXXX)
stop_pg() { bash "$root/scripts/pg-cluster.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; cleanup; }
trap stop_pg EXIT
pg_env=$(bash "$root/scripts/pg-cluster.sh" start "$pgdir")
eval "$pg_env"
psql=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql
"$psql" -X -q -d "$PORTUNUS_TEST_POSTGRES_URL" -c "CREATE DATABASE bench"
pg_url="${PORTUNUS_TEST_POSTGRES_URL%/*}/bench"

# measure <label>: n timed pushes (after 20 untimed) against "$api".
measure() {
  python3 - "$1" "http://$api" "$PORTUNUS_OPERATOR_TOKEN" "$n" <<'PY'
import json, socket, sys, time, urllib.request
label, url, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers=auth)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")

lat = []
for i in range(n + 20):
    body = {"client": "bench-edge", "listen_port": free_port(),
            "targets": [{"host": "127.0.0.1", "port": 9, "priority": 1}]}
    t = time.perf_counter()
    rule = call("POST", "/v1/rules", body)
    took = time.perf_counter() - t
    assert rule["state"] == "active", rule
    if i >= 20:
        lat.append(took)
    call("DELETE", "/v1/rules/" + rule["rule_id"])
lat.sort()
p50 = lat[len(lat) // 2] * 1000
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
print(f"{label} {p50:.2f} {p99:.2f}")
PY
}

start_fleet "$bin/portunus-client" sqlite
sqlite=$(measure sqlite)
start_fleet "$bin/portunus-client" postgres "database_url = \"$pg_url\""
postgres=$(measure postgres)

read -r _ s50 s99 <<<"$sqlite"
read -r _ p50 p99 <<<"$postgres"
printf '%-12s %10s %10s\n' "push-rule" "p50 ms" "p99 ms"
printf '%-12s %10s %10s\n' "SQLite" "$s50" "$s99"
printf '%-12s %10s %10s\n' "PostgreSQL" "$p50" "$p99"
python3 -c "import sys; a,b,c,d=map(float,sys.argv[1:]); print(f'PostgreSQL/SQLite: p50 x{c/a:.2f}, p99 x{d/b:.2f}')" "$s50" "$s99" "$p50" "$p99"
