#!/usr/bin/env bash
# Benchmark (not a test): update-server check-ins per second and latency with
# NODES registered nodes, on SQLite and then on PostgreSQL, with the load
# generator running beside the server on this machine. Baseline measured in
# the same run: GET /healthz through the same HTTP stack and client.
#
#   scripts/bench-server.sh [NODES=1000000] [SECONDS=60] [CONCURRENCY=32]
#
# Needs root for the throwaway PostgreSQL (scripts/postgres.sh).
# MOHO_BENCH_DBS="sqlite postgres" (default) picks the databases.
# MOHO_BENCH_SQLITE_DB=FILE keeps the seeded SQLite database in FILE and
# reuses it on the next run (seeding 1,000,000 nodes takes a minute); delete
# it when done. Each measurement prints the load average beside it: the
# machine is shared, so compare a run's check-ins with its own baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. scripts/postgres.sh

NODES=${1:-1000000}
DBS=${MOHO_BENCH_DBS:-sqlite postgres}
SECS=${2:-60}
CONC=${3:-32}
require_cargo
install_packages scripts/packages/test.txt
cargo build --release --locked -p update-server -p moho-loadgen --bins
TARGET=${CARGO_TARGET_DIR:-target}
SERVER=$TARGET/release/update-server
LOADGEN=$TARGET/release/moho-loadgen
WORK=$(mktemp -d /tmp/moho-bench.XXXXXX)
PORT=18480
SERVER_PID=

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

bench() {
    local name=$1 url=$2 seeded=${3:-}
    if [ -z "$seeded" ]; then
        echo "== $name: seeding $NODES nodes (1 % of them in a rollout capped at 100 in flight)"
        "$LOADGEN" seed --database "$url" --nodes "$NODES" --rollout-percent 1
    else
        echo "== $name: reusing the seeded database ($seeded)"
    fi
    mkdir -p "$WORK/$name"
    RUST_LOG=warn "$SERVER" serve --data-dir "$WORK/$name" --database "$url" --listen "127.0.0.1:$PORT" \
        >"$WORK/$name/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    echo "-- $name baseline (GET /healthz, concurrency $CONC, ${SECS}s); commit $(git rev-parse --short HEAD); $(cut -d' ' -f1-3 /proc/loadavg) before"
    "$LOADGEN" run --server "http://127.0.0.1:$PORT" --nodes "$NODES" --concurrency "$CONC" --seconds "$SECS" --baseline
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "-- $name signed check-ins (+1 event report in 10), concurrency $CONC, ${SECS}s; $(cut -d' ' -f1-3 /proc/loadavg) before"
    "$LOADGEN" run --server "http://127.0.0.1:$PORT" --nodes "$NODES" --concurrency "$CONC" --seconds "$SECS"
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    stop_server
}

trap 'stop_server; rm -rf "$WORK"' EXIT
if [[ " $DBS " == *" sqlite "* ]]; then
    db=${MOHO_BENCH_SQLITE_DB:-$WORK/moho.db}
    seeded=
    if [ -n "${MOHO_BENCH_SQLITE_DB:-}" ] && [ -s "$db" ]; then seeded=$db; fi
    bench sqlite "sqlite://$db?mode=rwc" "$seeded"
fi
[[ " $DBS " == *" postgres "* ]] || exit 0
# Durability comparable to SQLite's WAL + synchronous=NORMAL: fsync on,
# commits acknowledged before their WAL flush.
MOHO_PG_OPTS="-c synchronous_commit=off" start_throwaway_postgres   # replaces the EXIT trap
trap 'stop_server; runuser -u postgres -- "$MOHO_PG_BIN/pg_ctl" -D "$MOHO_PG_DIR/data" -m immediate stop >/dev/null 2>&1; rm -rf "$MOHO_PG_DIR" "$WORK"' EXIT
bench postgres "$MOHO_TEST_POSTGRES_URL"
