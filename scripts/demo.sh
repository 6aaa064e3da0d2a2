#!/usr/bin/env bash
# The main job: the whole story on a real (emulated) machine, run by `moho-vm-demo`
# (tests/src/bin/moho-vm-demo.rs, built on the VM tests' own machinery):
#   1. four releases of the node OS, each built by `image-tools os build` from the example
#      image-tools/node-os/node-os.toml (Debian's kernel, systemd, the agent units, sshd, podman):
#      1.0.0 and 2.0.0 work, 3.0.0's kernel panics, 3.0.1's health check fails; signed into a TUF
#      repository (generated keys) and served by update-server over HTTPS (SQLite);
#   2. the stock UEFI disk of `os build --disk` (systemd-boot -> boot selector, 1.0.0 in slot A,
#      no server address in it) on a disk four times its size, booted in qemu (OVMF; KVM when a probe VM runs under it, else -accel tcg) with a provision
#      document as a fw_cfg credential (server, CA, channel, group, host name, SSH key) and the
#      server reachable over the VM network;
#   3. the operator starts rollouts: 2.0.0 (the VM updates, reboots into B, marks it good after
#      boot-complete.target, the server counts it healthy), then 3.0.0 and 3.0.1 (each boots
#      once and falls back to 2.0.0 without help; the server counts the rollback).
# The console's key lines, the slot table (as update-agent and cgpt read it) and the server's
# view are printed along the way; everything is kept in $MOHO_DEMO_DIR (default out/demo).
# At the end: the dashboard's URL and a viewer token. `scripts/demo.sh --keep-running` keeps the
# server and the VM running until Ctrl-C.
# Takes about fifteen minutes on two cores, the first time a few more (downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_cargo
install_packages scripts/packages/base.txt scripts/packages/vm.txt
[ "$(id -u)" -eq 0 ] || die "the demo needs root (image-tools os build runs debootstrap); run as root"

OUT=${MOHO_DEMO_DIR:-out/demo}
echo "== building update-agent, image-tools, update-server and the demo"
cargo build --locked --quiet -p update-agent -p image-tools -p update-server -p moho-e2e --bins \
    || die "cargo build failed"
exec "${CARGO_TARGET_DIR:-target}/debug/moho-vm-demo" --out "$OUT" "$@"
