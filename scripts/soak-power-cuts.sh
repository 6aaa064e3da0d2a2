#!/usr/bin/env bash
# Power-cut soak (issue 13, Build 6): N power cuts (SIGKILL of qemu) at
# random moments of an endless update cycle of the busybox test OS — install
# into the inactive slot (slot clear, download and write, read back, GPT
# arm), reboot, the selector's tries decrement, trial boot, mark-good,
# rollback — each followed by a boot that must reach the system, and at the
# end an install that must complete and be marked good. Prints
# `survived S of N, unbootable U` with the seed that replays the run
# (MOHO_VM_SEED=SEED), the phase of every cut, and each failure's console
# log (target/tmp/vm-logs/soak_*.log). CI runs the short variant
# (tests/vm.rs `power_cuts_during_an_install_and_a_gpt_write_...`).
#
# Usage: scripts/soak-power-cuts.sh N     (about 1.5 min per cut under TCG)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:?usage: scripts/soak-power-cuts.sh N}
case "$n" in '' | *[!0-9]*) die "N must be a number of cuts, not '$n'" ;; esac
install_packages scripts/packages/base.txt scripts/packages/vm.txt
require_cargo
mkdir -p target/tmp
log=target/tmp/soak-power-cuts.log
echo "soak: $n power cuts; full output in $log"
rc=0
MOHO_SOAK_CUTS=$n cargo test --locked -p moho-e2e --features vm --test vm power_cut_soak \
  -- --ignored --nocapture --test-threads=1 >"$log" 2>&1 || rc=$?
grep -oE '(power cuts: |soak: |cut [0-9]+: |survived ).*' "$log" || true
[ "$rc" -eq 0 ] || die "the soak failed (exit $rc): see $log"
