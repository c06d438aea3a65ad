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
bin="$root/target/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for <description> <command...>
  local what=$1; shift
  for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "timed out waiting for $what" >&2; exit 1
}

srv="$work/srv"; mkdir -p "$srv"
cat > "$srv/server.toml" <<TOML
control_listen = "127.0.0.1:$(free_port)"
operator_http_listen = "127.0.0.1:$(free_port)"
metrics_listen = "127.0.0.1:$(free_port)"
TOML
export HOME=$work
export PORTUNUS_OPERATOR_TOKEN
PORTUNUS_OPERATOR_TOKEN=$("$bin/portunus-server" --data-dir "$srv" bootstrap-superadmin --name bench 2>/dev/null)
RUST_LOG=warn "$bin/portunus-server" --data-dir "$srv" serve 2>"$work/server.log" & pids+=($!)
wait_for "server" "$bin/portunus-server" --data-dir "$srv" list-clients
uri=$("$bin/portunus-server" --data-dir "$srv" enroll-client bench-edge 2>/dev/null | cut -d"'" -f2)
"$bin/portunus-client" enroll "$uri" --out "$work/bundle.json" >/dev/null
RUST_LOG=warn "$bin/portunus-client" --bundle "$work/bundle.json" 2>"$work/client.log" & pids+=($!)
wait_for "client connection" sh -c "'$bin/portunus-server' --data-dir '$srv' list-clients | grep -q ' connected'"

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
