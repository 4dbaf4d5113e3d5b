#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's shape, checked without a kernel: the dependency rule of lib/ (no import
# cycles, no upward imports), the API reports (api/*.api.md: public changes are deliberate),
# tests, examples and bench type-checked, and the kernel-struct types in lib/generated/
# regenerated from the build's BTF and compared with the committed ones.
# Needs `npm ci` (or `npm run build`) first: the generated types come from build/bpf/*.bpf.o.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "--- dependency rule of lib/"; node scripts/check-deps.js
echo "--- API reports"; node scripts/api-report.js --check
echo "--- type check (lib, test, examples, bench)"; npx tsc -p tsconfig.check.json
echo "--- generated kernel-struct types"; node scripts/gen-raw-types.js --check
echo "shape: ok"
