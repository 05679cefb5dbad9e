#!/usr/bin/env bash
# Does the offload pay? Builds the optimised binaries (scripts/build-opt.sh) and
# runs `farm-bench offload` (local, farm in-process, farm MULTI_PROCESS and
# direct OpenAndCompact rounds, alternating) and `farm-bench job-cost` (the
# fixed cost of one remote job, in its parts), then prints the machine's load.
# On a 2-core machine the writer is pinned to CPU 0 and the worker to CPU 1.
# Plots go to docs/bench/.
# Usage: scripts/bench-offload.sh [farm-bench offload args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-opt.sh --quiet
bin="${CARGO_TARGET_DIR:-target}/debug"
echo "load before: $(uptime)"
"$bin/farm-bench" offload --plots docs/bench "$@"
echo "load after offload: $(uptime)"
"$bin/farm-bench" job-cost --modes direct,farm-inproc,farm-multi,farm-multi-paced
echo "load after job-cost: $(uptime)"
