#!/bin/bash
# SPDX-License-Identifier: MIT
# Smoke checks of a guest's environment: vmtest/run --kernel NAME -- vmtest/guest/checks.sh
set -x
uname -r
ls -l /sys/kernel/btf/vmlinux
node -e "console.log(process.version)"
bpftool prog show
ls /sys/bus/event_source/devices
modprobe -v dummy && lsmod | grep -w dummy
ip -br addr show lo
grep -E ' (/|/sys/fs/bpf|/sys/kernel/tracing|/sys/fs/cgroup|/tmp|/run/vmtest|/lib/modules/[^ ]*|/usr/lib/modules/[^ ]*) ' /proc/mounts
