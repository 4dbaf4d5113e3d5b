// SPDX-License-Identifier: MIT
// How a CO-RE BPF object is compiled, shared by scripts/build.js (the package's own
// objects, before any TypeScript is built) and `tcpscope compile` (users' objects):
// finding clang, bpftool and llvm-strip, naming architectures, and clang's arguments.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/**
 * Architectures a BPF object can be built for: the name `--arch` takes, the names it also
 * accepts, its __TARGET_ARCH_ define (bpf_tracing.h picks PT_REGS and syscall wrappers
 * by it) and Node's process.arch.
 */
const ARCHES = [
  { name: 'x86_64', aliases: ['x86_64', 'x86', 'x64', 'amd64'], define: 'x86', node: 'x64' },
  { name: 'arm64', aliases: ['arm64', 'aarch64'], define: 'arm64', node: 'arm64' },
  { name: 's390x', aliases: ['s390x', 's390'], define: 's390', node: 's390x' },
  { name: 'ppc64le', aliases: ['ppc64le', 'ppc64', 'powerpc'], define: 'powerpc', node: 'ppc64' },
  { name: 'riscv64', aliases: ['riscv64', 'riscv'], define: 'riscv', node: 'riscv64' },
];

/** The architecture named `name` (any alias), or undefined. */
function archByName(name) {
  const n = String(name).toLowerCase();
  return ARCHES.find((a) => a.aliases.includes(n));
}

/** This machine's architecture (x86_64 when Node reports one we do not know). */
function hostArch() {
  return ARCHES.find((a) => a.node === process.arch) ?? ARCHES[0];
}

function which(cmd) {
  if (cmd.includes('/')) return fs.existsSync(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

/** clang ($CLANG, or clang, clang-19 ... clang-14 on PATH), or null. */
function findClang() {
  for (const c of [process.env.CLANG, 'clang', 'clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang-15', 'clang-14']) {
    const found = c && which(c);
    if (found) return found;
  }
  return null;
}

/** bpftool ($BPFTOOL or on PATH, /usr/sbin included), or null. */
function findBpftool() {
  for (const c of [process.env.BPFTOOL, 'bpftool']) {
    const found = c && which(c);
    if (found) return found;
  }
  return null;
}

/** llvm-strip matching clang where one exists, or null. */
function findLlvmStrip(clang) {
  const version = clang ? /clang-(\d+)$/.exec(clang)?.[1] : undefined;
  for (const c of [process.env.LLVM_STRIP, version && `llvm-strip-${version}`, 'llvm-strip', 'llvm-strip-19', 'llvm-strip-18', 'llvm-strip-17', 'llvm-strip-16', 'llvm-strip-15', 'llvm-strip-14']) {
    const found = c && which(c);
    if (found) return found;
  }
  return null;
}

/** Where libbpf's headers (bpf/bpf_helpers.h) are, or null. */
function libbpfHeaders() {
  for (const dir of ['/usr/include', '/usr/local/include']) {
    if (fs.existsSync(path.join(dir, 'bpf', 'bpf_helpers.h'))) return dir;
  }
  return null;
}

/** A vmlinux.h kept in the package for `arch` (bpf/vmlinux/<arch>/vmlinux.h, any alias), or null. */
function shippedVmlinux(packageRoot, arch) {
  for (const alias of arch.aliases) {
    const p = path.join(packageRoot, 'bpf', 'vmlinux', alias, 'vmlinux.h');
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** Writes vmlinux.h for the kernel whose BTF is `btf` to `dest` with bpftool; throws with bpftool's message. */
function generateVmlinux(bpftool, btf, dest) {
  const r = spawnSync(bpftool, ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${bpftool} btf dump file ${btf} failed: ${String(r.stderr).trim().split('\n').pop()}`);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, r.stdout);
  fs.renameSync(tmp, dest);
  return dest;
}

/**
 * clang's arguments for one CO-RE object: BPF target, the architecture define, -g (BTF)
 * and -O2 (the verifier needs optimised code), the include directories in order.
 */
function clangArgs({ arch, includes, src, out, extra = [] }) {
  const args = ['-target', 'bpf', `-D__TARGET_ARCH_${arch.define}`, '-g', '-O2', '-Wall', '-Wno-unused-function'];
  for (const dir of includes) args.push('-I', dir);
  return [...args, ...extra, '-c', src, '-o', out];
}

/** The package's BPF sources: every *.bpf.c under bpf/, examples/ and test/bpf/ (not node_modules). */
function bpfSources(root) {
  const sources = [];
  for (const dir of ['bpf', 'examples', path.join('test', 'bpf')]) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const entry of fs.readdirSync(abs, { recursive: true })) {
      // An example project builds its own objects (tcpscope compile) and may hold an
      // installed copy of this package under node_modules.
      if (String(entry).split(path.sep).includes('node_modules')) continue;
      if (String(entry).endsWith('.bpf.c')) sources.push(path.join(abs, String(entry)));
    }
  }
  return sources;
}

module.exports = {
  bpfSources, ARCHES, archByName, hostArch, findClang, findBpftool, findLlvmStrip, libbpfHeaders, shippedVmlinux, generateVmlinux, clangArgs };
