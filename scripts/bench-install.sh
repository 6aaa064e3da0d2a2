#!/usr/bin/env bash
# Install-path benchmark (issue 4). Prints, from one run on this machine:
#  - throughput of `update-agent install` (HTTPS, per-chunk verification and
#    the full read-back included) against the baseline
#    `curl | tee >(sha256sum) | dd oflag=direct` onto the same slot;
#  - peak RSS of the install for a 1 GiB and a 4 GiB image;
#  - bytes downloaded for an update that differs from the booted image in
#    about 5% of its chunks.
# Usage: scripts/bench-install.sh [--quick]   (--quick: 256 MiB / 1 GiB images)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_cargo
install_packages scripts/packages/base.txt scripts/packages/bench.txt
[ "$(id -u)" -eq 0 ] || die "the benchmark needs root (loop devices)"

SMALL_MIB=1024 BIG_MIB=4096 RUNS=3
if [ "${1:-}" = --quick ]; then SMALL_MIB=256 BIG_MIB=1024 RUNS=2; fi

echo "== building (release)"
cargo build --release --locked --quiet -p update-agent -p image-tools --bins
cargo build --release --locked --quiet -p moho-e2e --bin moho-test-serve
T=${CARGO_TARGET_DIR:-$PWD/target}/release
# Cached inputs are per size: a --quick run must not feed a full run.
W=${MOHO_BENCH_DIR:-/var/tmp/moho-bench}/${SMALL_MIB}-${BIG_MIB}
mkdir -p "$W"
cd "$W"

payload() { # payload FILE MIB SEED: deterministic incompressible bytes
    [ -s "$1" ] && [ "$(stat -c %s "$1")" -eq $(($2 * 1048576)) ] && return 0
    # openssl dies of SIGPIPE when head has enough: that is the normal end.
    { openssl enc -aes-128-ctr -nosalt -pass "pass:moho-$3" -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
        | head -c "$(($2 * 1048576))" >"$1"
}
image() { # image VERSION PAYLOAD
    local tree=tree-$1
    [ -s "rel-$1.img" ] && return 0
    rm -rf "$tree" && mkdir -p "$tree/boot" "$tree/etc"
    echo "not a kernel" >"$tree/boot/vmlinuz"
    printf 'NAME=Moho\nVERSION_ID=%s\n' "$1" >"$tree/etc/os-release"
    ln "$2" "$tree/payload.bin"
    "$T/image-tools" build --rootfs "$tree" --version "$1" --board bench --out "rel-$1.img" \
        --source-date-epoch 1700000000 --force >/dev/null
}

echo "== images (cached in $W)"
# Built and added one at a time, inputs deleted once the repository holds
# its own copy, so that the 4 GiB run fits in about 14 GB of disk.
if [ ! -d repo ]; then
    "$T/image-tools" keygen --out keys >/dev/null
    "$T/image-tools" repo init --repo repo --keys keys >/dev/null
    add() { # add VERSION PAYLOAD
        image "$1" "$2"
        "$T/image-tools" repo add --repo repo --keys keys --image "rel-$1.img" --channel stable >/dev/null
        rm -rf "rel-$1.img" "tree-$1"
    }
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
fi
"$T/image-tools" repo refresh --repo repo --keys keys >/dev/null
target() { (cd repo && find targets -path "*$1/root.img" | head -1); }

echo "== server"
"$T/moho-test-serve" --root repo --ca-out ca.pem >server.url &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    # node() runs in a command substitution (a subshell), so find the loop
    # devices by their backing files rather than remembering them.
    for f in "$W"/*.disk; do
        [ -e "$f" ] || continue
        for l in $(losetup -n -O NAME -j "$f"); do losetup -d "$l" 2>/dev/null || true; done
    done
}
trap cleanup EXIT
trap "exit 130" INT TERM
for _ in $(seq 50); do [ -s server.url ] && break; sleep 0.1; done
BASE=$(cat server.url)

node() { # node NAME SLOT_MIB: disk with rel-1.0.0 in A on a loop device; prints the device
    local slot=$2 size=$(( $2 * 2 + 64 + 64 ))
    rm -f "$1.disk"
    "$T/image-tools" disk create --out "$1.disk" --size "${size}M" --slot-size "${slot}M" \
        --slot-a "repo/$(target 1.0.0)" >/dev/null
    local dev; dev=$(losetup --find --show --direct-io=on "$1.disk")
    partx -a "$dev" 2>/dev/null || true
    rm -rf "$1.d" && mkdir -p "$1.d/agent.d"
    echo "VERSION_ID=1.0.0" >"$1.d/os-release"
    cat >"$1.d/agent.d/10.toml" <<TOML
[repository]
url = "$BASE"
root = "$W/repo/metadata/1.root.json"
ca_cert = "$W/ca.pem"
[node]
board = "bench"
channel = "stable"
os_release = "$W/$1.d/os-release"
disk = "$dev"
[agent]
state_dir = "$W/$1.d/state"
TOML
    echo "$dev"
}
reset_b() { # make B installable again
    "$T/update-agent" --booted A slots --disk "$1" set B --priority 0 --tries 0 --successful false >/dev/null
    rm -rf "$2/state"
}
install() { # install NODE DEV VERSION: prints "seconds rss_kib downloaded_bytes"
    reset_b "$2" "$W/$1.d"
    /usr/bin/time -f '%e %M' -o time.out \
        "$T/update-agent" --config-dir "$W/$1.d/agent.d" --booted A install --version "$3" --json >install.json
    local dl; dl=$(grep -o '"downloaded_bytes": [0-9]*' install.json | grep -o '[0-9]*$')
    echo "$(cat time.out) $dl"
}
baseline() { # baseline DEV URL: prints seconds
    local start end
    start=$(date +%s.%N)
    curl -s --cacert ca.pem "$2" | tee >(sha256sum >/dev/null) \
        | dd of="${1}p3" bs=4M iflag=fullblock oflag=direct status=none
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
mbps() { echo "scale=0; $1 / 1048576 / $2" | bc -l; }

SLOT=$((SMALL_MIB + 128))
DEV=$(node small "$SLOT")
URL2="$BASE$(target 2.0.0)"
LEN2=$(stat -c %s "repo/$(target 2.0.0)")

echo "== throughput: ${SMALL_MIB} MiB payload image ($LEN2 bytes), $RUNS runs each, interleaved"
for r in $(seq "$RUNS"); do
    b=$(baseline "$DEV" "$URL2")
    read -r s rss dl < <(install small "$DEV" 2.0.0)
    printf '  run %d: baseline %6.2f s = %5s MiB/s | install %6.2f s = %5s MiB/s (peak RSS %s KiB, downloaded %s)\n' \
        "$r" "$b" "$(mbps "$LEN2" "$b")" "$s" "$(mbps "$LEN2" "$s")" "$rss" "$dl"
    echo "$b $s" >>ratios.$$
done
awk '{ b += $1; s += $2 } END { printf "  mean: baseline %.2f s, install %.2f s: install is %.2fx the baseline throughput\n", b/NR, s/NR, b/s }' ratios.$$
rm -f ratios.$$

echo "== delta update: 1.0.0 booted -> 1.1.0 (about 5% of chunks differ)"
read -r s rss dl < <(install small "$DEV" 1.1.0)
LEN1B=$(stat -c %s "repo/$(target 1.1.0)")
printf '  downloaded %s of %s bytes (%s%%) in %.2f s\n' "$dl" "$LEN1B" "$(echo "scale=1; 100 * $dl / $LEN1B" | bc -l)" "$s"

echo "== peak RSS: ${SMALL_MIB} MiB vs ${BIG_MIB} MiB payload"
read -r s1 rss1 _ < <(install small "$DEV" 2.0.0)
BIGDEV=$(node big $((BIG_MIB + 256)))
read -r s4 rss4 _ < <(install big "$BIGDEV" 4.0.0)
printf '  %s MiB image: %s KiB; %s MiB image: %s KiB (%+.1f%%)\n' "$SMALL_MIB" "$rss1" "$BIG_MIB" "$rss4" \
    "$(echo "100 * ($rss4 - $rss1) / $rss1" | bc -l)"
