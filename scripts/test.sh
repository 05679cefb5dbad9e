#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end tests, which start real
# worker processes on 127.0.0.1. Tests and binaries share one profile, so
# RocksDB compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --bins
cargo test --workspace -- --test-threads=2 "$@"
