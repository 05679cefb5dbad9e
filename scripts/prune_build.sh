#!/usr/bin/env bash
# Keeps a reused cargo target directory from filling the disk. Every build
# whose flags or checkout path differ (the -O0 build, the optimised one,
# another clone) leaves its own copy of each binary (about 60 MB each) and of
# the workspace crates' libraries, and nothing ever removes the older ones.
# This keeps the newest $FARM_KEEP_BUILDS (default 2: the plain build and the
# optimised one) of each, removes the rest, and drops incremental-compilation
# state when under 10 GB is free. Dependencies (RocksDB's 1.4 GB library
# among them) are kept: only the workspace's own outputs pile up.
#
# Usage: scripts/prune_build.sh <target dir>
set -euo pipefail
target_dir=${1:?target dir}
keep=${FARM_KEEP_BUILDS:-2}
deps="$target_dir/debug/deps"
[ -d "$deps" ] || exit 0

# The names of workspace crates' outputs, as cargo writes them (- becomes _).
workspace_stems() {
  cargo metadata --no-deps --format-version 1 --offline 2>/dev/null |
    grep -o '"name":"[^"]*","src_path"' | cut -d'"' -f4 | grep -v '^build-script' |
    tr - _ | sort -u
}

# Removes all but the newest $keep files among those given.
keep_newest() {
  ls -t "$@" 2>/dev/null | tail -n +"$((keep + 1))" | xargs -r rm -f
}

before=$(du -sm "$target_dir" | cut -f1)
for stem in $(workspace_stems); do
  shopt -s nullglob
  executables=()
  for f in "$deps/$stem"-*; do
    case $f in *.*) ;; *) [ -x "$f" ] && executables+=("$f") ;; esac
  done
  [ ${#executables[@]} -gt 0 ] && keep_newest "${executables[@]}"
  for ext in rlib rmeta so; do
    libs=("$deps/lib$stem"-*."$ext")
    [ ${#libs[@]} -gt 0 ] && keep_newest "${libs[@]}"
  done
  shopt -u nullglob
done
free_mb() { df -Pm "$target_dir" | awk 'NR == 2 {print $4}'; }
# Incremental state only speeds up a developer's next build: dropped when
# space runs short.
[ "$(free_mb)" -lt 10240 ] && rm -rf "$target_dir/debug/incremental"
after=$(du -sm "$target_dir" | cut -f1)
free=$(free_mb)
echo "prune_build: $target_dir ${before} MB -> ${after} MB; ${free} MB free on its disk"
if [ "$free" -lt 10240 ]; then
  echo "prune_build: warning: under 10 GB free; a cold build with its tests needs about 15 GB" >&2
fi
