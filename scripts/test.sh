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
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/check-module-headers.sh

echo "== build"
cargo build --workspace --bins --locked

echo "== throwaway PostgreSQL (the server's tests run on SQLite and on PostgreSQL)"
. scripts/postgres.sh
start_throwaway_postgres
export MOHO_REQUIRE_POSTGRES=1
# The dashboard's browser tests must run here (chromium-driver is installed above).
export MOHO_REQUIRE_BROWSER=1

echo "== tests (unit, property, integration on files and loop devices, qemu boots)"
cargo test --workspace --locked
