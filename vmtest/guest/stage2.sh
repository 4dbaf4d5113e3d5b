#!/bin/bash
# SPDX-License-Identifier: MIT
# vmtest stage 2: PID 1 in the guest after switch_root into the overlay of the
# host root. Runs with the host's userland (bash, node, bpftool, iproute2).
#
# Reads from the results share (/run/vmtest, written by vmtest/run):
#   config   VMTEST_CWD, VMTEST_MODULES_DIR, VMTEST_GUEST_TIMEOUT
#   env      "export K=V" lines for the command
#   cmd      the command, a bash script
# Writes to it:
#   output.log  the command's stdout+stderr
#   uname       uname -r of the guest
#   t_start, t_end   guest uptime (s) when the command started/ended
#   status      the command's exit status (absent: the guest died first)
OUT=/run/vmtest
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "vmtest-stage2: $*" >/dev/console 2>/dev/null || echo "vmtest-stage2: $*"; }
poweroff_now() {
  sync
  echo o >/proc/sysrq-trigger
  # The root share may already be gone while the kernel powers off.
  { sleep 10; } 2>/dev/null
  exit 1
}
trap poweroff_now EXIT

# shellcheck disable=SC1091
. "$OUT/config"

m() { mount "$@" 2>/dev/null || say "mount $* failed"; }
# A fresh /tmp, unless the repository (and its kernel cache) lives under the host's /tmp
# (a CI clone may): a tmpfs would hide it. The overlay root is writable either way.
case "${VMTEST_CWD:-/}/" in
  /tmp/*) say "repository under /tmp: keeping the host's /tmp (overlaid)" ;;
  *) m -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp ;;
esac
mkdir -p /dev/shm && m -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mkdir -p /dev/pts && m -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
m -t bpf -o mode=700 bpf /sys/fs/bpf
m -t tracefs tracefs /sys/kernel/tracing
m -t debugfs debugfs /sys/kernel/debug
m -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
[ -d /sys/kernel/security ] && mount -t securityfs securityfs /sys/kernel/security 2>/dev/null

# The guest kernel's full modules tree (unpacked in .vmtest-cache on the host)
# so that modprobe works; the overlay makes /lib/modules writable.
rel=$(uname -r)
echo "$rel" >"$OUT/uname"
if [ -n "${VMTEST_MODULES_DIR:-}" ] && [ -d "$VMTEST_MODULES_DIR" ]; then
  mkdir -p "/lib/modules/$rel" && m --bind "$VMTEST_MODULES_DIR" "/lib/modules/$rel"
fi

# Host paths over guest paths ("SRC=DST ..."), e.g. another architecture's addon and objects.
for b in ${VMTEST_BINDS:-}; do
  src=${b%%=*} dst=${b#*=}
  if [ -d "$src" ]; then mkdir -p "$dst"; elif [ ! -e "$dst" ]; then mkdir -p "$(dirname "$dst")" && : >"$dst"; fi
  m --bind "$src" "$dst"
done

ip link set lo up 2>/dev/null || busybox ip link set lo up || say "cannot bring up lo"
hostname vmtest 2>/dev/null
[ -L /etc/mtab ] || ln -sf /proc/self/mounts /etc/mtab 2>/dev/null

cd "${VMTEST_CWD:-/}" || say "cannot cd to $VMTEST_CWD"
cut -d' ' -f1 /proc/uptime >"$OUT/t_start"
say "running command (uptime $(cat "$OUT/t_start")s)"
(
  # shellcheck disable=SC1091
  . "$OUT/env"
  if [ -n "${VMTEST_GUEST_TIMEOUT:-}" ]; then
    exec timeout -k 5 "$VMTEST_GUEST_TIMEOUT" /bin/bash "$OUT/cmd"
  else
    exec /bin/bash "$OUT/cmd"
  fi
) </dev/null >"$OUT/output.log" 2>&1
status=$?
cut -d' ' -f1 /proc/uptime >"$OUT/t_end"
echo "$status" >"$OUT/status"
say "command exited with status $status (uptime $(cat "$OUT/t_end")s)"
sync
poweroff_now
