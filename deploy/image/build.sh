#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the agent image of deploy/image/Containerfile.
#
#   deploy/image/build.sh [--base IMAGE] [--tag NAME] [--tarball FILE.tgz] [--node MAJOR]
#
#   --base     base image (default docker.io/library/debian:bookworm-slim; any glibc 2.35+ root)
#   --tag      image name (default: the one deploy/kubernetes/daemonset.yaml names)
#   --tarball  the tcpscope package to install (default: `npm pack` of this checkout)
#   --node     Node.js major version of the image (default 22), from the node-linux-<arch> npm package
#
# Uses podman, else buildah, else docker. The context is made in a temporary directory:
# the Node binary, and node_modules with tcpscope plus the exporters' optional peers at the
# versions package.json names.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=docker.io/library/debian:bookworm-slim
tag=$(sed -n 's/^ *image: *//p' "$repo/deploy/kubernetes/daemonset.yaml" | head -1)
tarball=
node_major=22
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --tarball) tarball=$(readlink -f "$2"); shift 2 ;;
    --node) node_major=$2; shift 2 ;;
    *) echo "build.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "build.sh: no Node package for $(uname -m)" >&2; exit 1 ;; esac

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
if [ -z "$tarball" ]; then
  (cd "$repo" && npm pack --silent --pack-destination "$ctx" >/dev/null)
  tarball=$(ls "$ctx"/tcpscope-*.tgz)
fi
npm install --silent --prefix "$ctx/nodepkg" --no-save --no-package-lock "node-linux-$arch@$node_major" >/dev/null
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/opt/tcpscope"
cp "$ctx/nodepkg/node_modules/node-linux-$arch/bin/node" "$ctx/rootfs/usr/local/bin/node"
peers=$(cd "$repo" && node -p "Object.entries(require('./package.json').peerDependencies).map(([n, v]) => n + '@' + v).join(' ')")
app=$ctx/rootfs/opt/tcpscope
echo '{ "name": "tcpscope-agent", "private": true }' >"$app/package.json"
# shellcheck disable=SC2086
npm install --silent --prefix "$app" --omit=dev --no-audit --no-fund "$tarball" $peers
cp "$here/Containerfile" "$ctx/"

if command -v podman >/dev/null; then build=(podman build)
elif command -v buildah >/dev/null; then build=(buildah bud)
else build=(docker build); fi
"${build[@]}" --build-arg "BASE=$base" -t "$tag" -f "$ctx/Containerfile" "$ctx"
echo "build.sh: built $tag from $base ($(du -sh "$app/node_modules" | cut -f1) of node_modules, Node $("$ctx/rootfs/usr/local/bin/node" --version))"
