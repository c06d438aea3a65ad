#!/usr/bin/env bash
# UDP through a Portunus rule on loopback:
#  1. single-flow datagrams/s (echo, a window of datagrams in flight),
#     through the rule and direct in the same run, and their ratio;
#  2. 1000 flows (1000 sources) and the client's RSS growth for them.
#
#   bash bench/udp.sh [seconds-per-run] [window] [datagram-size]   (default 5 32 64)
#
# Builds release binaries once, starts a throwaway server and client in a
# temp dir, and stops everything it started on exit.
set -euo pipefail
secs=${1:-5}
window=${2:-32}
size=${3:-64}
flows=1000
root=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release -q --manifest-path "$root/Cargo.toml" \
  -p portunus-server -p portunus-client -p portunus-dataplane --bins --example udp_bench
bin="${CARGO_TARGET_DIR:-$root/target}/release"
load="$bin/examples/udp_bench"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

start_fleet "$bin/portunus-client"

# The echo backend stops by itself after a generous bound.
"$load" echo $((4 * secs + 120)) > "$work/echo.port" & pids+=($!)
wait_for "echo backend" test -s "$work/echo.port"
echo_port=$(cat "$work/echo.port")

push_udp() { # push_udp -> listen port of a new UDP rule to the echo backend
  for _ in 1 2 3 4 5; do
    local port; port=$(free_udp_port)
    if "$bin/portunus-server" --data-dir "$srv" push-rule bench-edge "$port" "127.0.0.1:$echo_port" --protocol udp >/dev/null 2>&1; then
      echo "$port"; return 0
    fi
  done
  echo "could not push a UDP rule" >&2; exit 1
}

figure() { sed -E 's/^([0-9]+) datagrams.*/\1/'; }
rate_port=$(push_udp)
direct_line=$("$load" rate "127.0.0.1:$echo_port" "$secs" "$window" "$size")
through_line=$("$load" rate "127.0.0.1:$rate_port" "$secs" "$window" "$size")
direct=$(echo "$direct_line" | figure)
through=$(echo "$through_line" | figure)
echo "single flow, window $window, $size-byte datagrams, ${secs}s each:"
echo "  direct loopback:   $direct_line"
echo "  through portunus:  $through_line"
python3 -c "print('  ratio (through/direct): %.2f' % ($through/$direct))"

flows_port=$(push_udp)
before=$(rss_kib "$client_pid")
"$load" flows "127.0.0.1:$flows_port" "$flows" 60 | sed 's/^/  /'
after=$(rss_kib "$client_pid")
echo "$flows flows: client VmRSS $before KiB -> $after KiB"
python3 -c "print('  growth: %.2f MB (%.0f bytes per flow)' % (($after-$before)/1024, ($after-$before)*1024/$flows))"
