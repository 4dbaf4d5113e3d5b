#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI job: builds the agent image of deploy/image/Containerfile with podman from a base made
# here (the mmdebstrap root of .ci/debian-base.sh; no registry is needed), runs the agent in it
# as the DaemonSet does (host network and PID namespace, bpffs, tracefs and the cgroup root
# mounted, read-only root) with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, and scrapes its
# /metrics until it shows loopback packets. `-i lo` keeps it off every other interface.
#
#   .ci/container.sh          (root; TCPSCOPE_CI_TARBALL=FILE.tgz skips `npm pack`)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TCPSCOPE_CI_CACHE:-/var/tmp/tcpscope-ci}
say() { printf 'container: %s\n' "$*"; }
fail() { printf 'container: FAIL: %s\n' "$*" >&2; exit 1; }

command -v podman >/dev/null && command -v runc >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc >/dev/null

# Podman with its own storage (vfs: no overlay module needed), runc (crun refuses hybrid
# cgroup hierarchies), and no default ulimits (raising them needs CAP_SYS_RESOURCE, which a CI
# sandbox may lack).
conf=$(mktemp -d)
name=tcpscope-ci-$$
cleanup() {
  podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$conf"
}
trap cleanup EXIT
cat >"$conf/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$cache/containers/storage"
runroot = "$cache/containers/run"
EOF
cat >"$conf/containers.conf" <<EOF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_STORAGE_CONF=$conf/storage.conf CONTAINERS_CONF=$conf/containers.conf

base_image=localhost/tcpscope-base:bookworm
base_tar=$(.ci/debian-base.sh)
if ! podman image exists "$base_image" || [ "$base_tar" -nt "$cache/containers/base.stamp" ]; then
  podman import --quiet "$base_tar" "$base_image" >/dev/null
  touch "$cache/containers/base.stamp"
fi

image=localhost/tcpscope-ci:$$
t0=$SECONDS
deploy/image/build.sh --base "$base_image" --tag "$image" ${TCPSCOPE_CI_TARBALL:+--tarball "$TCPSCOPE_CI_TARBALL"} | tail -1
say "image built in $((SECONDS - t0)) s: $(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"

port=$((19000 + $$ % 1000))
printf '{ "exporters": { "prometheus": { "port": %d, "host": "127.0.0.1" }, "alerts": { "ndjson": "-" } } }\n' "$port" >"$conf/config.json"
podman run -d --name "$name" --network=host --pid=host \
  --cap-drop=all --cap-add=BPF,PERFMON,NET_ADMIN --security-opt seccomp=unconfined \
  --read-only --tmpfs /tmp \
  -v /sys/fs/bpf:/sys/fs/bpf -v /sys/kernel/tracing:/sys/kernel/tracing:ro -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
  -v "$conf/config.json:/etc/tcpscope/config.json:ro" \
  "$image" serve --config /etc/tcpscope/config.json -i lo >/dev/null

for _ in $(seq 1 600); do
  podman logs "$name" 2>&1 | grep -q 'tcpscope serve: watching' && break
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.1
done
podman logs "$name" 2>&1 | grep -q 'tcpscope serve: watching' || { podman logs "$name"; fail "the agent did not start"; }
say "$(podman logs "$name" 2>&1 | grep 'tcpscope serve: watching')"

# The agent's capabilities, as the kernel sees them: exactly BPF (39), PERFMON (38) and NET_ADMIN (12).
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
capeff=$(awk '/^CapEff/ { print $2 }' "/proc/$pid/status")
[ "$capeff" = 000000c000001000 ] || fail "the agent runs with CapEff $capeff, expected 000000c000001000 (BPF, PERFMON, NET_ADMIN)"

# Scraping is loopback TCP traffic itself: scrape until the packets counter for lo moves.
metrics=
for _ in $(seq 1 100); do
  metrics=$(curl -sf "http://127.0.0.1:$port/metrics" || true)
  echo "$metrics" | grep -qE '^tcpscope_packets_total\{interface="lo",flags="[a-z]+"\} [1-9]' && break
  sleep 0.2
done
echo "$metrics" | grep -qE '^tcpscope_packets_total\{interface="lo",flags="[a-z]+"\} [1-9]' || { echo "$metrics" | head -40; podman logs "$name"; fail "no loopback packets in /metrics"; }
say "scraped: $(echo "$metrics" | grep -E '^tcpscope_(packets_total\{interface="lo",flags="syn"|ringbuf_received_total)' | tr '\n' ' ')"

podman stop -t 30 "$name" >/dev/null
podman logs "$name" 2>&1 | grep -q 'stopped, everything detached' || { podman logs "$name"; fail "the agent did not stop cleanly"; }
say "ok: built, ran with CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN, served /metrics, stopped and detached in $((SECONDS - t0)) s"
