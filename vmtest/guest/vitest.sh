#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs in the guest (through vmtest/run) from the repo root:
#   vmtest/guest/vitest.sh [--selftest] [FILE...]
# --selftest runs vmtest/selftest with its own config; FILEs run with the
# project's vitest.config.ts. Each vitest run writes a JSON report to the
# results share ($VMTEST_OUT/selftest.json, $VMTEST_OUT/vitest.json) and its
# wall time to $VMTEST_OUT/timings. Exit status: non-zero if any run failed.
set -u
out=${VMTEST_OUT:-/run/vmtest}
selftest=0
if [[ ${1:-} == --selftest ]]; then selftest=1; shift; fi

if [[ ! -e node_modules/.bin/vitest ]]; then
  echo "vmtest: node_modules/.bin/vitest not found in $PWD: run 'npm ci' on the host first" >&2
  exit 3
fi
export CI=${CI:-true}
# Plain output in the log files unless the caller asked for colour.
[[ -n ${FORCE_COLOR:-} ]] || export NO_COLOR=1
# The binary that `npx vitest` resolves to, run directly: under TCG npx itself
# costs ~10 s per call (it scans the whole node_modules tree). Set
# VMTEST_VITEST='npx vitest' to go through npx anyway.
read -r -a vitest <<<"${VMTEST_VITEST:-node_modules/.bin/vitest}"
# More vitest arguments (the arm64 leg runs every file in one process: --no-isolate --maxWorkers=1).
read -r -a extra <<<"${VMTEST_VITEST_ARGS:-}"
# Without KVM the guest is 5-10x slower than the host: stretch vitest's
# per-test and per-hook limits (the project's config has 30 s) so that slow
# emulation is not reported as a failure. Limits inside the tests are theirs.
timeouts=(--testTimeout="${VMTEST_TEST_TIMEOUT_MS:-120000}" --hookTimeout="${VMTEST_TEST_TIMEOUT_MS:-120000}")

rc=0
run() { # name, vitest args...
  local name=$1 t0 t1 r
  shift
  t0=$(date +%s.%N)
  "${vitest[@]}" run "${timeouts[@]}" "${extra[@]}" --reporter=default --reporter=json --outputFile.json="$out/$name.json" "$@"
  r=$?
  t1=$(date +%s.%N)
  echo "$name $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') $r" >>"$out/timings"
  ((r == 0)) || rc=$r
}

if ((selftest)); then run selftest --config vmtest/selftest/vitest.config.mts; fi
if (($# > 0)); then run vitest "$@"; fi
exit $rc
