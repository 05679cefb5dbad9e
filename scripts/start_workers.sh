#!/usr/bin/env bash
# Starts one dcompact-worker per NUMA node, as ToplingDB's start script does,
# for hosts run without systemd (with systemd, use dcompact-worker@<node>).
#
# Usage: start_workers.sh [--env-file FILE] [--dry-run] [start|stop|status]
#
# start   reads FILE (default /etc/compaction-farm/worker.env when present)
#         into the environment, finds the NUMA nodes with CPUs, and starts
#         for each node N
#           numactl --cpunodebind=N --membind=N -- dcompact-worker
#         with LISTEN_ADDR=LISTEN_HOST:(BASE_PORT+N), WORKER_DB_ROOT=
#         WORKERS_ROOT/N, ADVERTISE_ADDR=ADVERTISE_HOST:<port> when
#         ADVERTISE_HOST (or ToplingDB's SELF_ADDR) is set, and, with
#         NFS_DYNAMIC_MOUNT, NFS_MOUNT_ROOT/N. Each runs in a session of its
#         own, its output in WORKERS_ROOT/worker-N.log, its pid in
#         WORKERS_ROOT/worker-N.pid. It waits until every worker listens
#         and prints "node N: pid P listening on ADDR"; if one does not, it
#         stops the ones it started and exits 1.
# stop    SIGTERMs every worker with a pid file in WORKERS_ROOT (each
#         finishes its running attempts for SHUTDOWN_GRACE), waits
#         STOP_TIMEOUT seconds, then SIGKILLs what is left (with its
#         process group), and removes the pid files.
# status  one line per pid file: running or not, and the address.
#
# --dry-run (or DRY_RUN=1) prints the command line of each worker, one a
# line, and starts nothing.
#
# Settings of this script (in FILE or the environment; FILE wins, as in
# ToplingDB's scripts, which export them):
#   BASE_PORT      port of node 0; node N listens on BASE_PORT+N (default 8080;
#                  0: each worker on a free port of its own)
#   LISTEN_HOST    address to listen on (default 0.0.0.0)
#   ADVERTISE_HOST host name hosters use (ToplingDB: SELF_ADDR)
#   WORKERS_ROOT   parent of the workers' roots, pid and log files
#                  (default /var/lib/dcompact-worker)
#   NUMA_NODES     nodes to start, e.g. "0 1" (default: every node with CPUs)
#   NUMA_SYSFS     where the nodes are read from (default
#                  /sys/devices/system/node: node<N>/cpulist); tests point it
#                  at a fake tree
#   WORKER_BIN     the worker (default: dcompact-worker on PATH)
#   START_TIMEOUT  seconds a worker may take to listen (default 30)
#   STOP_TIMEOUT   seconds a worker may take to exit on stop (default 90)
# Every other variable of FILE reaches the workers as it is (see worker.env).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

env_file=""
dry_run=${DRY_RUN:-0}
action=start
while (($#)); do
  case "$1" in
    --env-file) env_file=${2:?--env-file needs a file}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    start | stop | status) action=$1; shift ;;
    -h | --help) usage ;;
    *) echo "start_workers: unknown argument $1" >&2; usage ;;
  esac
done
if [ -z "$env_file" ] && [ -r /etc/compaction-farm/worker.env ]; then
  env_file=/etc/compaction-farm/worker.env
fi
if [ -n "$env_file" ]; then
  set -a
  # shellcheck disable=SC1090
  . "$env_file"
  set +a
fi

base_port=${BASE_PORT:-8080}
listen_host=${LISTEN_HOST:-0.0.0.0}
advertise_host=${ADVERTISE_HOST:-${SELF_ADDR:-}}
workers_root=${WORKERS_ROOT:-/var/lib/dcompact-worker}
numa_sysfs=${NUMA_SYSFS:-/sys/devices/system/node}
start_timeout=${START_TIMEOUT:-30}
stop_timeout=${STOP_TIMEOUT:-90}

# The NUMA nodes that have CPUs (memory-only nodes run no worker), in order.
numa_nodes() {
  if [ -n "${NUMA_NODES:-}" ]; then
    echo "$NUMA_NODES" | tr ' ,' '\n\n' | grep -v '^$'
    return
  fi
  local dir
  for dir in "$numa_sysfs"/node[0-9]*; do
    if [ -s "$dir/cpulist" ] && [ -n "$(tr -d '[:space:]' < "$dir/cpulist")" ]; then
      echo "${dir##*/node}"
    fi
  done | sort -n
}

worker_bin() {
  if [ -n "${WORKER_BIN:-}" ]; then
    echo "$WORKER_BIN"
  elif command -v dcompact-worker >/dev/null; then
    command -v dcompact-worker
  else
    echo "start_workers: dcompact-worker is not on PATH: set WORKER_BIN" >&2
    return 1
  fi
}

# Sets `cmd` to the command line of node $1's worker ($2: how many nodes,
# $3: the worker binary).
command_of() {
  local node=$1 nodes=$2 bin=$3 port
  port=$((base_port == 0 ? 0 : base_port + node))
  cmd=(env "LISTEN_ADDR=$listen_host:$port" "WORKER_DB_ROOT=$workers_root/$node")
  if [ -n "$advertise_host" ] && [ "$port" != 0 ]; then
    cmd+=("ADVERTISE_ADDR=$advertise_host:$port")
  fi
  case "${NFS_DYNAMIC_MOUNT:-false}" in
    1 | true | yes | on)
      if [ -z "${NFS_MOUNT_ROOT:-}" ]; then
        echo "start_workers: NFS_DYNAMIC_MOUNT needs NFS_MOUNT_ROOT" >&2
        return 1
      fi
      # Each worker mounts below a root of its own.
      cmd+=("NFS_MOUNT_ROOT=$NFS_MOUNT_ROOT/$node")
      ;;
  esac
  if command -v numactl >/dev/null; then
    cmd+=(numactl "--cpunodebind=$node" "--membind=$node" --)
  elif [ "$nodes" -gt 1 ]; then
    echo "start_workers: $nodes NUMA nodes but no numactl: install it (apt-get install numactl)" >&2
    return 1
  else
    echo "start_workers: no numactl: the worker of node $node runs unbound" >&2
  fi
  cmd+=("$bin")
}

pid_file() { echo "$workers_root/worker-$1.pid"; }
log_file() { echo "$workers_root/worker-$1.log"; }

# Whether pid $1 runs (a zombie, ended but not yet reaped by init, does not).
running() {
  local state
  # The field after the command name, which is in parentheses.
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Whether pid $1 is a dcompact-worker (not a pid reused by something else).
is_worker() {
  running "$1" && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q dcompact-worker
}

# The address node $1's worker printed ("listening on ADDR"), if any.
address_of() {
  sed -n 's/^listening on //p' "$(log_file "$1")" 2>/dev/null | tail -n 1
}

start_one() {
  local node=$1 pid
  shift
  if [ -f "$(pid_file "$node")" ] && is_worker "$(cat "$(pid_file "$node")")"; then
    echo "start_workers: node $node already has a worker (pid $(cat "$(pid_file "$node")"))" >&2
    return 1
  fi
  # A session of its own: the worker outlives this script and its terminal,
  # and stop can end its whole process group.
  : > "$(log_file "$node")"
  setsid "$@" < /dev/null >> "$(log_file "$node")" 2>&1 &
  pid=$!
  echo "$pid" > "$(pid_file "$node")"
}

wait_listening() {
  local node=$1 pid addr waited=0
  pid=$(cat "$(pid_file "$node")")
  while :; do
    addr=$(address_of "$node")
    if [ -n "$addr" ]; then
      echo "node $node: pid $pid listening on $addr"
      return 0
    fi
    if ! running "$pid"; then
      echo "start_workers: the worker of node $node exited; its log ($(log_file "$node")):" >&2
      tail -n 20 "$(log_file "$node")" >&2
      return 1
    fi
    if ((waited >= start_timeout * 10)); then
      echo "start_workers: the worker of node $node is not listening after ${start_timeout}s" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

stop_all() {
  local file pid node waited stopped=0
  for file in "$workers_root"/worker-*.pid; do
    [ -f "$file" ] || continue
    pid=$(cat "$file")
    node=${file##*/worker-}
    node=${node%.pid}
    if is_worker "$pid"; then
      kill -TERM "$pid"
      waited=0
      while running "$pid" && ((waited < stop_timeout * 10)); do
        sleep 0.1
        waited=$((waited + 1))
      done
      if running "$pid"; then
        echo "start_workers: node $node (pid $pid) still runs after ${stop_timeout}s: SIGKILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
      echo "node $node: pid $pid stopped"
      stopped=$((stopped + 1))
    fi
    rm -f "$file"
  done
  ((stopped)) || echo "start_workers: no worker was running" >&2
}

status_all() {
  local file pid node state
  for file in "$workers_root"/worker-*.pid; do
    [ -f "$file" ] || continue
    pid=$(cat "$file")
    node=${file##*/worker-}
    node=${node%.pid}
    state="not running"
    is_worker "$pid" && state="running, listening on $(address_of "$node")"
    echo "node $node: pid $pid $state"
  done
}

start_all() {
  local nodes count bin node cmd started=()
  nodes=$(numa_nodes)
  count=$(echo "$nodes" | grep -c .) || true
  if ((count == 0)); then
    echo "start_workers: no NUMA node with CPUs under $numa_sysfs" >&2
    return 1
  fi
  bin=$(worker_bin)
  if ((dry_run)); then
    for node in $nodes; do
      command_of "$node" "$count" "$bin" || return 1
      printf '%q ' "${cmd[@]}" | sed 's/ $//'
      echo
    done
    return 0
  fi
  mkdir -p "$workers_root"
  for node in $nodes; do
    if ! command_of "$node" "$count" "$bin" || ! start_one "$node" "${cmd[@]}"; then
      stop_started "${started[@]}"
      return 1
    fi
    started+=("$node")
  done
  for node in "${started[@]}"; do
    if ! wait_listening "$node"; then
      stop_started "${started[@]}"
      return 1
    fi
  done
}

# Ends the workers of the nodes given (a start that failed part way).
stop_started() {
  local node pid
  for node in "$@"; do
    pid=$(cat "$(pid_file "$node")" 2>/dev/null) || continue
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$(pid_file "$node")"
  done
}

case "$action" in
  start) start_all ;;
  stop) stop_all ;;
  status) status_all ;;
esac
