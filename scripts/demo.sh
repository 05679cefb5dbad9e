#!/usr/bin/env bash
# The main job: a local farm offloading a real workload's compactions.
# Starts a dcompact-worker on 127.0.0.1, runs a RocksDB database whose
# compactions go to it, writes a million random keys with overwrites and
# deletes, checks every key, and prints where the compactions ran.
# Extra arguments go to farm-demo (see: scripts/demo.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/prune_build.sh "${CARGO_TARGET_DIR:-target}" >/dev/null
# The optimised build: the demo prints the hoster's throughput and CPU.
scripts/build-opt.sh --quiet
target="${CARGO_TARGET_DIR:-target}"
exec "$target/debug/farm-demo" "$@"
