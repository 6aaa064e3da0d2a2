#!/usr/bin/env bash
# The main job: a walk through the A/B slot lifecycle on a disk image file.
# Builds the tools, creates a disk in the Moho layout with a slot image in A,
# arms B, simulates boots (B once, then the fallback to A), marks B good,
# and rolls back, printing the slot table at each step.
# Later issues grow this into the full demo (server, signed releases, VM).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_cargo
install_packages scripts/packages/base.txt

echo "== building update-agent and image-tools"
cargo build --release --locked --quiet -p update-agent -p image-tools \
    || die "cargo build failed"
AGENT=target/release/update-agent
TOOLS=target/release/image-tools

OUT=${MOHO_DEMO_DIR:-out/demo}
rm -rf "$OUT" && mkdir -p "$OUT"
DISK=$OUT/disk.img

step() { printf '\n== %s\n' "$*"; }
table() { "$AGENT" slots --disk "$DISK" "$@"; }

step "a 16 MiB stand-in slot image (real images come from 'image-tools build')"
head -c 16M /dev/urandom >"$OUT/release-1.img"

step "image-tools disk create: ESP, ROOT-A (with the image), ROOT-B, STATE"
"$TOOLS" disk create --out "$DISK" --size 1G --slot-size 256M --slot-a "$OUT/release-1.img"
table --booted A

step "arm B: priority 2, one try, not successful (what the installer does after writing B)"
"$AGENT" --booted A slots --disk "$DISK" set B --priority 2 --tries 1 --successful false
table

step "boot 1: the selector picks B and uses up its try"
echo "booted: $("$AGENT" slots --disk "$DISK" boot)"
table --booted B

step "B never marked itself good (say its health check failed); boot 2 falls back"
echo "booted: $("$AGENT" slots --disk "$DISK" boot)"
table --booted A

step "while B is booted and unblessed, A is the only fallback: changing it is refused"
if "$AGENT" --booted B slots --disk "$DISK" set A --priority 0; then
    die "the refusal did not happen"
else
    echo "(refused with exit code $?, as it should be)"
fi

step "try again: arm B, boot it, and this time it passes and marks itself good"
"$AGENT" --booted A slots --disk "$DISK" set B --tries 1
echo "booted: $("$AGENT" slots --disk "$DISK" boot)"
"$AGENT" --booted B slots --disk "$DISK" mark-good
echo "booted: $("$AGENT" slots --disk "$DISK" boot)   (mark-good sticks)"
table --booted B

step "operator rollback to A (it is still marked successful)"
"$AGENT" --booted B slots --disk "$DISK" rollback
echo "booted: $("$AGENT" slots --disk "$DISK" boot)"
table --booted A --json

step "stock tools read the same attributes"
cgpt show -i 3 -P "$DISK" | sed 's/^/cgpt: B priority /'
sgdisk -i 3 "$DISK" | grep 'Attribute flags'

printf '\ndemo finished; the disk image is %s\n' "$DISK"
