#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when anything tcpscope or its tests attach is still in the kernel: programs whose
# names come from our objects, XDP/tc attachments, test namespaces and veths, pins.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
names=$(for o in "$root"/build/bpf/*.bpf.o; do
  bpftool btf dump file "$o" 2>/dev/null | sed -n "s/^\[[0-9]*\] FUNC '\([^']*\)'.*linkage=global.*/\1/p"
done | cut -c1-15 | sort -u)
loaded=$(bpftool prog show 2>/dev/null | sed -n 's/^[0-9]*: [a-z_]*  name \([^ ]*\) .*/\1/p' | sort -u)
ours=$(comm -12 <(echo "$names") <(echo "$loaded"))
if [ -n "$ours" ]; then echo "leftover BPF programs still loaded: $ours"; status=1; fi
net=$(bpftool net show 2>/dev/null | grep -E 'id [0-9]+' || true)
if [ -n "$net" ]; then echo "leftover XDP/tc attachments:"; echo "$net"; status=1; fi
ns=$(ip netns list 2>/dev/null | grep -E '^tcps-' || true)
if [ -n "$ns" ]; then echo "leftover test namespaces: $ns"; status=1; fi
links=$(ip -br link 2>/dev/null | grep -E '^(tsh|tsn|tcps)' || true)
if [ -n "$links" ]; then echo "leftover test interfaces: $links"; status=1; fi
if [ -d /sys/fs/bpf/tcpscope ] && [ -n "$(ls -A /sys/fs/bpf/tcpscope 2>/dev/null)" ]; then
  echo "leftover pins under /sys/fs/bpf/tcpscope: $(ls /sys/fs/bpf/tcpscope)"; status=1
fi
[ $status = 0 ] && echo "no leftovers: nothing of tcpscope's is attached, loaded or pinned"
exit $status
