#!/usr/bin/env bash
# Builds RocksDB's db_stress from the RocksDB source that librocksdb-sys
# vendors (the exact version the farm links), with the farm client patch of
# this directory applied, and links it against the librocksdb.a that the
# cargo build already produced (same defines, so the same ABI). Only
# db_stress_tool/*.cc, the tool sources db_stress needs and
# test_util/testutil.cc are compiled here.
#
# Also builds libdb_stress_plugin.so beside it (db_stress_plugin.cc), the
# worker plugin with the db_stress classes a worker can serve.
# Prints the path of the db_stress binary on its last line of stdout.
# The result is cached outside the clone:
#   $CACHE/db_stress-<rocksdb version>-<patch hash>/db_stress
# Objects are kept in $CACHE/db_stress-<version>-obj and reused across
# patch changes (make rebuilds what the patch touches, by -MMD deps).
#
# With --debug it builds a second db_stress for db_crashtest.py whitebox,
# whose kill points (TEST_KILL_RANDOM) exist only without NDEBUG: the same
# vendored sources and patch, compiled without NDEBUG at -O0 together with
# all of RocksDB's library sources (the list librocksdb-sys compiles), so it
# links no librocksdb.a: $CACHE/db_stress-<version>-debug-<hash>/db_stress,
# objects in $CACHE/db_stress-<version>-debug-obj. No plugin is built there:
# the plugin is loaded by the (release) workers and comes from the release
# build.
#
# Environment: FARM_BUILD_DIR (cargo build dir, default
# $HOME/.cache/compaction-farm/target), ROCKSDB_LIB (a librocksdb.a to use
# instead of the newest one under FARM_BUILD_DIR), JOBS (default 2).
set -euo pipefail

variant=release
case "${1:-}" in
  --debug) variant=debug ;;
  "") ;;
  *) echo "build-db-stress: unknown argument $1" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
version=0.19.0+11.8.1
rocksdb_version=11.8.1
build_dir=${FARM_BUILD_DIR:-$HOME/.cache/compaction-farm/target}
cache=${FARM_CACHE_DIR:-$HOME/.cache/compaction-farm}
jobs=${JOBS:-2}

src=$(ls -d "$HOME"/.cargo/registry/src/*/librocksdb-sys-$version 2>/dev/null | head -1)
[ -n "$src" ] && [ -f "$src/rocksdb/tools/db_crashtest.py" ] || {
  echo "build-db-stress: librocksdb-sys-$version source not found under ~/.cargo/registry/src: run a cargo build first" >&2
  exit 1
}

newest() { ls -t "$@" 2>/dev/null | head -1; }
rocksdb_lib=${ROCKSDB_LIB:-$(newest "$build_dir"/debug/build/librocksdb-sys-*/out/librocksdb.a)}
snappy_lib=$(dirname "$rocksdb_lib")/libsnappy.a
[ "$variant" = debug ] && snappy_lib=$(newest "$build_dir"/debug/build/librocksdb-sys-*/out/libsnappy.a)
lz4_lib=$(newest "$build_dir"/debug/build/lz4-sys-*/out/liblz4.a)
zstd_lib=$(newest "$build_dir"/debug/build/zstd-sys-*/out/libzstd.a)
z_lib=$(newest "$build_dir"/debug/build/libz-sys-*/out/lib/libz.a)
rocksdb_libs=("$rocksdb_lib")
[ "$variant" = debug ] && rocksdb_libs=()
for f in "${rocksdb_libs[@]}" "$snappy_lib" "$lz4_lib" "$zstd_lib" "$z_lib"; do
  [ -f "$f" ] || { echo "build-db-stress: missing $f: run scripts/test.sh (or a cargo build) first" >&2; exit 1; }
done
lz4_inc=$(dirname "$lz4_lib")/include
zstd_inc=$(ls -d "$HOME"/.cargo/registry/src/*/zstd-sys-*/zstd/lib | head -1)
z_inc=$(dirname "$(dirname "$z_lib")")/include

# The defines and flags of librocksdb-sys's build.rs for x86_64 Linux with
# the workspace's features (snappy, lz4, zstd, zlib; no jemalloc, no rtti
# define), at the opt-level the workspace gives it (2). A mismatch in any
# define that changes a class layout (NDEBUG above all) would break the ABI.
defines=(-DSNAPPY=1 -DLZ4=1 -DZSTD=1 -DZLIB=1 -DNDEBUG=1 -DHAVE_ALIGNED_NEW
  -DHAVE_UINT128_EXTENSION -DOS_LINUX -DROCKSDB_PLATFORM_POSIX -DROCKSDB_LIB_IO_POSIX
  -DROCKSDB_SCHED_GETCPU_PRESENT -DROCKSDB_AUXV_GETAUXVAL_PRESENT
  -DROCKSDB_FALLOCATE_PRESENT -DROCKSDB_RANGESYNC_PRESENT -DGFLAGS=1)
cxxflags=(-O2 -g0 -std=c++20 -msse2 -include cstdint -Wno-unused-parameter -Wno-unused-variable
  -Wno-missing-field-initializers -Wno-strict-aliasing -Wno-invalid-offsetof)
if [ "$variant" = debug ]; then
  # Without NDEBUG: assertions, sync points and kill points compiled in.
  # -O0, as RocksDB's Makefile for DEBUG_LEVEL=2: about 380 files to
  # compile on a shared 2-core machine, and whitebox needs correctness, not
  # speed (objects left by an -O1 build are as good: same defines).
  defines=("${defines[@]/-DNDEBUG=1/}")
  cxxflags=("${cxxflags[@]/-O2/-O0}")
fi

sources=(
  db_stress_tool/batched_ops_stress.cc db_stress_tool/cf_consistency_stress.cc
  db_stress_tool/db_stress_common.cc db_stress_tool/db_stress_compaction_service.cc
  db_stress_tool/db_stress_compression_manager.cc db_stress_tool/db_stress_driver.cc
  db_stress_tool/db_stress_filters.cc db_stress_tool/db_stress_gflags.cc
  db_stress_tool/db_stress_listener.cc db_stress_tool/db_stress_shared_state.cc
  db_stress_tool/db_stress_test_base.cc db_stress_tool/db_stress_tool.cc
  db_stress_tool/db_stress_wide_merge_operator.cc db_stress_tool/expected_state.cc
  db_stress_tool/expected_value.cc db_stress_tool/no_batched_ops_stress.cc
  db_stress_tool/multi_ops_txns_stress.cc db_stress_tool/db_stress.cc
  db_stress_tool/db_stress_farm_client.cc
  test_util/testutil.cc
)
if [ "$variant" = debug ]; then
  # All of RocksDB's library sources, as librocksdb-sys lists them, with its
  # pre-generated build_version.cc instead of util/build_version.cc.
  while read -r f; do
    [ -n "$f" ] && [ "$f" != util/build_version.cc ] && sources+=("$f")
  done < "$src/rocksdb_lib_sources.txt"
  sources+=(farm_build_version.cc)
fi

patch_hash=$( (cat "$here"/*.patch "$here"/db_stress_farm_client.* "$here"/db_stress_plugin.cc; echo "${defines[*]} ${cxxflags[*]} ${sources[*]}") \
  | sha256sum | cut -c1-12)
suffix=
[ "$variant" = debug ] && suffix=-debug
out=$cache/db_stress-$rocksdb_version$suffix-$patch_hash
# One build of a variant at a time: a second caller waits, then finds the
# binary the first one built.
mkdir -p "$cache"
exec 9> "$cache/db_stress-$rocksdb_version$suffix.lock"
flock 9
if [ "$variant" = debug ] && [ -x "$out/db_stress" ]; then
  echo "$out/db_stress"
  exit 0
fi
if [ -x "$out/db_stress" ] && [ "$out/db_stress" -nt "$rocksdb_lib" ] && [ -f "$out/libdb_stress_plugin.so" ]; then
  echo "$out/db_stress"
  exit 0
fi

work=$cache/db_stress-$rocksdb_version$suffix-obj
mkdir -p "$work/obj"
# A fresh copy of the pristine source (mtimes kept, so objects of files the
# patch leaves alone stay valid), then the patch and the client files.
rm -rf "$work/src.new"
cp -a "$src/rocksdb" "$work/src.new"
patch -s -p1 -d "$work/src.new" < "$here/db_stress_farm.patch"
cp "$here"/db_stress_farm_client.h "$here"/db_stress_farm_client.cc "$here"/db_stress_plugin.cc \
  "$work/src.new/db_stress_tool/"
cp "$src/build_version.cc" "$work/src.new/farm_build_version.cc"
# Unchanged files keep their old mtime; changed ones get a new one.
if [ -d "$work/src" ]; then
  (cd "$work/src.new" && find . -type f) | while read -r f; do
    if [ -f "$work/src/$f" ] && cmp -s "$work/src/$f" "$work/src.new/$f"; then
      touch -r "$work/src/$f" "$work/src.new/$f"
    fi
  done
fi
rm -rf "$work/src"
mv "$work/src.new" "$work/src"

objs=()
for s in "${sources[@]}"; do objs+=("obj/${s%.cc}.o"); done
{
  echo "CXXFLAGS := ${defines[*]} ${cxxflags[*]} -Isrc -Isrc/include -Isrc/third-party/gtest-1.8.1/fused-src -I$src/snappy -I$src -I$lz4_inc -I$zstd_inc -I$z_inc"
  echo "all: ${objs[*]}"
  echo "obj/%.o: src/%.cc"
  printf '\t@mkdir -p $(dir $@)\n\t@echo "  CXX $<"\n\t@g++ $(CXXFLAGS) -MMD -MP -c $< -o $@\n'
  echo "-include \$(shell find obj -name '*.d')"
} > "$work/Makefile"

start=$(date +%s)
nice make -s -C "$work" -j"$jobs" all >&2
mkdir -p "$out"
(cd "$work" && nice g++ -o "$out/db_stress.tmp" "${objs[@]}" \
  "${rocksdb_libs[@]}" "$snappy_lib" "$lz4_lib" "$zstd_lib" "$z_lib" -lgflags -lpthread -ldl) >&2
# The worker plugin (PLUGINS) with the db_stress classes a worker can
# serve: no RocksDB of its own, its symbols resolve against the worker.
# Release only: the workers link a release RocksDB.
[ "$variant" = debug ] || (cd "$work" && nice g++ $(sed -n 's/^CXXFLAGS := //p' Makefile) -fPIC -shared \
  -fvisibility=hidden -fvisibility-inlines-hidden \
  -o "$out/libdb_stress_plugin.so" src/db_stress_tool/db_stress_plugin.cc \
  src/db_stress_tool/db_stress_compression_manager.cc) >&2
mv "$out/db_stress.tmp" "$out/db_stress"
cp "$src/rocksdb/tools/db_crashtest.py" "$src/rocksdb/tools/fault_injection_log_parser.py" "$out/"
echo "build-db-stress: built $out/db_stress in $(( $(date +%s) - start )) s" >&2
echo "$out/db_stress"
