#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The long fuzz run behind the fuzz tests (test/fuzz/): by default 100,000 mutated objects
# through BpfObject.open (in child processes, so a libbpf crash is seen; a tenth of that
# number also loaded: CO-RE relocation and the verifier), 100,000 mutated
# BTF blobs and objects through the TypeScript readers, codecs and gen-types, and 30,000
# filters, pcapng files and configs. Every input that crashes, hangs or escapes with an
# untyped error is kept under test/fixtures/fuzz/<target>/, which the normal suite replays.
#
#   scripts/fuzz.sh [N]          N inputs per binary target (default 100000)
#   FUZZ_SEED=123 scripts/fuzz.sh   repeat a run (the seed is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
small=$(( n * 3 / 10 ))
export FUZZ_SEED=${FUZZ_SEED:-$(( $(date +%s) % 1000000 ))}
export FUZZ_KEEP=1
export FUZZ_REPORT
FUZZ_REPORT=$(mktemp)
trap 'rm -f "$FUZZ_REPORT"' EXIT
[ -f dist/lib/bpf/object.js ] || node scripts/build.js ts
echo "fuzz: seed $FUZZ_SEED, $n objects and BTF blobs, $small filters/pcapng files/configs"
start=$SECONDS
status=0
FUZZ_ITERATIONS_OBJECT=$n FUZZ_ITERATIONS_BTF=$n FUZZ_ITERATIONS_ELF=$n FUZZ_ITERATIONS_OBJECTLOAD=$(( n / 10 )) \
FUZZ_ITERATIONS_FILTER=$small FUZZ_ITERATIONS_PCAPNG=$small FUZZ_ITERATIONS_CONFIG=$small \
  npx vitest run test/fuzz --testTimeout=7200000 --reporter=dot || status=$?
echo
echo "=== fuzz summary (seed $FUZZ_SEED, $(( SECONDS - start )) s, load: $(cut -d' ' -f1-3 /proc/loadavg))"
cat "$FUZZ_REPORT"
git status --short test/fixtures/fuzz | sed 's/^/new fixture: /'
exit $status
