#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI job: the addon built with AddressSanitizer + UndefinedBehaviorSanitizer (binding.gyp's
# tcpscope_sanitize, `npm run build:asan`) runs the runtime, capture, native-ownership and
# fuzz tests; any sanitizer report aborts the process and fails the job. Node itself is not
# instrumented: libasan is preloaded so it comes first, and leak detection is off because
# Node keeps allocations alive until exit by design (detect_leaks=0). The normal addon is
# rebuilt on the way out.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
restore() { node scripts/build.js addon >/dev/null; }
trap restore EXIT
npm run --silent build:asan >/dev/null
libasan=$(g++ -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "asan: libasan.so not found (apt-get install libasan8)"; exit 1; }
export LD_PRELOAD=$libasan
# allow_user_segv_handler: Node installs its own SIGSEGV handler (WebAssembly guards).
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:allow_user_segv_handler=1:detect_odr_violation=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The addon refuses to load without the runtime first: proof that the instrumented one runs.
if env -u LD_PRELOAD node -e "require('./build/Release/tcpscope.node')" 2>/dev/null; then
  echo "asan: build/Release/tcpscope.node is not the sanitized addon"; exit 1
fi
npx vitest run test/runtime.test.ts test/packets-pcapng.test.ts test/native-ownership.test.ts test/ring-lent.test.ts test/fuzz
echo "asan: clean in $(( SECONDS - start )) s"
