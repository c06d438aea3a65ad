#!/usr/bin/env bash
# Holds many concurrent TCP connections through one Portunus rule on
# loopback and prints the client's memory per connection and the
# descriptors it uses. Not part of the test run.
#
#   bash bench/tcp_soak.sh [connections] [hold-seconds]   (default 10000 10)
#
# Each connection costs the client two descriptors (downstream and
# upstream), the load one and the backend one, so the script raises its
# descriptor limit to the hard limit and lowers the count, saying so,
# when the hard limit is too small. Everything stops on exit.
set -euo pipefail
want=${1:-10000}
hold=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release -q --manifest-path "$root/Cargo.toml" -p portunus-server -p portunus-client --bins
bin="${CARGO_TARGET_DIR:-$root/target}/release"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

ulimit -n "$(ulimit -Hn)"
limit=$(ulimit -n)
conns=$(( want < (limit - 512) / 2 ? want : (limit - 512) / 2 ))
if [ "$conns" -lt "$want" ]; then
  echo "descriptor limit $limit: holding $conns connections instead of $want" >&2
fi
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

start_fleet "$bin/portunus-client"

# An echo backend and a load generator in one small Python program each;
# both stop by themselves after a bound.
cat > "$work/soak.py" <<'PY'
import asyncio, socket, sys, time
mode, bound = sys.argv[1], float(sys.argv[2])
async def echo(reader, writer):
    try:
        while data := await reader.read(4096):
            writer.write(data); await writer.drain()
    except Exception:
        pass
    writer.close()
async def backend():
    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(bound)
async def load(port, n, hold):
    conns, t0 = [], time.monotonic()
    for i in range(n):
        if time.monotonic() - t0 > bound:
            break
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x"); await w.drain()
        await r.readexactly(1)
        conns.append(w)
    print(f"open {len(conns)}", flush=True)
    await asyncio.sleep(hold)
    for w in conns:
        w.close()
if mode == "backend":
    asyncio.run(backend())
else:
    asyncio.run(load(int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
PY
python3 "$work/soak.py" backend $((hold + 300)) > "$work/backend.port" & pids+=($!)
wait_for "backend" test -s "$work/backend.port"
backend_port=$(cat "$work/backend.port")
listen=$(free_port)
"$bin/portunus-server" --data-dir "$srv" push-rule bench-edge "$listen" "127.0.0.1:$backend_port" >/dev/null

rss0=$(rss_kib "$client_pid"); fds0=$(fds "$client_pid")
python3 "$work/soak.py" load 240 "$listen" "$conns" "$hold" > "$work/load.out" & load_pid=$!; pids+=($load_pid)
for _ in $(seq 1 2400); do grep -q '^open' "$work/load.out" && break; sleep 0.1; done
grep -q '^open' "$work/load.out" || { echo "the load did not open its connections in 240 s" >&2; exit 1; }
opened=$(awk '/^open/ {print $2}' "$work/load.out")
rss1=$(rss_kib "$client_pid"); fds1=$(fds "$client_pid")
wait "$load_pid" || true

echo "connections held:        $opened"
echo "client RSS before/after: ${rss0} KiB / ${rss1} KiB"
echo "client memory per conn:  $(( (rss1 - rss0) * 1024 / (opened > 0 ? opened : 1) )) bytes"
echo "client descriptors:      ${fds0} -> ${fds1} ($(( (fds1 - fds0) )) for $opened connections)"
