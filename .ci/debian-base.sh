#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the path of a minimal Debian root (mmdebstrap --variant=minbase, a tar), made once
# and cached in $TCPSCOPE_CI_CACHE (default /var/tmp/tcpscope-ci). Shared by
# .ci/clean-root.sh (the clean root) and .ci/container.sh (the image's base).
set -euo pipefail
cache=${TCPSCOPE_CI_CACHE:-/var/tmp/tcpscope-ci}
suite=${TCPSCOPE_CI_SUITE:-bookworm}
mirror=${TCPSCOPE_CI_MIRROR:-http://deb.debian.org/debian}
base=$cache/base-$suite-minbase.tar
mkdir -p "$cache"
if [ ! -s "$base" ]; then
  command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  echo "debian-base: making $base once" >&2
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar "$suite" "$base.tmp.$$" "$mirror" >&2
  mv "$base.tmp.$$" "$base"
fi
echo "$base"
