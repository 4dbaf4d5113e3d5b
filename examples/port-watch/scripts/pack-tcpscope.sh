#!/bin/sh
# SPDX-License-Identifier: MIT
# Packs the tcpscope package of this repository (npm pack, as it would be published) into
# vendor/tcpscope.tgz, which package.json depends on: the example installs tcpscope the way
# any other project does, from outside the package's own build.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$here/vendor"
( cd "$repo" && [ -f dist/lib/index.js ] || npm run build:ts >/dev/null )
tarball=$(cd "$repo" && npm pack --silent --pack-destination "$here/vendor" | tail -n 1)
mv "$here/vendor/$tarball" "$here/vendor/tcpscope.tgz"
echo "vendor/tcpscope.tgz ($(du -k "$here/vendor/tcpscope.tgz" | cut -f1) kB) from $repo"
