#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Puts into a clean root what `npm install --offline` of the tarball needs there, fetched on
# the host (shared by .ci/clean-root.sh and .ci/clean-root-arm64.sh):
#
#   .ci/clean-root-npm.sh ROOT TARBALL
#
# TARBALL goes to ROOT/tmp, the host's npm (plain JavaScript) to ROOT/opt/npm, and the
# package's runtime dependencies into the npm cache ROOT/root/.npm.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$1 tarball=$2
mkdir -p "$root/tmp" "$root/opt" "$root/root"
cp "$tarball" "$root/tmp/"
cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$root/opt/npm"
deps=$(node -p "Object.entries(require('./package.json').dependencies || {}).map(([n, v]) => n + '@' + v).join(' ')")
for d in $deps; do npm cache add --silent --cache "$root/root/.npm" "$d" >/dev/null; done
