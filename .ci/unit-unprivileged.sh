#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The unit tests (vitest project "unit") need no root, no BPF and no network namespace:
# run them as nobody, without capabilities, so that stays true. Needs `npm ci` first (the
# CLI tests run the compiled dist) and a tree nobody can read.
set -euo pipefail
cd "$(dirname "$0")/.."
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
chmod 0777 "$home"
setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all \
  env HOME="$home" TCPSCOPE_REQUIRE_BPF=1 npm run --ignore-scripts test:unit
