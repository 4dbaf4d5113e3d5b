#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI: the example user project (examples/port-watch) against the packed package: npm pack,
# install from the tarball, tcpscope compile, the type-check tests (a misspelt map name must
# fail tsc), the probe test on this kernel, then the probe test under two kernels through
# `tcpscope vmtest` (sharing the repository's kernel cache, which the matrix step filled).
set -euo pipefail
cd "$(dirname "$0")/../examples/port-watch"
npm run pack-tcpscope
rm -rf node_modules package-lock.json
npm install --no-audit --no-fund
npm run build:bpf
TCPSCOPE_REQUIRE_BPF=1 npx vitest run
VMTEST_CACHE="$(cd ../.. && pwd)/.vmtest-cache" npm run test:kernels
