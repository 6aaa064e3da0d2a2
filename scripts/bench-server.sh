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
# Each measurement also prints the server's own CPU time per request
# (utime + stime of the server process over the phase, from /proc), which
# does not depend on how much of the machine the server got.
# Before the measured check-ins, MOHO_BENCH_WARMUP (default 25) seconds of
# check-ins are run and not counted (the hot state loads and the rollout's
# line index is built meanwhile). MOHO_BENCH_SERVER=BINARY measures another
# build of update-server (an older commit's) without building.
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
WARMUP=${MOHO_BENCH_WARMUP:-25}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -n "${MOHO_BENCH_SERVER:-}" ]; then
    SERVER=$MOHO_BENCH_SERVER
    cargo build --release --locked -p moho-loadgen --bins
else
    SERVER=$TARGET/release/update-server
    cargo build --release --locked -p update-server -p moho-loadgen --bins
fi
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

# CPU clock ticks (user + system) the server process has used so far.
server_ticks() {
    awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}

# Runs the load generator with "$@" and prints the server's CPU time per
# request of the phase (requests: the successful ones it reports).
measured() {
    local t0 t1 out n
    t0=$(server_ticks)
    out=$("$LOADGEN" run "$@")
    t1=$(server_ticks)
    echo "$out"
    n=$(echo "$out" | sed -n 's/^check-ins: \([0-9]*\) .*reports: \([0-9]*\);.*/\1 \2/p' | awk '{print $1 + $2}')
    awk -v d="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="${n:-0}" \
        'BEGIN { if (n > 0) printf "   server CPU: %.1f s, %.1f µs per request\n", d / hz, d / hz * 1e6 / n }'
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
    echo "-- $name baseline (GET /healthz, concurrency $CONC, ${SECS}s); server $SERVER (tree at commit $(git rev-parse --short HEAD)); $(cut -d' ' -f1-3 /proc/loadavg) before"
    measured --server "http://127.0.0.1:$PORT" --nodes "$NODES" --concurrency "$CONC" --seconds "$SECS" --baseline
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "$WARMUP" -gt 0 ]; then
        echo "-- $name warm-up: ${WARMUP}s of check-ins, not counted"
        "$LOADGEN" run --server "http://127.0.0.1:$PORT" --nodes "$NODES" --concurrency "$CONC" --seconds "$WARMUP" >/dev/null
    fi
    echo "-- $name signed check-ins (+1 event report in 10), concurrency $CONC, ${SECS}s; $(cut -d' ' -f1-3 /proc/loadavg) before"
    measured --server "http://127.0.0.1:$PORT" --nodes "$NODES" --concurrency "$CONC" --seconds "$SECS"
    echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    grep -h "hot state" "$WORK/$name/server.log" | sed 's/^/   server: /' || true
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
