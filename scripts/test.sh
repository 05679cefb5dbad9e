#!/usr/bin/env bash
# The whole test suite: the farm crate's rustdoc (warnings are errors), unit
# tests, doc tests and the end-to-end tests, which start real worker
# processes on 127.0.0.1. The end-to-end suite runs twice: attempts
# in-process, then every attempt in a child process (MULTI_PROCESS). Tests
# and binaries share one profile, so RocksDB compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --workspace
echo "== rustdoc of the farm crate, warnings as errors =="
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p farm
cargo test --workspace -- --test-threads=2 "$@"
echo "== end-to-end suite again with MULTI_PROCESS=true =="
FARM_E2E_MULTI_PROCESS=1 cargo test --test e2e -- --test-threads=2 --skip child_faults "$@"
