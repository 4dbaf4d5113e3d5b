#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what `npm pack` needs beyond scripts/setup-debian.sh: scripts/prebuild.js cross-builds
# the linux-arm64 addon (g++-aarch64-linux-gnu, Debian's arm64 static libbpf, libelf, zlib).
set -euo pipefail
if ! command -v aarch64-linux-gnu-g++ >/dev/null || [ ! -f /usr/lib/aarch64-linux-gnu/libbpf.a ] || [ ! -f /usr/lib/aarch64-linux-gnu/libelf.a ] || [ ! -f /usr/lib/aarch64-linux-gnu/libz.a ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu \
    libbpf-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64 >/dev/null
fi
