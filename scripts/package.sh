#!/usr/bin/env bash
# Builds the Debian package of an optimised build: compaction-farm_<version>_<arch>.deb.
#
# The binaries come from scripts/build-opt.sh (the farm crates at
# opt-level 3 over the one RocksDB build every build shares). They are built
# into a target directory of their own, <target>/package-opt, with the
# shared build directory (CARGO_BUILD_BUILD_DIR, else the target directory)
# holding the intermediate artifacts: the plain -O0 binaries in
# <target>/debug that tests run stay as they are, and nothing of RocksDB is
# compiled again.
#
# The package is staged with the files of packaging/ and built with
# dpkg-deb (no extra tool to install or build); dpkg-shlibdeps computes the library
# dependencies. Binaries are stripped of debug information (symbols stay,
# so backtraces keep function names).
#
#   /usr/bin/dcompact-worker, /usr/bin/zipserver
#   /usr/lib/compaction-farm/plugins/libcounter.so, libttl.so
#   /usr/lib/compaction-farm/start_workers.sh
#   /lib/systemd/system/dcompact-worker@.service
#   /etc/compaction-farm/worker.env, worker-0.env          (conffiles)
#   /usr/share/compaction-farm/grafana/compaction-farm.json
#   /usr/share/doc/compaction-farm/                         (README, OPERATIONS, copyright)
#
# Usage: scripts/package.sh [--out DIR] [more cargo build args, e.g. --quiet]
# DIR defaults to <target>/package. The last line on stdout is the path of
# the .deb; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

out=""
if [ "${1:-}" = "--out" ]; then
  out=$(realpath -m "${2:?--out needs a directory}")
  shift 2
fi
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")
build_dir=$(realpath -m "${CARGO_BUILD_BUILD_DIR:-$target_dir}")
opt_target="$target_dir/package-opt"
out=${out:-$target_dir/package}

scripts/setup.sh >&2
echo "package: optimised build into $opt_target (build dir $build_dir)" >&2
CARGO_BUILD_BUILD_DIR=$build_dir CARGO_TARGET_DIR=$opt_target \
  scripts/build-opt.sh --bin dcompact-worker --bin zipserver --lib "$@" >&2
bin="$opt_target/debug"

version=$(sed -n '/^\[package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' farm/Cargo.toml)
arch=$(dpkg --print-architecture)
deb="$out/compaction-farm_${version}_${arch}.deb"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/stage"

# install -D: parents made 0755; modes given per file.
put() { install -D -m "$1" "$2" "$stage/$3"; }
put 0755 "$bin/dcompact-worker" usr/bin/dcompact-worker
put 0755 "$bin/zipserver" usr/bin/zipserver
put 0644 "$bin/libcounter.so" usr/lib/compaction-farm/plugins/libcounter.so
put 0644 "$bin/libttl.so" usr/lib/compaction-farm/plugins/libttl.so
strip --strip-debug "$stage"/usr/bin/* "$stage"/usr/lib/compaction-farm/plugins/*.so
put 0755 scripts/start_workers.sh usr/lib/compaction-farm/start_workers.sh
put 0644 "packaging/dcompact-worker@.service" "lib/systemd/system/dcompact-worker@.service"
# worker.env may hold WORKER_AUTH_TOKEN and ETCD_PASSWORD: root only.
put 0600 packaging/worker.env etc/compaction-farm/worker.env
put 0644 packaging/worker-0.env etc/compaction-farm/worker-0.env
put 0644 docs/grafana/compaction-farm.json usr/share/compaction-farm/grafana/compaction-farm.json
put 0644 docs/OPERATIONS.md usr/share/doc/compaction-farm/OPERATIONS.md
put 0644 README.md usr/share/doc/compaction-farm/README.md
put 0644 packaging/copyright usr/share/doc/compaction-farm/copyright

# The shared libraries the binaries need, as package dependencies.
mkdir -p "$work/shlibs/debian"
printf 'Source: compaction-farm\n\nPackage: compaction-farm\nArchitecture: any\n' \
  > "$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e \
  "$stage/usr/bin/dcompact-worker" -e "$stage/usr/bin/zipserver" \
  -e "$stage/usr/lib/compaction-farm/plugins/libcounter.so" \
  -e "$stage/usr/lib/compaction-farm/plugins/libttl.so" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -p "$stage/DEBIAN"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|$depends|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" \
    -e "s|@MAINTAINER@|${DEB_MAINTAINER:-compaction-farm maintainers <compaction-farm@localhost>}|" \
    packaging/control > "$stage/DEBIAN/control"
printf '/etc/compaction-farm/worker.env\n/etc/compaction-farm/worker-0.env\n' > "$stage/DEBIAN/conffiles"
# systemd reads the new unit; nothing is enabled or started: a worker needs
# WORKER_AUTH_TOKEN and HOSTER_ROOTS (or NFS_MOUNT_ROOT) before it will run.
for script in postinst postrm; do
  printf '#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n' \
    > "$stage/DEBIAN/$script"
  chmod 0755 "$stage/DEBIAN/$script"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
  sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"

mkdir -p "$out"
# zstd: about ten times faster than xz at a 20% larger package, and read by
# every dpkg that can install it (the binaries need glibc 2.34, which comes
# with dpkg 1.21 or later: Debian 12, Ubuntu 22.04).
dpkg-deb --root-owner-group -Zzstd -z9 --build "$stage" "$deb" >&2
echo "package: $(du -h "$deb" | cut -f1) $deb" >&2
echo "$deb"
