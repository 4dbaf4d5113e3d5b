#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI job: packs the npm tarball once (with the prebuilds), then proves it on a clean root
# (.ci/clean-root.sh: no compiler, Node 20/22/24), on arm64 in a guest (.ci/clean-root-arm64.sh)
# and in the agent's container image
# (.ci/container.sh: built with podman, run with three capabilities, /metrics scraped).
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/pack-tools.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
t0=$SECONDS
tgz=$(npm pack --silent --pack-destination "$out" | tail -1)
echo "package: packed $tgz in $((SECONDS - t0)) s"
TCPSCOPE_CI_TARBALL=$out/$tgz .ci/clean-root.sh
TCPSCOPE_CI_TARBALL=$out/$tgz .ci/clean-root-arm64.sh
TCPSCOPE_CI_TARBALL=$out/$tgz .ci/container.sh
