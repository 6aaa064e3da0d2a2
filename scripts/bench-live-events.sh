#!/usr/bin/env bash
# Benchmark (not a test): the live event stream with NODES registered nodes
# on SQLite reporting events (moho-loadgen: signed check-ins, one request in
# REPORT_EVERY an event report), first with no stream subscriber, then with
# SUBSCRIBERS server-sent-event clients (GET /api/v1/events/live) connected:
# one unfiltered, one for errors only, one for a group no node is in, the
# rest unfiltered, plus one slow client (curl --limit-rate 2k) that cannot
# keep up. Prints, per run: check-ins/s, reports, the server's CPU seconds
# and peak/now RSS, events delivered per subscriber and per second, and the
# "missed" notices the slow one got (and the events they covered). The
# machine is shared: compare the two runs with each other (a ratio), and
# note the load average printed beside each.
#
#   scripts/bench-live-events.sh [NODES=1000000] [SECONDS=30] [CONCURRENCY=32] [REPORT_EVERY=2] [SUBSCRIBERS=4]
#
# MOHO_BENCH_SQLITE_DB=FILE keeps the seeded database in FILE and reuses it
# (seeding 1,000,000 nodes takes a minute or two); delete it when done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

NODES=${1:-1000000}
SECS=${2:-30}
CONC=${3:-32}
EVERY=${4:-2}
SUBS=${5:-4}
require_cargo
cargo build --release --locked -p update-server -p moho-loadgen --bins
TARGET=${CARGO_TARGET_DIR:-target}
SERVER=$TARGET/release/update-server
LOADGEN=$TARGET/release/moho-loadgen
WORK=$(mktemp -d /tmp/moho-bench-live.XXXXXX)
PORT=18481
SERVER_PID=
CURLS=()

stop_all() {
    for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
    CURLS=()
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap 'stop_all; rm -rf "$WORK"' EXIT

db=${MOHO_BENCH_SQLITE_DB:-$WORK/moho.db}
url="sqlite://$db?mode=rwc"
if [ -n "${MOHO_BENCH_SQLITE_DB:-}" ] && [ -s "$db" ]; then
    echo "== reusing the seeded database $db"
else
    echo "== seeding $NODES nodes"
    "$LOADGEN" seed --database "$url" --nodes "$NODES"
fi
TOKEN=$("$SERVER" token create --data-dir "$WORK" --database "$url" --role viewer --name "bench-$$")

cpu_secs() { # utime + stime of $1 in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
rss() { awk '/^VmHWM|^VmRSS/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$1/status"; }

RUST_LOG=warn "$SERVER" serve --data-dir "$WORK" --database "$url" --listen "127.0.0.1:$PORT" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
    (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
# Let the hot node state load (it is read in the background at start).
sleep 20

run() {
    local name=$1
    local before cpu0 cpu1
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    cpu0=$(cpu_secs "$SERVER_PID")
    "$LOADGEN" run --server "http://127.0.0.1:$PORT" --nodes "$NODES" --concurrency "$CONC" \
        --seconds "$SECS" --report-every "$EVERY" | sed "s/^/   /"
    cpu1=$(cpu_secs "$SERVER_PID")
    echo "   $name: server CPU $(awk -v a="$cpu0" -v b="$cpu1" -v s="$SECS" 'BEGIN { printf "%.1f s (%.0f %% of one core)", b - a, 100 * (b - a) / s }'); $(rss "$SERVER_PID")"
    echo "   load average before: $before, after: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD)"
}

echo "-- without subscribers: $NODES nodes, concurrency $CONC, one request in $EVERY a report, ${SECS}s"
run "no subscribers"

echo "-- with $SUBS subscribers + 1 slow one"
filters=("" "severity=error" "group=nobody-here")
for i in $(seq "$SUBS"); do
    q=${filters[$(((i - 1) % 3))]:-}
    curl -sN -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/events/live?$q" \
        >"$WORK/sub-$i.txt" &
    CURLS+=($!)
    echo "$q" >"$WORK/sub-$i.filter"
done
curl -sN --limit-rate 2k -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/events/live" \
    >"$WORK/sub-slow.txt" &
CURLS+=($!)
sleep 1
run "with subscribers"
sleep 1
for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
CURLS=()
for f in "$WORK"/sub-*.txt; do
    n=$(grep -c '^event: event' "$f" || true)
    m=$(grep -c '^event: missed' "$f" || true)
    covered=$(grep -o '"missed":[0-9]*' "$f" | cut -d: -f2 | paste -sd+ - | bc 2>/dev/null || echo 0)
    filter=$(cat "${f%.txt}.filter" 2>/dev/null || echo "slow, unfiltered")
    echo "   subscriber $(basename "$f" .txt) [${filter:-unfiltered}]: $n events delivered ($(awk -v n="$n" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')/s), $m missed notices covering ${covered:-0} events"
done
curl -s "http://127.0.0.1:$PORT/metrics" | grep '^moho_live' | sed 's/^/   /'
stop_all
