#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what tcpscope needs to build, run and test on Debian/Ubuntu.
set -eu
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3 \
  bpftool iproute2 ethtool tcpdump iperf3 nmap hping3 prometheus curl openssl binutils groff-base zsh >/dev/null
# Ubuntu ships bpftool in linux-tools; Debian in bpftool.
command -v bpftool >/dev/null 2>&1 || [ -x /usr/sbin/bpftool ] || \
  apt-get install -y -qq linux-tools-common "linux-tools-$(uname -r)" >/dev/null || true
echo "tcpscope: system packages installed"
