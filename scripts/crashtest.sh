#!/usr/bin/env bash
# RocksDB's own crash test with the farm doing the compactions.
#
# Builds db_stress from the RocksDB source librocksdb-sys vendors (the
# version the farm links) with the patch of tests/crashtest/ (its
# remote-compaction worker threads hand each job to a dcompact-worker over
# the farm's HTTP protocol), starts two workers on 127.0.0.1 (one with
# MULTI_PROCESS and its zipserver, one running attempts in-process), runs
# RocksDB's tools/db_crashtest.py blackbox and/or whitebox against them,
# and meanwhile injects farm faults at random: SIGKILL of a worker, of a
# child, of the zipserver; SIGSTOP/SIGCONT of a worker; a worker restarted
# on the same address. At the end it prints where the compactions ran (the
# workers' /metrics counters, the client's log, the DB's LOG files) and the
# faults by kind. See docs/CRASHTEST.md.
#
# Usage: scripts/crashtest.sh [--duration 30m] [--mode blackbox|whitebox|both]
#                             [--selftest] [--no-faults] [--keep]
#   --duration   total time of the crash test (s, m or h suffix); with
#                --mode both each mode gets half
#   --selftest   run against a deliberately wrong worker
#                (FARM_SELFTEST_DROP_KEYS, farm/src/worker/selftest.rs): the
#                crash test must FAIL; the script exits 0 only if it does
#   --no-faults  no farm faults (db_stress is still killed by the crash test)
#   --keep       keep the run directory (logs, DB) for a post-mortem
# Environment: FARM_WORKER_BIN (a dcompact-worker to use instead of building
# one), FARM_SELFTEST_DROP_KEYS_EVERY (the self-test's n, default 500).
# FARM_CRASHTEST_MAX_KEY (the --max_key argument, default --max_key=100000;
# empty leaves max_key randomised), FARM_CRASHTEST_SESSION_SECS (default 300).
# Exit status: 0 when the crash test passed (or, with --selftest, failed as
# it must), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

duration=30m
mode=both
selftest=0
faults=1
keep=0
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --selftest) selftest=1; shift ;;
    --no-faults) faults=0; shift ;;
    --keep) keep=1; shift ;;
    *) echo "crashtest: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$duration" in
  *h) secs=$(( ${duration%h} * 3600 )) ;;
  *m) secs=$(( ${duration%m} * 60 )) ;;
  *s) secs=${duration%s} ;;
  *) secs=$duration ;;
esac
case "$mode" in
  blackbox|whitebox) modes=("$mode") ;;
  both) modes=(blackbox whitebox); secs=$(( secs / 2 )) ;;
  *) echo "crashtest: --mode must be blackbox, whitebox or both" >&2; exit 2 ;;
esac

log() { echo "crashtest: $*" >&2; }

# ---- build ----
bash scripts/setup.sh --crashtest
export CARGO_BUILD_BUILD_DIR=${CARGO_BUILD_BUILD_DIR:-$HOME/.cache/compaction-farm/target}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
build_start=$(date +%s)
# FARM_WORKER_BIN: a dcompact-worker built elsewhere (its zipserver beside it).
if [ -n "${FARM_WORKER_BIN:-}" ]; then
  worker_bin=$FARM_WORKER_BIN
else
  cargo build --workspace --bins --quiet
  worker_bin=$CARGO_TARGET_DIR/debug/dcompact-worker
fi
db_stress=$(FARM_BUILD_DIR=$CARGO_BUILD_BUILD_DIR tests/crashtest/build-db-stress.sh | tail -1)
crashtest_py=$(dirname "$db_stress")/db_crashtest.py
# Whitebox needs RocksDB's kill points (TEST_KILL_RANDOM), which exist only
# without NDEBUG: a second db_stress, built from the same sources and patch
# without NDEBUG and with all of RocksDB compiled in (it links no
# librocksdb.a). Blackbox keeps the release one, the RocksDB the farm links.
# Built when whitebox is about to start (below): from nothing it takes a
# long while, and with --mode both the blackbox half need not wait for it.
db_stress_debug=
debug_stress() {
  [ -n "$db_stress_debug" ] && return 0
  local t=$(date +%s)
  db_stress_debug=$(FARM_BUILD_DIR=$CARGO_BUILD_BUILD_DIR tests/crashtest/build-db-stress.sh --debug | tail -1)
  log "debug db_stress ready in $(( $(date +%s) - t )) s: $db_stress_debug"
  [ -x "$db_stress_debug" ]
}
# db_stress's custom compression manager (--compression_manager=custom), for
# the workers: they load it through PLUGINS.
plugin=$(dirname "$db_stress")/libdb_stress_plugin.so
log "binaries ready in $(( $(date +%s) - build_start )) s: $db_stress"

# ---- the run's own directories ----
run=$(mktemp -d /tmp/farm-crashtest.XXXXXX)
mkdir "$run/db" "$run/expected"
log "run directory $run"
nworkers=2
injector_pid=
crash_pid=

alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }

stop_group() { # pid, grace seconds: SIGTERM the group, then SIGKILL it
  local pid=$1 grace=$2
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq $(( grace * 10 ))); do alive "$pid" || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  kill -CONT -- "-$pid" 2>/dev/null || true
}

cleanup() {
  set +e
  [ -n "$injector_pid" ] && stop_group "$injector_pid" 1
  [ -n "$crash_pid" ] && stop_group "$crash_pid" 1
  for i in $(seq 0 $(( nworkers - 1 ))); do
    [ -f "$run/worker-$i.pid" ] && stop_group "$(cat "$run/worker-$i.pid")" 10
  done
  if ((keep)); then log "kept $run"; else rm -rf "$run"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- workers ----
# Worker 0: MULTI_PROCESS with its zipserver; worker 1: attempts in-process.
# Each is started in a process group of its own (setsid), so that the
# group's end takes its zipserver along; children have groups of their own
# and die with the worker (PR_SET_PDEATHSIG).
start_worker() { # index, address (127.0.0.1:0 the first time)
  local i=$1 addr=$2 mode_env=(MULTI_PROCESS=false)
  if [ "$i" -eq 0 ]; then
    mode_env=(MULTI_PROCESS=true "ZIP_SERVER_OPTIONS=listening_ports=127.0.0.1:0:num_threads=2")
  fi
  local incarnation=$(( $(cat "$run/worker-$i.incarnations" 2>/dev/null || echo 0) + 1 ))
  echo "$incarnation" > "$run/worker-$i.incarnations"
  local out="$run/worker-$i.$incarnation.log"
  mkdir -p "$run/worker-$i"
  local selftest_env=()
  ((selftest)) && selftest_env=(FARM_SELFTEST_DROP_KEYS=${FARM_SELFTEST_DROP_KEYS_EVERY:-500})
  setsid env "${selftest_env[@]}" "${mode_env[@]}" \
    WORKER_DB_ROOT="$run/worker-$i" HOSTER_ROOTS="$run/db" LISTEN_ADDR="$addr" \
    PLUGINS="$plugin" MAX_PARALLEL_COMPACTIONS=2 \
    MAX_WAITING_COMPACTIONS=16 DEL_WORKER_TEMP_DB=true RUST_LOG=info \
    "$worker_bin" > "$out" 2>&1 < /dev/null &
  local pid=$!
  # Its end is the monitor's or cleanup's business, not the shell's job table.
  disown "$pid" 2>/dev/null || true
  echo "$pid" > "$run/worker-$i.pid"
  for _ in $(seq 300); do
    if grep -q '^listening on ' "$out"; then
      sed -n 's/^listening on //p' "$out" | head -1 > "$run/worker-$i.addr"
      return 0
    fi
    alive "$pid" || break
    sleep 0.1
  done
  log "worker $i did not start on $addr: $(tail -3 "$out")"
  return 1
}

# /metrics of worker i's current incarnation, kept per incarnation so that
# counters survive restarts (each incarnation's last scrape counts).
scrape() {
  local i=$1 inc
  inc=$(cat "$run/worker-$i.incarnations")
  curl -s -m 2 "http://$(cat "$run/worker-$i.addr")/metrics" > "$run/metrics-$i.$inc.tmp" 2>/dev/null \
    && [ -s "$run/metrics-$i.$inc.tmp" ] \
    && mv "$run/metrics-$i.$inc.tmp" "$run/metrics-$i.$inc.prom"
  rm -f "$run/metrics-$i.$inc.tmp"
}

for i in $(seq 0 $(( nworkers - 1 ))); do start_worker "$i" 127.0.0.1:0; done
workers_csv=$(cat "$run"/worker-*.addr | paste -sd, -)
log "workers: $workers_csv"

# ---- faults ----
fault() { echo "$(date +%s) $1 worker-$2 ${3:-}" >> "$run/faults.log"; }

restart_on_same_address() { # index
  local i=$1 addr
  addr=$(cat "$run/worker-$i.addr")
  for _ in $(seq 100); do alive "$(cat "$run/worker-$i.pid")" || break; sleep 0.1; done
  sleep 0.$(( RANDOM % 10 ))
  start_worker "$i" "$addr" || { fault start_failed "$i"; return 0; }
}

inject_one() {
  local i=$(( RANDOM % nworkers )) pid kinds victim
  pid=$(cat "$run/worker-$i.pid")
  kinds=(kill_worker kill_child stop_worker restart_worker)
  [ "$i" -eq 0 ] && kinds+=(kill_zipserver kill_child)
  case ${kinds[$(( RANDOM % ${#kinds[@]} ))]} in
    kill_worker)
      scrape "$i"
      kill -KILL -- "-$pid" 2>/dev/null || true
      fault kill_worker "$i"
      restart_on_same_address "$i" ;;
    kill_child)
      victim=$(pgrep -P "$pid" | while read -r c; do
        [ "$(cat "/proc/$c/comm" 2>/dev/null)" = zipserver ] || echo "$c"; done | head -1)
      if [ -n "$victim" ]; then kill -KILL "$victim" 2>/dev/null && fault kill_child "$i" "$victim"; fi ;;
    kill_zipserver)
      victim=$(pgrep -P "$pid" -x zipserver | head -1)
      if [ -n "$victim" ]; then kill -KILL "$victim" 2>/dev/null && fault kill_zipserver "$i" "$victim"; fi ;;
    stop_worker)
      kill -STOP "$pid" 2>/dev/null || return 0
      fault stop_worker "$i"
      sleep $(( RANDOM % 6 + 1 ))
      kill -CONT "$pid" 2>/dev/null || true ;;
    restart_worker)
      scrape "$i"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      fault restart_worker "$i"
      restart_on_same_address "$i" ;;
  esac
}

monitor() { # scrapes, counts the DB's LOG files, and injects faults
  local next_fault=$(( $(date +%s) + 10 ))
  while true; do
    for i in $(seq 0 $(( nworkers - 1 ))); do scrape "$i"; done
    python3 tests/crashtest/summarize.py harvest "$run" 2>/dev/null || true
    if ((faults)) && [ "$(date +%s)" -ge "$next_fault" ]; then
      inject_one
      next_fault=$(( $(date +%s) + RANDOM % 16 + 5 ))
    fi
    sleep 2
  done
}
setsid bash -c "$(declare -f alive scrape start_worker fault restart_on_same_address inject_one monitor log)
  run='$run' nworkers=$nworkers faults=$faults selftest=$selftest worker_bin='$worker_bin' plugin='$plugin' \
  FARM_SELFTEST_DROP_KEYS_EVERY='${FARM_SELFTEST_DROP_KEYS_EVERY:-}'; cd '$repo'; monitor" \
  > "$run/monitor.log" 2>&1 < /dev/null &
injector_pid=$!

# ---- the crash test ----
# Options fixed here, each with the reason the farm needs it; every other
# option stays as db_crashtest.py randomises it.
fixed=(
  # The point of the run: the worker threads exist and hand jobs to the farm
  # (db_crashtest.py picks 0 or 8 at random; 0 would test no farm at all).
  --remote_compaction_worker_threads=8
  # Only kSuccess and kUseLocal are safe answers: a farm failure must
  # become a local compaction (db_crashtest.py fixes it to 1 as well).
  --remote_compaction_failure_fall_back_to_local=1
  # The protocol has no resumption: each attempt writes a new output
  # directory and the worker runs OpenAndCompact with allow_resumption off.
  --allow_resumption_one_in=0
  # db_crashtest.py's blob direct write presets (one invocation in ten)
  # switch remote compaction off altogether; blob files themselves are off
  # whenever remote compaction is on (db_crashtest.py: "Fix races when both
  # Remote Compaction + BlobDB enabled"). Keep remote compaction on.
  --enable_blob_direct_write=0
  # The farm cannot serve these two: db_stress's classes read the db_stress
  # process itself, which no OPTIONS file carries and no worker can see.
  # DbStressCompactionFilterFactory decides from db_stress's in-memory
  # shared state (its key locks and expected values); a worker would refuse
  # every job naming it (412: no such class) and each would run locally.
  --enable_compaction_filter=0
  # use_put_entity_one_in > 0 makes DBStressWideMergeOperator the merge
  # operator: its output depends on db_stress's --use_put_entity_one_in flag
  # and is a wide-column entity, which the farm's plugin ABI cannot return.
  # With 0 the merge operator is RocksDB's built-in PutOperator.
  --use_put_entity_one_in=0
  # Not the farm's: the machine's. db_crashtest.py draws max_key from
  # 100000 and 25000000 once per invocation; with 25M keys each db_stress
  # run spends its 120 s interval setting up a 1 GB expected state on a
  # shared 2-core machine and does almost no writes. Set FARM_CRASHTEST_MAX_KEY=
  # (empty) to leave it randomised on a larger machine.
  ${FARM_CRASHTEST_MAX_KEY-"--max_key=100000"}
)
# db_crashtest.py draws some choices once per invocation (a blob preset
# that turns remote compaction off, 10%; the compaction style), so the
# time of each mode is cut into sessions of at most $session seconds, each
# on a fresh DB: more of those draws in one run.
session=${FARM_CRASHTEST_SESSION_SECS:-300}
status=0
n=0
for m in "${modes[@]}"; do
  # Its time starts once its db_stress is there (a failed build fails the run).
  if [ "$m" = whitebox ]; then debug_stress || { status=1; break; }; fi
  mode_end=$(( $(date +%s) + secs ))
  while [ "$status" -eq 0 ] && [ "$(date +%s)" -lt $(( mode_end - 30 )) ]; do
    n=$(( n + 1 ))
    left=$(( mode_end - $(date +%s) ))
    len=$(( left < session ? left : session ))
    tmp="$run/db/s$n"
    mkdir -p "$tmp" "$run/expected/s$n"
    log "session $n: db_crashtest.py $m for $len s"
    if [ "$m" = whitebox ]; then
      stress=$db_stress_debug
      # DEBUG_LEVEL=1: a debug db_stress (assertions, sync points, kill
      # points); db_crashtest.py then keeps read fault injection on.
      debug_level=1
      # Not the farm's: the machine's. The non-kill check modes (universal,
      # FIFO, leveled) run ops_per_thread operations per thread to the end
      # (default 200000), too many for a -O0 debug db_stress on a shared
      # 2-core machine within a session: smaller runs let whitebox cycle
      # through its check modes. Its kill-point runs do 100 times that and
      # end at a kill point.
      extra=(--ops_per_thread=500)
    else
      stress=$db_stress
      # DEBUG_LEVEL=0: a release db_stress (NDEBUG, as the farm's
      # librocksdb.a); db_crashtest.py then leaves out read fault injection,
      # which needs sync points.
      debug_level=0
      # Not the farm's: a release db_stress refuses metadata read fault
      # injection (it needs sync points), and db_crashtest.py's release mode
      # zeroes only read_fault_one_in. The debug db_stress keeps it.
      extra=(--metadata_read_fault_one_in=0)
    fi
    setsid env DEBUG_LEVEL=$debug_level TEST_TMPDIR="$tmp" TEST_TMPDIR_EXPECTED="$run/expected/s$n" \
      FARM_WORKERS="$workers_csv" FARM_HOSTER_ROOT="$run/db" \
      FARM_CLIENT_LOG="$run/client.log" \
      python3 "$crashtest_py" "$m" --stress_cmd="$stress" --duration="$len" \
      "${fixed[@]}" "${extra[@]}" > "$run/crashtest-$n-$m.log" 2>&1 < /dev/null &
    crash_pid=$!
    rc=0
    wait "$crash_pid" || rc=$?
    crash_pid=
    log "session $n: db_crashtest.py $m exited $rc"
    python3 tests/crashtest/summarize.py harvest "$run" || true
    if [ "$rc" -ne 0 ]; then
      status=1
      grep -a -n -i -E "verification failed|inconsistent|TEST FAILED|Corruption|error" "$run/crashtest-$n-$m.log" | head -20 >&2 || true
      cp "$run/crashtest-$n-$m.log" "/tmp/farm-crashtest-$m-failed.log"
      log "the crash test's output: /tmp/farm-crashtest-$m-failed.log"
    fi
  done
  # The counts so far, after each mode (they add up over the modes).
  for i in $(seq 0 $(( nworkers - 1 ))); do scrape "$i"; done
  python3 tests/crashtest/summarize.py report "$run" "$m" "$status" > "$run/report-after-$m.md" || true
done

stop_group "$injector_pid" 1
injector_pid=
for i in $(seq 0 $(( nworkers - 1 ))); do scrape "$i"; done
for m in "${modes[@]}"; do
  [ "${#modes[@]}" -gt 1 ] && { echo; echo "(counts after $m, cumulative)"; cat "$run/report-after-$m.md"; }
done
python3 tests/crashtest/summarize.py report "$run" "${modes[*]}" "$status"

if ((selftest)); then
  # The failure must be db_stress finding data that differs from its
  # expected state, not any failure.
  if [ "$status" -ne 0 ] && grep -a -q -i -E "verification failed|inconsistent values|expected state has" \
      "/tmp/farm-crashtest-$m-failed.log"; then
    log "SELFTEST PASSED: the crash test failed against the key-dropping worker"
    exit 0
  fi
  log "SELFTEST FAILED: the crash test passed although the worker dropped keys"
  exit 1
fi
exit "$status"
