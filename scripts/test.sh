#!/usr/bin/env bash
# The whole test suite: the farm and zipserver crates' rustdoc (warnings
# are errors), every workspace crate's unit tests (the zipserver crate's
# included), doc tests and the end-to-end tests, which start real worker
# processes on 127.0.0.1. The end-to-end suite runs twice: attempts
# in-process, then every attempt in a child process (MULTI_PROCESS). Tests
# and binaries share one profile, so RocksDB compiles once for them (the
# rustdoc step builds it a second time, for check builds: about 20 minutes
# on a cold cache).
#
# At the end, whether the tests passed or not, no process the suite started
# may still run (scripts/leftovers.sh): the run fails and lists them if any
# does.
set -euo pipefail
cd "$(dirname "$0")/.."
# Inherited by every process the suite starts, so leftovers can be found.
export FARM_TEST_RUN="farm-test-$$-$(date +%s)"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
check_leftovers() {
  local status=$?
  scripts/leftovers.sh "$FARM_TEST_RUN" "$target_dir" || status=1
  exit "$status"
}
trap check_leftovers EXIT
scripts/setup.sh
scripts/prune_build.sh "$target_dir"
cargo build --workspace
# The install tests build the package themselves (scripts/package.sh); built
# here first, the farm crates' -O3 compile (a few minutes) runs alone rather
# than beside the tests, and their own call finds it done.
echo "== the Debian package of the optimised build =="
scripts/package.sh --quiet >/dev/null
echo "== rustdoc of the farm and zipserver crates, warnings as errors =="
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p farm -p zipserver
cargo test --workspace -- --test-threads=2 "$@"
echo "== end-to-end suite again with MULTI_PROCESS=true =="
FARM_E2E_MULTI_PROCESS=1 cargo test --test e2e -- --test-threads=2 --skip child_faults --skip child_spares --skip child_cgroups "$@"
