#!/usr/bin/env bash
# Installs what building and testing compaction-farm needs on a Debian
# machine with a Rust toolchain. Idempotent: installs only what is missing,
# and runs `apt-get update` only when something is.
set -euo pipefail

packages=(
  build-essential   # cc/c++ for RocksDB, its codecs and the farm's C++ shim
  libclang-dev      # bindgen in librocksdb-sys
  protobuf-compiler # protoc, for the etcd client
  etcd-server       # tests start a real etcd on 127.0.0.1
  openssl           # tests issue certificates for etcd over TLS
  bc                # arithmetic in the benchmark scripts
  prometheus        # the metrics test scrapes the worker with a real Prometheus
  chromium          # the web-view test drives /list in headless Chromium
  python3-fusepy    # the ESTALE test filesystem (FUSE, /usr/bin/python3; pulls libfuse2)
  numactl           # scripts/start_workers.sh and the packaged unit bind each worker to a NUMA node
  dpkg-dev          # dpkg-shlibdeps: scripts/package.sh computes the package's library dependencies
)
# `--crashtest`: also what scripts/crashtest.sh needs to build RocksDB's db_stress.
if [ "${1:-}" = "--crashtest" ]; then
  packages+=(
    libgflags-dev   # db_stress parses its flags with gflags
    python3         # tools/db_crashtest.py
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
