#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The TCP probes' tp_btf twins (bpf/include/tp_btf_twin.h) are what runs for a user without
# access to tracefs (a non-root user holding CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN); as root the
# suite exercises the tracepoint programs. This runs the probes' integration tests again with
# the twins forced, so both paths see the same real traffic and the same assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '\n=== tp_btf twins of the tracepoint programs (%ss)\n' "$SECONDS"
TCPSCOPE_TRACEPOINTS=btf TCPSCOPE_REQUIRE_BPF=1 npx vitest run test/conns.test.ts test/tcpevents.test.ts test/timeline.test.ts
./scripts/check-leftovers.sh
