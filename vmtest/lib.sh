# SPDX-License-Identifier: MIT
# Shared helpers for vmtest/fetch and vmtest/run (bash; sourced, not executed).
# shellcheck shell=bash

VMTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$VMTEST_DIR/.." && pwd)
VMTEST_CACHE=${VMTEST_CACHE:-$REPO_ROOT/.vmtest-cache}
# Guest architecture: x86_64 (the host's root is the guest's) or arm64 (an arm64 root from
# Debian packages and npm over the host's, see vmtest/arm64/root). Each has its own kernel
# list, apt index and unpacked kernels; downloaded .debs share one directory.
VMTEST_ARCH=${VMTEST_ARCH:-x86_64}
case $VMTEST_ARCH in
  x86_64 | amd64 | x64) VMTEST_ARCH=x86_64 DEB_ARCH=amd64 ARCH_CACHE=$VMTEST_CACHE ;;
  arm64 | aarch64) VMTEST_ARCH=arm64 DEB_ARCH=arm64 ARCH_CACHE=$VMTEST_CACHE/arm64 ;;
  *) printf 'vmtest: error: unknown VMTEST_ARCH %s (x86_64 or arm64)\n' "$VMTEST_ARCH" >&2; exit 2 ;;
esac
if [[ $VMTEST_ARCH == x86_64 ]]; then
  VMTEST_KERNELS_FILE=${VMTEST_KERNELS_FILE:-$VMTEST_DIR/kernels.txt}
else
  VMTEST_KERNELS_FILE=${VMTEST_KERNELS_FILE:-$VMTEST_DIR/kernels-$VMTEST_ARCH.txt}
fi

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() { printf 'vmtest: error: %s\n' "$*" >&2; exit 2; }

# Non-comment lines of kernels.txt: "name suite pkg=ver [pkg=ver...]".
kernel_lines() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$VMTEST_KERNELS_FILE"; }
kernel_names() { kernel_lines | awk '{print $1}'; }
# kernel_entry NAME -> prints the line, fails if NAME is not listed
kernel_entry() {
  local line
  line=$(kernel_lines | awk -v n="$1" '$1 == n' | head -n1)
  [[ -n $line ]] || die "kernel '$1' is not in $VMTEST_KERNELS_FILE (known: $(kernel_names | tr '\n' ' '))"
  printf '%s\n' "$line"
}

# Debian mirror: reuse the host that the machine's own apt sources use
# (deb.debian.org unless configured otherwise); VMTEST_DEBIAN_MIRROR and
# VMTEST_SECURITY_MIRROR override it.
mirror_uris() {
  local uris main sec
  uris=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE '(https?)://[^ ]+/debian(-security)?/?' | sed 's:/*$::' | awk '!seen[$0]++')
  main=$(grep -E '/debian$' <<<"$uris" | head -n1)
  sec=$(grep -E '/debian-security$' <<<"$uris" | head -n1)
  main=${VMTEST_DEBIAN_MIRROR:-${main:-http://deb.debian.org/debian}}
  [[ -n $sec ]] || sec="${main%/debian}/debian-security"
  sec=${VMTEST_SECURITY_MIRROR:-$sec}
  printf '%s %s\n' "$main" "$sec"
}

APT_DIR=$ARCH_CACHE/apt
apt_opts() {
  printf '%s\n' \
    -o "Dir::Etc::SourceList=$APT_DIR/sources.list" \
    -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d" \
    -o "Dir::Etc::Preferences=$APT_DIR/preferences" \
    -o "Dir::Etc::PreferencesParts=$APT_DIR/preferences.d" \
    -o "Dir::State=$APT_DIR/state" \
    -o "Dir::State::status=$APT_DIR/state/status" \
    -o "Dir::Cache=$APT_DIR/cache" \
    -o "APT::Architecture=$DEB_ARCH" \
    -o "APT::Architectures::=$DEB_ARCH" \
    -o "Acquire::Languages=none" \
    -o "APT::Sandbox::User=root" \
    -o "Debug::NoLocking=false"
}
