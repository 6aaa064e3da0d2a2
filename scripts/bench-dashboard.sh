#!/usr/bin/env bash
# Benchmark (not a test): server time of the dashboard's pages with NODES
# registered nodes in SQLite. Seeds the nodes, a rollout of 1.1.0 to 1 % of
# them and NODES/100 attempts at it in every phase, then measures each page
# with `moho-loadgen dashboard` (logged in like a browser; the server reports
# its own time in Server-Timing). Twice: with the fleet summary cached as in
# production (--summary-ttl 10s) and recomputed on every request (0s), which
# is the cost of the one query the cache saves.
#
#   scripts/bench-dashboard.sh [NODES=1000000] [REQUESTS=50]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

NODES=${1:-1000000}
REQS=${2:-50}
require_cargo
cargo build --release --locked -p update-server -p moho-loadgen --bins
TARGET=${CARGO_TARGET_DIR:-target}
SERVER=$TARGET/release/update-server
LOADGEN=$TARGET/release/moho-loadgen
WORK=$(mktemp -d /tmp/moho-dash-bench.XXXXXX)
PORT=18490
SERVER_PID=
DB="sqlite://$WORK/moho.db?mode=rwc"

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

echo "== seeding $NODES nodes, a rollout to 1 % of them and $((NODES / 100)) attempts (SQLite)"
"$LOADGEN" seed --database "$DB" --nodes "$NODES" --rollout-percent 1 --attempts $((NODES / 100))
TOKEN=$("$SERVER" token create --data-dir "$WORK" --database "$DB" --role viewer --name bench)

serve() {
    RUST_LOG=warn "$SERVER" serve --data-dir "$WORK" --database "$DB" --listen "127.0.0.1:$PORT" \
        --summary-ttl "$1" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    # Let the ticker build the rollout's line index (a second or two for a
    # million nodes), as it has on any server that has been up a while.
    sleep 8
}

echo "== summary cached (--summary-ttl 10s, the default); $REQS requests per page after the first"
serve 10s
MOHO_TOKEN=$TOKEN "$LOADGEN" dashboard --server "http://127.0.0.1:$PORT" --requests "$REQS" \
    /ui/ /ui/rollouts/1 /ui/nodes "/ui/nodes?after=load-00900000" "/ui/nodes?version=1.1.0" \
    "/ui/nodes?channel=stable&state=idle" "/ui/nodes?seen=not1d" /ui/nodes/load-00000009 \
    /ui/releases /ui/fleetlock /ui/audit
stop_server

echo "== summary recomputed on every request (--summary-ttl 0s)"
serve 0s
MOHO_TOKEN=$TOKEN "$LOADGEN" dashboard --server "http://127.0.0.1:$PORT" --requests 10 /ui/
stop_server
