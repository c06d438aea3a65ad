#!/usr/bin/env bash
# Portunus against the forwarders an operator would pick instead, in one
# run on one machine: the direct path, HAProxy (TCP only) and socat, each
# forwarding to the same backends on loopback under the same load, and a
# Portunus rule. Every figure is a median over rounds that alternate the
# paths, printed with its ratio to the direct path of the same run.
#
#   bash bench/peers.sh [seconds-per-run] [rounds]     (default 5, 5)
#
# Figures:
#   conn/s    new TCP connections per second: wrk -t2 -c32 with
#             `Connection: close` against a loopback nginx; and the
#             forwarder's CPU time (user + system, from /proc) per
#             connection, HAProxy's and Portunus'
#   tcp Gbit/s single-stream TCP: iperf3
#   udp dg/s  single-flow UDP datagrams per second: a window of 32 64-byte
#             datagrams in flight against a UDP echo backend
#   burst     1000 new UDP sources at once: time until all were answered,
#             and how many send rounds (a round resends to the silent ones
#             every 500 ms; 1 means none lost; given up after 10 s)
#
# Installs haproxy, socat, wrk, nginx-light and iperf3 from Debian when
# missing. Builds release binaries. Loopback only; everything it starts is
# stopped on exit.
set -euo pipefail
secs=${1:-5}
rounds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v socat >/dev/null || need+=(socat)
command -v wrk >/dev/null || need+=(wrk)
command -v iperf3 >/dev/null || need+=(iperf3)
[ -x "$(command -v nginx || echo /usr/sbin/nginx)" ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release -q --manifest-path "$root/Cargo.toml" \
  -p portunus-server -p portunus-client -p portunus-dataplane --bins --example udp_bench
bin="${CARGO_TARGET_DIR:-$root/target}/release"
load="$bin/examples/udp_bench"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { ss -ltn | grep -q "127.0.0.1:$1 "; }

# Backends: nginx, iperf3, UDP echo.
start_nginx "$nginx"
iperf=$(free_port)
iperf3 -s -B 127.0.0.1 -p "$iperf" >/dev/null 2>&1 & pids+=($!)
"$load" echo $((rounds * secs * 20 + 600)) > "$work/echo.port" & pids+=($!)
wait_for "iperf3" listening "$iperf"
wait_for "UDP echo" test -s "$work/echo.port"
udp_echo=$(cat "$work/echo.port")

# HAProxy: TCP mode, its defaults otherwise (threads on every core).
hp_web=$(free_port); hp_iperf=$(free_port)
cat > "$work/haproxy.cfg" <<CFG
global
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen web
  bind 127.0.0.1:$hp_web
  server s 127.0.0.1:$web
listen iperf
  bind 127.0.0.1:$hp_iperf
  server s 127.0.0.1:$iperf
CFG
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 & hp_pid=$!; pids+=($hp_pid)

# socat: a process per connection (TCP) or per source (UDP).
so_web=$(free_port); so_iperf=$(free_port); so_udp=$(free_udp_port)
socat TCP4-LISTEN:"$so_web",bind=127.0.0.1,fork,reuseaddr,backlog=1024 TCP4:127.0.0.1:"$web" & pids+=($!)
socat TCP4-LISTEN:"$so_iperf",bind=127.0.0.1,fork,reuseaddr TCP4:127.0.0.1:"$iperf" & pids+=($!)
# A UDP child ends 3 s after its source falls silent.
socat -T 3 UDP4-LISTEN:"$so_udp",bind=127.0.0.1,fork,reuseaddr UDP4:127.0.0.1:"$udp_echo" & pids+=($!)
so_udp_pid=$!
for p in "$hp_web" "$hp_iperf" "$so_web" "$so_iperf"; do wait_for "peer on $p" listening "$p"; done

# Portunus: one rule per backend.
start_fleet "$bin/portunus-client"
push() { # push <target> [args] -> listen port
  for _ in 1 2 3 4 5; do
    local port; port=$(free_port)
    if "$bin/portunus-server" --data-dir "$srv" push-rule bench-edge "$port" "$@" >/dev/null 2>&1; then
      echo "$port"; return 0
    fi
  done
  echo "could not push a rule to $1" >&2; exit 1
}
pt_web=$(push "127.0.0.1:$web")
pt_iperf=$(push "127.0.0.1:$iperf")
pt_udp=$(push "127.0.0.1:$udp_echo" --protocol udp)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, every thread
conn_rate() { # conn_rate <port> -> connections per second
  wrk -t2 -c32 -d"${secs}s" -H 'Connection: close' "http://127.0.0.1:$1/" > "$work/wrk.txt"
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then sed 's/^/    wrk: /' "$work/wrk.txt" >&2; fi
  awk '/Requests\/sec/ {print $2}' "$work/wrk.txt"
}
tcp_stream() { # tcp_stream <port> -> Gbit/s
  iperf3 -c 127.0.0.1 -p "$1" -t "$secs" -J > "$work/iperf.json"
  python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$work/iperf.json"
}
udp_rate() { # udp_rate <port> -> datagrams/s
  "$load" rate "127.0.0.1:$1" "$secs" 32 64 | sed -E 's/^([0-9]+) datagrams.*/\1/'
}
burst() { # burst <port> -> "<seconds> <rounds>" for 1000 new sources
  { "$load" flows "127.0.0.1:$1" 1000 10 2>&1 || true; } | python3 -c '
import re, sys
line = sys.stdin.read()
m = re.search(r"answered in ([0-9.]+)(ms|s|µs) \(([0-9]+) send", line)
if not m:
    print("    burst failed: " + line.strip(), file=sys.stderr)
    print("nan nan")
else:
    scale = {"s": 1, "ms": 1e-3, "µs": 1e-6}[m.group(2)]
    print("%.3f %s" % (float(m.group(1)) * scale, m.group(3)))'
}

declare -A fig
record() { fig["$1"]="${fig[$1]:-} $2"; }
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  for path in direct:$web haproxy:$hp_web socat:$so_web portunus:$pt_web; do
    name=${path%%:*}
    case $name in haproxy) fwd=$hp_pid ;; portunus) fwd=$client_pid ;; *) fwd= ;; esac
    if [ -n "$fwd" ]; then before=$(cpu_ticks "$fwd"); fi
    rate=$(conn_rate "${path#*:}")
    record "conn.$name" "$rate"
    # The forwarder's CPU time per connection: how much of the shared
    # cores each one spent, apart from how many it got.
    if [ -n "$fwd" ]; then
      record "cpu.$name" "$(python3 -c 'import sys; b, a, hz, rate, secs = map(float, sys.argv[1:]); print("%.1f" % ((a - b) / hz * 1e6 / (rate * secs)))' \
        "$before" "$(cpu_ticks "$fwd")" "$(getconf CLK_TCK)" "$rate" "$secs")"
    fi
  done
  for path in direct:$iperf haproxy:$hp_iperf socat:$so_iperf portunus:$pt_iperf; do
    record "tcp.${path%%:*}" "$(tcp_stream "${path#*:}")"
  done
  for path in direct:$udp_echo socat:$so_udp portunus:$pt_udp; do
    record "udp.${path%%:*}" "$(udp_rate "${path#*:}")"
  done
done
# Bursts last: each leaves 1000 flows behind until they idle out, so every
# Portunus burst gets a rule of its own (a rule holds 1024 flows), and
# socat's children of the last burst are gone before the next.
socat_children() { [ "$(pgrep -c -P "$so_udp_pid" || true)" -lt 5 ]; }
for r in $(seq 1 "$rounds"); do
  pt_burst=$(push "127.0.0.1:$udp_echo" --protocol udp)
  for path in direct:$udp_echo socat:$so_udp portunus:$pt_burst; do
    [ "${path%%:*}" = socat ] && wait_for "socat's UDP children to end" socat_children
    read -r t n <<<"$(burst "${path#*:}")"
    record "burst.${path%%:*}" "$t"; record "rounds.${path%%:*}" "$n"
  done
done

python3 - "$rounds" "$secs" <<PY
import statistics, sys
fig = {k: [float(x) for x in v.split() if x != "nan"] for k, v in {
$(for k in "${!fig[@]}"; do echo "  \"$k\": \"${fig[$k]}\","; done)
}.items()}
rounds, secs = sys.argv[1], sys.argv[2]
med = lambda k: statistics.median(fig[k]) if fig.get(k) else None
print(f"medians of {rounds} rounds, {secs} s per run; ratio = path / direct in this run")
print(f"{'figure':<26}{'direct':>12}{'haproxy':>16}{'socat':>16}{'portunus':>16}")
def row(name, key, fmt, lower_is_better=False):
    d = med(f"{key}.direct")
    cells = [fmt % d]
    for p in ("haproxy", "socat", "portunus"):
        v = med(f"{key}.{p}")
        if v is None:
            cells.append("–" if p == "haproxy" and key not in ("conn", "tcp") else "failed")
        else:
            cells.append((fmt % v) + " (%.2f)" % (v / d))
    print(f"{name:<26}{cells[0]:>12}" + "".join(f"{c:>16}" for c in cells[1:]))
row("new TCP conn/s", "conn", "%.0f")
print(f"{'  forwarder CPU µs/conn':<26}{'–':>12}{'%.0f' % med('cpu.haproxy'):>16}{'–':>16}{'%.0f' % med('cpu.portunus'):>16}")
row("single-stream Gbit/s", "tcp", "%.2f")
row("single-flow UDP dg/s", "udp", "%.0f")
row("1000 UDP sources, s", "burst", "%.2f")
row("  send rounds needed", "rounds", "%.0f")
PY
echo "Portunus vs HAProxy, new TCP conn/s: $(python3 -c "import statistics as s; a=[float(x) for x in '${fig[conn.portunus]}'.split()]; b=[float(x) for x in '${fig[conn.haproxy]}'.split()]; print('%.2f' % (s.median(a)/s.median(b)))")"
