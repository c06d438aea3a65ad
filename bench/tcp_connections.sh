#!/usr/bin/env bash
# New TCP connections per second through a Portunus rule, divided by the
# rate straight to the same backend in the same run: wrk with
# `Connection: close` (one request per connection) against a loopback
# nginx started here with its own config. Loopback only.
#
#   bash bench/tcp_connections.sh [seconds-per-run] [rounds]   (default 5, 3)
#
# Rounds alternate direct and through-rule runs; the medians are printed.
# Builds release binaries, starts a throwaway server, client and nginx in
# a temp dir, and cleans everything up on exit. PORTUNUS_CLIENT_BIN runs
# another client build instead, to compare two builds on one machine.
set -euo pipefail
secs=${1:-5}
rounds=${2:-3}
conns=${CONNS:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "nginx is required (apt-get install nginx-light)" >&2; exit 1; }

cargo build --release -q -p portunus-server -p portunus-client --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
client_bin=${PORTUNUS_CLIENT_BIN:-$bin/portunus-client}
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"


start_nginx "$nginx"
web_port=$web

start_fleet "$client_bin"

listen=$(free_port)
"$bin/portunus-server" --data-dir "$srv" push-rule bench-edge "$listen" "127.0.0.1:$web_port" >/dev/null
wait_for "rule" sh -c "curl -sf http://127.0.0.1:$listen/ | grep -q ok"

run() { # run <port> -> connections (= requests) per second
  wrk -t1 -c"$conns" -d"${secs}s" -H 'Connection: close' "http://127.0.0.1:$1/" > "$work/wrk.txt"
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; fi
  awk '/Requests\/sec/ {print $2}' "$work/wrk.txt"
}

direct=(); through=()
for _ in $(seq 1 "$rounds"); do
  direct+=("$(run "$web_port")")
  through+=("$(run "$listen")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
d=$(median "${direct[@]}"); t=$(median "${through[@]}")
echo "runs (conn/s): direct ${direct[*]}; through ${through[*]}"
echo "direct loopback:        $d conn/s"
echo "through portunus:       $t conn/s"
echo "ratio (through/direct): $(python3 -c "print('%.2f' % ($t/$d))")"
