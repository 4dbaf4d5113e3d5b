#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The checks of a clean root (no compiler), shared by .ci/clean-root.sh (x86-64, chroot on
# the host) and .ci/clean-root-arm64.sh (arm64, chroot inside an arm64 guest):
#
#   .ci/clean-root-check.sh ROOT TARBALL VERSION...
#
# ROOT holds /opt/nodeVERSION/bin/node for each VERSION, npm at /opt/npm, the runtime
# dependencies in the npm cache /root/.npm and TARBALL (a file name) in /tmp. Mounts /proc,
# /sys, /dev and bpffs in ROOT (unmounted at exit), checks that no compiler or BPF tool is
# there, then for each VERSION: `npm install --offline` of the tarball (timed; Node 24's with
# --ignore-scripts, as pnpm 10 and bun do), nothing built, the installed size, `tcpscope
# packets -i lo -c 5` on loopback traffic it makes itself, and a library import that runs the
# packets and connections probes. Then the hostile case: an exporter without its optional peer.
#
# TCPSCOPE_CI_TIME_FACTOR (default 1) multiplies every time limit: an emulated guest runs Node
# several times slower.
set -euo pipefail
factor=${TCPSCOPE_CI_TIME_FACTOR:-1}
secs() { echo $(($1 * factor)); }
root=$1 tgz=$2
shift 2
versions=("$@")
work=$(mktemp -d)
say() { printf 'clean-root: %s\n' "$*"; }
fail() { printf 'clean-root: FAIL: %s\n' "$*" >&2; exit 1; }
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mount_in() { mkdir -p "$root$2"; mount "${@:3}" "$1" "$root$2"; mounted+=("$root$2"); }

# The claim under test: nothing here can compile or generate anything.
for tool in cc gcc g++ c++ clang llc bpftool python3 python make pkg-config; do
  if chroot "$root" sh -c "command -v $tool" >/dev/null 2>&1; then fail "the clean root has $tool"; fi
done
if chroot "$root" dpkg-query -W -f '${Package}\n' 2>/dev/null | grep -E '^(libbpf.*|libelf.*|clang.*|llvm.*|gcc|gcc-[0-9]+|g\+\+.*|cpp.*|python3.*)$' ; then fail "the clean root has the packages above"; fi
if find "$root/usr/lib" "$root/lib" -name 'libbpf.so*' -o -name 'libelf*.so*' 2>/dev/null | grep -q .; then fail "the clean root has libbpf or libelf"; fi

mount_in /proc /proc -t proc
mount_in /sys /sys --rbind
mount_in /dev /dev --bind
grep -q " $root/sys/fs/bpf bpf" /proc/mounts || mount_in bpf /sys/fs/bpf -t bpf

in_root() { chroot "$root" env -i HOME=/root PATH="/opt/node$1/bin:/usr/sbin:/usr/bin:/sbin:/bin" "${@:2}"; }

summary=()
for v in "${versions[@]}"; do
  app=/app$v
  mkdir -p "$root$app"
  printf '{ "name": "app%s", "version": "1.0.0", "private": true }\n' "$v" >"$root$app/package.json"
  flags=(--offline --no-audit --no-fund --loglevel=error)
  [ "$v" = 24 ] && flags+=(--ignore-scripts)
  t0=$(date +%s.%N)
  in_root "$v" sh -c "cd $app && node /opt/npm/bin/npm-cli.js install ${flags[*]} /tmp/$tgz" >"$work/install$v.log" 2>&1 || { cat "$work/install$v.log"; fail "npm install under Node $v"; }
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  pkg=$root$app/node_modules/tcpscope
  [ ! -e "$pkg/build" ] || fail "Node $v: the install compiled something ($(ls "$pkg/build"))"
  kib=$(du -sk "$root$app/node_modules" | cut -f1)
  bytes=$(du -sb "$root$app/node_modules" | cut -f1)
  say "Node $(in_root "$v" node --version): npm install ${flags[*]: -1} took $secs s; node_modules $((bytes / 1024)) KiB apparent, $kib KiB on disk ($(ls "$root$app/node_modules" | tr '\n' ' '))"
  [ "$bytes" -le $((5 * 1024 * 1024)) ] || fail "node_modules is over 5 MB"

  # tcpscope packets on loopback traffic to a port of our own; the server starts after the
  # probe says it is listening, and keeps connecting until the probe has its 5 packets.
  port=$((20000 + ($$ + v) % 20000))
  cat >"$root$app/traffic.js" <<EOF
const net = require('node:net');
const server = net.createServer((s) => s.end('x')).listen($port, '127.0.0.1', () => {
  const timer = setInterval(() => net.connect($port, '127.0.0.1').on('error', () => {}).resume(), 50);
  setTimeout(() => process.exit(0), $(secs 30)000);
});
EOF
  out=$work/packets$v.out
  in_root "$v" sh -c "cd $app && exec timeout $(secs 30) node_modules/.bin/tcpscope packets -i lo -c 5 port $port" >"$out" 2>"$work/packets$v.err" &
  probe=$!
  for _ in $(seq 1 "$(secs 300)"); do grep -q 'listening on' "$work/packets$v.err" 2>/dev/null && break; kill -0 $probe 2>/dev/null || break; sleep 0.1; done
  grep -q 'listening on' "$work/packets$v.err" || { cat "$work/packets$v.err"; fail "Node $v: tcpscope packets did not start"; }
  in_root "$v" node "$app/traffic.js" &
  traffic=$!
  rc=0; wait $probe || rc=$?
  kill $traffic 2>/dev/null || true; wait $traffic 2>/dev/null || true
  [ "$rc" = 0 ] || { cat "$work/packets$v.err"; fail "Node $v: tcpscope packets exited $rc"; }
  lines=$(grep -c "127.0.0.1" "$out" || true)
  [ "$lines" -ge 5 ] || { cat "$out" "$work/packets$v.err"; fail "Node $v: expected 5 packet lines, got $lines"; }
  say "Node $v: tcpscope packets -i lo -c 5: $(head -1 "$out")"

  # The library: the packets and connections probes see a connection this script makes.
  cat >"$root$app/lib.js" <<'EOF'
const net = require('node:net');
const { packets, connections, formatPacket } = require('tcpscope');
(async () => {
  const port = Number(process.argv[2]);
  const pkts = packets({ interfaces: ['lo'], filter: `port ${port}` });
  const conns = connections({ ports: [port], events: ['close'] });
  const server = net.createServer((s) => s.end('hello')).listen(port, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const c = net.connect(port, '127.0.0.1').resume();
  await new Promise((r) => c.once('close', r));
  const timeout = setTimeout(() => { console.error('no events within 20 s'); process.exit(1); }, 20000);
  const p = (await pkts[Symbol.asyncIterator]().next()).value;
  const k = (await conns[Symbol.asyncIterator]().next()).value;
  clearTimeout(timeout);
  await pkts.close(); await conns.close(); server.close();
  if (!p || !k || k.sport !== port && k.dport !== port) { console.error('unexpected', p, k); process.exit(1); }
  console.log(`library ok: packet ${formatPacket(p)}; connection ${k.comm} ${k.saddr}:${k.sport} closed after ${k.bytesReceived} bytes received`);
})().catch((e) => { console.error(e.message); process.exit(1); });
EOF
  in_root "$v" sh -c "cd $app && timeout $(secs 40) node lib.js $((port + 1))" || fail "Node $v: the library import"
  summary+=("node$v=${secs}s/${kib}KiB")
done

# Hostile case: an exporter whose optional peer is absent says which package to install.
err=$(in_root "${versions[0]}" sh -c "cd /app${versions[0]} && timeout $(secs 20) node_modules/.bin/tcpscope serve --prometheus 0 --duration 1s" 2>&1 >/dev/null || true)
echo "$err" | grep -q 'needs the package prom-client: npm install prom-client' || fail "serve without prom-client said: $err"
[ "$(echo "$err" | grep -c .)" = 1 ] || fail "serve without prom-client printed more than one line: $err"
say "serve without prom-client: $err"
printf '{ "exporters": { "otlp": { "url": "http://127.0.0.1:9" } } }\n' >"$root/app${versions[0]}/otlp.json"
err=$(in_root "${versions[0]}" sh -c "cd /app${versions[0]} && timeout $(secs 20) node_modules/.bin/tcpscope serve --config otlp.json --duration 1s" 2>&1 >/dev/null || true)
echo "$err" | grep -q 'OpenTelemetry export (OTLP http/protobuf) needs the packages @opentelemetry/api, .*@opentelemetry/exporter-metrics-otlp-proto, @opentelemetry/exporter-logs-otlp-proto: npm install @opentelemetry/api ' ||
  fail "serve with otlp and no OpenTelemetry packages said: $err"
[ "$(echo "$err" | grep -c .)" = 1 ] || fail "serve without OpenTelemetry printed more than one line: $err"
say "serve without OpenTelemetry: $err"
say "ok: ${summary[*]}"
