#!/usr/bin/env bash
# The test job: installs what the tests need, then runs every tier that the
# open issues have built so far. `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

require_cargo
install_packages scripts/packages/base.txt scripts/packages/test.txt scripts/packages/vm.txt
[ "$(id -u)" -eq 0 ] || die "the integration tests need root (loop devices, BLKPG); run as root"

echo "== format, lints, module headers"
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
scripts/check-module-headers.sh

echo "== build"
cargo build --workspace --bins --locked

echo "== throwaway PostgreSQL (the server's tests run on SQLite and on PostgreSQL)"
. scripts/postgres.sh
start_throwaway_postgres
export MOHO_REQUIRE_POSTGRES=1
# The dashboard's browser tests must run here (chromium-driver is installed above).
export MOHO_REQUIRE_BROWSER=1

echo "== build the tests"
cargo test --workspace --locked --no-run
cargo test --locked -p moho-e2e --features vm --test vm --no-run
cargo test --locked -p moho-e2e --features vm --test vm_provision --no-run
cargo test --locked -p moho-e2e --features vm --test vm_server_unit --no-run
cargo test --locked -p moho-e2e --features vm --test vm_cancel --no-run

# The qemu boots are long and mostly use one core: they run alongside the
# rest of the suite, their output kept until it is done.
echo "== tests (unit, property, integration on files and loop devices), qemu boots alongside"
vm_log=$(mktemp /tmp/moho-vm-tests.XXXXXX)
cargo test --locked -p moho-e2e --features vm --test vm >"$vm_log" 2>&1 &
vm_pid=$!
# A staged update cancelled by an aborted rollout (tests/vm_cancel.rs):
# ~15 minutes, most of it an idle guest waiting for its reboot window, so
# it starts with tests/vm.rs and ends well before it.
cancel_log=$(mktemp /tmp/moho-vm-cancel.XXXXXX)
cargo test --locked -p moho-e2e --features vm --test vm_cancel >"$cancel_log" 2>&1 &
cancel_pid=$!
suite=0
cargo test --workspace --locked || suite=$?
# First-boot provisioning through each transport (tests/vm_provision.rs):
# its machines one at a time, once the suite has freed its core, beside the
# systemd story of tests/vm.rs (the long pole).
echo "== qemu provisioning boots (tests/vm_provision.rs), beside tests/vm.rs"
provision=0
cargo test --locked -p moho-e2e --features vm --test vm_provision || provision=$?
# The shipped update-server.service under systemd in a guest (tests/vm_server_unit.rs).
echo "== qemu: the server's unit under systemd (tests/vm_server_unit.rs), beside tests/vm.rs"
server_unit=0
cargo test --locked -p moho-e2e --features vm --test vm_server_unit || server_unit=$?
echo "== qemu boots (tests/vm.rs; ran alongside): waiting for them"
vm=0
wait "$vm_pid" || vm=$?
cat "$vm_log"
rm -f "$vm_log"
echo "== qemu cancel of a staged update (tests/vm_cancel.rs; ran alongside)"
cancel=0
wait "$cancel_pid" || cancel=$?
cat "$cancel_log"
rm -f "$cancel_log"
[ "$suite" -eq 0 ] || die "the test suite failed (output above)"
[ "$vm" -eq 0 ] || die "the qemu boot tests failed (output above; console logs in target/tmp/vm-logs)"
[ "$provision" -eq 0 ] || die "the qemu provisioning boots failed (output above; console logs in target/tmp/vm-logs)"
[ "$server_unit" -eq 0 ] || die "the qemu boot of the server's unit failed (output above; console log in target/tmp/vm-logs)"
[ "$cancel" -eq 0 ] || die "the qemu cancel test failed (output above; console log target/tmp/vm-logs/cancel.log)"
