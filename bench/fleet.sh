#!/usr/bin/env bash
# The control plane holding a fleet: one release server on SQLite and N
# simulated edges from one process (the `fleet_sim` example of the client
# crate: real enrollment, pinned TLS, gRPC sessions and stats reports, one
# loopback source address per edge). Prints the server's RSS and CPU with
# every edge connected, push-rule → activated latency percentiles while
# all edges stream stats, and the reconnect storm after a server restart.
#
#   bash bench/fleet.sh [edges] [extra fleet_sim flags...]    (default 5000)
#
# e.g. `bash bench/fleet.sh 5000 --database-url postgres://…` for the
# PostgreSQL engine. Loopback only; needs one descriptor per edge and
# about 3 minutes for 5,000 edges after the build.
set -euo pipefail
edges=${1:-5000}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q -p portunus-server -p portunus-client --bins --example fleet_sim \
  --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
ulimit -n "$(ulimit -Hn)"
exec "$bin/examples/fleet_sim" --server-bin "$bin/portunus-server" --edges "$edges" "$@"
