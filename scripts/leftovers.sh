#!/usr/bin/env bash
# Lists the processes a test run left behind, and fails when there are any.
#
# Usage: scripts/leftovers.sh <run id> <target dir>
#
# A process is a leftover when its environment carries FARM_TEST_RUN=<run id>
# (everything the suite starts inherits it: workers, their children and
# grandchildren, etcd, prometheus, chromium), or when its executable lies
# under <target dir> (the project's binaries, whatever their environment;
# not the build scripts cargo runs from <target dir>/*/build/, which may be
# another build's). This script, its own children and the shells that
# called it are not counted. Processes get a few seconds to finish dying;
# those still there are listed and the script exits 1. It kills nothing:
# what to end is for whoever reads the list.
set -uo pipefail
run_id=${1:?run id}
target_dir=$(realpath -m "${2:?target dir}")
me=$$

parent_of() {
  awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# Whether $1 is this script, one of its ancestors or one of its descendants.
related() {
  local pid=$1
  while [ "$pid" -gt 1 ] 2>/dev/null; do
    [ "$pid" = "$me" ] && return 0
    pid=$(parent_of "$pid")
  done
  pid=$me
  while [ "$pid" -gt 1 ] 2>/dev/null; do
    [ "$pid" = "$1" ] && return 0
    pid=$(parent_of "$pid")
  done
  return 1
}

candidates() {
  # Zombies have neither environment nor executable: nothing runs.
  grep -lxzF "FARM_TEST_RUN=$run_id" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
  find /proc/[0-9]*/exe -maxdepth 0 -lname "$target_dir/*" ! -lname "$target_dir/*/build/*" \
    2>/dev/null | cut -d/ -f3
}

leftovers() {
  local pid
  for pid in $(candidates | sort -un); do
    # Gone already (a helper of this script, or a process that just died).
    [ -d "/proc/$pid" ] || continue
    related "$pid" || echo "$pid"
  done
}

left=""
for _ in $(seq 50); do
  left=$(leftovers)
  [ -z "$left" ] && exit 0
  sleep 0.2
done
echo "== the test run left these processes behind ==" >&2
# shellcheck disable=SC2086
ps -o pid,ppid,etime,args -p "$(echo $left | tr ' ' ',')" >&2
exit 1
