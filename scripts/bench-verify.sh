#!/usr/bin/env bash
# Measures what the hoster's output check costs: runs the demo workload with
# verification on and off, alternating, and prints each run's wall time, the
# time spent verifying, and the ratio of the mean wall times.
# Usage: scripts/bench-verify.sh [runs per side, default 3] [farm-demo args...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
shift || true
scripts/setup.sh
cargo build --quiet --bins
demo="${CARGO_TARGET_DIR:-target}/debug/farm-demo"

declare -A total
total[true]=0
total[false]=0
for i in $(seq "$runs"); do
  for verify in true false; do
    start=$(date +%s.%N)
    out=$("$demo" --verify-output "$verify" "$@")
    end=$(date +%s.%N)
    wall=$(echo "$end - $start" | bc)
    total[$verify]=$(echo "${total[$verify]} + $wall" | bc)
    remote=$(grep -o 'remotely: [0-9]*' <<<"$out" | grep -o '[0-9]*')
    vtime=$(grep -o 'verification: [0-9.]* ms' <<<"$out" | grep -o '[0-9.]*')
    printf 'run %d verify=%-5s wall %6.2f s  remote compactions %3s  verifying %8s ms\n' \
      "$i" "$verify" "$wall" "$remote" "$vtime"
  done
done
on=$(echo "scale=3; ${total[true]} / $runs" | bc)
off=$(echo "scale=3; ${total[false]} / $runs" | bc)
echo "mean wall: verify on ${on} s, off ${off} s, ratio on/off $(echo "scale=3; $on / $off" | bc)"
