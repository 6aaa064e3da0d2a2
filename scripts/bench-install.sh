#!/usr/bin/env bash
# Install-path benchmark through the product's own server (issues 4, 15).
# A benchmark, not a test: it prints figures measured in one run on this
# machine, every anchor timed in the same round robin.
#
#  1. Throughput (medians of RUNS interleaved runs, all writing the same slot
#     on a loop device): `update-agent install` (TUF metadata, per-chunk
#     verification against the signed chunk index, O_DIRECT writes, full
#     read-back) fed by `update-server` over HTTPS and HTTP, by nginx
#     (Debian's package, TLS, sendfile on) and from file://; the baseline
#     pipe `curl | tee >(sha256sum) | dd oflag=direct` from update-server and
#     from nginx; SWUpdate's streaming install (`swupdate -d -u URL`, a
#     CMS-signed .swu with the raw handler) from nginx over HTTP. For each:
#     MB/s, CPU-seconds per GiB on the server and on the client side, peak
#     RSS of both, and ratios.
#  2. Bytes downloaded for an update that differs in ~5 % of its chunks.
#  3. Agent peak RSS for a SMALL and a BIG image.
#  4. Fleet: 1, 8 and 32 agents installing at once from update-server and
#     from nginx (HTTPS): aggregate MB/s, server CPU per GiB, server peak RSS;
#     at the largest fleet, signed check-ins (moho-loadgen) run against the
#     same update-server during the downloads and their latency is printed
#     next to the same load on the idle server.
#
# Usage: scripts/bench-install.sh [--quick] [--no-fleet] [--fleet-only]
#   --quick: 256 MiB / 1 GiB payloads, 2 runs (default 1 GiB / 4 GiB, 3 runs)
#   --fleet-only: only 4. (builds only the two fleet releases)
#   env: MOHO_BENCH_DIR (default /var/tmp/moho-bench), MOHO_BENCH_PORT (18600),
#        FLEET ("1 8 32"), FLEET_MIB (64)
# Needs root (loop devices) and about 16 GB free in MOHO_BENCH_DIR, which
# keeps the built repository for the next run: `rm -rf` it when done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_cargo
install_packages scripts/packages/base.txt scripts/packages/bench.txt
[ "$(id -u)" -eq 0 ] || die "the benchmark needs root (loop devices)"

SMALL_MIB=1024 BIG_MIB=4096 RUNS=3 DO_FLEET=1 ONLY_FLEET=0
for a in "$@"; do
    case "$a" in
        --quick) SMALL_MIB=256 BIG_MIB=1024 RUNS=2 ;;
        --no-fleet) DO_FLEET=0 ;;
        --fleet-only) ONLY_FLEET=1 ;;
        *) die "unknown argument $a (usage: $0 [--quick] [--no-fleet] [--fleet-only])" ;;
    esac
done
if [ "$ONLY_FLEET" = 1 ] && [ "$DO_FLEET" = 0 ]; then die "--fleet-only and --no-fleet leave nothing to measure"; fi
FLEET=${FLEET:-1 8 32}
FLEET_MIB=${FLEET_MIB:-64}
PORT=${MOHO_BENCH_PORT:-18600}
US_HTTPS=$((PORT + 1)) US_HTTP=$((PORT + 2)) NGX_HTTPS=$((PORT + 3)) NGX_HTTP=$((PORT + 4))
for p in $US_HTTPS $US_HTTP $NGX_HTTPS $NGX_HTTP; do
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "port $p is in use (set MOHO_BENCH_PORT)"
done

# MOHO_BENCH_PREBUILT=1: measure the release binaries already in the target
# directory as they are (the commit printed is then the tree's, not theirs).
if [ -z "${MOHO_BENCH_PREBUILT:-}" ]; then
    echo "== building (release)"
    cargo build --release --locked --quiet -p update-agent -p image-tools -p update-server -p moho-loadgen --bins
fi
T=${CARGO_TARGET_DIR:-$PWD/target}/release
LOADGEN=$(find "$T" -maxdepth 1 -name moho-loadgen -type f | head -1)
# The check-ins measured during the fleet downloads go over HTTPS.
[ -n "$LOADGEN" ] && ! "$LOADGEN" run --help 2>/dev/null | grep -q -- --ca-cert && LOADGEN=
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo "+changes")
# Cached inputs are per size: a --quick run must not feed a full run.
W=${MOHO_BENCH_DIR:-/var/tmp/moho-bench}/${SMALL_MIB}-${BIG_MIB}
[ "$ONLY_FLEET" = 0 ] || W=${MOHO_BENCH_DIR:-/var/tmp/moho-bench}/fleet-only
mkdir -p "$W"
cd "$W"
rm -f ./*.disk results.tsv fleet.tsv

payload() { # payload FILE MIB SEED: deterministic incompressible bytes
    [ -s "$1" ] && [ "$(stat -c %s "$1")" -eq $(($2 * 1048576)) ] && return 0
    # openssl dies of SIGPIPE when head has enough: that is the normal end.
    { openssl enc -aes-128-ctr -nosalt -pass "pass:moho-$3" -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
        | head -c "$(($2 * 1048576))" >"$1"
}
add() { # add VERSION PAYLOAD: build the image, publish it, delete the inputs
    local tree=tree-$1
    rm -rf "$tree" && mkdir -p "$tree/boot" "$tree/etc"
    echo "not a kernel" >"$tree/boot/vmlinuz"
    printf 'NAME=Moho\nVERSION_ID=%s\n' "$1" >"$tree/etc/os-release"
    ln "$2" "$tree/payload.bin"
    "$T/image-tools" build --rootfs "$tree" --version "$1" --board bench --out "rel-$1.img" \
        --source-date-epoch 1700000000 --force >/dev/null
    "$T/image-tools" repo add --repo repo --keys keys --image "rel-$1.img" --channel stable >/dev/null
    rm -rf "rel-$1.img" "rel-$1.img".* "$tree"
}

echo "== images (cached in $W)"
# Built and added one at a time, inputs deleted once the repository holds its
# own copy, so that the 4 GiB run fits in about 16 GB of disk.
if [ ! -e repo/.complete ]; then
    rm -rf repo keys
    "$T/image-tools" keygen --out keys >/dev/null
    "$T/image-tools" repo init --repo repo --keys keys >/dev/null
    if [ "$ONLY_FLEET" = 1 ]; then
        payload pf "$FLEET_MIB" 5 && add 5.0.0 pf && rm -f pf
        payload pg "$FLEET_MIB" 6 && add 5.1.0 pg && rm -f pg
        touch repo/.complete
    fi
fi
# (.complete is empty: -e, not -s, or the cache is rebuilt every run.)
if [ "$ONLY_FLEET" = 0 ] && [ ! -e repo/.complete ]; then
    payload p4 "$BIG_MIB" 4 && add 4.0.0 p4 && rm -f p4
    payload p1 "$SMALL_MIB" 1
    cp p1 p1b
    # Change one 4 KiB block in every 20th 4 MiB chunk: about 5% of the chunks.
    for ((i = 0; i < SMALL_MIB / 4; i += 20)); do
        dd if=/dev/urandom of=p1b bs=4096 count=1 seek=$((i * 1024 + 7)) conv=notrunc status=none
    done
    add 1.0.0 p1 && rm -f p1
    add 1.1.0 p1b && rm -f p1b
    payload p2 "$SMALL_MIB" 2 && add 2.0.0 p2 && rm -f p2
    payload pf "$FLEET_MIB" 5 && add 5.0.0 pf && rm -f pf
    payload pg "$FLEET_MIB" 6 && add 5.1.0 pg && rm -f pg
    touch repo/.complete
fi
"$T/image-tools" repo refresh --repo repo --keys keys >/dev/null
# A release's image file under repo/ (TUF consistent snapshots: the name
# carries the file's SHA-256, before the directory or the file name).
target() { (cd repo && find targets -path "*/$1/*" -name "*root.img" | head -1); }
[ "$ONLY_FLEET" = 1 ] || LEN2=$(stat -c %s "repo/$(target 2.0.0)")

echo "== TLS certificate (throwaway CA) and SWUpdate package"
mkdir -p tls
if [ ! -s tls/server.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=moho bench CA" -keyout tls/ca.key -out tls/ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout tls/server.key -out tls/server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >tls/ext
    openssl x509 -req -in tls/server.csr -CA tls/ca.pem -CAkey tls/ca.key -CAcreateserial -days 3650 \
        -extfile tls/ext -out tls/server.pem 2>/dev/null
    # SWUpdate verifies sw-description with CMS against this certificate.
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=moho bench swu signer" \
        -addext "extendedKeyUsage=emailProtection" -keyout tls/swu.key -out tls/swu.pem 2>/dev/null
fi
# The .swu holds the same slot image as release 2.0.0, written by the raw
# handler to the slot through a symbolic link (the loop device changes).
if [ "$ONLY_FLEET" = 0 ] && [ ! -s swu/bench.swu ]; then
    rm -rf swu swu-build && mkdir -p swu swu-build
    ln -s "$W/repo/$(target 2.0.0)" swu-build/root.img
    sha=$(target 2.0.0 | grep -o '[0-9a-f]\{64\}' || true)
    [ -n "$sha" ] || sha=$(sha256sum <"repo/$(target 2.0.0)" | cut -d' ' -f1)
    cat >swu-build/sw-description <<EOF
software =
{
	version = "2.0.0";
	hardware-compatibility = [ "1.0" ];
	images: (
	{
		filename = "root.img";
		device = "$W/slot-b";
		type = "raw";
		sha256 = "$sha";
	}
	);
}
EOF
    openssl cms -sign -in swu-build/sw-description -out swu-build/sw-description.sig \
        -signer tls/swu.pem -inkey tls/swu.key -outform DER -nosmimecap -binary
    (cd swu-build && printf 'sw-description\nsw-description.sig\nroot.img\n' | cpio -o -L -H crc --quiet) >swu/bench.swu
    rm -rf swu-build
fi

# --- servers -----------------------------------------------------------------
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    # node() runs in a command substitution (a subshell), so find the loop
    # devices by their backing files rather than remembering them.
    for f in "$W"/*.disk; do
        [ -e "$f" ] || continue
        for l in $(losetup -n -O NAME -j "$f"); do losetup -d "$l" 2>/dev/null || true; done
    done
    rm -f "$W"/*.disk
    rm -rf "$W"/fleet
}
trap cleanup EXIT
trap "exit 130" INT TERM
wait_port() { for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; die "nothing listens on port $1"; }

echo "== servers: update-server (HTTPS :$US_HTTPS, HTTP :$US_HTTP), nginx (HTTPS :$NGX_HTTPS, HTTP :$NGX_HTTP)"
rm -rf srv-https srv-http && mkdir -p srv-https srv-http
if [ -n "$LOADGEN" ]; then # nodes for the check-ins measured during the fleet downloads
    "$LOADGEN" seed --database "sqlite://$W/srv-https/moho.db?mode=rwc" --nodes 10000 >/dev/null 2>&1
fi
RUST_LOG=warn "$T/update-server" serve --data-dir srv-https --repo repo --listen "127.0.0.1:$US_HTTPS" --open-registration \
    --tls-cert tls/server.pem --tls-key tls/server.key >srv-https/log 2>&1 &
US_HTTPS_PID=$!
PIDS+=("$!")
RUST_LOG=warn "$T/update-server" serve --data-dir srv-http --repo repo --listen "127.0.0.1:$US_HTTP" --open-registration \
    >srv-http/log 2>&1 &
US_HTTP_PID=$!
PIDS+=("$!")
mkdir -p nginx/tmp
cat >nginx/nginx.conf <<EOF
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    types { application/json json; }
    client_body_temp_path $W/nginx/tmp/body;
    proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGX_HTTPS ssl;
        ssl_certificate $W/tls/server.pem;
        ssl_certificate_key $W/tls/server.key;
        location /repo/ { alias $W/repo/; }
        location /swu/ { alias $W/swu/; }
    }
    server {
        listen 127.0.0.1:$NGX_HTTP;
        location /repo/ { alias $W/repo/; }
        location /swu/ { alias $W/swu/; }
    }
}
EOF
nginx -c "$W/nginx/nginx.conf" -p "$W/nginx" -e "$W/nginx/error.log" -g 'daemon off;' &
NGX_PID=$!
PIDS+=("$!")
for p in $US_HTTPS $US_HTTP $NGX_HTTPS $NGX_HTTP; do wait_port "$p"; done
NGX_PIDS="$NGX_PID $(ps -o pid= --ppid "$NGX_PID" | tr -d ' ' | tr '\n' ' ')"

URL_US_HTTPS=https://127.0.0.1:$US_HTTPS/repo/
URL_US_HTTP=http://127.0.0.1:$US_HTTP/repo/
URL_NGX_HTTPS=https://127.0.0.1:$NGX_HTTPS/repo/

# --- measuring -----------------------------------------------------------------
cpu_ticks() { # cpu_ticks PID...: user + system clock ticks of the processes (all threads)
    local t=0 p f
    for p in "$@"; do
        read -r -a f <"/proc/$p/stat"
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}
reset_peak() { local p; for p in "$@"; do echo 5 >"/proc/$p/clear_refs"; done; }
peak_kib() { # largest VmHWM of the processes
    local m=0 p v
    for p in "$@"; do
        v=$(awk '/^VmHWM/ { print $2 }' "/proc/$p/status")
        [ "$v" -gt "$m" ] && m=$v
    done
    echo "$m"
}
TCK=$(getconf CLK_TCK)

node() { # node NAME SLOT_MIB BOOTED_VERSION: disk with that release in A on a loop device; prints the device
    local slot=$2 size=$(($2 * 2 + 64 + 64))
    rm -f "$1.disk"
    "$T/image-tools" disk create --out "$1.disk" --size "${size}M" --slot-size "${slot}M" \
        --slot-a "repo/$(target "$3")" >/dev/null
    local dev
    dev=$(losetup --find --show --direct-io=on "$1.disk")
    partx -a "$dev" 2>/dev/null || true
    rm -rf "$1.d" && mkdir -p "$1.d"
    echo "VERSION_ID=$3" >"$1.d/os-release"
    echo "$dev"
}
agent_config() { # agent_config NODE_DIR DISK URL: point the node's agent at URL
    mkdir -p "$1/agent.d"
    cat >"$1/agent.d/10.toml" <<TOML
[repository]
url = "$3"
root = "$W/repo/metadata/1.root.json"
ca_cert = "$W/tls/ca.pem"
[node]
board = "bench"
channel = "stable"
os_release = "$1/os-release"
disk = "$2"
[agent]
state_dir = "$1/state"
TOML
}
reset_b() { # reset_b DISK NODE_DIR: make B installable again
    "$T/update-agent" --booted A slots --disk "$1" set B --priority 0 --tries 0 --successful false >/dev/null
    rm -rf "$2/state"
}

# measure NAME BYTES SERVER_PIDS -- CMD...: runs CMD under /usr/bin/time and
# appends "name secs client_cpu server_cpu client_rss_kib server_rss_kib bytes"
# to results.tsv.
measure() {
    local name=$1 bytes=$2 spids=$3
    shift 4
    sync
    # shellcheck disable=SC2086
    reset_peak $spids
    # shellcheck disable=SC2086
    local c0; c0=$(cpu_ticks $spids)
    /usr/bin/time -f '%e %U %S %M' -o time.out "$@" >cmd.out 2>cmd.err \
        || { cat cmd.out cmd.err >&2; die "$name failed"; }
    # shellcheck disable=SC2086
    local c1; c1=$(cpu_ticks $spids)
    # shellcheck disable=SC2086
    local srss; srss=$(peak_kib $spids)
    local secs u s rss
    read -r secs u s rss <time.out
    local scpu; scpu=$(echo "($c1 - $c0) / $TCK" | bc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$secs" "$(echo "$u + $s" | bc -l)" "$scpu" "$rss" "$srss" "$bytes" >>results.tsv
    printf '  %-28s %6.2f s %6.0f MB/s  client %5.2f CPU-s/GiB %6.1f MiB  server %5.2f CPU-s/GiB %6.1f MiB\n' \
        "$name" "$secs" "$(echo "$bytes / 1000000 / $secs" | bc -l)" \
        "$(echo "($u + $s) * 1073741824 / $bytes" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
        "$(echo "$scpu * 1073741824 / $bytes" | bc -l)" "$(echo "$srss / 1024" | bc -l)"
}
agent_install() { # agent_install NAME URL SERVER_PIDS DISK NODE_DIR VERSION
    agent_config "$5" "$4" "$2"
    reset_b "$4" "$5"
    measure "$1" "$(stat -c %s "repo/$(target "$6")")" "$3" -- \
        "$T/update-agent" --config-dir "$5/agent.d" --booted A install --version "$6" --json
}
pipe_install() { # pipe_install NAME URL SERVER_PIDS DISK
    measure "$1" "$LEN2" "$3" -- bash -c \
        'curl -sf --http1.1 --cacert "$0/tls/ca.pem" "$1" | tee >(sha256sum >"$0/pipe.sum") | dd of="$2" bs=4M iflag=fullblock oflag=direct status=none; wait $!' \
        "$W" "$2$(target 2.0.0)" "${4}p3"
}
swupdate_install() { # swupdate_install NAME DISK
    ln -sfn "${2}p3" slot-b
    measure "$1" "$(stat -c %s swu/bench.swu)" "$NGX_PIDS" -- \
        swupdate -H bench:1.0 -k tls/swu.pem -d "-u http://127.0.0.1:$NGX_HTTP/swu/bench.swu"
    grep -q "SWUPDATE successful" cmd.out cmd.err || { cat cmd.out cmd.err >&2; die "swupdate did not install"; }
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), commit $COMMIT"
if [ "$ONLY_FLEET" = 0 ]; then
SLOT=$((SMALL_MIB + 128))
DEV=$(node small "$SLOT" 1.0.0)
echo "== throughput: ${SMALL_MIB} MiB payload image ($LEN2 bytes), $RUNS rounds, interleaved"
for r in $(seq "$RUNS"); do
    echo " round $r (load average $(cut -d' ' -f1 /proc/loadavg))"
    pipe_install "pipe update-server https" "$URL_US_HTTPS" "$US_HTTPS_PID" "$DEV"
    agent_install "agent update-server https" "$URL_US_HTTPS" "$US_HTTPS_PID" "$DEV" "$W/small.d" 2.0.0
    pipe_install "pipe nginx https" "$URL_NGX_HTTPS" "$NGX_PIDS" "$DEV"
    agent_install "agent nginx https" "$URL_NGX_HTTPS" "$NGX_PIDS" "$DEV" "$W/small.d" 2.0.0
    agent_install "agent update-server http" "$URL_US_HTTP" "$US_HTTP_PID" "$DEV" "$W/small.d" 2.0.0
    swupdate_install "swupdate nginx http" "$DEV"
    agent_install "agent file://" "file://$W/repo/" "" "$DEV" "$W/small.d" 2.0.0
done
echo "-- medians (MB/s = 10^6 bytes/s; CPU per GiB = 2^30 bytes)"
awk -F'\t' -v gib=1073741824 '
    { key = $1; i = ++cnt[key]; secs[key, i] = $2; cc[key] += $3; sc[key] += $4
      if ($5 > cr[key]) cr[key] = $5; if ($6 > sr[key]) sr[key] = $6; bytes[key] = $7
      if (i == 1) names[++norder] = key }
    function median(key,   m, j, k, t, a) { m = cnt[key]; for (j = 1; j <= m; j++) a[j] = secs[key, j]
      for (j = 1; j <= m; j++) for (k = j + 1; k <= m; k++) if (a[k] < a[j]) { t = a[j]; a[j] = a[k]; a[k] = t }
      return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
    END {
      for (o = 1; o <= norder; o++) { key = names[o]; mb[key] = bytes[key] / 1e6 / median(key) }
      printf "  %-28s %8s %14s %14s %12s %12s\n", "", "MB/s", "client CPU/GiB", "server CPU/GiB", "client RSS", "server RSS"
      for (o = 1; o <= norder; o++) { key = names[o]
        printf "  %-28s %8.0f %12.2f s %12.2f s %8.1f MiB %8.1f MiB\n", key, mb[key], cc[key] / cnt[key] * gib / bytes[key],
          sc[key] / cnt[key] * gib / bytes[key], cr[key] / 1024, sr[key] / 1024 }
      a = "agent update-server https"
      printf "-- ratios of %s (median throughput):\n", a
      split("pipe nginx https|pipe update-server https|swupdate nginx http|agent nginx https", anchors, "|")
      for (j = 1; j <= 4; j++) printf "  %5.2fx %s\n", mb[a] / mb[anchors[j]], anchors[j]
      printf "-- update-server CPU per GiB served over HTTPS (to the agent): %.2fx nginx\n",
        (sc[a] / cnt[a]) / (sc["agent nginx https"] / cnt["agent nginx https"])
    }' results.tsv

echo "== delta update: 1.0.0 booted -> 1.1.0 (about 5% of chunks differ), from update-server https"
agent_install "agent delta 1.0.0->1.1.0" "$URL_US_HTTPS" "$US_HTTPS_PID" "$DEV" "$W/small.d" 1.1.0 >/dev/null
dl=$(grep -o '"downloaded_bytes": [0-9]*' cmd.out | grep -o '[0-9]*$')
LEN1B=$(stat -c %s "repo/$(target 1.1.0)")
printf '  downloaded %s of %s bytes (%s%%)\n' "$dl" "$LEN1B" "$(echo "scale=1; 100 * $dl / $LEN1B" | bc -l)"

echo "== agent peak RSS: ${SMALL_MIB} MiB vs ${BIG_MIB} MiB payload, from update-server https"
agent_install "agent rss small" "$URL_US_HTTPS" "$US_HTTPS_PID" "$DEV" "$W/small.d" 2.0.0 >/dev/null
read -r _ _ _ rss1 <time.out
losetup -d "$DEV" && rm -f small.disk
BIGDEV=$(node big $((BIG_MIB + 256)) 1.0.0)
agent_install "agent rss big" "$URL_US_HTTPS" "$US_HTTPS_PID" "$BIGDEV" "$W/big.d" 4.0.0
read -r _ _ _ rss4 <time.out
printf '  %s MiB image: %s KiB; %s MiB image: %s KiB (%+.1f%%)\n' "$SMALL_MIB" "$rss1" "$BIG_MIB" "$rss4" \
    "$(echo "100 * ($rss4 - $rss1) / $rss1" | bc -l)"
losetup -d "$BIGDEV" && rm -f big.disk
fi

[ "$DO_FLEET" = 1 ] || exit 0

# --- fleet ---------------------------------------------------------------------
checkins() { # checkins SECONDS: signed check-ins against update-server https; prints the latency line
    "$LOADGEN" run --server "https://127.0.0.1:$US_HTTPS" --ca-cert tls/ca.pem --nodes 10000 \
        --concurrency 2 --seconds "$1" --report-every 0 2>&1 | tail -2 | tr '\n' ' '
}
fleet_round() { # fleet_round N NAME URL SERVER_PIDS: N agents install 5.1.0 at once
    local n=$1 name=$2 url=$3 spids=$4 i start end pids=()
    for ((i = 0; i < n; i++)); do
        agent_config "$W/fleet/n$i" "$W/fleet/n$i.disk" "$url"
        reset_b "$W/fleet/n$i.disk" "$W/fleet/n$i"
    done
    sync
    # shellcheck disable=SC2086
    reset_peak $spids
    # shellcheck disable=SC2086
    local c0; c0=$(cpu_ticks $spids)
    start=$(date +%s.%N)
    for ((i = 0; i < n; i++)); do
        /usr/bin/time -f '%e %U %S %M' -o "$W/fleet/n$i.time" \
            "$T/update-agent" --config-dir "$W/fleet/n$i/agent.d" --booted A install --version 5.1.0 --json \
            >"$W/fleet/n$i.out" 2>&1 &
        pids+=("$!")
    done
    local lat=""
    if [ "$n" -ge 32 ] && [ "$name" = update-server ] && [ -n "$LOADGEN" ]; then
        sleep 1
        lat=$(checkins 5)
    fi
    for p in "${pids[@]}"; do wait "$p" || die "a fleet agent failed: $(cat "$W"/fleet/n*.out | tail -5)"; done
    end=$(date +%s.%N)
    # shellcheck disable=SC2086
    local c1; c1=$(cpu_ticks $spids)
    # shellcheck disable=SC2086
    local srss; srss=$(peak_kib $spids)
    local bytes=$((n * $(stat -c %s "repo/$(target 5.1.0)")))
    local secs; secs=$(echo "$end - $start" | bc -l)
    local scpu; scpu=$(echo "($c1 - $c0) / $TCK" | bc -l)
    local acpu; acpu=$(cat "$W"/fleet/n*.time | awk '{ c += $2 + $3 } END { print c }')
    printf '%s %s %s %s %s %s\n' "$name" "$n" "$secs" "$scpu" "$srss" "$bytes" >>fleet.tsv
    printf '  %-13s %2d agents: %6.2f s %6.0f MB/s aggregate; server %5.2f CPU-s/GiB, peak RSS %6.1f MiB; agents %5.2f CPU-s/GiB\n' \
        "$name" "$n" "$secs" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$(echo "$scpu * 1073741824 / $bytes" | bc -l)" \
        "$(echo "$srss / 1024" | bc -l)" "$(echo "$acpu * 1073741824 / $bytes" | bc -l)"
    [ -z "$lat" ] || echo "    check-ins during the downloads: $lat"
}
MAXN=0
for n in $FLEET; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
echo "== fleet: up to $MAXN agents, ${FLEET_MIB} MiB payload, disk images in files"
rm -rf fleet && mkdir -p fleet
for ((i = 0; i < MAXN; i++)); do
    "$T/image-tools" disk create --out "fleet/n$i.disk" --size "$((FLEET_MIB * 2 + 160))M" \
        --slot-size "$((FLEET_MIB + 32))M" --slot-a "repo/$(target 5.0.0)" >/dev/null
    mkdir -p "fleet/n$i" && echo "VERSION_ID=5.0.0" >"fleet/n$i/os-release"
done
if [ -n "$LOADGEN" ]; then
    echo "  check-ins on the idle server: $(checkins 5)"
fi
for n in $FLEET; do
    fleet_round "$n" update-server "$URL_US_HTTPS" "$US_HTTPS_PID"
    fleet_round "$n" nginx "$URL_NGX_HTTPS" "$NGX_PIDS"
done
awk -v gib=1073741824 '{ cpu[$1, $2] = $4 * gib / $6 } $1 == "nginx" { ns[$2] = 1 }
    END { for (n in ns) printf "  %2d agents: update-server CPU per GiB = %.2fx nginx\n", n, cpu["update-server", n] / cpu["nginx", n] }' fleet.tsv | sort -n
echo "== done (load average $(cut -d' ' -f1-3 /proc/loadavg)); inputs kept in $W"
