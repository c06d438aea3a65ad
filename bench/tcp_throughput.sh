#!/usr/bin/env bash
# Single-stream TCP throughput through a Portunus rule, divided by direct
# loopback throughput measured in the same run (iperf3, loopback only).
#
#   bash bench/tcp_throughput.sh [seconds-per-run]     (default 5)
#
# Builds release binaries, starts a throwaway server and client in a temp
# dir, and prints both figures and their ratio.
set -euo pipefail
secs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v iperf3 >/dev/null || { echo "iperf3 is required (apt-get install iperf3)" >&2; exit 1; }

cargo build --release -q -p portunus-server -p portunus-client --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"


start_fleet "$bin/portunus-client"

iperf_port=$(free_port)
listen=$(free_port)
"$bin/portunus-server" --data-dir "$srv" push-rule bench-edge "$listen" "127.0.0.1:$iperf_port" >/dev/null

run() { # run <port> -> Gbit/s
  iperf3 -s -p "$iperf_port" -1 >/dev/null 2>&1 & local sp=$!
  wait_for "iperf3 listener" sh -c "ss -ltn | grep -q ':$iperf_port '"
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -J > "$work/out.json"
  wait $sp 2>/dev/null || true
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' "$work/out.json"
}

direct=$(run "$iperf_port")
through=$(run "$listen")
ratio=$(python3 -c "print('%.2f' % ($through/$direct))")
echo "direct loopback:      $direct Gbit/s"
echo "through portunus:     $through Gbit/s"
echo "ratio (through/direct): $ratio"
