#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI: what the arm64 leg of the kernel matrix needs on the host (vmtest/README.md, "arm64
# kernels"): qemu-system-aarch64, and for the arm64 addon, unless the package's prebuilt
# one exists, the cross compiler and arm64 libbpf, libelf and zlib.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs=(qemu-system-arm)
if [[ ! -f prebuilds/linux-arm64/tcpscope.node ]]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
  pkgs+=(g++-aarch64-linux-gnu libbpf-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64)
fi
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
