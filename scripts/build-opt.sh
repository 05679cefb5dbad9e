#!/usr/bin/env bash
# The optimised build, for production and benchmarks: the dev profile with the
# farm crate, its plugins and the crates on its hot paths compiled at
# opt-level 3 (the farm without debug assertions or overflow checks), over the
# very RocksDB build every other build uses: the dev profile already compiles
# librocksdb-sys and its codecs at -O2 with -DNDEBUG, which is RocksDB's own
# release level (its Makefile's release flags), so nothing of RocksDB is
# rebuilt. Binaries land where a plain `cargo build` puts them
# ($CARGO_TARGET_DIR/debug); a later plain build turns them back into -O0 ones.
#
# Only crates that no build script of the workspace uses are listed: giving a
# build-time crate (libc, memchr, cc, bindgen, ...) another opt-level would
# change librocksdb-sys's build script and rebuild RocksDB (20 minutes).
# Usage: scripts/build-opt.sh [more cargo build args]
set -euo pipefail
cd "$(dirname "$0")/.."
optimised=(
  farm zipserver farm-plugin-sdk farm-plugin-counter farm-plugin-ttl counter ttl
  rocksdb serde_json serde_core base64 ureq tokio hyper hyper-util axum httparse
  bytes tracing-core tracing-subscriber fastrand prometheus
)
args=()
for p in "${optimised[@]}"; do
  args+=(--config "profile.dev.package.$p.opt-level=3")
done
args+=(--config 'profile.dev.package.farm.debug-assertions=false'
       --config 'profile.dev.package.farm.overflow-checks=false')
exec cargo build --workspace "${args[@]}" "$@"
